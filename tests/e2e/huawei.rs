//! Huawei Cloud BSS through the gateway: customers call with the AK/SK the
//! partner issued them (`SDK-HMAC-SHA256`), the simulated BSS receives the
//! call re-signed with the credential the partner holds for the customer's
//! account (and checks that signature), permission codes are enforced,
//! rating answers carry partner prices, pay / auto-paid renewals are held
//! against the budget, and every refusal is in Huawei's envelope.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tollgate::huawei::call::format_sdk_date;
use tollgate::huawei::outbound::{HuaweiKey, OutboundCall, signed_request};

use crate::support::*;

/// A customer's Huawei caller, signing like the official SDKs.
pub(crate) struct Hw {
    pub(crate) gateway: SocketAddr,
    pub(crate) ak: String,
    pub(crate) secret: String,
    pub(crate) domain: Option<String>,
    /// `X-Sdk-Date`: `None` signs at call time (as the SDKs do).
    pub(crate) date: Option<OffsetDateTime>,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    module: Option<String>,
    /// `x-tollgate-policy-version`: every answer names the policy version.
    version: Option<String>,
}

impl Hw {
    pub(crate) fn acme(stack: &Stack) -> Self {
        Self {
            gateway: stack.gateway.addr,
            ak: ACME_HW_AK.into(),
            secret: secret("huawei/acme-customer.sk"),
            domain: Some(ACME_DOMAIN.into()),
            date: None,
        }
    }

    fn globex(stack: &Stack) -> Self {
        Self {
            ak: GLOBEX_HW_AK.into(),
            secret: secret("huawei/globex-customer.sk"),
            domain: Some(GLOBEX_DOMAIN.into()),
            ..Self::acme(stack)
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Reply {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = signed_request(
            &OutboundCall {
                method,
                raw_path: path,
                raw_query: query,
                domain_id: self.domain.as_deref(),
                extra_headers: vec![],
                content_type: (!body.is_empty()).then_some("application/json;charset=UTF-8"),
                body: Bytes::from(body),
            },
            "http",
            &self.gateway.to_string(),
            HuaweiKey {
                access_key_id: &self.ak,
                secret: &self.secret,
            },
            &format_sdk_date(self.date.unwrap_or_else(OffsetDateTime::now_utc)),
        );
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<tollgate::Body>();
        let resp = client.request(req).await.expect("gateway answers");
        let status = resp.status();
        let module = resp
            .headers()
            .get("x-tollgate-pricing-module")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let version = resp
            .headers()
            .get(tollgate::proxy::POLICY_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            body,
            module,
            version,
        }
    }
}

pub(crate) fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => s.parse().expect("decimal"),
        other => other.to_string().parse().expect("decimal"),
    }
}

fn on_demand() -> Value {
    json!({"project_id": "c4c24000000000000000000000599c2", "product_infos": [{
        "id": "1", "cloud_service_type": "hws.service.type.ec2", "resource_type": "hws.resource.type.vm",
        "resource_spec": "c6.large.2.linux", "region": "cn-north-4", "usage_factor": "Duration",
        "usage_value": 1, "usage_measure_id": 4, "subscription_num": 1}]})
}

fn period() -> Value {
    json!({"project_id": "c4c24000000000000000000000599c2", "product_infos": [{
        "id": "1", "cloud_service_type": "hws.service.type.ec2", "resource_type": "hws.resource.type.vm",
        "resource_spec": "c6.large.2.linux", "region": "cn-north-4", "period_type": 3, "period_num": 1,
        "subscription_num": 1}]})
}

async fn huawei_recorded(stack: &Stack) -> Vec<tollgate::sim::RecordedRequest> {
    stack
        .recorded()
        .await
        .into_iter()
        .filter(|r| r.version == "huawei-bss")
        .collect()
}

#[tokio::test]
async fn main_apis_reach_bss_with_the_partner_held_credential() {
    let stack = Stack::start();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(
            Method::GET,
            "/v2/orders/customer-orders?limit=10&offset=0",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total_count"], 2);
    // Huawei answers name the policy version that served them, like
    // Alibaba's (hot reload).
    let version = r.version.as_deref().expect("x-tollgate-policy-version");
    assert!(
        version.len() == 16 && version.bytes().all(|b| b.is_ascii_hexdigit()),
        "{version}"
    );
    let r = acme
        .call(Method::GET, "/v2/accounts/customer-accounts/balances", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["account_balances"][0]["amount"].to_string(), "20000");
    let r = acme
        .call(
            Method::POST,
            "/v2/bills/ratings/on-demand-resources",
            Some(on_demand()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // No pricing module: the official answer passes unchanged.
    assert_eq!(r.body["amount"].to_string(), "0.702");
    assert!(r.module.is_none());
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(json!({"limit": 10})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let resource = r.body["data"][0]["resource_id"]
        .as_str()
        .expect("resource")
        .to_owned();
    let r = acme
        .call(
            Method::POST,
            &format!("/v2/orders/subscriptions/resources/autorenew/{resource}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = acme
        .call(
            Method::GET,
            "/v2/bills/customer-bills/res-fee-records?cycle=2026-01",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = acme
        .call(
            Method::POST,
            "/v4/costs/cost-analysed-bills/query",
            Some(json!({"time_condition": {"time_measure_id": 2, "begin_time": "2026-01", "end_time": "2026-12"},
                "groupby": [{"type": "dimension", "key": "CLOUD_SERVICE_TYPE"}],
                "cost_type": "ORIGINAL_COST", "amount_type": "PAYMENT_AMOUNT"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["cost_data"][0]["amount_by_costs"], "941.76");

    let seen = huawei_recorded(&stack).await;
    assert_eq!(seen.len(), 7, "{seen:?}");
    for r in &seen {
        assert_eq!(
            r.access_key_id, ACME_HW_HELD_AK,
            "the partner-held key signs"
        );
        assert_eq!(
            r.owner_id.as_deref(),
            Some(ACME_DOMAIN),
            "X-Domain-Id is acme's"
        );
        assert!(r.signature_valid);
    }
    assert_eq!(seen[0].action, "ListCustomerOrders");
    assert_eq!(
        seen[0].params,
        vec![
            ("limit".to_owned(), "10".to_owned()),
            ("offset".to_owned(), "0".to_owned())
        ]
    );
    // The body is forwarded byte for byte.
    assert_eq!(
        seen[2].body.as_deref(),
        Some(on_demand().to_string().as_str())
    );
    // Counted per catalogued operation, under the huawei provider label.
    let metrics = metrics_text(stack.admin, &stack.admin_token).await;
    assert!(
        metrics.contains(r#"provider="huawei",action="ListCustomerOrders",outcome="ok""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn ratings_show_partner_prices_normalised_and_in_huawei_fields() {
    let wasm = policies().join("pricing/reference.wasm");
    assert!(
        wasm.exists(),
        "{}: run scripts/build-guests",
        wasm.display()
    );
    // The example's region quota names Alibaba regions, and BSS order
    // details carry no region, so this partner's config drops it (a
    // Huawei reseller lists its own regions or none).
    let reference =
        std::fs::read_to_string(policies().join("pricing/reference.toml")).expect("config");
    let quota = "[[quota]]\nname = \"allowed-regions\"\nallowed_regions = [\"cn-hangzhou\", \"cn-shanghai\"]\n";
    assert!(
        reference.contains(quota),
        "the example's region quota moved"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("huawei-partner.toml");
    std::fs::write(&config, reference.replace(quota, "")).expect("write config");
    let stack = Stack::start_priced(&wasm, &config);
    let acme = Hw::acme(&stack);
    // acme (enterprise): the global 10 % markup on the list price.
    let r = acme
        .call(
            Method::POST,
            "/v2/bills/ratings/on-demand-resources",
            Some(on_demand()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.module.as_deref().is_some_and(|m| m.contains("sha256:")),
        "{:?}",
        r.module
    );
    assert_eq!(dec(&r.body["amount"]), "0.86".parse().expect("d"));
    assert_eq!(
        dec(&r.body["official_website_amount"]),
        "0.86".parse().expect("d")
    );
    assert_eq!(
        dec(&r.body["product_rating_results"][0]["amount"]),
        "0.86".parse().expect("d")
    );
    assert!(r.body["amount"].is_number(), "amounts stay JSON numbers");
    let r = acme
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/subscribe-rate",
            Some(period()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        dec(&r.body["official_website_rating_result"]["official_website_amount"]),
        "1151.04".parse().expect("d")
    );
    assert_eq!(
        r.body["optional_discount_rating_results"],
        json!([]),
        "no discount: the list price is the price"
    );
    // globex (startup): 10 % off the list price, one offer.
    let globex = Hw::globex(&stack);
    let r = globex
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/subscribe-rate",
            Some(period()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let offers = r.body["optional_discount_rating_results"]
        .as_array()
        .expect("offers");
    assert_eq!(offers.len(), 1, "{}", r.body);
    assert_eq!(dec(&offers[0]["amount"]), "941.76".parse().expect("d"));
    assert_eq!(offers[0]["best_offer"], 1);
    // A business error inside HTTP 200 passes through untouched.
    let r = acme
        .call(
            Method::POST,
            "/v2/bills/ratings/period-resources/renew-rate",
            Some(json!({"resource_ids": ["nope"], "period_type": 2, "period_num": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["error_code"], "CBC.30050009");
    // Orders show, and paying one holds, the partner price: 35.00 + 10 %.
    let r = acme
        .call(Method::GET, "/v2/orders/customer-orders?status=6", None)
        .await;
    assert_eq!(
        dec(&r.body["order_infos"][0]["amount_after_discount"]),
        "38.5".parse().expect("d")
    );
    let pending = r.body["order_infos"][0]["order_id"]
        .as_str()
        .expect("pending")
        .to_owned();
    let pay = json!({"order_id": pending, "use_coupon": "NO", "use_discount": "NO"});
    let r = acme
        .call(Method::POST, "/v3/orders/customer-orders/pay", Some(pay))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (_, b) = admin(&stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    assert_eq!(dec(&b["consumed"]), "38.5".parse().expect("d"), "{b}");
}

#[tokio::test]
async fn pay_and_auto_paid_renewals_are_held_against_the_budget() {
    let stack = Stack::start();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(Method::GET, "/v2/orders/customer-orders?status=6", None)
        .await;
    let pending = r.body["order_infos"][0]["order_id"]
        .as_str()
        .expect("pending")
        .to_owned();
    let pay = json!({"order_id": pending, "use_coupon": "NO", "use_discount": "NO"});
    let r = acme
        .call(
            Method::POST,
            "/v3/orders/customer-orders/pay",
            Some(pay.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (_, b) = admin(&stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    assert_eq!(dec(&b["consumed"]), "35".parse().expect("d"), "{b}");
    assert_eq!(dec(&b["held"]), Decimal::ZERO, "{b}");
    // Paying again (signed again, a second later): BSS refuses, the hold
    // is released, nothing more consumed.
    let later = Hw {
        date: Some(OffsetDateTime::now_utc() + time::Duration::seconds(1)),
        ..Hw::acme(&stack)
    };
    let r = later
        .call(Method::POST, "/v3/orders/customer-orders/pay", Some(pay))
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.30000010"))
    );
    let (_, b) = admin(&stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    assert_eq!(dec(&b["consumed"]), "35".parse().expect("d"), "{b}");
    assert_eq!(dec(&b["held"]), Decimal::ZERO, "{b}");

    // An auto-paid renewal above the budget is refused before BSS sees it.
    let (s, v) = admin(
        &stack,
        Method::PUT,
        "/v1/budgets/acme/quota",
        json!({"amount": "150.00"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(json!({})),
        )
        .await;
    let ecs = r.body["data"][0]["resource_id"]
        .as_str()
        .expect("ecs")
        .to_owned();
    let before = huawei_recorded(&stack).await.len();
    let renew = json!({"resource_ids": [ecs], "period_type": 3, "period_num": 1, "is_auto_pay": 1});
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/subscriptions/resources/renew",
            Some(renew),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error_code"], "CBC.18000016");
    let seen = huawei_recorded(&stack).await;
    assert_eq!(
        seen[before..]
            .iter()
            .map(|r| r.action.as_str())
            .collect::<Vec<_>>(),
        vec!["ListRenewRateOnPeriod"],
        "only the price was asked; nothing was renewed"
    );
    // A one-month renewal fits: 78.48 held and committed with its order id.
    let renew = json!({"resource_ids": [ecs], "period_type": 2, "period_num": 1, "is_auto_pay": 1});
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/subscriptions/resources/renew",
            Some(renew),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, b) = admin(&stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    assert_eq!(dec(&b["consumed"]), "113.48".parse().expect("d"), "{b}");
    let (_, holds) = admin(
        &stack,
        Method::GET,
        "/v1/budgets/acme/holds?state=all",
        Value::Null,
    )
    .await;
    assert!(
        holds
            .to_string()
            .contains(r.body["order_ids"][0].as_str().expect("order")),
        "{holds}"
    );
}

#[tokio::test]
async fn refusals_are_in_huawei_format_and_reach_nothing() {
    let stack = Stack::start();
    let path = "/v2/accounts/customer-accounts/balances";
    let mut acme = Hw::acme(&stack);
    acme.secret = "not-the-secret".into();
    let r = acme.call(Method::GET, path, None).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    assert!(r.body["request_id"].is_string(), "{}", r.body);
    assert!(r.version.is_some(), "refusals name the policy version too");
    let mut acme = Hw::acme(&stack);
    acme.ak = "TGHWNOSUCHKEY0000001".into();
    let r = acme.call(Method::GET, path, None).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    let mut acme = Hw::acme(&stack);
    acme.date = Some(OffsetDateTime::now_utc() - time::Duration::minutes(20));
    let r = acme.call(Method::GET, path, None).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    let mut acme = Hw::acme(&stack);
    acme.domain = Some(GLOBEX_DOMAIN.into());
    let r = acme.call(Method::GET, path, None).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIG.0301"))
    );
    // Globex's policies grant prices and orders, not balances or pay.
    let globex = Hw::globex(&stack);
    let r = globex.call(Method::GET, path, None).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("CBC.0151"))
    );
    assert!(
        r.body["error_msg"]
            .as_str()
            .is_some_and(|m| m.contains("bss:balance:view")),
        "{}",
        r.body
    );
    let r = globex
        .call(
            Method::POST,
            "/v3/orders/customer-orders/pay",
            Some(json!({"order_id": "CS1", "use_coupon": "NO", "use_discount": "NO"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("CBC.0151"))
    );
    // A v1.0 path naming another account.
    let acme = Hw::acme(&stack);
    let r = acme
        .call(
            Method::GET,
            &format!("/v1.0/{GLOBEX_DOMAIN}/payments/intl-invoices"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("CBC.0151"))
    );
    // Dot segments are never an API.
    let r = acme
        .call(Method::GET, "/v2/orders/x/../customer-orders", None)
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("APIG.0101"))
    );
    // Unsigned.
    let (status, text) =
        http_request(stack.gateway.addr, Method::GET, path, None, String::new()).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("APIG.0301"), "{text}");
    assert!(
        huawei_recorded(&stack).await.is_empty(),
        "no refused call reached BSS"
    );
    // The sim's own refusal of a stale partner-held signature never
    // happens: every forwarded call is freshly signed (checked above).
    let logs = stack.gateway.logs();
    for s in all_secrets() {
        assert!(!logs.contains(&s), "a secret reached the gateway log");
    }
}

#[tokio::test]
async fn provider_errors_keep_their_cbc_code_and_status() {
    let stack = Stack::start();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(
            Method::PUT,
            "/v2/orders/customer-orders/cancel",
            Some(json!({"order_id": "CS0000NOSUCH"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.30000010"))
    );
    let r = acme
        .call(
            Method::POST,
            "/v2/bills/ratings/on-demand-resources",
            Some(json!({"project_id": "p"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.0100"))
    );
    stack
        .set_faults(json!({"fail_next": 1, "fail_status": 500}))
        .await;
    let r = acme
        .call(Method::GET, "/v2/orders/customer-orders", None)
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("CBC.0999"))
    );
}

#[tokio::test]
async fn a_payment_whose_answer_is_lost_is_settled_by_asking_bss() {
    let stack = Stack::start();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(Method::GET, "/v2/orders/customer-orders?status=6", None)
        .await;
    let pending = r.body["order_infos"][0]["order_id"]
        .as_str()
        .expect("pending")
        .to_owned();
    let pay = json!({"order_id": pending, "use_coupon": "NO", "use_discount": "NO"});
    // BSS closes the connection before paying: the outcome is unknown to
    // the gateway, which asks BSS, finds the order unpaid and releases.
    stack
        .set_faults(json!({"drop_next": 1, "only_action": "PayOrders"}))
        .await;
    let r = acme
        .call(
            Method::POST,
            "/v3/orders/customer-orders/pay",
            Some(pay.clone()),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("CBC.0999")),
        "{}",
        r.body
    );
    let (_, b) = admin(&stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    assert_eq!(
        (dec(&b["consumed"]), dec(&b["held"])),
        (Decimal::ZERO, Decimal::ZERO),
        "{b}"
    );
    let (_, holds) = admin(
        &stack,
        Method::GET,
        "/v1/budgets/acme/holds?state=all",
        Value::Null,
    )
    .await;
    assert!(holds.to_string().contains("released"), "{holds}");
    // The retry (signed again) pays and is charged once.
    let later = Hw {
        date: Some(OffsetDateTime::now_utc() + time::Duration::seconds(1)),
        ..Hw::acme(&stack)
    };
    let r = later
        .call(Method::POST, "/v3/orders/customer-orders/pay", Some(pay))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (_, b) = admin(&stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    assert_eq!(dec(&b["consumed"]), "35".parse().expect("d"), "{b}");
}

#[tokio::test]
async fn a_frozen_budget_stops_pay_renew_and_unsubscribe_but_not_reads() {
    let stack = Stack::start();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(json!({})),
        )
        .await;
    let ecs = r.body["data"][0]["resource_id"]
        .as_str()
        .expect("ecs")
        .to_owned();
    let (s, v) = admin(
        &stack,
        Method::PUT,
        "/v1/budgets/acme/status",
        json!({"status": "frozen"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let before = huawei_recorded(&stack).await.len();
    for (method, path, body) in [
        (
            Method::POST,
            "/v3/orders/customer-orders/pay",
            json!({"order_id": "CS1", "use_coupon": "NO", "use_discount": "NO"}),
        ),
        (
            Method::POST,
            "/v2/orders/subscriptions/resources/renew",
            json!({"resource_ids": [ecs], "period_type": 2, "period_num": 1, "is_auto_pay": 1}),
        ),
        (
            Method::POST,
            "/v2/orders/subscriptions/resources/unsubscribe",
            json!({"resource_ids": [ecs], "unsubscribe_type": 1}),
        ),
    ] {
        let r = acme.call(method, path, Some(body)).await;
        assert_eq!(
            (r.status, r.body["error_code"].as_str()),
            (StatusCode::FORBIDDEN, Some("CBC.18000016")),
            "{path}: {}",
            r.body
        );
        assert!(
            r.body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains("frozen")),
            "{}",
            r.body
        );
    }
    assert_eq!(
        huawei_recorded(&stack).await.len(),
        before,
        "nothing reached BSS"
    );
    let r = acme
        .call(Method::GET, "/v2/orders/customer-orders", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "reads still work: {}", r.body);
}

#[tokio::test]
async fn a_replayed_state_changing_call_is_refused_reads_are_not() {
    let stack = Stack::start();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(json!({})),
        )
        .await;
    let ecs = r.body["data"][0]["resource_id"]
        .as_str()
        .expect("ecs")
        .to_owned();
    // The same signed request twice (same X-Sdk-Date, same signature).
    let mut acme = acme;
    acme.date = Some(OffsetDateTime::now_utc());
    let path = format!("/v2/orders/subscriptions/resources/autorenew/{ecs}");
    let first = acme.call(Method::POST, &path, None).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.body);
    let before = huawei_recorded(&stack).await.len();
    let again = acme.call(Method::POST, &path, None).await;
    assert_eq!(
        (again.status, again.body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CBC.99008040")),
        "{}",
        again.body
    );
    assert_eq!(
        huawei_recorded(&stack).await.len(),
        before,
        "the replay reached nothing"
    );
    // Reads may repeat (an SDK may send the same list twice in a second).
    let a = acme
        .call(Method::GET, "/v2/orders/customer-orders", None)
        .await;
    let b = acme
        .call(Method::GET, "/v2/orders/customer-orders", None)
        .await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
}
