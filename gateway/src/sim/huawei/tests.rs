//! The simulated Huawei BSS over HTTP, signed like the SDKs sign: every
//! row of the permission table answers, the main shapes and amounts, CBC
//! errors with their statuses (some inside 200, successes as 204), and
//! APIG's refusals of bad signatures, unknown keys and stale dates.

use std::path::Path;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::huawei::call::format_sdk_date;
use crate::huawei::outbound::{HuaweiKey, OutboundCall, signed_request};
use crate::sim::{SimConfig, SimHandle, spawn};

const AK: &str = "HWACMEHELDBYPARTNER1";
const DOMAIN: &str = "0a7c3b2f3d80d4a20f7ac004cbde0001";

fn policies() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn secret() -> String {
    std::fs::read_to_string(policies().join("secrets/huawei/acme-held.sk"))
        .expect("secret")
        .trim()
        .to_owned()
}

struct Hw {
    handle: SimHandle,
    client: Client<HttpConnector, Full<Bytes>>,
    ak: String,
    secret: String,
    date: OffsetDateTime,
    domain: Option<String>,
}

async fn start() -> Hw {
    let cfg = SimConfig::load(&policies().join("sim.toml")).expect("sim config");
    let handle = spawn(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("spawn");
    Hw {
        handle,
        client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        ak: AK.to_owned(),
        secret: secret(),
        date: OffsetDateTime::now_utc(),
        domain: Some(DOMAIN.to_owned()),
    }
}

impl Hw {
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let body = body
            .map(|b| serde_json::to_vec(&b).expect("json"))
            .unwrap_or_default();
        let call = OutboundCall {
            method,
            raw_path: path,
            raw_query: query,
            domain_id: self.domain.as_deref(),
            extra_headers: vec![],
            content_type: (!body.is_empty()).then_some("application/json;charset=UTF-8"),
            body: Bytes::from(body),
        };
        let req = signed_request(
            &call,
            "http",
            &self.handle.addr.to_string(),
            HuaweiKey {
                access_key_id: &self.ak,
                secret: &self.secret,
            },
            &format_sdk_date(self.date),
        );
        let (parts, body) = req.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        let resp = self
            .client
            .request(http::Request::from_parts(parts, Full::new(body)))
            .await
            .expect("send");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("read").to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("json answer")
        };
        (status, v)
    }
}

fn concrete(pattern: &str) -> String {
    pattern
        .replace("{order_id}", "CS0000000000NONE")
        .replace("{resource_id}", "no-such-resource")
        .replace("{domain_id}", DOMAIN)
}

#[tokio::test]
async fn every_row_of_the_permission_table_answers() {
    let hw = start().await;
    let catalog = crate::catalog::Catalog::builtin().expect("catalog");
    let mut rows = 0;
    for e in catalog.huawei_entries() {
        let route = e.route.as_ref().expect("huawei route");
        let path = concrete(route.path.as_str());
        let (status, v) = hw.call(route.method.clone(), &path, Some(json!({}))).await;
        assert!(
            v.get("error_code")
                .and_then(Value::as_str)
                .is_none_or(|c| c.starts_with("CBC.")),
            "row {} {} {path}: {status} {v}",
            route.row,
            route.method
        );
        assert!(!status.is_server_error(), "row {}: {status} {v}", route.row);
        rows += 1;
    }
    assert_eq!(rows, 27);
}

#[tokio::test]
async fn on_demand_rating_has_the_real_shape_and_exact_amounts() {
    let hw = start().await;
    let (status, v) = hw
        .call(
            Method::POST,
            "/v2/bills/ratings/on-demand-resources",
            Some(json!({"project_id": "p1", "product_infos": [
                {"id": "1", "cloud_service_type": "hws.service.type.ec2", "resource_type": "hws.resource.type.vm",
                 "resource_spec": "c6.large.2.linux", "region": "cn-north-4", "usage_factor": "Duration",
                 "usage_value": 1, "usage_measure_id": 4, "subscription_num": 2},
                {"id": "2", "cloud_service_type": "hws.service.type.ebs", "resource_type": "hws.resource.type.volume",
                 "resource_spec": "SAS", "region": "cn-north-4", "resource_size": 40, "size_measure_id": 17,
                 "usage_factor": "Duration", "usage_value": 1, "usage_measure_id": 4, "subscription_num": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // 2 x 0.78 = 1.56 list, 10 % (0.156) off; 40 GB x 0.0012 = 0.048.
    assert_eq!(v["official_website_amount"].to_string(), "1.608");
    assert_eq!(v["discount_amount"].to_string(), "0.156");
    assert_eq!(v["amount"].to_string(), "1.452");
    assert_eq!(v["measure_id"], 1);
    assert_eq!(
        v["product_rating_results"][0]["amount"].to_string(),
        "1.404"
    );
    assert_eq!(
        v["product_rating_results"][0]["discount_rating_results"][0]["discount_type"],
        607
    );
    assert_eq!(
        v["product_rating_results"][1]["amount"].to_string(),
        "0.048"
    );
}

#[tokio::test]
async fn period_rating_lists_the_discount_offer() {
    let hw = start().await;
    let (status, v) = hw
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/subscribe-rate",
            Some(json!({"project_id": "p1", "product_infos": [
                {"id": "1", "cloud_service_type": "hws.service.type.ec2", "resource_type": "hws.resource.type.vm",
                 "resource_spec": "c6.large.2.linux", "region": "cn-north-4", "period_type": 3, "period_num": 1,
                 "subscription_num": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["official_website_rating_result"]["official_website_amount"].to_string(),
        "1046.4"
    );
    let offer = &v["optional_discount_rating_results"][0];
    assert_eq!(offer["amount"].to_string(), "941.76");
    assert_eq!(offer["best_offer"], 1);
    let (status, v) = hw
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/subscribe-rate",
            Some(json!({"project_id": "p1", "product_infos": [{"id": "1"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error_code"], "CBC.0100");
}

#[tokio::test]
async fn orders_pay_cancel_and_errors_with_their_statuses() {
    let hw = start().await;
    let (status, v) = hw
        .call(Method::GET, "/v2/orders/customer-orders?status=6", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["total_count"], 1, "{v}");
    let pending = v["order_infos"][0]["order_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, detail) = hw
        .call(
            Method::GET,
            &format!("/v2/orders/customer-orders/details/{pending}"),
            None,
        )
        .await;
    assert_eq!(detail["order_info"]["status"], 6);
    assert_eq!(detail["order_line_items"][0]["period_type"], 2);
    let pay = json!({"order_id": pending, "use_coupon": "NO", "use_discount": "NO"});
    let (status, v) = hw
        .call(
            Method::POST,
            "/v3/orders/customer-orders/pay",
            Some(pay.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let (status, v) = hw
        .call(Method::POST, "/v3/orders/customer-orders/pay", Some(pay))
        .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.30000010"))
    );
    let (status, v) = hw
        .call(
            Method::PUT,
            "/v2/orders/customer-orders/cancel",
            Some(json!({"order_id": pending})),
        )
        .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.99005010"))
    );
    let (_, bal) = hw
        .call(Method::GET, "/v2/accounts/customer-accounts/balances", None)
        .await;
    // 20000 - 100 GB x 0.35 = 19965.
    assert_eq!(bal["account_balances"][0]["amount"].to_string(), "19965");
}

#[tokio::test]
async fn renewals_report_unknown_resources_inside_200() {
    let hw = start().await;
    let (_, res) = hw
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(json!({})),
        )
        .await;
    let ecs = res["data"][0]["resource_id"]
        .as_str()
        .expect("resource")
        .to_owned();
    let (status, v) = hw
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/renew-rate",
            Some(json!({"resource_ids": ["nope"], "period_type": 2, "period_num": 1})),
        )
        .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::OK, Some("CBC.30050009"))
    );
    let (status, v) = hw
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/renew-rate",
            Some(json!({"resource_ids": [ecs], "period_type": 2, "period_num": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["renew_inquiry_results"][0]["amount"], "78.48");
    let (status, v) = hw
        .call(
            Method::POST,
            "/v2/orders/subscriptions/resources/renew",
            Some(json!({"resource_ids": [ecs, "nope"], "period_type": 2, "period_num": 1, "is_auto_pay": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["order_ids"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["fail_resource_infos"][0]["error_code"], "CBC.30050009");
    let path = format!("/v2/orders/subscriptions/resources/autorenew/{ecs}");
    let (status, _) = hw.call(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = hw.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = hw.call(Method::DELETE, &path, None).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.99003605"))
    );
}

#[tokio::test]
async fn apig_refuses_bad_signatures_unknown_keys_stale_dates_and_foreign_domains() {
    let mut hw = start().await;
    let path = "/v2/accounts/customer-accounts/balances";
    let (status, _) = hw.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    hw.secret = "wrong".into();
    let (status, v) = hw.call(Method::GET, path, None).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    assert!(
        v["request_id"].is_string(),
        "APIG puts the request id in the body: {v}"
    );
    hw.secret = secret();
    hw.ak = "HWNOSUCHKEY000000001".into();
    let (status, v) = hw.call(Method::GET, path, None).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    hw.ak = AK.into();
    hw.date = OffsetDateTime::now_utc() - time::Duration::minutes(16);
    let (status, v) = hw.call(Method::GET, path, None).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    hw.date = OffsetDateTime::now_utc();
    hw.domain = Some("0a7c3b2f3d80d4a20f7ac004cbde0002".into());
    let (status, v) = hw.call(Method::GET, path, None).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    hw.domain = Some(DOMAIN.into());
    let (status, v) = hw.call(Method::GET, "/v2/no/such/api", None).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("APIG.0101"))
    );
    let recorded = hw.handle.sim.recorded();
    assert_eq!(recorded.len(), 1, "only the accepted call is recorded");
    assert_eq!(recorded[0].action, "ShowCustomerAccountBalances");
    assert_eq!(recorded[0].owner_id.as_deref(), Some(DOMAIN));
}
