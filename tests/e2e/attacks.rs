//! Attacks that must fail: each test is one way a customer tried (in an
//! adversarial review of the gateway) to buy more than was held, to buy
//! past its budget or its permissions, or to make the gateway and the
//! provider read one request two ways. Every test asserts what the
//! simulated cloud recorded, so "refused" means "nothing was bought".
//!
//! Add the next finding here, as an attack with its expected refusal.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tollgate::aliyun::outbound::{Freshness, OutboundCall, SigningKey};
use tollgate::client::AliyunClient;
use tollgate::config::OutboundScheme;

use crate::support::*;

/// The priced stack on SQLite, or on a PostgreSQL schema of its own
/// (`None` when no PostgreSQL is configured: the test says so and passes).
fn priced_stack_on(postgres: bool) -> Option<(Stack, Option<String>)> {
    let (ledger, schema) = ledger_on(postgres)?;
    Some((
        Stack::start_priced_with_ledger(
            &policies().join("pricing/reference.wasm"),
            &policies().join("pricing/reference.toml"),
            &ledger,
        ),
        schema,
    ))
}

/// Drops a test's PostgreSQL schema when the test ends (also on failure).
struct DropSchema(Option<String>);

impl Drop for DropSchema {
    fn drop(&mut self) {
        let Some(schema) = self.0.take() else {
            return;
        };
        // A runtime of its own: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_schema(Some(schema)));
            }
        })
        .join();
    }
}

fn priced_stack() -> Stack {
    Stack::start_priced(
        &policies().join("pricing/reference.wasm"),
        &policies().join("pricing/reference.toml"),
    )
}

/// Purchases the sim accepted.
async fn bought(stack: &Stack) -> Vec<tollgate::sim::RecordedRequest> {
    stack
        .recorded()
        .await
        .into_iter()
        .filter(|r| {
            matches!(
                r.action.as_str(),
                "CreateInstance" | "ModifyInstance" | "RenewInstance" | "RunInstances"
            )
        })
        .collect()
}

/// acme's holds, every state.
async fn holds(stack: &Stack) -> Vec<Value> {
    let (status, v) = admin(
        stack,
        Method::GET,
        "/v1/budgets/acme/holds?state=all&limit=1000",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["holds"].as_array().cloned().unwrap_or_default()
}

/// Sets acme's budget status through the admin API.
async fn set_budget_status(stack: &Stack, status: &str) {
    let (s, v) = admin(
        stack,
        Method::PUT,
        "/v1/budgets/acme/status",
        serde_json::json!({ "status": status }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// A signed call with `query` in the URL and `form` in the body (both
/// signed, as RPC signs every parameter).
fn split_call(
    client_key: (&str, &str),
    stack: &Stack,
    action: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
) -> http::Request<tollgate::Body> {
    let owned = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    OutboundCall {
        method: Method::POST,
        action: action.to_owned(),
        version: BSS.to_owned(),
        query: owned(query),
        form: owned(form),
    }
    .sign(
        OutboundScheme::Rpc,
        &stack.gateway.addr.to_string(),
        SigningKey {
            access_key_id: client_key.0,
            secret: client_key.1,
        },
        &Freshness::now(),
    )
}

const BUY_40G: &[(&str, &str)] = &[
    ("ProductCode", "oss"),
    ("SubscriptionType", "Subscription"),
    ("Period", "12"),
    ("Parameter.1.Code", "PackageCode"),
    ("Parameter.1.Value", "standard_40G"),
    ("Parameter.2.Code", "Region"),
    ("Parameter.2.Value", "cn-hangzhou"),
];

async fn one_purchase_read_two_ways_is_refused_and_nothing_is_bought(postgres: bool) {
    let Some((stack, schema)) = priced_stack_on(postgres) else {
        return;
    };
    let _schema = DropSchema(schema);
    let acme = stack.acme();
    let secret = secret("acme.secret");

    // 1. The same parameter twice in the query: the gateway would price
    // one value, the provider buy the other.
    let mut repeated = BUY_40G.to_vec();
    repeated.push(("Parameter.1.Value", "standard_1T"));
    let r = acme
        .call("CreateInstance", BSS, &repeated)
        .await
        .expect("call");
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.code(), "InvalidParameter.Duplicate", "{}", r.json);

    // 2. One value in the query, another in the form body.
    let req = split_call(
        (ACME_AK, &secret),
        &stack,
        "CreateInstance",
        BUY_40G,
        &[("Parameter.1.Value", "standard_1T")],
    );
    let r = acme.send(req).await.expect("split");
    assert_eq!(r.code(), "InvalidParameter.Duplicate", "{}", r.json);

    // 3. Re-cased.
    let mut recased = BUY_40G.to_vec();
    recased.push(("parameter.1.value", "standard_1T"));
    let r = acme
        .call("CreateInstance", BSS, &recased)
        .await
        .expect("call");
    assert_eq!(r.code(), "InvalidParameter.Duplicate", "{}", r.json);

    // 4. The same property code under two indexes (a second Region the
    // quota rule never saw).
    let mut two_regions = BUY_40G.to_vec();
    two_regions.extend([
        ("Parameter.3.Code", "Region"),
        ("Parameter.3.Value", "ap-southeast-1"),
    ]);
    let r = acme
        .call("CreateInstance", BSS, &two_regions)
        .await
        .expect("call");
    assert_eq!(r.code(), "InvalidParameter.Duplicate", "{}", r.json);

    // 5. An index gap, an unknown parameter, an enumeration in the
    // wrong case.
    let mut gap = BUY_40G.to_vec();
    gap.extend([("Parameter.4.Code", "X"), ("Parameter.4.Value", "y")]);
    let mut unknown = BUY_40G.to_vec();
    unknown.push(("Quantity", "25"));
    let mut lower = BUY_40G.to_vec();
    lower[1] = ("SubscriptionType", "subscription");
    for (what, params) in [("gap", gap), ("unknown", unknown), ("lower case", lower)] {
        let r = acme
            .call("CreateInstance", BSS, &params)
            .await
            .expect("call");
        assert_eq!(r.status, 400, "{what}: {}", r.json);
    }

    // 6. Owner fields in another spelling never reach the provider.
    for field in ["ownerid", "OwnerID", "securitytoken"] {
        let mut p = BUY_40G.to_vec();
        p.push((field, GLOBEX_UID));
        let r = acme.call("CreateInstance", BSS, &p).await.expect("call");
        assert_eq!(r.status, 400, "{field}: {}", r.json);
    }

    assert!(
        bought(&stack).await.is_empty(),
        "nothing two-faced was bought"
    );
    assert!(holds(&stack).await.is_empty(), "nothing was held");

    // The honest purchase: the hold is the partner price of exactly what
    // the sim recorded as bought.
    let quote = acme
        .call(
            "GetSubscriptionPrice",
            BSS,
            &with(
                &PRICE[..PRICE.len() - 1],
                &[("ModuleList.1.Config", "PackageCode:standard_40G")],
            ),
        )
        .await
        .expect("quote");
    assert_eq!(quote.status, 200, "{}", quote.json);
    let partner: rust_decimal::Decimal = quote.json["Data"]["TradePrice"]
        .to_string()
        .parse()
        .expect("decimal price");
    let r = acme
        .call("CreateInstance", BSS, BUY_40G)
        .await
        .expect("honest");
    assert_eq!(r.status, 200, "{}", r.json);
    let bought = bought(&stack).await;
    assert_eq!(bought.len(), 1);
    let values: Vec<&str> = bought[0]
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("Parameter."))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        values,
        ["PackageCode", "standard_40G", "Region", "cn-hangzhou"]
    );
    let h = holds(&stack).await;
    assert_eq!(h.len(), 1, "{h:?}");
    let held: rust_decimal::Decimal = h[0]["amount"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| h[0]["amount"].to_string())
        .parse()
        .expect("held amount");
    assert_eq!(held, partner, "held = partner price of what was bought");
    // And the provider's own order says it charged what was priced.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics_text(stack.admin, &stack.admin_token).await;
        if m.contains(r#"tollgate_purchase_checks_total{outcome="match"} 1"#) {
            assert!(!m.contains(r#"outcome="mismatch""#), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no purchase check recorded: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn an_upgrade_is_held_and_obeys_a_frozen_budget(postgres: bool) {
    let Some((stack, schema)) = priced_stack_on(postgres) else {
        return;
    };
    let _schema = DropSchema(schema);
    let acme = stack.acme();
    let r = acme
        .call("CreateInstance", BSS, BUY_40G)
        .await
        .expect("buy");
    assert_eq!(r.status, 200, "{}", r.json);
    let instance = r.json["Data"]["InstanceId"]
        .as_str()
        .expect("instance id")
        .to_owned();
    let upgrade = [
        ("ProductCode", "oss"),
        ("SubscriptionType", "Subscription"),
        ("ModifyType", "Upgrade"),
        ("InstanceId", instance.as_str()),
        ("Parameter.1.Code", "PackageCode"),
        ("Parameter.1.Value", "standard_500G"),
    ];
    set_budget_status(&stack, "Freeze").await;
    let r = acme
        .call("ModifyInstance", BSS, &upgrade)
        .await
        .expect("frozen");
    assert_eq!(r.status, 403, "a frozen budget buys no upgrade: {}", r.json);
    assert!(
        !bought(&stack)
            .await
            .iter()
            .any(|b| b.action == "ModifyInstance"),
        "the refused upgrade never reached the cloud"
    );
    set_budget_status(&stack, "Normal").await;
    let r = acme
        .call("ModifyInstance", BSS, &upgrade)
        .await
        .expect("upgrade");
    assert_eq!(r.status, 200, "{}", r.json);
    let h = holds(&stack).await;
    let upgrade_hold = h
        .iter()
        .find(|h| h["action"] == "ModifyInstance")
        .unwrap_or_else(|| panic!("the upgrade was held: {h:?}"));
    assert_ne!(
        upgrade_hold["amount"].to_string(),
        "\"0\"",
        "{upgrade_hold}"
    );
    assert_ne!(
        upgrade_hold["amount"].to_string(),
        "\"0.00\"",
        "{upgrade_hold}"
    );
}

#[tokio::test]
async fn actions_outside_the_catalog_never_reach_the_provider() {
    let stack = Stack::start();
    let acme = stack.acme();
    // Each of these costs money or shows the partner's own account data
    // at the real provider.
    for (action, version) in [
        ("QueryAccountBalance", BSS),
        ("QueryInstanceBill", BSS),
        ("CreateResourcePackage", BSS),
        ("RenewResourcePackage", BSS),
        ("CreateInstance", ECS),
        ("RenewInstance", ECS),
        ("ModifyPrepayInstanceSpec", ECS),
        ("PurchaseReservedInstancesOffering", ECS),
    ] {
        let r = acme.call(action, version, &[]).await.expect("call");
        assert_eq!(r.status, 404, "{action}: {}", r.json);
        assert_eq!(r.code(), "InvalidAction.NotFound", "{action}");
    }
    assert!(stack.recorded().await.is_empty(), "nothing was forwarded");
}

#[tokio::test]
async fn pay_as_you_go_is_held_and_needs_budget() {
    let stack = priced_stack();
    let acme = stack.acme();
    // Leave acme almost nothing.
    let (s, v) = admin(
        &stack,
        Method::PUT,
        "/v1/budgets/acme/quota",
        serde_json::json!({"amount": "1.00"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = acme
        .call(
            "RunInstances",
            ECS,
            &[
                ("RegionId", "cn-hangzhou"),
                ("InstanceType", "ecs.g6.xlarge"),
                ("ImageId", "ubuntu_22_04_x64"),
                ("InstanceChargeType", "PostPaid"),
                ("InternetChargeType", "PayByBandwidth"),
                ("InternetMaxBandwidthOut", "100"),
                ("Amount", "20"),
            ],
        )
        .await
        .expect("payg");
    assert_eq!(
        r.status, 403,
        "20 instances at their hourly rate do not fit in 1.00: {}",
        r.json
    );
    assert!(bought(&stack).await.is_empty());
}

#[tokio::test]
async fn a_refused_caller_burns_no_nonce_and_the_future_is_not_now() {
    let stack = Stack::start();
    // initech may query prices but not list orders.
    let initech = stack.client("TGINITECHDEMOKEY1", "initech.secret", OutboundScheme::Rpc);
    let fresh = Freshness::now();
    let refused = initech.request_with(Method::POST, "QueryOrders", BSS, &[], &fresh);
    let r = initech.send(refused).await.expect("refused");
    assert_eq!(r.status, 403, "{}", r.json);
    // The same nonce on a call it may make is not a replay: the refused
    // call was never remembered.
    let allowed = initech.request_with(
        Method::POST,
        "DescribePricingModule",
        BSS,
        &[("ProductCode", "oss"), ("SubscriptionType", "Subscription")],
        &fresh,
    );
    let r = initech.send(allowed).await.expect("allowed");
    assert_ne!(r.code(), "SignatureNonceUsed", "{}", r.json);

    // A signing time ten minutes ahead is refused.
    let ahead = Freshness {
        timestamp: tollgate::aliyun::format_timestamp(
            time::OffsetDateTime::now_utc() + time::Duration::minutes(10),
        ),
        nonce: uuid::Uuid::new_v4().to_string(),
    };
    let acme = stack.acme();
    let r = acme
        .send(acme.request_with(Method::POST, "QueryOrders", BSS, &[], &ahead))
        .await
        .expect("ahead");
    assert_eq!(r.code(), "InvalidTimeStamp.Expired", "{}", r.json);
}

#[tokio::test]
async fn duplicated_headers_and_oversized_or_slow_bodies_are_refused() {
    let stack = Stack::start();
    let acme = stack.acme();
    // Two Content-Types: which one decides whether the body is a form?
    let mut req = acme.request("QueryOrders", BSS, &[]);
    req.headers_mut().append(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    req.headers_mut().append(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    let r = acme.send(req).await.expect("two types");
    assert_eq!(r.code(), "InvalidParameter.Duplicate", "{}", r.json);

    // Huawei: two X-Sdk-Content-Sha256 headers, one for the verifier, one
    // for the body check.
    let hw = tollgate::huawei::outbound::signed_request(
        &tollgate::huawei::outbound::OutboundCall {
            method: Method::GET,
            raw_path: "/v2/orders/customer-orders",
            raw_query: "limit=10",
            domain_id: Some("0a7c3b2f3d80d4a20f7ac004cbde0001"),
            extra_headers: vec![
                ("x-sdk-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
                (
                    "x-sdk-content-sha256".into(),
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
                ),
            ],
            content_type: None,
            body: Bytes::new(),
        },
        "http",
        &stack.gateway.addr.to_string(),
        tollgate::huawei::outbound::HuaweiKey {
            access_key_id: "TGHWACMECUSTOMER0001",
            secret: &secret("huawei/acme-customer.sk"),
        },
        &tollgate::huawei::call::format_sdk_date(time::OffsetDateTime::now_utc()),
    );
    let r = acme.send(hw).await.expect("huawei");
    assert_eq!(r.status, 401, "{}", r.json);
    assert_eq!(r.json["error_code"], "APIG.0301", "{}", r.json);

    // A Content-Length over the cap is refused before a byte is read.
    let started = Instant::now();
    let (status, body) = raw_exchange(
        stack.gateway.addr,
        "POST /?Action=QueryOrders HTTP/1.1\r\nHost: gw\r\nContent-Length: 999999999\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status} {body}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body that never finishes is cut off after the body timeout.
    let started = Instant::now();
    let (status, _) = raw_exchange(
        stack.gateway.addr,
        "POST /?Action=QueryOrders HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nAction=",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(stack.recorded().await.is_empty());
}

/// Writes `head` on a fresh connection (leaving it open) and reads the
/// answer's status line and body.
async fn raw_exchange(addr: std::net::SocketAddr, head: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Ok(Err(_)) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    (status, text)
}

#[allow(dead_code)]
fn _client_type_check(c: &AliyunClient) -> &AliyunClient {
    c
}

/// A ledger section for `db` and the PostgreSQL schema to drop after.
fn ledger_on(postgres: bool) -> Option<(String, Option<String>)> {
    if !postgres {
        return Some((String::new(), None));
    }
    let url = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() {
        eprintln!("PostgreSQL attack test not run: TOLLGATE_TEST_POSTGRES_URL is not set");
        return None;
    }
    let schema = format!("tg_attack_{}", uuid::Uuid::new_v4().simple());
    Some((
        format!(
            "backend = \"postgres\"\nurl_env = \"TOLLGATE_TEST_POSTGRES_URL\"\nschema = \"{schema}\""
        ),
        Some(schema),
    ))
}

async fn drop_schema(schema: Option<String>) {
    if let (Some(schema), Ok(url)) = (schema, std::env::var("TOLLGATE_TEST_POSTGRES_URL")) {
        let store = tollgate::ledger::PgStore::new(&url, &schema, 1).expect("pool");
        store.drop_schema().await.expect("drop schema");
    }
}

/// A captured purchase without a `ClientToken`, replayed after the gateway
/// restarted (its in-memory nonce cache is empty then): the ledger
/// remembers the signed call with its hold, so nothing is bought twice.
async fn a_purchase_replayed_after_a_restart_buys_nothing(postgres: bool) {
    let Some((ledger, schema)) = ledger_on(postgres) else {
        return;
    };
    let mut stack = Stack::start_tuned(&ledger, "");
    let fresh = Freshness::now();
    let captured = |stack: &Stack| {
        let acme = stack.acme();
        let req = acme.request_with(Method::POST, "CreateInstance", BSS, BUY_40G, &fresh);
        (acme, req)
    };
    let (acme, req) = captured(&stack);
    let r = acme.send(req).await.expect("first");
    assert_eq!(r.status, 200, "{}", r.json);
    stack.restart_gateway();
    let (acme, req) = captured(&stack);
    let r = acme.send(req).await.expect("replay");
    assert_eq!(r.code(), "SignatureNonceUsed", "{}", r.json);
    assert_eq!(bought(&stack).await.len(), 1, "bought once");
    let h = holds(&stack).await;
    assert_eq!(h.len(), 1, "held once: {h:?}");
    drop(stack);
    drop_schema(schema).await;
}

/// The same for a Huawei auto-paid renewal: Huawei signatures carry no
/// nonce, so the signature itself is the replay key.
#[tokio::test]
async fn a_huawei_renewal_replayed_after_a_restart_renews_nothing() {
    let mut stack = Stack::start();
    let first_authority = stack.gateway.addr.to_string();
    let list = crate::huawei::Hw::acme(&stack)
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(serde_json::json!({})),
        )
        .await;
    let ecs = list.body["data"][0]["resource_id"]
        .as_str()
        .expect("ecs")
        .to_owned();
    let body = serde_json::json!({"resource_ids": [ecs], "period_type": 2, "period_num": 1, "is_auto_pay": 1})
        .to_string();
    let date = tollgate::huawei::call::format_sdk_date(time::OffsetDateTime::now_utc());
    let sk = secret("huawei/acme-customer.sk");
    // The captured request, as first sent (Host and all), aimed at `to`.
    let captured = |to: std::net::SocketAddr| {
        let mut req = tollgate::huawei::outbound::signed_request(
            &tollgate::huawei::outbound::OutboundCall {
                method: Method::POST,
                raw_path: "/v2/orders/subscriptions/resources/renew",
                raw_query: "",
                domain_id: Some(ACME_DOMAIN),
                extra_headers: vec![],
                content_type: Some("application/json;charset=UTF-8"),
                body: Bytes::from(body.clone()),
            },
            "http",
            &first_authority,
            tollgate::huawei::outbound::HuaweiKey {
                access_key_id: ACME_HW_AK,
                secret: &sk,
            },
            &date,
        );
        *req.uri_mut() = format!("http://{to}/v2/orders/subscriptions/resources/renew")
            .parse()
            .expect("uri");
        req
    };
    let client = stack.acme();
    let r = client
        .send(captured(stack.gateway.addr))
        .await
        .expect("renew");
    assert_eq!(r.status, 200, "{}", r.json);
    stack.restart_gateway();
    let r = client
        .send(captured(stack.gateway.addr))
        .await
        .expect("replay");
    assert_eq!(r.json["error_code"], "CBC.99008040", "{}", r.json);
    let renewals = stack
        .recorded()
        .await
        .iter()
        .filter(|r| r.action == "RenewalResources")
        .count();
    assert_eq!(renewals, 1, "renewed once");
}

/// Renewals are priced from what the instance is now: after an upgrade to
/// 500 GB, a renewal holds what renewing a 500 GB package holds, not the
/// 40 GB it was bought as.
#[tokio::test]
async fn a_renewal_after_an_upgrade_holds_the_upgraded_price() {
    let stack = priced_stack();
    let acme = stack.acme();
    let buy = |package: &'static str| {
        let mut p = BUY_40G.to_vec();
        p[4] = ("Parameter.1.Value", package);
        p
    };
    let instance_of = |r: &tollgate::client::Reply| {
        r.json["Data"]["InstanceId"]
            .as_str()
            .unwrap_or_else(|| panic!("instance id: {}", r.json))
            .to_owned()
    };
    let upgraded = instance_of(
        &acme
            .call("CreateInstance", BSS, &buy("standard_40G"))
            .await
            .expect("buy"),
    );
    let r = acme
        .call(
            "ModifyInstance",
            BSS,
            &[
                ("ProductCode", "oss"),
                ("SubscriptionType", "Subscription"),
                ("ModifyType", "Upgrade"),
                ("InstanceId", upgraded.as_str()),
                ("Parameter.1.Code", "PackageCode"),
                ("Parameter.1.Value", "standard_500G"),
            ],
        )
        .await
        .expect("upgrade");
    assert_eq!(r.status, 200, "{}", r.json);
    let bought_big = instance_of(
        &acme
            .call("CreateInstance", BSS, &buy("standard_500G"))
            .await
            .expect("buy"),
    );
    let small = instance_of(
        &acme
            .call("CreateInstance", BSS, &buy("standard_40G"))
            .await
            .expect("buy"),
    );
    for id in [upgraded, bought_big, small] {
        let r = acme
            .call(
                "RenewInstance",
                BSS,
                &[
                    ("ProductCode", "oss"),
                    ("InstanceId", id.as_str()),
                    ("RenewPeriod", "12"),
                ],
            )
            .await
            .expect("renew");
        assert_eq!(r.status, 200, "{}", r.json);
    }
    let renewals: Vec<String> = holds(&stack)
        .await
        .iter()
        .filter(|h| h["action"] == "RenewInstance")
        .map(|h| h["amount"].to_string())
        .collect();
    // Newest first: small, bought big, upgraded.
    assert_eq!(renewals.len(), 3, "{renewals:?}");
    assert_eq!(
        renewals[2], renewals[1],
        "the upgraded instance renews at the 500 GB price"
    );
    assert_ne!(renewals[2], renewals[0], "not at the 40 GB price");
    // Each new order and renewal charged what was priced (3 + 3 checks;
    // upgrades are pro-rated by the provider and not compared).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics_text(stack.admin, &stack.admin_token).await;
        if m.contains(r#"tollgate_purchase_checks_total{outcome="match"} 6"#) {
            break;
        }
        assert!(
            !m.contains(r#"outcome="mismatch""#) && Instant::now() < deadline,
            "{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every action the catalog says costs money is held before it leaves:
/// with acme's budget frozen, each one is refused and none reaches the
/// cloud (a call that cannot be held is never forwarded unheld).
async fn no_money_moving_action_of_the_catalog_leaves_unheld(postgres: bool) {
    let Some((stack, schema)) = priced_stack_on(postgres) else {
        return;
    };
    let _schema = DropSchema(schema);
    let acme = stack.acme();
    set_budget_status(&stack, "Freeze").await;
    let catalog = tollgate::catalog::Catalog::load(&policies().join("catalog")).expect("catalog");
    let versions = [("bssopenapi", BSS), ("ecs", ECS)];
    let mut walked = Vec::new();
    for e in catalog.entries() {
        if e.provider != tollgate::catalog::Provider::Aliyun
            || e.kind != tollgate::catalog::Kind::Purchase
        {
            continue;
        }
        let version = versions
            .iter()
            .find(|(p, _)| *p == e.product)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("a version for product {}", e.product));
        // A well-formed call of each: the refusal must come from the
        // budget, not from a missing parameter.
        let params: &[(&str, &str)] = match e.name.as_str() {
            "CreateInstance" => BUY_40G,
            "ModifyInstance" => &[
                ("ProductCode", "oss"),
                ("SubscriptionType", "Subscription"),
                ("ModifyType", "Upgrade"),
                ("InstanceId", "OSSBAG-cn-none"),
                ("Parameter.1.Code", "PackageCode"),
                ("Parameter.1.Value", "standard_500G"),
            ],
            "RenewInstance" => &[
                ("ProductCode", "oss"),
                ("InstanceId", "OSSBAG-cn-none"),
                ("RenewPeriod", "12"),
            ],
            "RunInstances" => &[
                ("RegionId", "cn-hangzhou"),
                ("InstanceType", "ecs.g6.large"),
                ("ImageId", "ubuntu_22_04_x64"),
                ("InstanceChargeType", "PrePaid"),
                ("Period", "1"),
                ("PeriodUnit", "Month"),
            ],
            other => panic!("no test call for the money-moving action {other}: add one"),
        };
        let r = acme.call(&e.name, version, params).await.expect("call");
        assert_eq!(r.status, 403, "{}: {}", e.name, r.json);
        assert_eq!(r.code(), "InvalidAccountStatus.Frozen", "{}", e.name);
        walked.push(e.name.clone());
    }
    assert!(walked.len() >= 4, "{walked:?}");
    assert!(
        bought(&stack).await.is_empty(),
        "nothing that costs money reached the cloud"
    );
}

/// Runs each money attack on both ledger backends: `sqlite_ledger::NAME`
/// and `postgres_ledger::NAME` (which says so and passes when no
/// PostgreSQL is configured).
macro_rules! on_both_ledgers {
    ($($name:ident),* $(,)?) => {
        mod sqlite_ledger {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(false).await;
                }
            )*
        }
        mod postgres_ledger {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(true).await;
                }
            )*
        }
    };
}

on_both_ledgers!(
    one_purchase_read_two_ways_is_refused_and_nothing_is_bought,
    an_upgrade_is_held_and_obeys_a_frozen_budget,
    a_purchase_replayed_after_a_restart_buys_nothing,
    no_money_moving_action_of_the_catalog_leaves_unheld,
);
