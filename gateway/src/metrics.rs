//! Prometheus metrics (`GET /metrics`), via the official `prometheus-client`.
//!
//! Label values are bounded: actions outside the catalog are counted as
//! `other`, so a caller cannot blow up the series count with made-up names.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `tollgate_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `aliyun`.
    pub provider: &'static str,
    /// A catalogued action name or `other`.
    pub action: String,
    /// `ok` (2xx from the provider), `provider_error` (the provider refused),
    /// `refused` (Tollgate refused), `failed` (upstream or internal failure),
    /// `replayed` (a retried purchase answered from the ledger).
    pub outcome: &'static str,
}

/// Labels of `tollgate_refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The error's fixed reason label (`signature`, `nonce_replay`, ...).
    pub reason: &'static str,
}

/// Labels of `tollgate_authz_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthzLabels {
    /// `allow`, `deny`, `implicit_deny`, `not_listed_allow`,
    /// `not_listed_deny`, `unserved` (see `authz::Decision::label`).
    pub effect: &'static str,
}

/// Labels of `tollgate_upstream_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Upstream product.
    pub product: String,
}

/// Labels of `tollgate_ledger_operations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LedgerLabels {
    /// `reserve`, `commit`, `release`, `unknown`.
    pub op: &'static str,
    /// `ok`, `refused` (budget, status), `error` (database).
    pub outcome: &'static str,
}

/// A single fixed `outcome` label (alarms, deliveries, reconciliations).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// A fixed word.
    pub outcome: &'static str,
}

/// Labels of `tollgate_pricing_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PricingCallLabels {
    /// `name@version` of the pricing module (bounded: the policy set names it).
    pub module: String,
    /// `ok`, `denied` (admit refused the order) or `failed`.
    pub outcome: &'static str,
}

/// Labels of `tollgate_pricing_quote_cache_hits_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PricingModuleLabels {
    /// `name@version` of the pricing module.
    pub module: String,
}

/// Labels of `tollgate_pricing_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PricingFailureLabels {
    /// `name@version` of the pricing module.
    pub module: String,
    /// `trap`, `deadline`, `memory`, `invalid_output`, `module_error`,
    /// `unavailable` (see `pricing::FailureKind`).
    pub kind: &'static str,
}

/// Labels of `tollgate_policy_version_info` (issue 6: hot reload).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyVersionLabels {
    /// The content hash of the policy snapshot (one series is 1: the
    /// active one; earlier versions are removed, so the count is bounded).
    pub version: String,
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Tells registries apart (see [`Self::id`]).
    id: u64,
    /// Requests by outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Refusals and failures by reason.
    pub refusals: Family<RefusalLabels, Counter>,
    /// Permission decisions by effect.
    pub authz_decisions: Family<AuthzLabels, Counter>,
    /// Time spent waiting for the provider.
    pub upstream_seconds: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    /// Whole-request latency inside the gateway.
    pub request_seconds: Histogram,
    /// Pricing-module calls (one per priced request) by module and outcome.
    pub pricing_calls: Family<PricingCallLabels, Counter>,
    /// Pricing-module failures by module and kind.
    pub pricing_failures: Family<PricingFailureLabels, Counter>,
    /// Priced requests answered from the module's quote cache (also
    /// counted in `pricing_calls`).
    pub pricing_cache_hits: Family<PricingModuleLabels, Counter>,
    /// Time of one priced request's module work (instantiate, price,
    /// bundle, admit, checks; or the cache lookup).
    pub pricing_seconds: Histogram,
    /// Budget ledger operations by outcome.
    pub ledger_operations: Family<LedgerLabels, Counter>,
    /// Alarm threshold crossings detected (`outcome` = threshold kind).
    pub ledger_alarms: Family<OutcomeLabels, Counter>,
    /// Alarm webhook deliveries (`delivered`, `failed`, `gave_up`).
    pub ledger_alarm_deliveries: Family<OutcomeLabels, Counter>,
    /// Pending holds settled by the reconciler or the sweeper
    /// (`committed`, `released`, `expired`, `deferred`, `query_failed`).
    pub ledger_reconciled: Family<OutcomeLabels, Counter>,
    /// Policy reloads by outcome (`applied`, `refused`, `unchanged`,
    /// `rolled_back`).
    pub policy_reloads: Family<OutcomeLabels, Counter>,
    /// Purchases compared with what the provider charged (`match`,
    /// `mismatch`: an alarm, `unavailable`); see `proxy::verify`.
    pub purchase_checks: Family<OutcomeLabels, Counter>,
    /// The active policy version (value 1).
    pub policy_version: Family<PolicyVersionLabels, prometheus_client::metrics::gauge::Gauge>,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~26 s in 20 doubling steps.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    /// This registry's identity within the process: a handle resolved
    /// from one registry (a labelled counter kept for the hot path) is
    /// used only with the registry it came from.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("tollgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests handled, by provider, action and outcome",
            requests.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests refused or failed, by reason",
            refusals.clone(),
        );
        let authz_decisions = Family::<AuthzLabels, Counter>::default();
        registry.register(
            "authz_decisions",
            "Permission decisions, by effect",
            authz_decisions.clone(),
        );
        let upstream_seconds =
            Family::<UpstreamLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "upstream_duration_seconds",
            "Time waiting for the provider",
            upstream_seconds.clone(),
        );
        let request_seconds = latency_histogram();
        registry.register(
            "request_duration_seconds",
            "Time from request head to answer",
            request_seconds.clone(),
        );
        let ledger_operations = Family::<LedgerLabels, Counter>::default();
        registry.register(
            "ledger_operations",
            "Budget ledger operations, by operation and outcome",
            ledger_operations.clone(),
        );
        let ledger_alarms = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ledger_alarms",
            "Budget alarm threshold crossings, by threshold kind",
            ledger_alarms.clone(),
        );
        let ledger_alarm_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ledger_alarm_deliveries",
            "Budget alarm webhook deliveries, by outcome",
            ledger_alarm_deliveries.clone(),
        );
        let ledger_reconciled = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ledger_reconciled",
            "Pending holds handled by the reconciler and the expiry sweeper, by outcome",
            ledger_reconciled.clone(),
        );
        let pricing_calls = Family::<PricingCallLabels, Counter>::default();
        registry.register(
            "pricing_calls",
            "Pricing-module calls, by module and outcome",
            pricing_calls.clone(),
        );
        let pricing_failures = Family::<PricingFailureLabels, Counter>::default();
        registry.register(
            "pricing_failures",
            "Pricing-module failures, by module and kind",
            pricing_failures.clone(),
        );
        let pricing_cache_hits = Family::<PricingModuleLabels, Counter>::default();
        registry.register(
            "pricing_quote_cache_hits",
            "Priced requests answered from the module's quote cache (an identical order priced before)",
            pricing_cache_hits.clone(),
        );
        // 1 µs .. ~0.5 s in 20 doubling steps: a price call takes microseconds.
        let pricing_seconds = Histogram::new(exponential_buckets(0.000_001, 2.0, 20));
        registry.register(
            "pricing_call_duration_seconds",
            "Time of a priced request's module work",
            pricing_seconds.clone(),
        );
        let policy_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy snapshot reloads, by outcome",
            policy_reloads.clone(),
        );
        let purchase_checks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "purchase_checks",
            "Purchases compared with what the provider charged, by outcome (mismatch: alarm)",
            purchase_checks.clone(),
        );
        let policy_version =
            Family::<PolicyVersionLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "policy_version_info",
            "The active policy snapshot version (content hash)",
            policy_version.clone(),
        );
        // Process-unique, never reused (unlike an address).
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Arc::new(Self {
            registry,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            requests,
            refusals,
            authz_decisions,
            upstream_seconds,
            request_seconds,
            pricing_calls,
            pricing_failures,
            pricing_cache_hits,
            pricing_seconds,
            ledger_operations,
            ledger_alarms,
            ledger_alarm_deliveries,
            ledger_reconciled,
            policy_reloads,
            purchase_checks,
            policy_version,
        })
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
