//! The simulated Alibaba Cloud (`tollgate sim`): the BSS (BssOpenApi
//! `2017-12-14`) and ECS (`2014-05-26`) subset Tollgate uses, with the real
//! parameter names, answer shapes, error codes and HTTP statuses
//! (`reference/alibaba-bss.md`, `alibaba-ecs-pricing.md`).
//!
//! One call goes through, in order (the real gateway's order):
//! 1. parse (`AliyunCall::parse`: method, Action/Version, signature fields);
//! 2. route: unknown `Version` → `InvalidVersion` 400, unknown `Action` →
//!    `InvalidAction.NotFound` 404;
//! 3. authenticate (`auth`: timestamp format, window, key, signature, nonce);
//!    a refusal here is counted in `rejected` and not recorded;
//! 4. record ([`RecordedRequest`]) — before anything can still fail;
//! 5. faults ([`Faults`]): latency, then drop / hang / fail (the action does
//!    not run), or drop-answer / hang-answer (it runs, its answer is lost);
//! 6. the action (`bss`, `reseller`, `ecs`): owner (BID) rule,
//!    parameters, state change, answer.
//!
//! Control endpoints under `/_sim/` (not signed: the sim is a test double):
//! `GET|DELETE /_sim/requests`, `GET|PUT|DELETE /_sim/faults`,
//! `GET /_sim/stats`, `GET /_sim/healthz`.
//!
//! Dropped connections: [`Sim::handle`] answers a call picked by `drop_next`
//! with a bodiless 503 carrying the [`DropConnection`] extension; the sim's
//! own accept loop (`serve`) turns that into a service error, on which hyper
//! closes the connection without writing any answer. (Served by another loop
//! the marker is just a 503.)

mod auth;
mod bss;
mod ecs;
pub mod huawei;
mod params;
mod prices;
mod reseller;
mod serve;
mod state;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_actions;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Body;
use crate::aliyun::envelope::{bss_success, error_response, json_response, xml_response};
use crate::aliyun::{AliyunCall, new_request_id};
use crate::error::Error;
use crate::secret::{SecretRef, SecretString};
use crate::server::Ready;

use auth::{Auth, OwnerRule, Partner, resolve_owner};
use params::Params;
use prices::PriceTable;
use state::State;

/// BssOpenApi's `Version`.
pub const BSS_VERSION: &str = "2017-12-14";
/// ECS's `Version`.
pub const ECS_VERSION: &str = "2014-05-26";

const BSS_HOST: &str = "business.aliyuncs.com";
const ECS_HOST: &str = "ecs.aliyuncs.com";
/// Largest request body read.
const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a `hang_next` call hangs (unless the sim stops first).
const HANG: Duration = Duration::from_secs(3600);

/// The sim's configuration (`policies/sim.toml`).
///
/// ```toml
/// [[partner]]
/// uid = "1000000000000001"
/// access_key_id = "TGPARTNERDEMOKEY01"
/// secret_file = "secrets/partner-aliyun.secret"   # or secret_env = "VAR"
/// customers = ["2000000000000001", "2000000000000002"]
/// [prices]
/// file = "sim-prices.toml"
/// [limits]
/// timestamp_window_secs = 900
/// ```
///
/// Build it with [`SimConfig::load`] or [`SimConfig::from_toml`], which also
/// load the secrets and the price file; a value deserialized by hand has
/// neither, and a [`Sim`] made from it refuses every key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Partner (BID / reseller) accounts allowed to call.
    #[serde(rename = "partner")]
    pub partners: Vec<PartnerConfig>,
    /// Where the official prices are.
    pub prices: PricesConfig,
    /// Clock window and memory bounds.
    #[serde(default)]
    pub limits: Limits,
    /// The simulated Huawei BSS (`[huawei]`): absent, Huawei paths answer
    /// `APIG.0101` (no API published).
    #[serde(default)]
    pub huawei: Option<huawei::HuaweiSimConfig>,
    #[serde(skip)]
    loaded: Option<Arc<Loaded>>,
}

/// One partner account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's UID.
    pub uid: String,
    /// Its AccessKey id.
    pub access_key_id: String,
    /// Its AccessKey secret, by reference.
    #[serde(flatten)]
    pub secret: SecretRef,
    /// UIDs of its end customers (valid `OwnerId`s).
    #[serde(default)]
    pub customers: Vec<String>,
}

/// `[prices]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesConfig {
    /// The price file (relative to the config file's folder).
    pub file: PathBuf,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Allowed clock difference of a signed call (Alibaba: 15 minutes).
    #[serde(default = "default_window")]
    pub timestamp_window_secs: u64,
    /// How many recorded requests are kept (oldest dropped first).
    #[serde(default = "default_max_recorded")]
    pub max_recorded: usize,
}

fn default_window() -> u64 {
    900
}

fn default_max_recorded() -> usize {
    100_000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timestamp_window_secs: default_window(),
            max_recorded: default_max_recorded(),
        }
    }
}

/// What `load` read besides the TOML: secrets (in partner order) and prices.
#[derive(Debug)]
struct Loaded {
    secrets: Vec<SecretString>,
    prices: PriceTable,
    huawei: Option<huawei::Loaded>,
}

impl SimConfig {
    /// Reads a config file; relative paths in it are resolved against its folder.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::from_toml(&text, base).with_context(|| format!("in {}", path.display()))
    }

    /// Parses config text, resolving relative paths against `base_dir`, and
    /// loads the secrets and the price file.
    pub fn from_toml(text: &str, base_dir: &Path) -> anyhow::Result<Self> {
        let mut config: Self = toml::from_str(text)?;
        if config.partners.is_empty() {
            bail!("no [[partner]]");
        }
        let mut keys = std::collections::HashSet::new();
        let mut secrets = Vec::with_capacity(config.partners.len());
        for p in &config.partners {
            for uid in std::iter::once(&p.uid).chain(&p.customers) {
                if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit()) {
                    bail!("partner {}: \"{uid}\" is not a numeric UID", p.uid);
                }
            }
            if !keys.insert(p.access_key_id.as_str()) {
                bail!("access_key_id {} is listed twice", p.access_key_id);
            }
            secrets.push(p.secret.load(base_dir, &format!("sim partner {}", p.uid))?);
        }
        let file = if config.prices.file.is_absolute() {
            config.prices.file.clone()
        } else {
            base_dir.join(&config.prices.file)
        };
        let prices = PriceTable::load(&file)?;
        let huawei = match &config.huawei {
            Some(h) => {
                huawei::validate(h)?;
                Some(h.load(base_dir)?)
            }
            None => None,
        };
        config.loaded = Some(Arc::new(Loaded {
            secrets,
            prices,
            huawei,
        }));
        Ok(config)
    }
}

/// One call the sim accepted (its signature was valid), as received.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The `RequestId` the sim answered with.
    pub request_id: String,
    /// `Action`.
    pub action: String,
    /// `Version`.
    pub version: String,
    /// `"rpc"` (HMAC-SHA1) or `"v3"` (ACS3-HMAC-SHA256).
    pub scheme: String,
    /// HTTP method.
    pub method: String,
    /// The AccessKey that signed it.
    pub access_key_id: String,
    /// `OwnerId` as sent.
    pub owner_id: Option<String>,
    /// Business parameters: every query/form parameter except `Action`,
    /// `Version` and the signature ones, in wire order.
    pub params: Vec<(String, String)>,
    /// The `Host` addressed.
    pub host: String,
    /// Always `true`: only accepted calls are recorded.
    pub signature_valid: bool,
    /// Huawei calls: the request path as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Huawei calls: the body as sent (UTF-8, lossy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Injected misbehaviour, applied to authenticated calls (`PUT /_sim/faults`).
///
/// Latency applies to every matching call; then at most one of drop, hang,
/// drop-answer, hang-answer and fail (in that order of precedence), each
/// consuming one from its counter. A call faulted by drop, hang or fail is
/// recorded but its action does not run (nothing is created or charged);
/// drop-answer and hang-answer run the action and lose its answer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before answering, in milliseconds.
    pub latency_ms: u64,
    /// The next N matching calls fail (503 `ServiceUnavailable`).
    pub fail_next: u32,
    /// Status for `fail_next`: default 503; 500 answers `InternalError`.
    pub fail_status: Option<u16>,
    /// The next N matching calls never answer (they sleep an hour, or until
    /// the sim stops).
    pub hang_next: u32,
    /// The next N matching calls get their connection closed, no answer.
    pub drop_next: u32,
    /// The next N matching calls *run their action* (state changes, money
    /// is charged), then get their connection closed: the answer is lost
    /// after the fact, as when a network path breaks on the way back.
    pub drop_answer_next: u32,
    /// The next N matching calls run their action, then never answer.
    pub hang_answer_next: u32,
    /// Apply only to this `Action`.
    pub only_action: Option<String>,
}

/// Response extension asking the sim's accept loop to close the connection
/// without answering (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropConnection;

/// Counters (`GET /_sim/stats`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls that passed authentication.
    pub accepted: u64,
    /// Calls refused before or during authentication, by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Accepted calls that ended in an error (business or fault), by code.
    pub errors: BTreeMap<String, u64>,
    /// Recorded requests dropped because `limits.max_recorded` was reached.
    pub recorded_dropped: u64,
}

/// The simulated cloud: its state and its request handler. Cheap to clone.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("accepted", &self.inner.accepted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Inner {
    auth: Auth,
    /// The simulated Huawei BSS, when configured.
    huawei: Option<huawei::HuaweiSim>,
    prices: PriceTable,
    state: Mutex<State>,
    recorder: Mutex<Recorder>,
    faults: Mutex<Faults>,
    accepted: AtomicU64,
    counts: Mutex<Counts>,
    /// Set when the sim's server stops: releases hanging calls.
    closing: watch::Sender<bool>,
}

#[derive(Default)]
struct Recorder {
    items: VecDeque<RecordedRequest>,
    cap: usize,
    dropped: u64,
}

#[derive(Default)]
struct Counts {
    rejected: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

/// Resolves once the sim is closing. (The guard `wait_for` returns is not
/// `Send`, so it must not live across the caller's next await.)
async fn closed(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the test double.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer of an action.
#[derive(Debug)]
enum Reply {
    /// BSS success envelope; `code` is `"Success"` or `"200"` (reseller APIs).
    Bss {
        code: &'static str,
        data: Option<Value>,
    },
    /// ECS success: `RequestId` then these fields, no `Code`/`Success`.
    Ecs(Map<String, Value>),
    /// A BSS business failure answered with HTTP 200 and `Success:false`.
    BssFailure {
        code: &'static str,
        message: &'static str,
    },
}

impl Reply {
    fn success(data: Value) -> Self {
        Self::Bss {
            code: "Success",
            data: Some(data),
        }
    }
}

/// What an action sees.
struct Ctx<'a> {
    call: &'a AliyunCall,
    p: Params<'a>,
    partner: &'a Partner,
    prices: &'a PriceTable,
    state: &'a Mutex<State>,
    /// Unix seconds at arrival.
    now: i64,
}

impl Ctx<'_> {
    /// The account acted on: `OwnerId` (a customer of the partner) or the partner.
    fn owner(&self) -> Result<String, Error> {
        resolve_owner(self.partner, self.call, OwnerRule::Optional)
    }

    /// The end customer named in the required `OwnerId`.
    fn customer(&self) -> Result<String, Error> {
        resolve_owner(self.partner, self.call, OwnerRule::Customer)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(self.state)
    }
}

type ActionFn = fn(&Ctx<'_>) -> Result<Reply, Error>;

#[derive(Clone, Copy)]
enum Service {
    Bss,
    Ecs,
}

impl Service {
    fn host_id(self) -> &'static str {
        match self {
            Self::Bss => BSS_HOST,
            Self::Ecs => ECS_HOST,
        }
    }
}

fn route(version: &str, action: &str) -> Result<(Service, ActionFn), Error> {
    let found = match version {
        BSS_VERSION => bss::route(action)
            .or_else(|| reseller::route(action))
            .map(|f| (Service::Bss, f)),
        ECS_VERSION => ecs::route(action).map(|f| (Service::Ecs, f)),
        _ => {
            return Err(Error::customer(
                StatusCode::BAD_REQUEST,
                "InvalidVersion",
                format!("Specified parameter Version \"{version}\" is not valid."),
                "routing",
            ));
        }
    };
    found.ok_or_else(|| {
        Error::customer(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
            "routing",
        )
    })
}

enum Fault {
    Fail(StatusCode),
    Hang,
    Drop,
    /// Run the action, then drop (`false`) or hang (`true`).
    LoseAnswer {
        hang: bool,
    },
}

fn fault_error(status: StatusCode) -> Error {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        Error::upstream(
            status,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
            "fault",
            true,
        )
    } else {
        Error::upstream(
            status,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
            "fault",
            true,
        )
    }
}

fn drop_response() -> Response<Body> {
    let mut resp = Response::new(Body::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    resp.extensions_mut().insert(DropConnection);
    resp
}

/// `Format=XML` read straight from the query, for refusals of calls that
/// could not even be parsed.
fn raw_wants_xml(parts: &http::request::Parts) -> bool {
    form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "Format" && v.eq_ignore_ascii_case("xml"))
}

/// Parameters that belong to the signature, not to the business call.
fn is_signature_param(name: &str) -> bool {
    name == "Action"
        || name == "Version"
        || tollgate_sign::aliyun_rpc::SIGNATURE_PARAMS.contains(&name)
}

impl Sim {
    /// A sim over `config` (see [`SimConfig::load`]).
    pub fn new(config: SimConfig) -> Self {
        let huawei_sim = config
            .loaded
            .as_ref()
            .and_then(|l| l.huawei.clone())
            .map(huawei::HuaweiSim::new);
        let (partners, prices) = match &config.loaded {
            Some(loaded) => {
                let partners = config
                    .partners
                    .iter()
                    .zip(&loaded.secrets)
                    .map(|(p, secret)| Partner {
                        uid: p.uid.clone(),
                        access_key_id: p.access_key_id.clone(),
                        secret: secret.clone(),
                        customers: p.customers.iter().cloned().collect(),
                    })
                    .collect();
                (partners, loaded.prices.clone())
            }
            None => {
                tracing::warn!(
                    "sim config was not loaded with SimConfig::load: every key is refused"
                );
                (Vec::new(), PriceTable::empty())
            }
        };
        Self {
            inner: Arc::new(Inner {
                auth: Auth::new(partners, config.limits.timestamp_window_secs),
                huawei: huawei_sim,
                prices,
                state: Mutex::new(State::default()),
                recorder: Mutex::new(Recorder {
                    cap: config.limits.max_recorded,
                    ..Recorder::default()
                }),
                faults: Mutex::new(Faults::default()),
                accepted: AtomicU64::new(0),
                counts: Mutex::new(Counts::default()),
                closing: watch::channel(false).0,
            }),
        }
    }

    /// Every call the sim accepted, oldest first.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.recorder).items.iter().cloned().collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_recorded(&self) {
        lock(&self.inner.recorder).items.clear();
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.inner.faults) = faults;
    }

    /// The faults still pending.
    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).clone()
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        let counts = lock(&self.inner.counts);
        SimStats {
            accepted: self.inner.accepted.load(Ordering::Relaxed),
            rejected: counts.rejected.clone(),
            errors: counts.errors.clone(),
            recorded_dropped: lock(&self.inner.recorder).dropped,
        }
    }

    /// Stops the sim's servers and releases hanging calls.
    fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Answers one HTTP request: a control endpoint or a signed cloud call.
    pub async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                let err = Error::invalid(
                    "Body",
                    format_args!("the body is unreadable or larger than {MAX_BODY_BYTES} bytes"),
                );
                return error_response(&err, &new_request_id(), BSS_HOST, false);
            }
        };
        if let Some(rest) = parts.uri.path().strip_prefix("/_sim/") {
            return self.control(&parts.method, rest, &body);
        }
        if crate::huawei::call::is_huawei_path(parts.uri.path()) {
            return self.huawei_call(&parts, body, peer).await;
        }
        self.call(&parts, body, peer).await
    }

    async fn call(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        peer: SocketAddr,
    ) -> Response<Body> {
        let request_id = new_request_id();
        let call = match AliyunCall::parse(parts, body) {
            Ok(call) => call,
            Err(e) => return self.reject(&e, &request_id, BSS_HOST, raw_wants_xml(parts), peer),
        };
        let xml = call.wants_xml();
        if let Some(format) = call.param("Format")
            && !format.eq_ignore_ascii_case("json")
            && !format.eq_ignore_ascii_case("xml")
        {
            let err = Error::customer(
                StatusCode::BAD_REQUEST,
                "InvalidParameter.Format",
                format!("Specified parameter Format \"{format}\" is not valid."),
                "malformed",
            );
            return self.reject(&err, &request_id, BSS_HOST, false, peer);
        }
        let (service, action) = match route(&call.version, &call.action) {
            Ok(found) => found,
            Err(e) => return self.reject(&e, &request_id, BSS_HOST, xml, peer),
        };
        let now = OffsetDateTime::now_utc();
        let partner = match self.inner.auth.authenticate(&call, now) {
            Ok(p) => p,
            Err(e) => return self.reject(&e, &request_id, service.host_id(), xml, peer),
        };
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        self.record(&call, &request_id);

        let mut lose_answer = None;
        if let Some(fault) = self.fault_for(&call.action).await {
            match fault {
                Fault::Fail(status) => {
                    let err = fault_error(status);
                    self.count_error(&err);
                    return error_response(&err, &request_id, service.host_id(), xml);
                }
                Fault::Hang => return self.hang().await,
                Fault::Drop => return drop_response(),
                Fault::LoseAnswer { hang } => lose_answer = Some(hang),
            }
        }

        let ctx = Ctx {
            call: &call,
            p: Params::new(&call),
            partner: &partner,
            prices: &self.inner.prices,
            state: &self.inner.state,
            now: now.unix_timestamp(),
        };
        let result = action(&ctx);
        let owner = call.param("OwnerId").unwrap_or("");
        match &result {
            Ok(_) => tracing::debug!(action = %call.action, owner, outcome = "ok", "sim call"),
            Err(e) => {
                tracing::debug!(action = %call.action, owner, outcome = %e.code, "sim call");
                self.count_error(e);
            }
        }
        match lose_answer {
            Some(true) => self.hang().await,
            Some(false) => drop_response(),
            None => render(service, &call.action, &request_id, xml, result),
        }
    }

    /// A call that never answers: it sleeps [`HANG`] (or until the sim
    /// stops), then its connection is closed.
    async fn hang(&self) -> Response<Body> {
        let mut closing = self.closing();
        tokio::select! {
            () = tokio::time::sleep(HANG) => {}
            () = closed(&mut closing) => {}
        }
        drop_response()
    }

    /// A Huawei BSS call: the same record/fault steps as an Alibaba call,
    /// Huawei's authentication, operations and envelope (see `huawei`).
    async fn huawei_call(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        peer: SocketAddr,
    ) -> Response<Body> {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let Some(hw) = &self.inner.huawei else {
            let err = Error::customer(
                StatusCode::NOT_FOUND,
                crate::huawei::call::APIG_NO_API,
                "The API does not exist or has not been published in the environment",
                "routing",
            );
            return huawei::error_response(&err, &request_id);
        };
        let now = OffsetDateTime::now_utc();
        let accepted = match hw.authenticate(parts, body, now) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(code = %e.code, %peer, "sim refused a Huawei call");
                *lock(&self.inner.counts)
                    .rejected
                    .entry(e.code.to_string())
                    .or_default() += 1;
                return huawei::error_response(&e, &request_id);
            }
        };
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        let call = &accepted.call;
        self.push_record(RecordedRequest {
            request_id: request_id.clone(),
            action: accepted.operation.to_owned(),
            version: "huawei-bss".to_owned(),
            scheme: "sdk-hmac-sha256".to_owned(),
            method: call.method.as_str().to_owned(),
            access_key_id: call.access_key_id().to_owned(),
            owner_id: call.header("x-domain-id").map(str::to_owned),
            params: call.query.clone(),
            host: call.host.clone(),
            signature_valid: true,
            path: Some(call.raw_path.clone()),
            body: Some(String::from_utf8_lossy(&call.body).into_owned()),
        });
        let mut lose_answer = None;
        if let Some(fault) = self.fault_for(accepted.operation).await {
            match fault {
                Fault::Fail(status) => {
                    let err = Error::upstream(status, "CBC.0999", "Other errors.", "fault", true);
                    self.count_error(&err);
                    return huawei::error_response(&err, &request_id);
                }
                Fault::Hang => return self.hang().await,
                Fault::Drop => return drop_response(),
                Fault::LoseAnswer { hang } => lose_answer = Some(hang),
            }
        }
        let result = hw.run(&accepted, now);
        match &result {
            Ok(_) => tracing::debug!(
                operation = accepted.operation,
                outcome = "ok",
                "sim huawei call"
            ),
            Err(e) => {
                tracing::debug!(operation = accepted.operation, outcome = %e.code, "sim huawei call");
                self.count_error(e);
            }
        }
        match lose_answer {
            Some(true) => self.hang().await,
            Some(false) => drop_response(),
            None => huawei::render(result, &request_id),
        }
    }

    fn reject(
        &self,
        err: &Error,
        request_id: &str,
        host_id: &str,
        xml: bool,
        peer: SocketAddr,
    ) -> Response<Body> {
        tracing::debug!(code = %err.code, %peer, "sim refused a call");
        *lock(&self.inner.counts)
            .rejected
            .entry(err.code.to_string())
            .or_default() += 1;
        error_response(err, request_id, host_id, xml)
    }

    fn count_error(&self, err: &Error) {
        *lock(&self.inner.counts)
            .errors
            .entry(err.code.to_string())
            .or_default() += 1;
    }

    fn record(&self, call: &AliyunCall, request_id: &str) {
        let entry = RecordedRequest {
            request_id: request_id.to_owned(),
            action: call.action.clone(),
            version: call.version.clone(),
            scheme: call.scheme().to_owned(),
            method: call.method.as_str().to_owned(),
            access_key_id: call.access_key_id().to_owned(),
            owner_id: call.param("OwnerId").map(str::to_owned),
            params: call
                .params()
                .filter(|(k, _)| !is_signature_param(k))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            host: call.host.clone(),
            signature_valid: true,
            path: None,
            body: None,
        };
        self.push_record(entry);
    }

    fn push_record(&self, entry: RecordedRequest) {
        let mut rec = lock(&self.inner.recorder);
        if rec.cap == 0 {
            rec.dropped += 1;
            return;
        }
        while rec.items.len() >= rec.cap {
            rec.items.pop_front();
            rec.dropped += 1;
        }
        rec.items.push_back(entry);
    }

    /// Applies latency and takes one pending fault for `action`, if any.
    async fn fault_for(&self, action: &str) -> Option<Fault> {
        let (latency, fault) = {
            let mut f = lock(&self.inner.faults);
            if f.only_action.as_deref().is_some_and(|only| only != action) {
                return None;
            }
            let fault = if f.drop_next > 0 {
                f.drop_next -= 1;
                Some(Fault::Drop)
            } else if f.hang_next > 0 {
                f.hang_next -= 1;
                Some(Fault::Hang)
            } else if f.drop_answer_next > 0 {
                f.drop_answer_next -= 1;
                Some(Fault::LoseAnswer { hang: false })
            } else if f.hang_answer_next > 0 {
                f.hang_answer_next -= 1;
                Some(Fault::LoseAnswer { hang: true })
            } else if f.fail_next > 0 {
                f.fail_next -= 1;
                let status = f
                    .fail_status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(StatusCode::is_server_error)
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                Some(Fault::Fail(status))
            } else {
                None
            };
            (f.latency_ms, fault)
        };
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        fault
    }

    fn control(&self, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
        let ok = |v: Value| json_response(StatusCode::OK, &v);
        let no_content = || {
            let mut r = Response::new(Body::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        };
        match (method.as_str(), path) {
            ("GET", "healthz") => ok(json!({ "status": "ok" })),
            ("GET", "requests") => ok(serde_json::to_value(self.recorded()).unwrap_or_default()),
            ("DELETE", "requests") => {
                self.clear_recorded();
                no_content()
            }
            ("GET", "faults") => ok(serde_json::to_value(self.faults()).unwrap_or_default()),
            ("PUT", "faults") => match serde_json::from_slice::<Faults>(body) {
                Ok(faults) => {
                    self.set_faults(faults.clone());
                    ok(serde_json::to_value(faults).unwrap_or_default())
                }
                Err(e) => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "error": format!("bad faults: {e}") }),
                ),
            },
            ("DELETE", "faults") => {
                self.set_faults(Faults::default());
                no_content()
            }
            ("GET", "stats") => ok(serde_json::to_value(self.stats()).unwrap_or_default()),
            _ => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": format!("no control endpoint {method} /_sim/{path}") }),
            ),
        }
    }
}

fn render(
    service: Service,
    action: &str,
    request_id: &str,
    xml: bool,
    result: Result<Reply, Error>,
) -> Response<Body> {
    let body = match result {
        Err(e) => return error_response(&e, request_id, service.host_id(), xml),
        Ok(Reply::Bss { code, data }) => bss_success(request_id, code, data),
        Ok(Reply::Ecs(fields)) => {
            let mut map = Map::with_capacity(fields.len() + 1);
            map.insert("RequestId".into(), Value::String(request_id.to_owned()));
            map.extend(fields);
            Value::Object(map)
        }
        Ok(Reply::BssFailure { code, message }) => json!({
            "RequestId": request_id,
            "Code": code,
            "Message": message,
            "Success": false,
        }),
    };
    if xml {
        xml_response(StatusCode::OK, &format!("{action}Response"), &body)
    } else {
        json_response(StatusCode::OK, &body)
    }
}

/// A sim serving in this process (for tests). Dropping it, or [`stop`](Self::stop),
/// stops the server.
#[derive(Debug)]
pub struct SimHandle {
    /// The bound address.
    pub addr: SocketAddr,
    /// The sim, to inspect or steer directly.
    pub sim: Sim,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// The base URL (`http://ADDR`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts stopping: no new connections, hanging calls released.
    pub fn stop(&self) {
        self.sim.close();
    }

    /// Stops and waits until open connections have finished.
    pub async fn shutdown(mut self) {
        self.sim.close();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.sim.close();
    }
}

/// Starts a sim on `listen` (port 0 for any) inside the current runtime.
pub async fn spawn(config: SimConfig, listen: SocketAddr) -> anyhow::Result<SimHandle> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(config);
    let task = tokio::spawn(serve::serve(listener, sim.clone()));
    Ok(SimHandle {
        addr,
        sim,
        task: Some(task),
    })
}

/// `tollgate sim --listen ADDR --config FILE`: serves until ctrl-c or SIGTERM.
pub async fn run(config_path: &Path, listen: SocketAddr) -> anyhow::Result<()> {
    let config = SimConfig::load(config_path)?;
    let handle = spawn(config, listen).await?;
    Ready {
        role: "sim".into(),
        addr: handle.addr,
    }
    .announce();
    wait_for_signal().await;
    tracing::info!("sim stopping");
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
