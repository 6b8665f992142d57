//! Starting the processes and talking to them.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tollgate::client::AliyunClient;
use tollgate::config::OutboundScheme;
use tollgate::server::Ready;
use tollgate::sim::RecordedRequest;

pub const BSS: &str = "2017-12-14";
pub const ECS: &str = "2014-05-26";
pub const PARTNER_AK: &str = "TGPARTNERDEMOKEY01";
pub const ACME_AK: &str = "TGACMEDEMOKEY0001";
pub const SHOP_AK: &str = "TGSHOPFRONTDEMO01";
pub const ACME_UID: &str = "2000000000000001";
pub const GLOBEX_UID: &str = "2000000000000002";
pub const INITECH_UID: &str = "2000000000000003";

/// The repository's `policies/` folder.
pub fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .canonicalize()
        .expect("policies/ exists")
}

pub fn secret(file: &str) -> String {
    std::fs::read_to_string(policies().join("secrets").join(file))
        .expect("demo secret")
        .trim()
        .to_owned()
}

/// Every secret of the example policy set (for "never in logs" checks).
pub fn all_secrets() -> Vec<String> {
    [
        "acme.secret",
        "globex.secret",
        "initech.secret",
        "shopfront.secret",
        "partner-aliyun.secret",
        "huawei/acme-customer.sk",
        "huawei/globex-customer.sk",
        "huawei/acme-held.sk",
        "huawei/globex-held.sk",
    ]
    .iter()
    .map(|f| secret(f))
    .collect()
}

/// Starts `tollgate sim` on the example policy set, on a free port.
pub fn start_sim() -> Proc {
    Proc::start(&[
        "sim",
        "--config",
        policies().join("sim.toml").to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ])
}

/// A gateway config for tests: the example customers and partner key, an
/// admin API whose token is `admin.token` next to the config, both
/// upstreams pointing at `sim` (`upstream_extra` appended to each), then
/// `tail` (more sections: `[ledger]`, `[authz]`, `[pricing]`, ...).
pub fn gateway_config(sim: SocketAddr, upstream_extra: &str, tail: &str) -> String {
    let p = policies();
    format!(
        r#"
customers_file = "{customers}"
[admin]
listen = "127.0.0.1:0"
secret_file = "admin.token"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536
host_id = "tollgate.test"
[partner.aliyun]
access_key_id = "{PARTNER_AK}"
secret_file = "{partner_secret}"
[[upstream]]
product = "bssopenapi"
version = "2017-12-14"
url = "http://{sim}"
{upstream_extra}
[[upstream]]
product = "ecs"
version = "2014-05-26"
url = "http://{sim}"
signature = "v3"
{upstream_extra}
{tail}
"#,
        customers = p.join("customers.toml").display(),
        partner_secret = p.join("secrets/partner-aliyun.secret").display(),
    )
}

/// `[partner.huawei]` for the example policy set: BSS at `sim`, the
/// credentials the partner holds for acme's and globex's Huawei accounts.
/// `extra`: more TOML lines for `[partner.huawei]` (e.g. `timeout_ms`).
pub fn huawei_sections_with(sim: SocketAddr, extra: &str) -> String {
    let p = policies();
    format!(
        r#"
[partner.huawei]
url = "http://{sim}"
{extra}
[[partner.huawei.customer]]
customer = "acme"
access_key_id = "{ACME_HW_HELD_AK}"
secret_file = "{acme}"
[[partner.huawei.customer]]
customer = "globex"
access_key_id = "HWGLOBEXHELDBYPARTN1"
secret_file = "{globex}"
"#,
        acme = p.join("secrets/huawei/acme-held.sk").display(),
        globex = p.join("secrets/huawei/globex-held.sk").display(),
    )
}

/// The AK the partner holds for acme's Huawei account (what the sim sees).
pub const ACME_HW_HELD_AK: &str = "HWACMEHELDBYPARTNER1";
/// The AK the partner issued acme for Huawei calls (what acme's SDK sends).
pub const ACME_HW_AK: &str = "TGHWACMECUSTOMER0001";
/// Globex's issued Huawei AK.
pub const GLOBEX_HW_AK: &str = "TGHWGLOBEXCUSTOMER01";
/// Acme's Huawei account (domain) id.
pub const ACME_DOMAIN: &str = "0a7c3b2f3d80d4a20f7ac004cbde0001";
/// Globex's Huawei account (domain) id.
pub const GLOBEX_DOMAIN: &str = "0a7c3b2f3d80d4a20f7ac004cbde0002";

/// A running `tollgate` process; killed on drop.
pub struct Proc {
    child: Child,
    /// The main listener (the first ready line that is not `admin`).
    pub addr: SocketAddr,
    /// Every ready line printed up to the main one (e.g. the admin listener).
    pub ready: Vec<Ready>,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Starts `tollgate ARGS`, waits for its ready line.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--log-format", "json", "--log-level", "debug"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn tollgate");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ready) = Ready::parse(&line) {
                    let _ = tx.send(ready);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ready = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) if r.role == "admin" => ready.push(r),
                Ok(r) => {
                    let addr = r.addr;
                    ready.push(r);
                    break addr;
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "tollgate {args:?} did not become ready:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        Self {
            child,
            addr,
            ready,
            log,
            _dir: dir,
        }
    }

    /// The address a ready line announced for `role`.
    pub fn ready_addr(&self, role: &str) -> Option<SocketAddr> {
        self.ready.iter().find(|r| r.role == role).map(|r| r.addr)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulated cloud and a gateway in front of it (with its admin API).
pub struct Stack {
    pub sim: Proc,
    pub gateway: Proc,
    /// The admin API's address and bearer token.
    pub admin: SocketAddr,
    pub admin_token: String,
    _config_dir: tempfile::TempDir,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// `extra`: TOML appended to each `[[upstream]]` (e.g. `timeout_ms = 500`).
    pub fn start_with(upstream_extra: &str) -> Self {
        Self::start_full(upstream_extra, "", "", "")
    }

    /// `ledger_extra`: TOML lines for `[ledger]` (e.g.
    /// `reconcile_grace_ms = 500`); `huawei_extra`: for `[partner.huawei]`
    /// (e.g. `timeout_ms = 1000`).
    pub fn start_tuned(ledger_extra: &str, huawei_extra: &str) -> Self {
        Self::start_full("", ledger_extra, huawei_extra, "")
    }

    /// The stack with partner pricing: `module` (a `.wasm` component) and
    /// `config` become the gateway's `[pricing]` section.
    pub fn start_priced(module: &Path, config: &Path) -> Self {
        Self::start_full(
            "",
            "",
            "",
            &format!(
                "[pricing]\nmodule = \"{}\"\nconfig = \"{}\"\n",
                module.display(),
                config.display()
            ),
        )
    }

    /// [`Self::start_priced`] with `ledger_extra` in `[ledger]` (e.g. a
    /// PostgreSQL ledger).
    pub fn start_priced_with_ledger(module: &Path, config: &Path, ledger_extra: &str) -> Self {
        Self::start_full(
            "",
            ledger_extra,
            "",
            &format!(
                "[pricing]\nmodule = \"{}\"\nconfig = \"{}\"\n",
                module.display(),
                config.display()
            ),
        )
    }

    /// Stops the gateway and starts it again on the same config file (the
    /// files it names are read afresh).
    pub fn restart_gateway(&mut self) {
        let path = self._config_dir.path().join("tollgate.toml");
        // The old process goes first: it holds the ledger's database.
        let _ = self.gateway.child.kill();
        let _ = self.gateway.child.wait();
        let gateway = Proc::start(&["serve", "--config", path.to_str().expect("utf8")]);
        self.admin = gateway
            .ready_addr("admin")
            .expect("the admin listener announced itself");
        self.gateway = gateway;
    }

    /// `sections`: TOML appended at the end of the gateway config.
    fn start_full(
        upstream_extra: &str,
        ledger_extra: &str,
        huawei_extra: &str,
        sections: &str,
    ) -> Self {
        let p = policies();
        let sim = start_sim();
        let dir = tempfile::tempdir().expect("tempdir");
        let admin_token = format!("test-admin-token-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.path().join("admin.token"), &admin_token).expect("write token");
        let tail = format!(
            r#"
[authz]
catalog_dir = "{catalog}"
permissions_dir = "{permissions}"
[ledger]
reconcile_interval_ms = 500
{ledger_extra}
[[ledger.budget]]
customer = "acme"
limit = "100000.00"
currency = "CNY"
[[ledger.budget]]
customer = "globex"
limit = "100000.00"
currency = "CNY"
{huawei}
{sections}
"#,
            catalog = p.join("catalog").display(),
            permissions = p.join("permissions").display(),
            huawei = huawei_sections_with(sim.addr, huawei_extra),
        );
        let config = gateway_config(sim.addr, upstream_extra, &tail);
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, config).expect("write config");
        let gateway = Proc::start(&["serve", "--config", path.to_str().expect("utf8")]);
        let admin = gateway
            .ready_addr("admin")
            .expect("the admin listener announced itself");
        Self {
            sim,
            gateway,
            admin,
            admin_token,
            _config_dir: dir,
        }
    }

    pub fn client(&self, ak: &str, secret_file: &str, scheme: OutboundScheme) -> AliyunClient {
        AliyunClient::new(
            &self.gateway.addr.to_string(),
            ak,
            &secret(secret_file),
            scheme,
        )
    }

    pub fn acme(&self) -> AliyunClient {
        self.client(ACME_AK, "acme.secret", OutboundScheme::Rpc)
    }

    pub fn shop(&self) -> AliyunClient {
        self.client(SHOP_AK, "shopfront.secret", OutboundScheme::Rpc)
    }

    /// What the simulated cloud accepted so far.
    pub async fn recorded(&self) -> Vec<RecordedRequest> {
        let body = http_get(self.sim.addr, "/_sim/requests").await;
        serde_json::from_str(&body).expect("recorded requests JSON")
    }

    pub async fn set_faults(&self, faults: serde_json::Value) {
        http_send(
            self.sim.addr,
            http::Method::PUT,
            "/_sim/faults",
            faults.to_string(),
        )
        .await;
    }
}

pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    http_send(addr, http::Method::GET, path, String::new()).await
}

/// The Prometheus text of a gateway, from its admin listener (the
/// customer listener does not serve `/metrics`).
pub async fn metrics_text(admin: SocketAddr, token: &str) -> String {
    let (status, text) = http_request(
        admin,
        http::Method::GET,
        "/metrics",
        Some(token),
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "GET /metrics on the admin listener: {text}");
    text
}

pub async fn http_send(addr: SocketAddr, method: http::Method, path: &str, body: String) -> String {
    http_request(addr, method, path, None, body).await.1
}

/// An admin API call: `(status, JSON body)`.
pub async fn admin(
    stack: &Stack,
    method: http::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) =
        http_request(stack.admin, method, path, Some(&stack.admin_token), body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// A plain HTTP request with an optional bearer token: `(status, body)`.
pub async fn http_request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    bearer: Option<&str>,
    body: String,
) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<tollgate::Body>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req
        .body(tollgate::Body::new(bytes::Bytes::from(body)))
        .expect("request");
    let resp = client.request(req).await.expect("control request");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Parameters of a GetSubscriptionPrice the simulated price table knows.
pub const PRICE: &[(&str, &str)] = &[
    ("ProductCode", "oss"),
    ("SubscriptionType", "Subscription"),
    ("OrderType", "NewOrder"),
    ("ServicePeriodQuantity", "12"),
    ("ServicePeriodUnit", "Month"),
    ("Quantity", "1"),
    ("Region", "cn-hangzhou"),
    ("ModuleList.1.ModuleCode", "PackageCode"),
    ("ModuleList.1.Config", "PackageCode:standard_500G"),
];

/// Parameters of a CreateInstance the simulated cloud accepts.
pub const BUY: &[(&str, &str)] = &[
    ("ProductCode", "oss"),
    ("SubscriptionType", "Subscription"),
    ("Period", "12"),
    ("Parameter.1.Code", "PackageCode"),
    ("Parameter.1.Value", "standard_500G"),
    ("Parameter.2.Code", "Region"),
    ("Parameter.2.Value", "cn-hangzhou"),
];

pub fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    v
}
