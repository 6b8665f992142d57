//! The sim driven over HTTP, as Tollgate and the SDKs reach it: signed RPC
//! and V3 calls, every authentication refusal, the owner (BID) rules, XML,
//! faults and the control endpoints. Action shapes: `tests_actions.rs`.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tollgate_sign::encode::percent_encode;
use tollgate_sign::{aliyun_rpc, aliyun_v3};

use super::*;

pub const AK: &str = "TGTESTPARTNERKEY01";
pub const SECRET: &str = "test-partner-secret-not-real";
pub const PARTNER: &str = "1000000000000001";
pub const CUSTOMER: &str = "2000000000000001";
pub const CUSTOMER2: &str = "2000000000000002";
/// A UID that is nobody's customer.
pub const STRANGER: &str = "2999999999999999";

pub fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// A config with one partner (secret in a temporary file) and the shipped prices.
pub fn config() -> SimConfig {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("partner.secret"), format!("{SECRET}\n")).expect("write secret");
    let prices = policies().join("sim-prices.toml");
    let text = format!(
        r#"
[[partner]]
uid = "{PARTNER}"
access_key_id = "{AK}"
secret_file = "partner.secret"
customers = ["{CUSTOMER}", "{CUSTOMER2}"]
[prices]
file = "{}"
"#,
        prices.display()
    );
    SimConfig::from_toml(&text, dir.path()).expect("config loads")
}

/// A running sim and a client for it.
pub struct TestSim {
    pub handle: SimHandle,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// One call to make: parameters and how to sign them.
#[derive(Clone)]
pub struct Call {
    pub method: &'static str,
    pub params: Vec<(String, String)>,
    pub ak: String,
    pub secret: String,
    pub nonce: String,
    pub timestamp: String,
    /// Send the parameters as a form body instead of the query.
    pub form: bool,
}

impl Call {
    pub fn new(version: &str, action: &str) -> Self {
        Self {
            method: "POST",
            params: vec![
                ("Action".into(), action.into()),
                ("Version".into(), version.into()),
            ],
            ak: AK.into(),
            secret: SECRET.into(),
            nonce: uuid::Uuid::new_v4().to_string(),
            timestamp: crate::aliyun::format_timestamp(OffsetDateTime::now_utc()),
            form: false,
        }
    }

    pub fn bss(action: &str) -> Self {
        Self::new(BSS_VERSION, action)
    }

    pub fn ecs(action: &str) -> Self {
        Self::new(ECS_VERSION, action).p("RegionId", "cn-hangzhou")
    }

    /// Sets (or replaces) a parameter. A changed call is a new call: it gets
    /// a fresh nonce (a replay is a `clone()` left unchanged).
    pub fn p(mut self, name: &str, value: &str) -> Self {
        self.nonce = uuid::Uuid::new_v4().to_string();
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.into(), value.into()));
        self
    }

    pub fn owner(self, uid: &str) -> Self {
        self.p("OwnerId", uid)
    }

    /// Every parameter on the wire, signed.
    pub fn signed(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = vec![
            ("AccessKeyId".into(), self.ak.clone()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), self.nonce.clone()),
            ("Timestamp".into(), self.timestamp.clone()),
            ("Format".into(), "JSON".into()),
        ];
        for (k, v) in &self.params {
            all.retain(|(ek, _)| ek != k);
            all.push((k.clone(), v.clone()));
        }
        let (_, sig) = aliyun_rpc::sign(self.method, &all, &self.secret);
        all.push(("Signature".into(), sig));
        all
    }
}

pub fn encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An answer: status, raw body, and the body as JSON (Null if not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.json["Code"].as_str().unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.json["Data"]
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        self
    }

    #[track_caller]
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert!(
            self.json["RequestId"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{}",
            self.text
        );
    }
}

impl TestSim {
    pub async fn start() -> Self {
        let handle = spawn(config(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("spawn");
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { handle, client }
    }

    pub fn sim(&self) -> &Sim {
        &self.handle.sim
    }

    pub async fn request(&self, req: Request<Full<Bytes>>) -> Result<Answer, String> {
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, text, json })
    }

    /// Sends a signed RPC call.
    pub async fn send(&self, call: &Call) -> Answer {
        self.try_send(call).await.expect("an answer")
    }

    pub async fn try_send(&self, call: &Call) -> Result<Answer, String> {
        let wire = encode(&call.signed());
        let builder = Request::builder().method(call.method);
        let req = if call.form {
            builder
                .uri(format!("{}/", self.handle.url()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(wire)))
        } else {
            builder
                .uri(format!("{}/?{wire}", self.handle.url()))
                .body(Full::new(Bytes::new()))
        };
        self.request(req.expect("request")).await
    }

    /// Sends a V3 (ACS3-HMAC-SHA256) call: business parameters in the query.
    pub async fn send_v3(
        &self,
        version: &str,
        action: &str,
        query: &[(&str, &str)],
        secret: &str,
    ) -> Answer {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let host = self.handle.addr.to_string();
        let hashed = tollgate_sign::sha256_hex(b"");
        let headers: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-acs-action".into(), action.into()),
            ("x-acs-version".into(), version.into()),
            (
                "x-acs-date".into(),
                crate::aliyun::format_timestamp(OffsetDateTime::now_utc()),
            ),
            (
                "x-acs-signature-nonce".into(),
                uuid::Uuid::new_v4().to_string(),
            ),
            ("x-acs-content-sha256".into(), hashed.clone()),
        ];
        let signed = aliyun_v3::sign(
            &aliyun_v3::Request {
                method: "POST",
                path: "/",
                query: &query,
                headers: &headers,
                hashed_payload: &hashed,
            },
            secret,
            None,
        );
        let mut builder = Request::builder().method("POST").uri(format!(
            "{}/?{}",
            self.handle.url(),
            encode(&query)
        ));
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let auth = aliyun_v3::authorization(AK, &signed.signed_headers, &signed.signature);
        let req = builder
            .header("authorization", auth)
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.request(req).await.expect("an answer")
    }

    /// A control endpoint.
    pub async fn control(&self, method: &str, path: &str, body: &str) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}/_sim/{path}", self.handle.url()))
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        self.request(req).await.expect("an answer")
    }
}

fn price_call() -> Call {
    Call::bss("GetSubscriptionPrice")
        .p("ProductCode", "ecs")
        .p("SubscriptionType", "Subscription")
        .p("OrderType", "NewOrder")
        .p("ModuleList.1.ModuleCode", "InstanceType")
        .p(
            "ModuleList.1.Config",
            "InstanceType:ecs.g6.large,IoOptimized:IoOptimized,ImageOs:linux",
        )
}

// ------------------------------------------------------------------ config

#[test]
fn the_demo_config_loads() {
    let config = SimConfig::load(&policies().join("sim.toml")).expect("policies/sim.toml loads");
    assert_eq!(config.partners.len(), 1);
    assert_eq!(config.partners[0].access_key_id, "TGPARTNERDEMOKEY01");
    assert_eq!(config.limits.timestamp_window_secs, 900);
    // The secret is loaded but never printed.
    assert!(!format!("{config:?}").contains("demo-partner-secret"));
}

#[test]
fn config_refuses_unknown_fields_and_bad_uids() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("s"), "x").expect("write");
    let prices = policies().join("sim-prices.toml");
    let good = format!(
        "[[partner]]\nuid = \"1\"\naccess_key_id = \"K\"\nsecret_file = \"s\"\ncustomers = [\"2\"]\n[prices]\nfile = \"{}\"\n",
        prices.display()
    );
    SimConfig::from_toml(&good, dir.path()).expect("good config");
    for bad in [
        good.replace("customers", "customerz"),
        good.replace("[prices]", "colour = \"red\"\n[prices]"),
        format!("{good}[limits]\nwindow = 3\n"),
        good.replace("[\"2\"]", "[\"abc\"]"),
        good.replace("secret_file = \"s\"", "secret_file = \"missing\""),
        good.replace("secret_file = \"s\"", ""),
    ] {
        assert!(
            SimConfig::from_toml(&bad, dir.path()).is_err(),
            "accepted:\n{bad}"
        );
    }
}

// ---------------------------------------------------------------- transport

#[tokio::test]
async fn rpc_calls_are_accepted_by_get_post_and_form() {
    let t = TestSim::start().await;
    for (method, form) in [("GET", false), ("POST", false), ("POST", true)] {
        let mut call = price_call();
        call.method = method;
        call.form = form;
        let a = t.send(&call).await.ok();
        assert_eq!(a.json["Success"], true, "{}", a.text);
        assert_eq!(a.code(), "Success");
    }
    let recorded = t.sim().recorded();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].method, "GET");
    assert!(
        recorded
            .iter()
            .all(|r| r.scheme == "rpc" && r.signature_valid && r.access_key_id == AK)
    );
}

#[tokio::test]
async fn v3_signed_calls_are_accepted_and_a_wrong_secret_is_not() {
    let t = TestSim::start().await;
    let q = [
        ("RegionId", "cn-hangzhou"),
        ("InstanceType", "ecs.g6.large"),
        ("OwnerId", CUSTOMER),
    ];
    let a = t
        .send_v3(ECS_VERSION, "DescribePrice", &q, SECRET)
        .await
        .ok();
    assert!(
        a.json["PriceInfo"]["Price"]["TradePrice"].is_number(),
        "{}",
        a.text
    );
    let r = t.sim().recorded();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].scheme, "v3");
    assert_eq!(r[0].owner_id.as_deref(), Some(CUSTOMER));
    assert_eq!(r[0].action, "DescribePrice");

    let bad = t
        .send_v3(ECS_VERSION, "DescribePrice", &q, "wrong-secret")
        .await;
    bad.refused(400, "SignatureDoesNotMatch");
    assert_eq!(
        t.sim().recorded().len(),
        1,
        "a refused call is not recorded"
    );
}

#[tokio::test]
async fn recorded_params_are_the_business_ones() {
    let t = TestSim::start().await;
    t.send(&price_call().owner(CUSTOMER).p("RegionId", "cn-hangzhou"))
        .await
        .ok();
    let r = &t.sim().recorded()[0];
    let names: Vec<&str> = r.params.iter().map(|(k, _)| k.as_str()).collect();
    for hidden in [
        "Signature",
        "AccessKeyId",
        "SignatureNonce",
        "Timestamp",
        "SignatureMethod",
        "Action",
        "Version",
    ] {
        assert!(!names.contains(&hidden), "{hidden} recorded: {names:?}");
    }
    for kept in [
        "OwnerId",
        "ProductCode",
        "ModuleList.1.Config",
        "RegionId",
        "Format",
    ] {
        assert!(names.contains(&kept), "{kept} missing: {names:?}");
    }
    assert_eq!(r.version, BSS_VERSION);
    assert!(r.host.starts_with("127.0.0.1:"));
}

// ------------------------------------------------------------ authentication

#[tokio::test]
async fn every_authentication_refusal_has_the_providers_code_and_status() {
    let t = TestSim::start().await;
    let minutes = |m: i64| {
        crate::aliyun::format_timestamp(OffsetDateTime::now_utc() + time::Duration::minutes(m))
    };
    let mut unknown_key = price_call();
    unknown_key.ak = "TGNOSUCHKEY0000001".into();
    let mut bad_secret = price_call();
    bad_secret.secret = "not-the-secret".into();
    let mut bad_ts = price_call();
    bad_ts.timestamp = "2024-01-01 10:00:00".into();
    let mut old = price_call();
    old.timestamp = minutes(-16);
    let mut future = price_call();
    future.timestamp = minutes(16);
    // Window before key: an expired call with an unknown key is "expired".
    let mut old_unknown = old.clone();
    old_unknown.ak = "TGNOSUCHKEY0000001".into();
    let cases = [
        (unknown_key, 404, "InvalidAccessKeyId.NotFound"),
        (bad_secret, 400, "SignatureDoesNotMatch"),
        (bad_ts, 400, "InvalidTimeStamp.Format"),
        (old, 400, "InvalidTimeStamp.Expired"),
        (future, 400, "InvalidTimeStamp.Expired"),
        (old_unknown, 400, "InvalidTimeStamp.Expired"),
        (
            price_call().p("Version", "2099-01-01"),
            400,
            "InvalidVersion",
        ),
        (
            price_call().p("Action", "NoSuchAction"),
            404,
            "InvalidAction.NotFound",
        ),
        (
            price_call().p("SignatureMethod", "HMAC-SHA256"),
            400,
            "InvalidSignatureMethod",
        ),
        (
            price_call().p("Format", "YAML"),
            400,
            "InvalidParameter.Format",
        ),
    ];
    for (call, status, code) in &cases {
        t.send(call).await.refused(*status, code);
    }
    // Within the window is fine.
    let mut recent = price_call();
    recent.timestamp = minutes(-14);
    t.send(&recent).await.ok();

    let bad = t.send(&cases[1].0).await;
    assert!(
        bad.json["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("server string to sign is:POST&%2F&")
    );
    assert_eq!(
        t.sim().recorded().len(),
        1,
        "only the good call is recorded"
    );
    let stats = t.sim().stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.rejected.get("SignatureDoesNotMatch"), Some(&2));
    assert_eq!(stats.rejected.get("InvalidTimeStamp.Expired"), Some(&3));
}

#[tokio::test]
async fn a_nonce_is_single_use_and_only_a_good_signature_consumes_it() {
    let t = TestSim::start().await;
    let call = price_call();
    let mut forged = call.clone();
    forged.secret = "attacker".into();
    t.send(&forged).await.refused(400, "SignatureDoesNotMatch");
    t.send(&call).await.ok();
    t.send(&call).await.refused(400, "SignatureNonceUsed");
    // The same nonce under another timestamp is still a replay.
    let mut later = call.clone();
    later.timestamp =
        crate::aliyun::format_timestamp(OffsetDateTime::now_utc() + time::Duration::seconds(5));
    t.send(&later).await.refused(400, "SignatureNonceUsed");
}

// -------------------------------------------------------------------- owner

#[tokio::test]
async fn owner_rules_follow_the_bid_model() {
    let t = TestSim::start().await;
    t.send(&price_call().owner(STRANGER))
        .await
        .refused(400, "InvalidOwner");
    t.send(&price_call().owner(CUSTOMER).p("OwnerAccount", "someone"))
        .await
        .refused(400, "InvalidOwner");
    t.send(&price_call().owner("12ab"))
        .await
        .refused(400, "InvalidOwnerId");
    t.send(&price_call().owner(CUSTOMER)).await.ok();
    t.send(&price_call().owner(PARTNER)).await.ok();
    t.send(&price_call()).await.ok();
    // Business refusals happen after acceptance: they are recorded.
    assert_eq!(t.sim().recorded().len(), 6);
    assert_eq!(t.sim().stats().errors.get("InvalidOwner"), Some(&2));

    // No OwnerId acts on the partner's own account.
    let create = Call::bss("CreateInstance")
        .p("ProductCode", "slb")
        .p("SubscriptionType", "PayAsYouGo")
        .p("Parameter.1.Code", "InstanceSpec")
        .p("Parameter.1.Value", "slb.s1.small");
    let id = t.send(&create).await.ok().data()["InstanceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let list = |owner: Option<&str>| {
        let c = Call::bss("QueryAvailableInstances");
        match owner {
            Some(o) => c.owner(o),
            None => c,
        }
    };
    let mine = t.send(&list(None)).await.ok();
    assert_eq!(mine.data()["InstanceList"][0]["InstanceID"], id.as_str());
    let theirs = t.send(&list(Some(CUSTOMER))).await.ok();
    assert_eq!(theirs.data()["TotalCount"], 0, "{}", theirs.text);

    // The reseller quota APIs need a customer.
    let quota = || Call::bss("QueryResellerAvailableQuota");
    t.send(&quota()).await.refused(400, "MissingOwnerId");
    t.send(&quota().owner(PARTNER))
        .await
        .refused(400, "InvalidOwner");
    t.send(&quota().owner(CUSTOMER)).await.ok();
}

// ---------------------------------------------------------------------- XML

#[tokio::test]
async fn format_xml_answers_xml_for_success_and_error() {
    let t = TestSim::start().await;
    let a = t.send(&price_call().p("Format", "XML")).await.ok();
    assert!(a.text.starts_with("<?xml"), "{}", a.text);
    assert!(
        a.text.contains("<GetSubscriptionPriceResponse>"),
        "{}",
        a.text
    );
    assert!(a.text.contains("<Code>Success</Code>"), "{}", a.text);
    assert!(
        a.text
            .contains("<ModuleDetails><ModuleDetail><ModuleCode>InstanceType</ModuleCode>"),
        "{}",
        a.text
    );

    let e = t
        .send(&price_call().p("Format", "XML").owner(STRANGER))
        .await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    assert!(
        e.text.contains("<Error>") && e.text.contains("<Code>InvalidOwner</Code>"),
        "{}",
        e.text
    );

    let mut bad = price_call().p("Format", "xml");
    bad.secret = "nope".into();
    let e = t.send(&bad).await;
    assert!(
        e.text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        e.text
    );
}

// ------------------------------------------------------------------- faults

#[tokio::test]
async fn fail_next_answers_5xx_then_recovers() {
    let t = TestSim::start().await;
    t.sim().set_faults(Faults {
        fail_next: 2,
        ..Faults::default()
    });
    for _ in 0..2 {
        let a = t.send(&price_call()).await;
        a.refused(503, "ServiceUnavailable");
        assert_eq!(
            a.json["Message"],
            "The request has failed due to a temporary failure of the server."
        );
    }
    t.send(&price_call()).await.ok();
    assert_eq!(
        t.sim().recorded().len(),
        3,
        "faulted calls were accepted, so recorded"
    );

    t.sim().set_faults(Faults {
        fail_next: 1,
        fail_status: Some(500),
        ..Faults::default()
    });
    t.send(&price_call()).await.refused(500, "InternalError");
    // Faults come after authentication: a bad signature is still refused as such.
    t.sim().set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let mut bad = price_call();
    bad.secret = "x".into();
    t.send(&bad).await.refused(400, "SignatureDoesNotMatch");
    t.send(&price_call())
        .await
        .refused(503, "ServiceUnavailable");
}

#[tokio::test]
async fn only_action_limits_the_fault() {
    let t = TestSim::start().await;
    t.sim().set_faults(Faults {
        fail_next: 1,
        only_action: Some("QueryOrders".into()),
        ..Faults::default()
    });
    t.send(&price_call()).await.ok();
    t.send(&Call::bss("QueryOrders"))
        .await
        .refused(503, "ServiceUnavailable");
    t.send(&Call::bss("QueryOrders")).await.ok();
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let t = TestSim::start().await;
    t.sim().set_faults(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let start = std::time::Instant::now();
    t.send(&price_call()).await.ok();
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn drop_next_closes_the_connection_without_an_answer() {
    let t = TestSim::start().await;
    t.sim().set_faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    let err = t.try_send(&price_call()).await.expect_err("no answer");
    assert!(!err.is_empty());
    t.send(&price_call()).await.ok();
    assert_eq!(t.sim().recorded().len(), 2);
}

#[tokio::test]
async fn drop_answer_next_runs_the_action_then_loses_its_answer() {
    let t = TestSim::start().await;
    let create = || {
        Call::bss("CreateInstance")
            .p("ProductCode", "slb")
            .p("SubscriptionType", "PayAsYouGo")
            .p("Parameter.1.Code", "InstanceSpec")
            .p("Parameter.1.Value", "slb.s1.small")
    };
    t.sim().set_faults(Faults {
        drop_answer_next: 1,
        only_action: Some("CreateInstance".into()),
        ..Faults::default()
    });
    let err = t.try_send(&create()).await.expect_err("no answer");
    assert!(!err.is_empty());
    // The instance exists although its answer was lost.
    let list = t.send(&Call::bss("QueryAvailableInstances")).await.ok();
    assert_eq!(
        list.data()["InstanceList"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.text
    );
    // hang_answer_next: applied too, never answered.
    t.sim().set_faults(Faults {
        hang_answer_next: 1,
        only_action: Some("CreateInstance".into()),
        ..Faults::default()
    });
    let hung = tokio::time::timeout(Duration::from_millis(300), t.try_send(&create())).await;
    assert!(hung.is_err(), "the call should hang");
    let list = t.send(&Call::bss("QueryAvailableInstances")).await.ok();
    assert_eq!(
        list.data()["InstanceList"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn hang_next_never_answers_until_the_sim_stops() {
    let t = TestSim::start().await;
    t.sim().set_faults(Faults {
        hang_next: 1,
        ..Faults::default()
    });
    let hung = tokio::time::timeout(Duration::from_millis(300), t.try_send(&price_call())).await;
    assert!(hung.is_err(), "the call should hang");
    t.send(&price_call()).await.ok();

    // Stopping releases a hanging call: its connection closes.
    t.sim().set_faults(Faults {
        hang_next: 1,
        ..Faults::default()
    });
    let call = price_call();
    let pending = {
        let client = t.client.clone();
        let url = format!("{}/?{}", t.handle.url(), encode(&call.signed()));
        tokio::spawn(async move {
            let req = Request::builder()
                .method("POST")
                .uri(url)
                .body(Full::new(Bytes::new()))
                .expect("req");
            client.request(req).await.map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.handle.stop();
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("released")
        .expect("joined");
    assert!(
        outcome.is_err(),
        "no answer, the connection closed: {outcome:?}"
    );
}

// ---------------------------------------------------------------- control

#[tokio::test]
async fn control_endpoints_steer_and_inspect_the_sim() {
    let t = TestSim::start().await;
    let h = t.control("GET", "healthz", "").await.ok();
    assert_eq!(h.json["status"], "ok");

    t.send(&price_call().owner(CUSTOMER)).await.ok();
    let mut bad = price_call();
    bad.secret = "x".into();
    t.send(&bad).await;
    let r = t.control("GET", "requests", "").await.ok();
    let list: Vec<RecordedRequest> = serde_json::from_value(r.json).expect("recorded requests");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].owner_id.as_deref(), Some(CUSTOMER));

    let s = t.control("GET", "stats", "").await.ok();
    assert_eq!(s.json["accepted"], 1);
    assert_eq!(s.json["rejected"]["SignatureDoesNotMatch"], 1);

    assert_eq!(
        t.control("DELETE", "requests", "").await.status,
        StatusCode::NO_CONTENT
    );
    assert!(t.sim().recorded().is_empty());

    let f = t
        .control(
            "PUT",
            "faults",
            r#"{"fail_next":1,"only_action":"GetSubscriptionPrice"}"#,
        )
        .await
        .ok();
    assert_eq!(f.json["fail_next"], 1);
    t.send(&price_call())
        .await
        .refused(503, "ServiceUnavailable");
    assert_eq!(t.sim().faults().fail_next, 0);
    assert_eq!(
        t.control("PUT", "faults", r#"{"fail_nxt":1}"#).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.control("DELETE", "faults", "").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.control("GET", "nothing", "").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn recording_is_bounded() {
    let mut config = config();
    config.limits.max_recorded = 2;
    let handle = spawn(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("spawn");
    let t = TestSim {
        handle,
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    for _ in 0..3 {
        t.send(&price_call()).await.ok();
    }
    assert_eq!(t.sim().recorded().len(), 2);
    assert_eq!(t.sim().stats().recorded_dropped, 1);
}
