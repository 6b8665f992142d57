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
    /// `refused` (Tollgate refused), `failed` (upstream or internal failure).
    pub outcome: &'static str,
}

/// Labels of `tollgate_refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The error's fixed reason label (`signature`, `nonce_replay`, ...).
    pub reason: &'static str,
}

/// Labels of `tollgate_upstream_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Upstream product.
    pub product: String,
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Refusals and failures by reason.
    pub refusals: Family<RefusalLabels, Counter>,
    /// Time spent waiting for the provider.
    pub upstream_seconds: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    /// Whole-request latency inside the gateway.
    pub request_seconds: Histogram,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~26 s in 20 doubling steps.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
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
        Arc::new(Self {
            registry,
            requests,
            refusals,
            upstream_seconds,
            request_seconds,
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
