//! Budgets end to end: real `tollgate sim` and `tollgate serve` processes
//! with a ledger on SQLite (always) and on PostgreSQL (when
//! `TOLLGATE_TEST_POSTGRES_URL` is set; each test then uses its own schema,
//! dropped at the end).
//!
//! What is checked after every scenario: the ledger recomputes from its
//! entry log (`GET /v1/budgets/{c}/verify`), nothing is held any more, and
//! the customer's committed holds are exactly the orders the simulated
//! cloud has for the customer — no purchase charged twice, none missing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use tollgate::client::{AliyunClient, Reply};
use tollgate::config::OutboundScheme;

use crate::support::*;

/// Price of `BUY` at the simulated cloud: 9.00/month × 12, 15 % off.
const OFFICIAL_PRICE: &str = "91.80";
const PRICE_CENTS: i64 = 9_180;

fn postgres_url() -> Option<String> {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// A sim and gateway processes sharing one ledger.
struct Ledgered {
    sim: Proc,
    gateways: Vec<Option<Proc>>,
    config: PathBuf,
    admin_token: String,
    pg_schema: Option<String>,
    _dir: tempfile::TempDir,
}

impl Ledgered {
    /// `ledger_extra`: TOML lines for `[ledger]`; `upstream_extra`: for each
    /// `[[upstream]]`.
    fn start(db: Db, ledger_extra: &str, upstream_extra: &str) -> Self {
        let sim = start_sim();
        let dir = tempfile::tempdir().expect("tempdir");
        let admin_token = format!("budget-admin-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.path().join("admin.token"), &admin_token).expect("token");
        let (backend, pg_schema) = match db {
            Db::Sqlite => (
                "backend = \"sqlite\"\npath = \"ledger.sqlite\"".to_owned(),
                None,
            ),
            Db::Postgres => {
                let schema = format!("tg_e2e_{}", uuid::Uuid::new_v4().simple());
                (
                    format!(
                        "backend = \"postgres\"\nurl_env = \"TOLLGATE_TEST_POSTGRES_URL\"\nschema = \"{schema}\""
                    ),
                    Some(schema),
                )
            }
        };
        let config = gateway_config(
            sim.addr,
            upstream_extra,
            &format!("[ledger]\n{backend}\nreconcile_interval_ms = 200\n{ledger_extra}\n"),
        );
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, config).expect("config");
        let mut me = Self {
            sim,
            gateways: Vec::new(),
            config: path,
            admin_token,
            pg_schema,
            _dir: dir,
        };
        me.add_gateway();
        me
    }

    /// Starts another gateway process on the same config (and ledger).
    fn add_gateway(&mut self) -> usize {
        let gw = Proc::start(&["serve", "--config", self.config.to_str().expect("utf8")]);
        self.gateways.push(Some(gw));
        self.gateways.len() - 1
    }

    fn gateway(&self, i: usize) -> &Proc {
        self.gateways[i].as_ref().expect("gateway running")
    }

    /// `kill -9` gateway `i`.
    fn kill(&mut self, i: usize) {
        // `Child::kill` is SIGKILL: no drain, no cleanup.
        drop(self.gateways[i].take());
    }

    /// Starts gateway `i` again on the same config.
    fn restart(&mut self, i: usize) {
        let gw = Proc::start(&["serve", "--config", self.config.to_str().expect("utf8")]);
        self.gateways[i] = Some(gw);
    }

    fn acme(&self, i: usize) -> AliyunClient {
        AliyunClient::new(
            &self.gateway(i).addr.to_string(),
            ACME_AK,
            &secret("acme.secret"),
            OutboundScheme::Rpc,
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let addr = self.gateway(0).ready_addr("admin").expect("admin listener");
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = http_request(addr, method, path, Some(&self.admin_token), body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn set_faults(&self, faults: Value) {
        http_send(
            self.sim.addr,
            Method::PUT,
            "/_sim/faults",
            faults.to_string(),
        )
        .await;
    }

    async fn recorded(&self) -> Vec<tollgate::sim::RecordedRequest> {
        serde_json::from_str(&http_get(self.sim.addr, "/_sim/requests").await).expect("json")
    }

    async fn create_budget(&self, customer: &str, amount: &str) {
        let (s, v) = self
            .admin(
                Method::POST,
                &format!("/v1/budgets/{customer}"),
                json!({"amount": amount, "currency": "CNY"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    async fn budget(&self, customer: &str) -> Value {
        let (s, v) = self
            .admin(Method::GET, &format!("/v1/budgets/{customer}"), Value::Null)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Every hold of `customer` (up to 1000).
    async fn holds(&self, customer: &str) -> Vec<Value> {
        let (s, v) = self
            .admin(
                Method::GET,
                &format!("/v1/budgets/{customer}/holds?state=all&limit=1000"),
                Value::Null,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["holds"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `customer` has no open hold.
    async fn settled(&self, customer: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (_, v) = self
                .admin(
                    Method::GET,
                    &format!("/v1/budgets/{customer}/holds?state=open"),
                    Value::Null,
                )
                .await;
            let open = v["holds"].as_array().map_or(usize::MAX, Vec::len);
            if open == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{open} holds still open: {v}\ngateway log:\n{}",
                self.gateways
                    .iter()
                    .flatten()
                    .map(Proc::logs)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The simulated cloud's orders for `uid` (asked with the partner's key).
    async fn cloud_orders(&self, uid: &str) -> BTreeSet<String> {
        let partner = AliyunClient::new(
            &self.sim.addr.to_string(),
            PARTNER_AK,
            &secret("partner-aliyun.secret"),
            OutboundScheme::Rpc,
        );
        let mut out = BTreeSet::new();
        for page in 1..=50 {
            let page = page.to_string();
            let r = partner
                .call(
                    "QueryOrders",
                    BSS,
                    &[("OwnerId", uid), ("PageSize", "100"), ("PageNum", &page)],
                )
                .await
                .expect("orders");
            assert_eq!(r.status, 200, "{:?}", r.json);
            let list = r.json["Data"]["OrderList"]["Order"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for o in &list {
                out.insert(o["OrderId"].as_str().expect("id").to_owned());
            }
            if list.len() < 100 {
                break;
            }
        }
        out
    }

    /// The invariants after a scenario: consistent ledger, nothing open,
    /// committed holds = the cloud's orders, consumed = their sum ≤ limit.
    async fn check_invariants(&self, customer: &str, uid: &str) -> usize {
        let (s, v) = self
            .admin(
                Method::GET,
                &format!("/v1/budgets/{customer}/verify"),
                Value::Null,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["consistent"], true, "{v}");
        let b = self.budget(customer).await;
        assert_eq!(b["held"], "0.00", "{b}");
        let holds = self.holds(customer).await;
        let committed: Vec<&Value> = holds.iter().filter(|h| h["state"] == "committed").collect();
        let ids: BTreeSet<String> = committed
            .iter()
            .map(|h| h["order_id"].as_str().expect("order id").to_owned())
            .collect();
        assert_eq!(
            ids.len(),
            committed.len(),
            "an order charged twice: {holds:?}"
        );
        let cloud = self.cloud_orders(uid).await;
        assert_eq!(ids, cloud, "committed holds vs the cloud's orders");
        let consumed = cents(&b["consumed"]);
        let adjustments = cents(&v["recomputed"]["adjustments"]);
        let sum: i64 = committed.iter().map(|h| cents(&h["amount"])).sum();
        assert_eq!(
            consumed - adjustments,
            sum,
            "consumed = Σ committed holds + adjustments"
        );
        assert!(consumed <= cents(&b["limit"]), "overspend: {b}");
        committed.len()
    }

    async fn finish(self) {
        if let Some(schema) = &self.pg_schema
            && let Some(url) = postgres_url()
        {
            let store = tollgate::ledger::PgStore::new(&url, schema, 1).expect("pool");
            store.drop_schema().await.expect("drop schema");
        }
    }
}

/// A money string in hundredths (the test amounts have two decimals).
fn cents(v: &Value) -> i64 {
    use rust_decimal::prelude::ToPrimitive as _;
    let s = v.as_str().unwrap_or_else(|| panic!("amount string: {v}"));
    let d: rust_decimal::Decimal = s.parse().expect("decimal");
    (d * rust_decimal::Decimal::from(100))
        .to_i64()
        .expect("fits")
}

fn buy(token: &str) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> =
        BUY.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    v.push(("ClientToken", token.to_owned()));
    v
}

async fn purchase(client: &AliyunClient, token: &str) -> anyhow::Result<Reply> {
    let params = buy(token);
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client.call("CreateInstance", BSS, &refs).await
}

fn creates(rec: &[tollgate::sim::RecordedRequest]) -> usize {
    rec.iter().filter(|r| r.action == "CreateInstance").count()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_purchase_is_held_committed_replayed_and_refused_beyond_the_budget() {
    let stack = Ledgered::start(Db::Sqlite, "", "");
    let acme = stack.acme(0);
    // No budget: refused, and nothing (not even a price query) reaches the cloud.
    let r = purchase(&acme, "t-0").await.expect("call");
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "InvalidAccountStatus.NotEnoughBalance"),
        "{:?}",
        r.json
    );
    assert!(
        r.json["Message"]
            .as_str()
            .unwrap_or("")
            .contains("No budget")
    );
    assert!(stack.recorded().await.is_empty());

    // 200.00 fits two purchases of 91.80.
    stack.create_budget("acme", "200.00").await;
    let first = purchase(&acme, "t-1").await.expect("buy");
    assert_eq!(first.status, 200, "{:?}", first.json);
    let order = first.json["Data"]["OrderId"]
        .as_str()
        .expect("order")
        .to_owned();
    let b = stack.budget("acme").await;
    assert_eq!(
        (b["consumed"].as_str(), b["held"].as_str()),
        (Some(OFFICIAL_PRICE), Some("0.00")),
        "{b}"
    );

    // The same ClientToken again: the original answer, no second order.
    let before = creates(&stack.recorded().await);
    let retry = purchase(&acme, "t-1").await.expect("retry");
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json["Data"]["OrderId"], order.as_str());
    assert_eq!(
        creates(&stack.recorded().await),
        before,
        "the retry reached nothing"
    );
    assert_eq!(stack.budget("acme").await["consumed"], OFFICIAL_PRICE);
    // The same token for a different purchase: the provider's own refusal.
    let params = [
        ("ClientToken", "t-1"),
        ("ProductCode", "oss"),
        ("SubscriptionType", "Subscription"),
        ("Period", "24"),
        ("Parameter.1.Code", "PackageCode"),
        ("Parameter.1.Value", "standard_500G"),
    ];
    let r = acme
        .call("CreateInstance", BSS, &params)
        .await
        .expect("mismatch");
    assert_eq!(r.code(), "IdempotentParameterMismatch", "{:?}", r.json);

    assert_eq!(purchase(&acme, "t-2").await.expect("buy").status, 200);
    // The third does not fit: 16.40 available, 91.80 needed.
    let r = purchase(&acme, "t-3").await.expect("refused");
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "InvalidAccountStatus.NotEnoughBalance"),
        "{:?}",
        r.json
    );
    let msg = r.json["Message"].as_str().unwrap_or("");
    assert!(
        msg.contains("available 16.40 CNY") && msg.contains("needs 91.80 CNY"),
        "{msg}"
    );
    assert_eq!(
        creates(&stack.recorded().await),
        2,
        "the refused purchase never reached the cloud"
    );

    // The operator raises the quota: the very next purchase sees it.
    let (s, v) = stack
        .admin(
            Method::PUT,
            "/v1/budgets/acme/quota",
            json!({"amount": "300.00", "out_biz_id": "raise-1"}),
        )
        .await;
    assert_eq!((s, v["available"].as_str()), (200, Some("116.40")), "{v}");
    assert_eq!(purchase(&acme, "t-3").await.expect("buy").status, 200);

    // Frozen: purchases refused before anything reaches the cloud; reads work.
    let (s, _) = stack
        .admin(
            Method::PUT,
            "/v1/budgets/acme/status",
            json!({"status": "Freeze"}),
        )
        .await;
    assert_eq!(s, 200);
    let seen = stack.recorded().await.len();
    let r = purchase(&acme, "t-4").await.expect("frozen");
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "InvalidAccountStatus.Frozen"),
        "{:?}",
        r.json
    );
    assert!(r.json["Message"].as_str().unwrap_or("").contains("frozen"));
    assert_eq!(
        stack.recorded().await.len(),
        seen,
        "nothing reached the cloud"
    );
    assert_eq!(
        acme.call("QueryOrders", BSS, &[])
            .await
            .expect("read")
            .status,
        200
    );
    let (s, _) = stack
        .admin(
            Method::PUT,
            "/v1/budgets/acme/status",
            json!({"status": "Thaw"}),
        )
        .await;
    assert_eq!(s, 200);

    // Customers cannot call the partner's quota APIs.
    let r = acme
        .call(
            "CreateResellerUserQuota",
            BSS,
            &[("Amount", "1000000"), ("Currency", "CNY")],
        )
        .await
        .expect("quota api");
    assert_eq!(r.code(), "NotApplicable", "{:?}", r.json);

    // The operator records consumption from a bill, idempotently.
    for _ in 0..2 {
        let (s, v) = stack
            .admin(
                Method::POST,
                "/v1/budgets/acme/consumption",
                json!({"adjust_type": "increase", "amount": "10.00", "currency": "CNY", "out_biz_id": "bill-2024-06"}),
            )
            .await;
        assert_eq!((s, v["data"].as_str()), (200, Some("285.40")), "{v}");
    }
    assert_eq!(stack.check_invariants("acme", ACME_UID).await, 3);
    stack.finish().await;
}

#[tokio::test]
async fn upstream_failures_release_holds_and_timeouts_are_reconciled() {
    let stack = Ledgered::start(Db::Sqlite, "reconcile_grace_ms = 1500", "timeout_ms = 600");
    stack.create_budget("acme", "10000.00").await;
    let acme = stack.acme(0);

    // The provider's 5xx: released at once, the 503 passed on.
    stack
        .set_faults(json!({"fail_next": 1, "only_action": "CreateInstance"}))
        .await;
    let r = purchase(&acme, "f-1").await.expect("5xx");
    assert_eq!(r.status, 503, "{:?}", r.json);
    let holds = stack.holds("acme").await;
    assert_eq!(holds[0]["state"], "released", "{holds:?}");
    assert_eq!(stack.budget("acme").await["held"], "0.00");

    // A dropped connection and a hang: the outcome is unknown → pending,
    // then the reconciler asks the cloud, finds no order, releases.
    stack
        .set_faults(json!({"drop_next": 1, "only_action": "CreateInstance"}))
        .await;
    let r = purchase(&acme, "f-2").await.expect("dropped");
    assert!(r.status == 502 || r.status == 503, "{:?}", r.json);
    stack
        .set_faults(json!({"hang_next": 1, "only_action": "CreateInstance"}))
        .await;
    let r = purchase(&acme, "f-3").await.expect("hang");
    assert_eq!(r.status, 504, "{:?}", r.json);
    let states: Vec<String> = stack
        .holds("acme")
        .await
        .iter()
        .map(|h| h["state"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        states.iter().filter(|s| *s == "unknown").count() >= 1,
        "{states:?}"
    );
    // A retry while it is being settled: told to wait, nothing held twice.
    let r = purchase(&acme, "f-3").await.expect("retry");
    assert_eq!(r.code(), "LastTokenProcessing", "{:?}", r.json);

    // Too slow: the gateway gives up at 600 ms; the cloud may still make the
    // order afterwards — the reconciler commits it if it exists.
    stack
        .set_faults(json!({"latency_ms": 1000, "only_action": "CreateInstance"}))
        .await;
    let r = purchase(&acme, "f-4").await.expect("slow");
    assert_eq!(r.status, 504, "{:?}", r.json);
    stack.set_faults(json!({})).await;

    stack.settled("acme", Duration::from_secs(15)).await;
    let holds = stack.holds("acme").await;
    let by_token = |t: &str| {
        holds
            .iter()
            .find(|h| h["client_token"] == t)
            .map(|h| h["state"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(by_token("f-2").as_deref(), Some("released"));
    assert_eq!(by_token("f-3").as_deref(), Some("released"));
    let slow = by_token("f-4").expect("f-4 hold");
    eprintln!("a call answered after the gateway's timeout was settled as: {slow}");
    assert!(slow == "committed" || slow == "released", "{slow}");
    let committed = stack.check_invariants("acme", ACME_UID).await;
    assert_eq!(committed, usize::from(slow == "committed"));

    // After settling, the retried token buys (or replays) normally.
    let r = purchase(&acme, "f-3").await.expect("retry after release");
    assert_eq!(r.status, 200, "{:?}", r.json);
    stack.check_invariants("acme", ACME_UID).await;
    stack.finish().await;
}

/// A local webhook receiver: records bodies; the first `fail_first` POSTs
/// get a 500 (to exercise retries).
async fn webhook_receiver(
    fail_first: usize,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(u16, Value)>>>,
) {
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            use http_body_util::BodyExt as _;
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut seen = log.lock().expect("lock");
                            let status = if seen.len() < fail_first { 500 } else { 200 };
                            seen.push((
                                status,
                                serde_json::from_slice(&body).unwrap_or(Value::Null),
                            ));
                            let mut resp =
                                http::Response::new(tollgate::Body::new(bytes::Bytes::new()));
                            *resp.status_mut() =
                                http::StatusCode::from_u16(status).expect("status");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn each_alarm_crossing_is_reported_once_with_retries() {
    let (hook, seen) = webhook_receiver(1).await;
    let stack = Ledgered::start(
        Db::Sqlite,
        &format!("alarm_webhooks = [\"http://{hook}/alarms\"]"),
        "",
    );
    stack.create_budget("acme", "300.00").await;
    let (s, v) = stack
        .admin(
            Method::PUT,
            "/v1/budgets/acme/alarm-thresholds",
            json!({"alarm_type": "quota_low_balance", "thresholds": [
                {"threshold_type": 1, "numerator": 50, "denominator": 100},
                {"thresholdType": 0, "thresholdAmount": "10.00"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["alarm_thresholds"][0]["level"], "150.00");
    let acme = stack.acme(0);
    // 300 → 208.20 (above 150) → 116.40: crosses 150 once; → 24.60: nothing new.
    for t in ["a-1", "a-2", "a-3"] {
        assert_eq!(purchase(&acme, t).await.expect("buy").status, 200);
    }
    // Delivered despite the receiver's first 500 (retried with backoff).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let delivered = seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| *s == 200)
            .count();
        if delivered >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no alarm delivered: {:?}",
            seen.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = seen.lock().expect("lock").clone();
    let entries: BTreeSet<i64> = got
        .iter()
        .filter_map(|(_, v)| v["entry_id"].as_i64())
        .collect();
    assert_eq!(entries.len(), 1, "one crossing, reported once: {got:?}");
    assert_eq!(got.iter().filter(|(s, _)| *s == 200).count(), 1, "{got:?}");
    let alarm = &got[0].1;
    assert_eq!(alarm["customer"], "acme");
    assert_eq!(alarm["threshold"]["kind"], "ratio");
    assert_eq!(alarm["available"], "116.40");
    let (_, entries) = stack
        .admin(
            Method::GET,
            "/v1/budgets/acme/entries?limit=1000",
            Value::Null,
        )
        .await;
    let alarms = entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "alarm")
        .count();
    assert_eq!(alarms, 1);
    let metrics = metrics_text(
        stack
            .gateway(0)
            .ready_addr("admin")
            .expect("admin listener"),
        &stack.admin_token,
    )
    .await;
    assert!(
        metrics.contains("tollgate_ledger_alarms_total{outcome=\"ratio\"} 1"),
        "{metrics}"
    );
    stack.finish().await;
}

async fn exactly_n_of_many_concurrent_purchases(db: Db) {
    const PURCHASES: usize = 500;
    const FIT: i64 = 23;
    let stack = Ledgered::start(db, "", "");
    let limit = format!("{}.{:02}", FIT * PRICE_CENTS / 100, FIT * PRICE_CENTS % 100);
    stack.create_budget("acme", &limit).await;
    let acme = stack.acme(0);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PURCHASES {
        let (acme, sem) = (acme.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire().await.expect("permit");
            let r = purchase(&acme, &format!("storm-{i}")).await.expect("call");
            (r.status.as_u16(), r.code().to_owned())
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            (200, _) => ok += 1,
            (403, code) => assert_eq!(code, "InvalidAccountStatus.NotEnoughBalance"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, FIT, "exactly the purchases that fit");
    assert_eq!(
        creates(&stack.recorded().await),
        usize::try_from(FIT).unwrap()
    );
    assert_eq!(
        stack.check_invariants("acme", ACME_UID).await,
        usize::try_from(FIT).unwrap()
    );
    assert_eq!(stack.budget("acme").await["available"], "0.00");
    stack.finish().await;
}

#[tokio::test]
async fn exactly_n_of_500_concurrent_purchases_succeed_on_sqlite() {
    exactly_n_of_many_concurrent_purchases(Db::Sqlite).await;
}

#[tokio::test]
async fn exactly_n_of_500_concurrent_purchases_succeed_on_postgres() {
    if postgres_url().is_none() {
        eprintln!("PostgreSQL test not run: TOLLGATE_TEST_POSTGRES_URL is not set");
        return;
    }
    exactly_n_of_many_concurrent_purchases(Db::Postgres).await;
}

#[tokio::test]
async fn two_gateways_on_one_postgres_never_overspend() {
    if postgres_url().is_none() {
        eprintln!("PostgreSQL test not run: TOLLGATE_TEST_POSTGRES_URL is not set");
        return;
    }
    const FIT: i64 = 20;
    let mut stack = Ledgered::start(Db::Postgres, "", "");
    stack.add_gateway();
    let limit = format!("{}.{:02}", FIT * PRICE_CENTS / 100, FIT * PRICE_CENTS % 100);
    stack.create_budget("acme", &limit).await;
    let clients = [stack.acme(0), stack.acme(1)];
    // One purchase through each replica first: both hold against the one
    // budget (and have warmed their caches), then the race.
    let mut ok = [0, 0];
    for (g, client) in clients.iter().enumerate() {
        let r = purchase(client, &format!("warm-{g}")).await.expect("call");
        assert_eq!(r.status, 200, "{:?}", r.json);
        ok[g] += 1;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..80 {
        let client = clients[i % 2].clone();
        tasks.spawn(async move {
            let r = purchase(&client, &format!("two-{i}")).await.expect("call");
            (i % 2, r.status.as_u16(), r.code().to_owned())
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            (g, 200, _) => ok[g] += 1,
            (_, 403, code) => assert_eq!(code, "InvalidAccountStatus.NotEnoughBalance"),
            other => panic!("unexpected {other:?}"),
        }
    }
    eprintln!("two replicas: {} and {} purchases succeeded", ok[0], ok[1]);
    assert_eq!(
        ok[0] + ok[1],
        FIT,
        "exactly the purchases that fit, across both replicas"
    );
    assert_eq!(
        stack.check_invariants("acme", ACME_UID).await,
        usize::try_from(FIT).unwrap()
    );
    assert_eq!(stack.budget("acme").await["available"], "0.00");
    stack.finish().await;
}

async fn kill_9_during_a_purchase_storm(db: Db) {
    // The dead process's holds are taken over soon after their forward
    // deadline (timeout 1.5 s + margin 2 s + grace 0.5 s).
    let mut stack = Ledgered::start(db, "reconcile_grace_ms = 500", "timeout_ms = 1500");
    stack.create_budget("acme", "5000.00").await;
    stack
        .set_faults(json!({"latency_ms": 600, "only_action": "CreateInstance"}))
        .await;
    let acme = stack.acme(0);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..120 {
        let acme = acme.clone();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10 * i)).await;
            let token = format!("crash-{i}");
            (
                token.clone(),
                purchase(&acme, &token).await.map(|r| r.status.as_u16()),
            )
        });
    }
    // Kill it mid-storm: some purchases committed, others held in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holds = stack.holds("acme").await;
        let count = |s: &str| holds.iter().filter(|h| h["state"] == s).count();
        if count("committed") >= 10 && count("held") >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the storm never had 5 purchases in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.kill(0);
    let mut answered = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (token, result) = r.expect("task");
        if let Ok(200) = result {
            answered.push(token);
        }
    }
    stack.set_faults(json!({})).await;
    stack.restart(0);
    stack.settled("acme", Duration::from_secs(30)).await;
    let committed = stack.check_invariants("acme", ACME_UID).await;
    let holds = stack.holds("acme").await;
    let by_reconciler = holds
        .iter()
        .filter(|h| h["state"] == "committed" && h["request_id"].is_string())
        .filter(|h| !answered.iter().any(|t| h["client_token"] == t.as_str()))
        .count();
    let released = holds.iter().filter(|h| h["state"] == "released").count();
    eprintln!(
        "crash test ({db:?}): {} holds, {} answered 200 before the kill, {committed} committed ({by_reconciler} of them after the restart), {released} released by the reconciler",
        holds.len(),
        answered.len()
    );
    assert!(
        committed >= answered.len(),
        "every answered purchase is committed"
    );
    let holds = stack.holds("acme").await;
    for token in &answered {
        assert!(
            holds
                .iter()
                .any(|h| h["client_token"] == token.as_str() && h["state"] == "committed"),
            "{token} was answered 200 but is not committed"
        );
    }
    // A retry of a committed purchase after the restart is replayed, not
    // bought again.
    if let Some(token) = answered.first() {
        let before = stack.cloud_orders(ACME_UID).await.len();
        let r = purchase(&stack.acme(0), token).await.expect("retry");
        assert_eq!(r.status, 200, "{:?}", r.json);
        assert_eq!(stack.cloud_orders(ACME_UID).await.len(), before);
    }
    stack.check_invariants("acme", ACME_UID).await;
    stack.finish().await;
}

#[tokio::test]
async fn kill_9_during_a_purchase_storm_leaves_a_consistent_ledger_on_sqlite() {
    kill_9_during_a_purchase_storm(Db::Sqlite).await;
}

#[tokio::test]
async fn kill_9_during_a_purchase_storm_leaves_a_consistent_ledger_on_postgres() {
    if postgres_url().is_none() {
        eprintln!("PostgreSQL test not run: TOLLGATE_TEST_POSTGRES_URL is not set");
        return;
    }
    kill_9_during_a_purchase_storm(Db::Postgres).await;
}

#[tokio::test]
async fn the_budget_cli_drives_the_admin_api() {
    let stack = Ledgered::start(Db::Sqlite, "", "");
    let admin = format!(
        "http://{}",
        stack.gateway(0).ready_addr("admin").expect("admin")
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "budget",
                "--admin",
                &admin,
                "--token-env",
                "TG_TEST_ADMIN_TOKEN",
            ])
            .args(args)
            .env("TG_TEST_ADMIN_TOKEN", &stack.admin_token)
            .output()
            .expect("run tollgate budget");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["create", "acme", "--amount", "120.00", "--currency", "CNY"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"limit\": \"120.00\""), "{out}");
    let (ok, out, err) = run(&["set-status", "acme", "frozen"]);
    assert!(ok && out.contains("\"status\": \"frozen\""), "{out}{err}");
    let (ok, out, err) = run(&[
        "thresholds",
        "acme",
        "--ratio",
        "30/100",
        "--amount",
        "5.00",
    ]);
    assert!(ok && out.contains("\"level\": \"36.00\""), "{out}{err}");
    let (ok, out, err) = run(&[
        "consume",
        "acme",
        "increase",
        "20.00",
        "--out-biz-id",
        "b-1",
    ]);
    assert!(ok && out.contains("\"consumed\": \"20.00\""), "{out}{err}");
    let (ok, out, err) = run(&["set-quota", "acme", "150.00"]);
    assert!(
        ok && out.contains("\"available\": \"130.00\""),
        "{out}{err}"
    );
    let (ok, out, err) = run(&["show", "acme"]);
    assert!(ok && out.contains("\"customer\": \"acme\""), "{out}{err}");
    let (ok, out, err) = run(&["entries", "acme"]);
    assert!(ok && out.contains("consume_increase"), "{out}{err}");
    let (ok, out, err) = run(&["holds", "acme"]);
    assert!(ok && out.contains("\"holds\": []"), "{out}{err}");
    let (ok, out, err) = run(&["verify", "acme"]);
    assert!(ok && out.contains("\"consistent\": true"), "{out}{err}");
    // A refusal is an error exit with the API's message.
    let (ok, _, err) = run(&["create", "acme", "--amount", "1.00", "--currency", "CNY"]);
    assert!(!ok && err.contains("BudgetExists"), "{err}");
    // The token never appears on the command line or in the output.
    let (ok, _, err) = run(&["show", "nobody-such"]);
    assert!(!ok && !err.contains(&stack.admin_token), "{err}");
    stack.finish().await;
}

#[tokio::test]
async fn a_priced_purchase_holds_the_partner_price_it_was_quoted() {
    let p = policies();
    let wasm = p.join("pricing/reference.wasm");
    assert!(
        wasm.exists(),
        "{}: run scripts/build-guests",
        wasm.display()
    );
    // `[pricing]` after the `[ledger]` lines: a table of its own.
    let stack = Ledgered::start(
        Db::Sqlite,
        &format!(
            "[pricing]\nmodule = \"{}\"\nconfig = \"{}\"",
            wasm.display(),
            p.join("pricing/reference.toml").display()
        ),
        "",
    );
    stack.create_budget("acme", "1000.00").await;
    let acme = stack.acme(0);
    // The customer's quote for the same configuration as BUY.
    let quote = acme
        .call("GetSubscriptionPrice", BSS, crate::support::PRICE)
        .await
        .expect("quote");
    assert_eq!(quote.status, 200, "{:?}", quote.json);
    let partner_price = quote.json["Data"]["TradePrice"].to_string();
    let partner_price: rust_decimal::Decimal =
        partner_price.trim_matches('"').parse().expect("price");
    assert_ne!(
        partner_price.to_string(),
        OFFICIAL_PRICE,
        "the module re-prices"
    );

    let r = purchase(&acme, "priced-1").await.expect("buy");
    assert_eq!(r.status, 200, "{:?}", r.json);
    let holds = stack.holds("acme").await;
    let held: rust_decimal::Decimal = holds[0]["amount"]
        .as_str()
        .expect("amount")
        .parse()
        .expect("decimal");
    assert_eq!(
        held, partner_price,
        "the hold is the partner price the customer was quoted"
    );
    assert_eq!(holds[0]["state"], "committed");
    let b = stack.budget("acme").await;
    let consumed: rust_decimal::Decimal = b["consumed"]
        .as_str()
        .expect("consumed")
        .parse()
        .expect("decimal");
    assert_eq!(consumed, partner_price);
    // A retry is replayed as the customer saw it, not charged again.
    let again = purchase(&acme, "priced-1").await.expect("retry");
    assert_eq!(again.body, r.body);
    assert_eq!(stack.check_invariants("acme", ACME_UID).await, 1);
    stack.finish().await;
}
