//! The request path, phase by phase, with one context per request.
//!
//! ```text
//! read body (size cap) -> parse (aliyun::AliyunCall) -> authenticate (auth)
//!   -> authorize (authz) -> classify (upstream::Routes) -> re-sign (resign)
//!   -> forward (upstream) -> respond
//! ```
//! Every refusal leaves through [`Gateway::refuse`], the single place where
//! an [`Error`] is logged, counted and rendered (by `aliyun::envelope`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::Body;
use crate::aliyun::outbound::{Freshness, SigningKey};
use crate::aliyun::{self, AliyunCall, envelope};
use crate::auth::{Authenticated, Authenticator, KeyTable};
use crate::authz::Authz;
use crate::config::{CustomersFile, ServeConfig};
use crate::error::Error;
use crate::metrics::{Metrics, RefusalLabels, RequestLabels, UpstreamLabels};
use crate::secret::{ExposeSecret as _, SecretString};
use crate::upstream::{Forwarder, Routes};

mod huawei;
mod pricing;
pub mod verify;

/// The header that carries Tollgate's request id on every answer.
pub const REQUEST_ID_HEADER: &str = "x-tollgate-request-id";

/// The header that names the policy snapshot version (its content hash)
/// that served the request, on every answer, refusals included.
pub const POLICY_VERSION_HEADER: &str = "x-tollgate-policy-version";

/// The named phases of a request, for logs and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the body.
    Read,
    /// Parsing the provider's wire format.
    Parse,
    /// Signature, window, nonce, owner.
    Authenticate,
    /// Permission codes against the customer's policies.
    Authorize,
    /// Partner pricing: purchases priced and admitted before forwarding,
    /// price answers rewritten after.
    Price,
    /// Choosing the upstream.
    Classify,
    /// Purchases: holding the amount against the customer's budget.
    Reserve,
    /// Forwarding to the provider.
    Forward,
    /// Purchases: committing or releasing the hold after forwarding.
    Settle,
    /// Answering.
    Respond,
}

impl Phase {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Parse => "parse",
            Self::Authenticate => "authenticate",
            Self::Authorize => "authorize",
            Self::Price => "price",
            Self::Classify => "classify",
            Self::Reserve => "reserve",
            Self::Forward => "forward",
            Self::Settle => "settle",
            Self::Respond => "respond",
        }
    }
}

/// Per-request context: what is known so far, for logs, metrics and errors.
#[derive(Debug)]
pub struct RequestCtx {
    /// Tollgate's id for this request (also in the error envelope).
    pub request_id: String,
    /// When the request head arrived.
    pub started: Instant,
    /// The phase being run.
    pub phase: Phase,
    /// The action, once parsed.
    pub action: Option<String>,
    /// Whether the caller asked for XML.
    pub xml: bool,
    /// The AccessKey id the call claims, once parsed (not yet verified).
    pub key_id: Option<String>,
    /// Who, once authenticated.
    pub who: Option<Authenticated>,
    /// Peer address.
    pub peer: SocketAddr,
    /// The partner quote, once priced: for a purchase, what the customer is
    /// charged (`quote.total`, bundles included), set before the budget
    /// phase; for a price query, what the answer shows.
    pub quote: Option<Arc<crate::pricing::Quote>>,
    /// For a purchase whose charge can be checked afterwards: what the
    /// provider should charge (`verify`).
    pub priced: Option<verify::Priced>,
}

impl RequestCtx {
    /// A request whose head just arrived from `peer`: a new request id, the
    /// clock started, nothing parsed yet.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            request_id: aliyun::new_request_id(),
            started: Instant::now(),
            phase: Phase::Read,
            action: None,
            xml: false,
            key_id: None,
            who: None,
            peer,
            quote: None,
            priced: None,
        }
    }
}

/// The partner's Alibaba credentials.
#[derive(Debug, Clone)]
struct PartnerKey {
    access_key_id: String,
    secret: SecretString,
}

impl PartnerKey {
    /// The key for signing a call to the provider.
    fn signing(&self) -> SigningKey<'_> {
        SigningKey {
            access_key_id: &self.access_key_id,
            secret: self.secret.expose_secret(),
        }
    }
}

/// One immutable version of the running gateway: the policy snapshot
/// (keys, routes, partner key, catalog and permissions, pricing modules,
/// version) plus handles on the long-lived parts every version shares
/// (see [`Runtime`]). A reload builds a new `Gateway` and swaps it in
/// (`reload::Reloader`); a request keeps the `Arc<Gateway>` it started
/// with to the end, so it is served by exactly one version.
#[derive(Debug)]
pub struct Gateway {
    keys: KeyTable,
    routes: Routes,
    partner: PartnerKey,
    auth: Arc<Authenticator>,
    authz: Arc<Authz>,
    forwarder: Forwarder,
    ledger: Arc<crate::ledger::Ledger>,
    metrics: Arc<Metrics>,
    max_body: usize,
    host_id: String,
    /// The partner's pricing modules (`[pricing]`, per customer group);
    /// empty: official prices.
    pricing: crate::reload::modules::PricingModules,
    /// Huawei Cloud (`[partner.huawei]` + `[[huawei_key]]`); `None`: Huawei
    /// paths are refused (`APIG.0101`). See `proxy/huawei.rs`.
    huawei: Option<crate::huawei::keys::HuaweiSide>,
    /// The snapshot's content hash, as sent in [`POLICY_VERSION_HEADER`].
    version: HeaderValue,
}

/// What outlives a policy reload, created once per process from the
/// start-up config: the replay (nonce) caches (a reload that reset them
/// would let a captured call be replayed), the pooled upstream client, the
/// ledger, the metrics, the one wasmtime engine (unchanged modules are not
/// recompiled), and the `[server]` limits that cannot change live.
#[derive(Debug)]
pub struct Runtime {
    auth: Arc<Authenticator>,
    /// Huawei state-changing calls already accepted (see
    /// `huawei::keys::HuaweiSide::once`).
    huawei_replays: Arc<crate::auth::NonceCache>,
    forwarder: Forwarder,
    ledger: Arc<crate::ledger::Ledger>,
    metrics: Arc<Metrics>,
    max_body: usize,
    host_id: String,
    engine: std::sync::Mutex<Option<Arc<crate::pricing::PricingEngine>>>,
    verified: crate::reload::modules::VerifiedModules,
}

impl Runtime {
    /// The long-lived parts, from the start-up config and customers.
    pub fn new(cfg: &ServeConfig, customers: &CustomersFile) -> anyhow::Result<Self> {
        let connect = cfg
            .upstreams
            .iter()
            .map(|u| u.connect_timeout_ms)
            .max()
            .unwrap_or(2_000);
        let metrics = Metrics::new();
        Ok(Self {
            auth: Arc::new(Authenticator::new(
                Duration::from_secs(cfg.server.timestamp_window_secs),
                cfg.server.nonce_capacity,
            )),
            huawei_replays: crate::huawei::keys::HuaweiSide::new_replays(),
            forwarder: Forwarder::new(
                Duration::from_millis(connect),
                cfg.server.max_upstream_body_bytes,
            ),
            ledger: Arc::new(crate::ledger::Ledger::open(
                &cfg.ledger,
                &cfg.base_dir,
                customers
                    .customers
                    .iter()
                    .map(|c| (c.id.clone(), c.aliyun_uid.clone())),
                metrics.clone(),
            )?),
            metrics,
            max_body: cfg.server.max_body_bytes,
            host_id: cfg.server.host_id.clone(),
            engine: std::sync::Mutex::new(None),
            verified: crate::reload::modules::VerifiedModules::default(),
        })
    }

    /// The process's one pricing engine, created on first use.
    pub fn pricing_engine(&self) -> anyhow::Result<Arc<crate::pricing::PricingEngine>> {
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engine.as_ref() {
            return Ok(Arc::clone(e));
        }
        let e = crate::pricing::PricingEngine::new()?;
        *engine = Some(Arc::clone(&e));
        Ok(e)
    }

    /// Pricing modules verified by earlier (re)loads.
    pub fn verified_modules(&self) -> &crate::reload::modules::VerifiedModules {
        &self.verified
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The budget ledger.
    pub fn ledger(&self) -> &Arc<crate::ledger::Ledger> {
        &self.ledger
    }
}

impl Gateway {
    /// Loads secrets and builds the tables from a parsed config, with a
    /// fresh [`Runtime`] (a gateway that is never reloaded: the demo).
    pub fn from_config(cfg: &ServeConfig) -> anyhow::Result<Self> {
        let customers = CustomersFile::load(&cfg.customers_path())?;
        let runtime = Runtime::new(cfg, &customers)?;
        let pricing = match &cfg.pricing {
            Some(p) => {
                crate::reload::modules::load(p, &cfg.base_dir, &runtime.pricing_engine()?, None)
                    .map_err(|d| anyhow::anyhow!(crate::diagnostic::Diagnostics(d)))
                    .context("loading the pricing modules")?
            }
            None => crate::reload::modules::PricingModules::default(),
        };
        let version = crate::reload::snapshot::Sources::collect(None, cfg, &customers).version();
        Self::build(cfg, &customers, &runtime, pricing, &version)
    }

    /// One version: the snapshot's tables from `cfg` and `customers`
    /// (pricing modules already loaded and checked), sharing `runtime`.
    pub fn build(
        cfg: &ServeConfig,
        customers: &CustomersFile,
        runtime: &Runtime,
        pricing: crate::reload::modules::PricingModules,
        version: &str,
    ) -> anyhow::Result<Self> {
        let keys = KeyTable::from_file(customers, customers_base(&cfg.customers_path()))?;
        let partner_secret = cfg
            .partner
            .aliyun
            .secret
            .load(&cfg.base_dir, "partner aliyun")
            .context("loading the partner's Alibaba secret")?;
        let routes = Routes::from_config(&cfg.upstreams)?;
        let huawei = match &cfg.partner.huawei {
            Some(h) => Some(
                crate::huawei::keys::HuaweiSide::load(
                    h,
                    &cfg.base_dir,
                    customers,
                    customers_base(&cfg.customers_path()),
                )
                .context("loading the Huawei configuration")?
                .with_replays(Arc::clone(&runtime.huawei_replays)),
            ),
            None => None,
        };
        let authz = Arc::new(Authz::from_config(cfg, customers)?);
        Ok(Self {
            keys,
            routes,
            partner: PartnerKey {
                access_key_id: cfg.partner.aliyun.access_key_id.clone(),
                secret: partner_secret,
            },
            auth: Arc::clone(&runtime.auth),
            authz,
            forwarder: runtime.forwarder.clone(),
            ledger: Arc::clone(&runtime.ledger),
            metrics: Arc::clone(&runtime.metrics),
            max_body: runtime.max_body,
            host_id: runtime.host_id.clone(),
            pricing,
            huawei,
            version: HeaderValue::from_str(version).context("policy version header")?,
        })
    }

    /// The policy snapshot version (content hash) this gateway serves.
    pub fn version(&self) -> &str {
        self.version.to_str().unwrap_or_default()
    }

    /// The pricing modules of this version.
    pub fn pricing_modules(&self) -> &crate::reload::modules::PricingModules {
        &self.pricing
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The budget ledger.
    pub fn ledger(&self) -> &Arc<crate::ledger::Ledger> {
        &self.ledger
    }

    /// One pass of the ledger's background work: the reconciler (asks the
    /// provider with the partner's key) and the alarm deliveries.
    pub async fn ledger_pass(&self) {
        let alibaba = self
            .routes
            .route(crate::sim::BSS_VERSION, "business.aliyuncs.com")
            .map(|bss| crate::ledger::reconcile::AlibabaAccess {
                forwarder: &self.forwarder,
                key: self.partner.signing(),
                bss,
            });
        let huawei =
            self.huawei
                .as_ref()
                .map(|side| crate::ledger::reconcile_huawei::HuaweiAccess {
                    forwarder: &self.forwarder,
                    side,
                });
        if alibaba.is_some() || huawei.is_some() {
            let access = crate::ledger::reconcile::ProviderAccess { alibaba, huawei };
            if let Err(e) = self.ledger.reconcile_once(&access).await {
                tracing::error!(error = %e, "ledger reconciler pass failed");
            }
        } else if let Err(e) = self.ledger.expire_once().await {
            // No provider to ask: pending holds can only expire.
            tracing::error!(error = %e, "ledger expiry pass failed");
        }
        if let Err(e) = self.ledger.deliver_alarms_once().await {
            tracing::error!(error = %e, "ledger alarm delivery pass failed");
        }
    }

    /// The permission layer (catalog, policies), e.g. for `policy explain`.
    pub fn authz(&self) -> &Arc<Authz> {
        &self.authz
    }

    /// How many keys are issued (for the startup log).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Handles one HTTP request end to end. Never fails: every error is an
    /// answer in the provider's format.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        if req.method() == Method::GET && req.uri().path() == "/healthz" {
            return self.with_version(plain(StatusCode::OK, "ok\n"));
        }
        if crate::huawei::call::is_huawei_path(req.uri().path()) {
            return self.with_version(self.handle_huawei(req, peer).await);
        }
        let mut ctx = RequestCtx::new(peer);
        let resp = match self.proxy(&mut ctx, req).await {
            Ok(resp) => resp,
            Err(err) => self.refuse(&ctx, &err),
        };
        self.metrics
            .request_seconds
            .observe(ctx.started.elapsed().as_secs_f64());
        self.with_version(with_request_id(resp, &ctx.request_id))
    }

    /// Names the policy version that served the answer.
    fn with_version(&self, mut resp: Response<Body>) -> Response<Body> {
        resp.headers_mut()
            .insert(POLICY_VERSION_HEADER, self.version.clone());
        resp
    }

    async fn proxy(
        &self,
        ctx: &mut RequestCtx,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body, self.max_body).await?;

        ctx.phase = Phase::Parse;
        let call = AliyunCall::parse(&parts, body)?;
        ctx.action = Some(call.action.clone());
        ctx.xml = call.wants_xml();
        ctx.key_id = Some(call.access_key_id().to_owned());
        // One reading of the call, or none: anything the provider could
        // read differently (repeated or re-cased names, duplicated
        // headers, a V3 signature that leaves out what the call is) is
        // refused before it is trusted.
        aliyun::strict::check_params(&call)?;
        aliyun::strict::check_headers(&call, &parts.headers)?;

        ctx.phase = Phase::Authenticate;
        let now = time::OffsetDateTime::now_utc();
        let who = self.auth.verify(&call, &self.keys, now)?;
        ctx.who = Some(who.clone());

        ctx.phase = Phase::Authorize;
        // Unknown means refused: an action the catalog does not list is
        // never forwarded, whatever the permission rule for unlisted APIs
        // says (that rule decides permission codes, not what may reach the
        // provider under the partner's key).
        let entry = self.catalogued(&call)?;
        self.authz
            .check_aliyun(&call, &who, ctx.peer, &self.metrics, &ctx.request_id)?;
        // The nonce is consumed only now, by a call that is signed and
        // allowed: a key refused everything cannot fill the replay memory.
        ctx.phase = Phase::Authenticate;
        self.auth.remember_nonce(&call, now)?;

        if entry.kind == crate::catalog::Kind::Purchase {
            // Money moves: the call must read one way only (what is priced
            // is what is forwarded), and the gateway must know how to
            // read it at all.
            ctx.phase = Phase::Parse;
            if !aliyun::purchase::readable(&call.version, &call.action) {
                return Err(crate::ledger::purchase::unpriced(&call.action));
            }
            aliyun::purchase::check(&call)?;
        }

        ctx.phase = Phase::Classify;
        let upstream = self
            .routes
            .route(&call.version, &call.host)
            .ok_or_else(|| invalid_version(&call.version))?;

        ctx.phase = Phase::Reserve;
        let kind = Some(entry.kind);
        self.ledger.gate(&call, &who, kind).await?;

        let pricing = self.pricing_for(&call, &who)?;
        if let Some((module, crate::pricing::order::Flow::Purchase(purchase))) = &pricing {
            ctx.phase = Phase::Price;
            let (quote, priced) = self
                .price_purchase(module, *purchase, &call, &who, upstream)
                .await?;
            ctx.quote = Some(quote);
            ctx.priced = priced;
        }

        ctx.phase = Phase::Reserve;
        let hold = match self.reserve(ctx, &call, &who, kind, upstream).await? {
            crate::ledger::Reservation::Pass => None,
            crate::ledger::Reservation::Hold(ticket) => Some(ticket),
            crate::ledger::Reservation::Replay { body, content_type } => {
                // A retry of a committed purchase: its original answer (as
                // the customer saw it), nothing forwarded or charged again.
                self.count(ctx, "replayed");
                let mut resp = Response::new(Body::new(body));
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                return Ok(resp);
            }
        };

        ctx.phase = Phase::Forward;
        let outbound = crate::resign::resign(
            &call,
            &who.customer.aliyun_uid,
            upstream.scheme,
            &upstream.authority,
            self.partner.signing(),
            &Freshness::now(),
        );
        let sent = Instant::now();
        let answer = self.forwarder.send(outbound, upstream.timeout).await;
        self.metrics
            .upstream_seconds
            .get_or_create(&UpstreamLabels {
                product: upstream.product.clone(),
            })
            .observe(sent.elapsed().as_secs_f64());
        if let Some(ticket) = &hold {
            if answer.is_ok() {
                ctx.phase = Phase::Settle;
            }
            // A retry of this purchase is replayed what the customer is
            // shown: the re-priced answer when a pricing module priced it.
            let shown = match (&answer, &ctx.quote) {
                (Ok(a), Some(quote)) => Some(
                    pricing::reprice_purchase_answer(
                        crate::upstream::Answer {
                            status: a.status,
                            content_type: a.content_type.clone(),
                            body: a.body.clone(),
                        },
                        quote,
                    )
                    .body,
                ),
                _ => None,
            };
            self.ledger
                .settle(ctx, ticket, &answer, shown.as_ref())
                .await;
        }
        let answer = answer?;
        if hold.is_some()
            && answer.status.is_success()
            && let Some(priced) = ctx.priced.clone()
        {
            self.check_purchase(ctx, &call, &who, upstream, priced, &answer);
        }
        let answer = match (&pricing, &ctx.quote) {
            (Some((module, crate::pricing::order::Flow::Query(api))), _) => {
                ctx.phase = Phase::Price;
                self.reprice_answer(ctx, module, *api, &call, &who, answer)?
            }
            (Some(_), Some(quote)) => pricing::reprice_purchase_answer(answer, quote),
            _ => answer,
        };

        ctx.phase = Phase::Respond;
        let outcome = if answer.status.is_success() {
            "ok"
        } else {
            "provider_error"
        };
        self.count(ctx, outcome);
        tracing::info!(
            request_id = %ctx.request_id,
            action = %call.action,
            customer = %who.customer.id,
            key = %who.access_key_id,
            frontend = who.frontend.is_some(),
            scheme = call.scheme(),
            product = %upstream.product,
            status = answer.status.as_u16(),
            elapsed_us = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "forwarded"
        );
        let mut resp = Response::new(Body::new(answer.body));
        *resp.status_mut() = answer.status;
        if let Some(ct) = answer.content_type {
            resp.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        if let (Some((module, _)), Some(_)) = (&pricing, &ctx.quote) {
            resp.headers_mut()
                .insert(crate::pricing::MODULE_HEADER, module.header().clone());
        }
        Ok(resp)
    }

    /// The catalog's entry for the call, or the provider's own answer for
    /// an API that does not exist (`InvalidAction.NotFound`, 404; an
    /// unknown product's `Version` is `InvalidVersion`): nothing
    /// uncatalogued reaches the provider.
    fn catalogued(&self, call: &AliyunCall) -> Result<&crate::catalog::Entry, Error> {
        match self.authz.catalog().aliyun(&call.version, &call.action) {
            crate::catalog::AliyunClass::Listed(entry) => Ok(entry),
            crate::catalog::AliyunClass::Unlisted(_) => Err(Error::customer(
                StatusCode::NOT_FOUND,
                "InvalidAction.NotFound",
                format!(
                    "Specified api is not found, please check your url and method: {} is not served through this gateway.",
                    call.action
                ),
                "unserved_action",
            )),
            crate::catalog::AliyunClass::UnknownProduct => Err(invalid_version(&call.version)),
        }
    }

    /// Compares what the provider charged with what was priced
    /// (`verify`): `RunInstances` from its answer, BSS orders by asking
    /// for the order in a task of its own (the customer is not kept
    /// waiting for it).
    fn check_purchase(
        &self,
        ctx: &RequestCtx,
        call: &AliyunCall,
        who: &Authenticated,
        upstream: &crate::upstream::Upstream,
        priced: verify::Priced,
        answer: &crate::upstream::Answer,
    ) {
        if call.action == "RunInstances" {
            let check = verify::run_instances_answer(&priced, &answer.body);
            verify::record(&self.metrics, &check, &ctx.request_id, &call.action, "");
            return;
        }
        let Some(order) = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.pointer("/Data/OrderId").and_then(|o| {
                    o.as_str()
                        .map(str::to_owned)
                        .or_else(|| Some(o.to_string()))
                })
            })
        else {
            return;
        };
        let forwarder = self.forwarder.clone();
        let metrics = Arc::clone(&self.metrics);
        let partner = self.partner.clone();
        let upstream = upstream.clone();
        let uid = who.customer.aliyun_uid.clone();
        let request_id = ctx.request_id.clone();
        let action = call.action.clone();
        tokio::spawn(async move {
            let provider = crate::aliyun::provider::Provider {
                forwarder: &forwarder,
                key: partner.signing(),
                upstream: &upstream,
                owner_uid: &uid,
            };
            let check = match provider
                .ask(
                    "GetOrderDetail",
                    crate::sim::BSS_VERSION,
                    vec![("OrderId".into(), order.clone())],
                )
                .await
            {
                Ok(detail) => verify::order_detail(&priced, &detail),
                Err(e) => verify::Check::Unavailable(format!("GetOrderDetail: {e:?}")),
            };
            verify::record(&metrics, &check, &request_id, &action, &order);
        });
    }

    /// The reserve phase: for purchases, hold the amount (see `ledger::purchase`).
    async fn reserve(
        &self,
        ctx: &RequestCtx,
        call: &AliyunCall,
        who: &Authenticated,
        kind: Option<crate::catalog::Kind>,
        upstream: &crate::upstream::Upstream,
    ) -> Result<crate::ledger::Reservation, Error> {
        let src = crate::ledger::purchase::PriceSource {
            forwarder: &self.forwarder,
            key: self.partner.signing(),
            upstream,
            owner_uid: &who.customer.aliyun_uid,
        };
        self.ledger.reserve(ctx, call, who, kind, src).await
    }

    /// The one exit for errors: log, count, render in the provider's format.
    fn refuse(&self, ctx: &RequestCtx, err: &Error) -> Response<Body> {
        self.metrics
            .refusals
            .get_or_create(&RefusalLabels { reason: err.reason })
            .inc();
        let outcome = match err.origin {
            crate::error::Origin::Customer => "refused",
            _ => "failed",
        };
        self.count(ctx, outcome);
        tracing::warn!(
            request_id = %ctx.request_id,
            phase = ctx.phase.as_str(),
            origin = err.origin.as_str(),
            code = %err.code,
            reason = err.reason,
            retryable = err.retryable,
            action = ctx.action.as_deref().unwrap_or(""),
            key = ctx.key_id.as_deref().unwrap_or(""),
            authenticated = ctx.who.is_some(),
            peer = %ctx.peer,
            "refused"
        );
        envelope::error_response(err, &ctx.request_id, &self.host_id, ctx.xml)
    }

    fn count(&self, ctx: &RequestCtx, outcome: &'static str) {
        let action = ctx
            .action
            .as_deref()
            .and_then(|a| self.authz.catalog().aliyun_label(a))
            .unwrap_or("other");
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                provider: "aliyun",
                action: action.to_owned(),
                outcome,
            })
            .inc();
    }
}

/// What Alibaba answers for a `Version` no product speaks.
fn invalid_version(version: &str) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "InvalidVersion",
        format!("Specified parameter Version \"{version}\" is not valid."),
        "no_route",
    )
}

fn customers_base(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// How long a client may take to send its whole body once the head has
/// arrived: 10 s. A legitimate body is at most a few KiB and arrives with
/// the head; a client trickling one byte at a time would otherwise hold a
/// request thread's connection and buffer for as long as it likes.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the whole body: refused at once when `Content-Length` already says
/// it is larger than `max` (nothing is read), when more than `max` bytes
/// arrive, or when it takes longer than [`BODY_READ_TIMEOUT`].
async fn read_body(headers: &http::HeaderMap, body: Incoming, max: usize) -> Result<Bytes, Error> {
    let too_large = || {
        Error::customer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("The request body is larger than {max} bytes."),
            "body_too_large",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, max).collect()).await {
        Err(_) => Err(Error::customer(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!(
                "The request body did not arrive within {} s.",
                BODY_READ_TIMEOUT.as_secs()
            ),
            "body_timeout",
        )),
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(_)) => Err(Error::customer(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The request body could not be read.",
            "malformed",
        )),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::new(Bytes::from(text.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

fn with_request_id(mut resp: Response<Body>, id: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// Runs `tollgate serve`: loads the config, binds the customer listener (and
/// the admin listener when configured), announces them, serves until
/// SIGINT/SIGTERM, then drains.
pub async fn run(config_path: &Path, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    // Absolute, so the file watcher's paths and the snapshot's agree.
    let config_path = &config_path
        .canonicalize()
        .with_context(|| format!("reading {}", config_path.display()))?;
    let cfg = ServeConfig::load(config_path)?;
    // The start-up config builds the long-lived parts; the policy snapshot
    // is then built (and on SIGHUP, a file change or the admin API rebuilt)
    // by the reloader, with every check a reload runs.
    let customers = CustomersFile::load(&cfg.customers_path())?;
    let runtime = Arc::new(Runtime::new(&cfg, &customers)?);
    let reloader = crate::reload::Reloader::start(config_path, &cfg, runtime.clone())?;
    // The ledger is migrated (and pending holds of a previous run found)
    // before the first purchase can arrive; a database that cannot be
    // opened stops the start-up instead of failing purchases later.
    let schema = runtime
        .ledger()
        .ready()
        .await
        .map_err(|e| anyhow::anyhow!("opening the budget ledger: {e}"))?;
    tracing::info!(schema, "budget ledger ready");
    let background = reloader.clone();
    tokio::spawn(async move {
        let every = background.runtime().ledger().settings().reconcile_interval;
        loop {
            // Each pass asks the provider with the current version's routes
            // and partner key.
            background.current().ledger_pass().await;
            tokio::time::sleep(every).await;
        }
    });
    crate::reload::watch::spawn_triggers(reloader.clone())?;
    let addr = listen.unwrap_or(cfg.server.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    let workers = Arc::new(
        crate::server::Workers::start(
            cfg.server
                .workers
                .unwrap_or_else(crate::server::workers::default_count),
            "tollgate-req",
        )
        .context("starting the request threads")?,
    );
    let shutdown = crate::server::Shutdown::new();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(admin) = &cfg.admin {
        let token = admin
            .token
            .load(&cfg.base_dir, "admin token")
            .context("loading the admin token")?;
        let admin_listener = tokio::net::TcpListener::bind(admin.listen)
            .await
            .with_context(|| format!("binding admin {}", admin.listen))?;
        let admin_addr = admin_listener.local_addr()?;
        let api = Arc::new(crate::admin::AdminApi::new(reloader.clone(), token));
        // Announced before the gateway line, so whoever waits for the
        // gateway's ready line also knows the admin address.
        crate::server::Ready {
            role: "admin".into(),
            addr: admin_addr,
        }
        .announce();
        tasks.spawn(crate::server::serve(
            admin_listener,
            move |req, peer| api.clone().handle(req, peer),
            shutdown.clone(),
        ));
    }
    tracing::info!(
        keys = reloader.current().key_count(),
        upstreams = cfg.upstreams.len(),
        version = reloader.current().version(),
        "gateway configured"
    );
    crate::server::Ready {
        role: "gateway".into(),
        addr: bound,
    }
    .announce();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        crate::server::wait_for_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        stopper.trigger();
    });
    // Each request loads the current version once and keeps it (pinning).
    tasks.spawn(crate::server::serve_on(
        listener,
        move |req, peer| reloader.current().handle(req, peer),
        shutdown,
        Some(workers.clone()),
        cfg.server.max_connections,
    ));
    while tasks.join_next().await.is_some() {}
    // Every connection has drained (or had its drain time): stop the
    // request threads.
    drop(workers);
    Ok(())
}
