//! The pricing-module host: partner pricing rules as WebAssembly components
//! (contract: `wit/pricing.wit`; guide: `docs/pricing-modules.md`).
//!
//! * [`PricingEngine`]: one wasmtime `Engine` for the process (Cranelift,
//!   component model, pooling allocator, epoch interruption) and the thread
//!   that ticks its epoch. Compiled components are cached in memory by the
//!   SHA-256 of the module bytes, so reloading an unchanged module does not
//!   recompile it. (Not on disk: wasmtime's `Component::deserialize` is
//!   `unsafe`, and this workspace forbids unsafe code.)
//! * [`LoadedModule`]: a compiled component, its `InstancePre` (imports
//!   resolved once), the partner's configuration, what `describe` said, the
//!   module's *prepared* configuration (what `prepare` returned, once per
//!   load: the module does not parse its configuration per request) and
//!   the content hash.
//! * Every request gets a **fresh store and instance** ([`LoadedModule::quote`])
//!   and exactly one call (`quote`: prices, bundle lines and admission),
//!   dropped when the request's pricing is done: nothing a module keeps in
//!   memory can reach another customer. Each call has an epoch deadline and
//!   a memory cap ([`limits`]); guests get no WASI (every WASI import is
//!   linked to a function that fails the call; `no_std` modules import
//!   none, and instantiate fastest).
//! * Everything a module returns is checked before it is used
//!   ([`convert`]): exact decimals, non-negative, the order's currency,
//!   `price = list - discount`, every line priced once, bounded sizes.
//!   A failure of any kind is a [`PricingError`] for that call only.
//! * [`rewrite`] turns provider answers into partner answers; [`order`]
//!   builds orders from provider answers and purchase parameters.

pub mod convert;
pub mod limits;
pub mod order;
pub mod quote_cache;
pub mod rewrite;
pub mod splice;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, bail};
use http::{HeaderValue, StatusCode};
use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};

use crate::error::Error;
use crate::metrics::{Metrics, PricingCallLabels, PricingFailureLabels, PricingModuleLabels};

/// The header naming the module that priced an answer:
/// `x-tollgate-pricing-module: reference-pricing@0.1.0 sha256:0123456789ab`.
pub const MODULE_HEADER: &str = "x-tollgate-pricing-module";

/// The version of the WIT package (`wit/pricing.wit`) this host speaks.
pub const WIT_VERSION: &str = "0.2.0";

/// The bindings `wasmtime::component::bindgen!` generates from the WIT.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]
pub mod wit {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "pricing",
        // Arguments are lowered from borrowed texts (`Order<'a>` holds
        // `&'a str`), so the host copies the order straight from its own
        // values into the instance, without cloning every string first.
        // Types that are both argument and result get two names
        // (`MoneyParam<'a>`, `MoneyResult`).
        ownership: Borrowing { duplicate_if_necessary: true },
    });
    pub use self::tollgate::pricing::types::*;
}

/// The `[pricing]` section of `tollgate.toml`. Absent: prices pass through
/// from the provider unchanged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// The module (`.wasm` component), relative to the config file.
    pub module: PathBuf,
    /// The module's configuration (`.toml` or `.json`), relative to the
    /// config file; passed to the module as JSON text. Absent: `{}`.
    #[serde(default)]
    pub config: Option<PathBuf>,
}

// ------------------------------------------------------------------ types

/// How the provider charges a line (WIT `charge-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeType {
    /// Paid up front for a term.
    Subscription,
    /// Paid per hour or per unit of usage.
    PayAsYouGo,
}

/// WIT `period-unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// Hours.
    Hour,
    /// Days.
    Day,
    /// Weeks.
    Week,
    /// Months.
    Month,
    /// Years.
    Year,
    /// Per unit of usage.
    Usage,
}

impl PeriodUnit {
    /// Reads an Alibaba `PriceType` / `PriceUnit` / `ServicePeriodUnit`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Hour" => Self::Hour,
            "Day" => Self::Day,
            "Week" => Self::Week,
            "Month" => Self::Month,
            "Year" => Self::Year,
            "Usage" => Self::Usage,
            _ => return None,
        })
    }
}

/// Why the host asks (WIT `intent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// A price query.
    Quote,
    /// A purchase.
    Purchase,
}

/// WIT `order-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    /// A new instance.
    New,
    /// A renewal.
    Renewal,
    /// An upgrade.
    Upgrade,
    /// A downgrade.
    Downgrade,
}

/// The customer an order is for (from the customers file, never the caller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerInfo {
    /// Partner's id.
    pub id: String,
    /// Provider UID.
    pub uid: String,
    /// Group, empty when none.
    pub group: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// One provider line of an order (WIT `line-item`), amounts as decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    /// Unique id within the order.
    pub id: String,
    /// Product code.
    pub product: String,
    /// Pricing module / ECS resource.
    pub sku: String,
    /// SKU properties.
    pub config: Vec<(String, String)>,
    /// Region id or empty.
    pub region: String,
    /// Instances.
    pub quantity: u32,
    /// Period count.
    pub period_count: u32,
    /// Period unit.
    pub period_unit: PeriodUnit,
    /// Charge type.
    pub charge_type: ChargeType,
    /// Official list price of the line.
    pub official: Decimal,
    /// Official price after the provider's discounts.
    pub official_trade: Decimal,
}

/// An order or price query to price (WIT `order`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Provider action.
    pub action: String,
    /// Quote or purchase.
    pub intent: Intent,
    /// New, renewal, ...
    pub kind: OrderKind,
    /// For whom.
    pub customer: CustomerInfo,
    /// Currency of every amount.
    pub currency: String,
    /// Lines.
    pub lines: Vec<LineItem>,
}

/// The partner's price of one provider line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteLine {
    /// The line-item id.
    pub id: String,
    /// The official list price (echoed from the order, for the breakdown).
    pub official: Decimal,
    /// Partner list price.
    pub list: Decimal,
    /// Partner discount amount.
    pub discount: Decimal,
    /// What the customer pays: `list - discount`.
    pub price: Decimal,
    /// The rule that decided it.
    pub rule: String,
}

/// A partner product added to the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLine {
    /// Unique id (shown as the module code).
    pub id: String,
    /// The line it belongs to.
    pub attached_to: Option<String>,
    /// For the customer.
    pub description: String,
    /// Units.
    pub quantity: u32,
    /// List price.
    pub list: Decimal,
    /// Discount amount.
    pub discount: Decimal,
    /// What the customer pays.
    pub price: Decimal,
    /// The rule that added it.
    pub rule: String,
}

/// The partner quote for an order: what the customer is shown and (for a
/// purchase) charged. `total` is what the budget step holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// `name@version sha256:prefix` of the module that priced it.
    pub module: String,
    /// Currency of every amount.
    pub currency: String,
    /// `Subscription` when any line is paid up front (then `total` is an
    /// amount charged now); `PayAsYouGo` when every line is a rate.
    pub charge_type: ChargeType,
    /// Provider lines, in the order's line order.
    pub lines: Vec<QuoteLine>,
    /// Partner products, charged by the partner, never sent upstream.
    pub bundles: Vec<BundleLine>,
    /// Sum of list prices (lines and bundles).
    pub list_total: Decimal,
    /// Sum of discounts.
    pub discount_total: Decimal,
    /// Sum of prices: `list_total - discount_total`. For pay-as-you-go
    /// orders this is a rate per period unit, not an amount charged now.
    pub total: Decimal,
}

/// The answer of `admit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The order may proceed (also: `admit` was not asked, for quotes).
    Allow,
    /// Refused by the named quota rule, with the customer-facing message.
    Deny {
        /// The rule.
        rule: String,
        /// The message.
        message: String,
    },
}

/// A priced order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// The partner quote (shared: an answer from the quote cache is the
    /// cached quote itself, not a copy).
    pub quote: Arc<Quote>,
    /// `admit`'s answer (always `Allow` for quotes: it is asked only for purchases).
    pub admission: Admission,
}

/// What `describe` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Module name.
    pub name: String,
    /// Module version.
    pub version: String,
}

// ----------------------------------------------------------------- errors

/// How a module call failed (the `kind` label of
/// `tollgate_pricing_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The module trapped (a panic, `unreachable`, an out-of-bounds access,
    /// or a call to a WASI function guests do not get).
    Trap,
    /// The module ran past its epoch deadline.
    Deadline,
    /// The module hit its memory cap.
    Memory,
    /// The module returned something the host refuses (malformed or
    /// negative amount, wrong currency, inconsistent totals, missing lines,
    /// oversized text).
    InvalidOutput,
    /// The module returned an `err` (e.g. its configuration is wrong).
    ModuleError,
    /// No instance slot was free (more concurrent calls than the pool).
    Unavailable,
}

impl FailureKind {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::InvalidOutput => "invalid_output",
            Self::ModuleError => "module_error",
            Self::Unavailable => "unavailable",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Trap => "pricing_trap",
            Self::Deadline => "pricing_deadline",
            Self::Memory => "pricing_memory",
            Self::InvalidOutput => "pricing_invalid_output",
            Self::ModuleError => "pricing_module_error",
            Self::Unavailable => "pricing_unavailable",
        }
    }
}

/// A failed module call: what kind, and a message for logs and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingError {
    /// What went wrong.
    pub kind: FailureKind,
    /// Details (never a secret: modules see none).
    pub message: String,
}

impl PricingError {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The provider-format error for the customer: a Pricing-origin 500
    /// (503 when the pool is busy, which is worth retrying).
    pub fn to_error(&self, module: &str) -> Error {
        let (status, retryable) = match self.kind {
            FailureKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, true),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, false),
        };
        let mut detail = self.message.clone();
        truncate_utf8(&mut detail, limits::MAX_TEXT_BYTES);
        Error::pricing(
            status,
            "PricingModuleError",
            format!(
                "The partner's pricing module {module} failed ({}): {detail}. Nothing was ordered; no price is shown.",
                self.kind.as_str()
            ),
            self.kind.reason(),
            retryable,
        )
    }
}

impl std::fmt::Display for PricingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for PricingError {}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

// ----------------------------------------------------------------- engine

/// The process's one wasmtime engine, its epoch ticker and the cache of
/// compiled components.
#[derive(Debug)]
pub struct PricingEngine {
    engine: Engine,
    /// Compiled components by SHA-256 of their bytes (bounded).
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    stop: Arc<AtomicBool>,
}

/// Most compiled components kept (old versions after reloads).
const COMPILED_CACHE: usize = 8;

impl PricingEngine {
    /// Builds the engine (see [`limits`] for every number) and starts the
    /// epoch ticker thread.
    pub fn new() -> anyhow::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits::POOL_INSTANCES)
            .total_core_instances(limits::POOL_INSTANCES * limits::CORE_INSTANCES_PER_COMPONENT)
            .max_core_instances_per_component(limits::CORE_INSTANCES_PER_COMPONENT)
            .total_memories(limits::POOL_INSTANCES * limits::MEMORIES_PER_COMPONENT)
            .max_memories_per_component(limits::MEMORIES_PER_COMPONENT)
            .total_tables(limits::POOL_INSTANCES * limits::TABLES_PER_COMPONENT)
            .max_tables_per_component(limits::TABLES_PER_COMPONENT)
            .max_memory_size(limits::MAX_MEMORY_BYTES)
            .table_elements(limits::MAX_TABLE_ELEMENTS)
            .linear_memory_keep_resident(limits::KEEP_RESIDENT_BYTES)
            .table_keep_resident(limits::MAX_TABLE_ELEMENTS * 8)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the pricing engine")?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("pricing-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(limits::EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .context("starting the epoch ticker")?;
        Ok(Arc::new(Self {
            engine,
            compiled: Mutex::new(HashMap::new()),
            stop,
        }))
    }

    fn compile(&self, wasm: &[u8]) -> anyhow::Result<([u8; 32], Component)> {
        let hash: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(c) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
        {
            return Ok((hash, c.clone()));
        }
        let component = Component::new(&self.engine, wasm)
            .map_err(anyhow::Error::from)
            .context("not a valid WebAssembly component (build it for wasm32-wasip2)")?;
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= COMPILED_CACHE
            && let Some(k) = cache.keys().next().copied()
        {
            cache.remove(&k);
        }
        cache.insert(hash, component.clone());
        Ok((hash, component))
    }

    /// Whether `wasm` (by content) is compiled and cached already.
    pub fn is_cached(&self, wasm: &[u8]) -> bool {
        let hash: [u8; 32] = Sha256::digest(wasm).into();
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&hash)
    }

    /// Compiles (or takes from the cache) `wasm`, links it, runs its
    /// `describe` self-check with `config` (JSON text), and returns it ready
    /// to price. `source` names it in errors.
    pub fn load(
        self: &Arc<Self>,
        wasm: &[u8],
        config: String,
        source: &str,
    ) -> anyhow::Result<LoadedModule> {
        if wasm.len() > limits::MAX_MODULE_BYTES {
            bail!(
                "{source}: {} bytes is above the {} byte limit for a module",
                wasm.len(),
                limits::MAX_MODULE_BYTES
            );
        }
        if config.len() > limits::MAX_CONFIG_BYTES {
            bail!(
                "{source}: the configuration is above {} bytes",
                limits::MAX_CONFIG_BYTES
            );
        }
        let (hash, component) = self.compile(wasm).with_context(|| source.to_owned())?;
        let mut linker: Linker<HostState> = Linker::new(&self.engine);
        let mut wasi_imports = Vec::new();
        for (name, item) in component.component_type().imports(&self.engine) {
            if let Some(v) = name.strip_prefix("tollgate:pricing/types@")
                && v != WIT_VERSION
            {
                bail!(
                    "{source}: the module was built against tollgate:pricing@{v}; this gateway speaks tollgate:pricing@{WIT_VERSION} (rebuild it against wit/pricing.wit; docs/pricing-modules.md says what changed)"
                );
            }
            if !(name.starts_with("wasi:") || name.starts_with("tollgate:pricing/types@")) {
                bail!(
                    "{source}: the module imports `{name}`, which Tollgate does not provide (modules may import only the WIT types; WASI imports are linked to traps)"
                );
            }
            if let wasmtime::component::types::ComponentItem::ComponentInstance(i) = item.ty
                && name.starts_with("wasi:")
            {
                for (f, ty) in i.exports(&self.engine) {
                    if matches!(
                        ty.ty,
                        wasmtime::component::types::ComponentItem::ComponentFunc(_)
                    ) {
                        wasi_imports.push(format!("{name}#{f}"));
                    }
                }
            }
        }
        // Guests get no WASI: every WASI function a module imports (Rust's
        // std links some for panics and the environment) fails the call.
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{source}: linking"))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{source}: linking"))?;
        let pre = wit::PricingPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{source}: the module does not export the tollgate:pricing@{WIT_VERSION} world"
                )
            })?;
        let hash_hex = hex::encode(hash);
        let mut module = LoadedModule {
            engine: Arc::clone(self),
            pre,
            config,
            prepared: Vec::new(),
            info: ModuleInfo {
                name: String::new(),
                version: String::new(),
            },
            hash: hash_hex,
            wasi_imports,
            label: String::new(),
            id: String::new(),
            header: HeaderValue::from_static("unknown"),
            quotes: quote_cache::QuoteCache::new(limits::QUOTE_CACHE_BYTES),
            counters: std::sync::OnceLock::new(),
        };
        let info = module
            .describe()
            .map_err(|e| anyhow::anyhow!("{source}: describe failed: {e}"))?;
        if let Some(why) = &info.1 {
            bail!("{source}: the module's self-check failed: {why}");
        }
        module.prepared = module
            .prepare()
            .map_err(|e| anyhow::anyhow!("{source}: prepare failed: {e}"))?;
        module.info = info.0;
        module.label = format!("{}@{}", module.info.name, module.info.version);
        module.id = format!("{} sha256:{}", module.label, &module.hash[..12]);
        module.header = HeaderValue::from_str(&module.id)
            .context("module name or version is not a valid header value")?;
        Ok(module)
    }

    /// Loads a module and its configuration file (TOML is converted to
    /// JSON; floats are refused: write amounts as strings).
    pub fn load_files(
        self: &Arc<Self>,
        module: &Path,
        config: Option<&Path>,
    ) -> anyhow::Result<LoadedModule> {
        let wasm = std::fs::read(module).with_context(|| {
            format!(
                "reading the pricing module {} (build it with scripts/build-guests)",
                module.display()
            )
        })?;
        let config = match config {
            Some(p) => convert::config_json(p)?,
            None => "{}".to_owned(),
        };
        self.load(&wasm, config, &module.display().to_string())
    }

    /// Loads what a `[pricing]` section names, relative to `base_dir`.
    pub fn load_config(
        self: &Arc<Self>,
        cfg: &PricingConfig,
        base_dir: &Path,
    ) -> anyhow::Result<LoadedModule> {
        let config = cfg.config.as_ref().map(|c| base_dir.join(c));
        self.load_files(&base_dir.join(&cfg.module), config.as_deref())
    }
}

impl Drop for PricingEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ----------------------------------------------------------------- module

/// A store's own data: its limits and whether the memory cap was hit.
struct HostState {
    limits: StoreLimits,
    memory_denied: bool,
}

impl HostState {
    fn new() -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits::MAX_MEMORY_BYTES)
                .table_elements(limits::MAX_TABLE_ELEMENTS)
                .instances(limits::CORE_INSTANCES_PER_COMPONENT as usize)
                .memories(limits::MEMORIES_PER_COMPONENT as usize)
                .tables(limits::TABLES_PER_COMPONENT as usize)
                .build(),
            memory_denied: false,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.limits.memory_growing(current, desired, maximum)?;
        if !ok {
            self.memory_denied = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// A compiled, linked, self-checked pricing module with its configuration.
pub struct LoadedModule {
    engine: Arc<PricingEngine>,
    pre: wit::PricingPre<HostState>,
    config: String,
    /// What `prepare` returned for `config`: passed to every `quote`.
    prepared: Vec<u8>,
    info: ModuleInfo,
    hash: String,
    wasi_imports: Vec<String>,
    label: String,
    /// `name@version sha256:prefix` (the header's text, each quote's `module`).
    id: String,
    header: HeaderValue,
    /// Answers to orders already priced (see [`quote_cache`]).
    quotes: quote_cache::QuoteCache,
    /// Its counters in the registry it reports to (see `counters`).
    counters: std::sync::OnceLock<ModuleCounters>,
}

/// One module's hot counters, from one metrics registry.
#[derive(Debug, Clone)]
struct ModuleCounters {
    /// [`Metrics::id`] of the registry they belong to.
    registry: u64,
    cache_hits: prometheus_client::metrics::counter::Counter,
    ok: prometheus_client::metrics::counter::Counter,
    denied: prometheus_client::metrics::counter::Counter,
    failed: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("label", &self.label)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// One fresh instance, for one request.
struct Session<'m> {
    module: &'m LoadedModule,
    store: Store<HostState>,
    bindings: wit::Pricing,
}

impl LoadedModule {
    /// What `describe` said.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// `name@version`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// SHA-256 of the module bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The `x-tollgate-pricing-module` header value.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// The WASI functions the module imports (each linked to a trap). Rust's `std` links some; each costs a little at every
    /// instantiation, so a module with none is the fastest to start.
    pub fn wasi_imports(&self) -> &[String] {
        &self.wasi_imports
    }

    /// The configuration text passed to the module.
    pub fn config_text(&self) -> &str {
        &self.config
    }

    /// What the module's `prepare` made of the configuration (passed to
    /// every `quote`).
    pub fn prepared(&self) -> &[u8] {
        &self.prepared
    }

    fn session(&self) -> Result<Session<'_>, PricingError> {
        let mut store = Store::new(&self.engine.engine, HostState::new());
        store.limiter(|s| s);
        store.set_epoch_deadline(limits::DEADLINE_TICKS);
        let bindings = self.pre.instantiate(&mut store).map_err(|e| {
            let text = format!("{e:#}");
            if text.contains("maximum concurrent") || text.contains("pooling") {
                PricingError::new(
                    FailureKind::Unavailable,
                    "every pricing instance slot is busy",
                )
            } else if store.data().memory_denied {
                PricingError::new(FailureKind::Memory, format!("instantiation: {text}"))
            } else {
                PricingError::new(FailureKind::Trap, format!("instantiation: {text}"))
            }
        })?;
        Ok(Session {
            module: self,
            store,
            bindings,
        })
    }

    /// Creates a fresh store and instance and drops them, calling nothing:
    /// the fixed cost every priced request pays (for benchmarks).
    pub fn instantiate_only(&self) -> Result<(), PricingError> {
        self.session().map(drop)
    }

    /// `describe`: (info, self-check error).
    fn describe(&self) -> Result<(ModuleInfo, Option<String>), PricingError> {
        let mut s = self.session()?;
        let info = s
            .bindings
            .call_describe(&mut s.store, &s.module.config)
            .map_err(|e| classify(&s.store, &e))?;
        convert::check_info(info)
    }

    /// `prepare`, on its own fresh instance: the bytes every `quote` gets.
    fn prepare(&self) -> Result<Vec<u8>, PricingError> {
        let mut s = self.session()?;
        let prepared = s
            .bindings
            .call_prepare(&mut s.store, &s.module.config)
            .map_err(|e| classify(&s.store, &e))?
            .map_err(|e| module_error("prepare", e))?;
        if prepared.len() > limits::MAX_PREPARED_BYTES {
            return Err(PricingError::new(
                FailureKind::InvalidOutput,
                format!(
                    "prepare returned {} bytes (at most {})",
                    prepared.len(),
                    limits::MAX_PREPARED_BYTES
                ),
            ));
        }
        Ok(prepared)
    }

    /// Prices `order`: the remembered answer to an identical order if there
    /// is one ([`quote_cache`]: exact, as a module is a pure function of
    /// its configuration and the order), else [`Self::quote_uncached`].
    pub fn quote(&self, order: &Order) -> Result<Priced, PricingError> {
        self.quote_with_source(order).map(|(p, _)| p)
    }

    /// [`Self::quote`], and whether the answer came from the cache.
    fn quote_with_source(&self, order: &Order) -> Result<(Priced, bool), PricingError> {
        if !self.quotes.enabled() {
            return self.quote_uncached(order).map(|p| (p, false));
        }
        let key = quote_cache::key(order);
        if let Some(priced) = self.quotes.get(&key) {
            return Ok((priced, true));
        }
        let priced = self.quote_uncached(order)?;
        self.quotes.insert(key, &priced);
        Ok((priced, false))
    }

    /// Answers remembered by the quote cache.
    pub fn cached_quotes(&self) -> usize {
        self.quotes.len()
    }

    /// Whether the module remembers its answers (the default).
    pub fn caches_quotes(&self) -> bool {
        self.quotes.enabled()
    }

    /// The module with its quote cache off: every order runs the module.
    pub fn without_quote_cache(mut self) -> Self {
        self.quotes = quote_cache::QuoteCache::disabled();
        self
    }

    /// Prices `order` on a fresh instance, in one call (`quote`: prices,
    /// bundle lines, admission). Every output is checked; any failure fails
    /// the whole call. The admission counts for purchases only (a price
    /// query is never refused).
    pub fn quote_uncached(&self, order: &Order) -> Result<Priced, PricingError> {
        let mut s = self.session()?;
        let answer = convert::with_wit_order(order, |wit_order| {
            s.bindings
                .call_quote(&mut s.store, &self.prepared, wit_order)
                .map_err(|e| classify(&s.store, &e))
        })?
        .map_err(|e| module_error("quote", e))?;
        // The instance is done: release its slot before checking. (Dropped
        // here, on the calling thread: handing stores to another thread to
        // drop was measured slower, as the next call then starts in a
        // slot whose memory is cold in this core's caches.)
        drop(s);
        let lines = convert::check_quote(order, &answer.lines)?;
        let bundles = convert::check_bundles(order, &answer.bundles)?;
        let admission = match order.intent {
            Intent::Quote => Admission::Allow,
            Intent::Purchase => convert::check_admission(answer.admission)?,
        };
        let mut quote = Quote::new(self.id.clone(), order.currency.clone(), lines, bundles);
        if order
            .lines
            .iter()
            .all(|l| l.charge_type == ChargeType::PayAsYouGo)
            && !order.lines.is_empty()
        {
            quote.charge_type = ChargeType::PayAsYouGo;
        }
        Ok(Priced {
            quote: Arc::new(quote),
            admission,
        })
    }

    /// This module's counters in `metrics`, resolved once per registry: a
    /// labelled lookup hashes and copies the module's name, on every
    /// priced request otherwise.
    fn counters(&self, metrics: &Metrics) -> std::borrow::Cow<'_, ModuleCounters> {
        let resolve = || {
            let calls = |outcome| {
                metrics
                    .pricing_calls
                    .get_or_create(&PricingCallLabels {
                        module: self.label.clone(),
                        outcome,
                    })
                    .clone()
            };
            ModuleCounters {
                registry: metrics.id(),
                cache_hits: metrics
                    .pricing_cache_hits
                    .get_or_create(&PricingModuleLabels {
                        module: self.label.clone(),
                    })
                    .clone(),
                ok: calls("ok"),
                denied: calls("denied"),
                failed: calls("failed"),
            }
        };
        let kept = self.counters.get_or_init(resolve);
        if kept.registry == metrics.id() {
            std::borrow::Cow::Borrowed(kept)
        } else {
            std::borrow::Cow::Owned(resolve())
        }
    }

    /// [`Self::quote`], timed and counted in `metrics`.
    pub fn quote_metered(&self, order: &Order, metrics: &Metrics) -> Result<Priced, PricingError> {
        let started = Instant::now();
        let counters = self.counters(metrics);
        let result = self.quote_with_source(order).map(|(priced, cached)| {
            if cached {
                counters.cache_hits.inc();
            }
            priced
        });
        metrics
            .pricing_seconds
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(p) if matches!(p.admission, Admission::Deny { .. }) => counters.denied.inc(),
            Ok(_) => counters.ok.inc(),
            Err(_) => counters.failed.inc(),
        };
        if let Err(e) = &result {
            metrics
                .pricing_failures
                .get_or_create(&PricingFailureLabels {
                    module: self.label.clone(),
                    kind: e.kind.as_str(),
                })
                .inc();
        }
        result
    }
}

fn module_error(export: &str, message: String) -> PricingError {
    let mut message = format!("{export} returned an error: {message}");
    truncate_utf8(&mut message, limits::MAX_TEXT_BYTES);
    PricingError::new(FailureKind::ModuleError, message)
}

/// Names what stopped a call.
fn classify(store: &Store<HostState>, e: &wasmtime::Error) -> PricingError {
    let mut text = format!("{e:#}");
    truncate_utf8(&mut text, limits::MAX_TEXT_BYTES);
    if store.data().memory_denied {
        return PricingError::new(
            FailureKind::Memory,
            format!(
                "the module ran out of its {} MiB of memory ({text})",
                limits::MAX_MEMORY_BYTES >> 20
            ),
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PricingError::new(
            FailureKind::Deadline,
            format!(
                "the module ran past its deadline of {} ms",
                limits::EPOCH_TICK.as_millis() * u128::from(limits::DEADLINE_TICKS)
            ),
        ),
        Some(trap) => PricingError::new(FailureKind::Trap, format!("the module trapped: {trap}")),
        None if text.contains("unknown import") => PricingError::new(
            FailureKind::Trap,
            format!(
                "the module called a WASI function, which pricing modules do not get (no files, network, environment, clocks, randomness or console; a panic message is printed this way too): {text}"
            ),
        ),
        None => PricingError::new(FailureKind::Trap, text),
    }
}

impl Quote {
    /// Totals `lines` and `bundles`.
    pub fn new(
        module: String,
        currency: String,
        lines: Vec<QuoteLine>,
        bundles: Vec<BundleLine>,
    ) -> Self {
        let mut list_total = Decimal::ZERO;
        let mut discount_total = Decimal::ZERO;
        for (l, d) in lines
            .iter()
            .map(|l| (l.list, l.discount))
            .chain(bundles.iter().map(|b| (b.list, b.discount)))
        {
            list_total += l;
            discount_total += d;
        }
        Self {
            module,
            currency,
            charge_type: ChargeType::Subscription,
            lines,
            bundles,
            list_total,
            discount_total,
            total: list_total - discount_total,
        }
    }
}

#[cfg(test)]
mod tests;
