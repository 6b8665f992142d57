//! `tollgate serve` configuration: one TOML file (`policies/tollgate.toml` in
//! the example set) plus the customers file it names.
//!
//! Every limit has a default with its reason next to it. Secrets are never
//! read from these files: they name an environment variable or a file
//! ([`SecretRef`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::secret::SecretRef;

mod customers;

pub use customers::{CustomerConfig, CustomersFile, HuaweiKeyConfig, KeyConfig, KeyKind};

/// The whole `serve` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Listener and request limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// The partner's own credentials, per provider.
    pub partner: PartnerConfig,
    /// Where each product's calls go.
    #[serde(rename = "upstream", default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// The customers file (customers and the keys the partner issued them).
    pub customers_file: PathBuf,
    /// Permission checks: catalog and policy folders. Absent: checks off.
    #[serde(default)]
    pub authz: Option<crate::authz::AuthzConfig>,
    /// The budget ledger. Absent: SQLite `tollgate-ledger.sqlite` next to
    /// the config and no budgets, so purchases are refused until budgets
    /// are granted (a reseller never pays for what nobody granted).
    #[serde(default)]
    pub ledger: crate::ledger::LedgerConfig,
    /// Partner pricing: the Wasm module and its configuration, optionally
    /// other modules per customer group (`[[pricing.assign]]`). Absent:
    /// official prices pass through unchanged.
    #[serde(default)]
    pub pricing: Option<crate::reload::modules::PricingSection>,
    /// The operators' admin API (its own listener). Absent: no admin API.
    #[serde(default)]
    pub admin: Option<crate::admin::AdminConfig>,
    /// Folder of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Listener and per-request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where customers connect.
    pub listen: SocketAddr,
    /// Largest request body accepted. 1 MiB: the biggest legitimate RPC call
    /// (50 modules with long configs) is a few KiB; more is abuse.
    pub max_body_bytes: usize,
    /// Largest upstream answer read. 16 MiB: order listings page at 100
    /// rows; an answer beyond this is a fault, not data.
    pub max_upstream_body_bytes: usize,
    /// Allowed clock skew of a signed call, either way. 900 s is Alibaba's
    /// own window for RPC calls, so SDK clients that work against the cloud
    /// work against the gateway.
    pub timestamp_window_secs: u64,
    /// Most nonces remembered at once. Each costs ~100 bytes; 1,000,000
    /// covers 1,100 req/s sustained over the 15-minute window in ~100 MiB.
    /// When full, new calls are refused (`Throttling`) rather than letting a
    /// replay through.
    pub nonce_capacity: usize,
    /// `HostId` written in error envelopes.
    pub host_id: String,
    /// Most customer connections open at once (see
    /// `server::MAX_CONNECTIONS` for the default's reason); past
    /// it a new connection is closed at once.
    pub max_connections: usize,
    /// Request threads, each with its own single-threaded runtime and
    /// upstream connection pool (`server::workers`). Absent: one per core
    /// the process may use; more only adds context switches.
    pub workers: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            max_upstream_body_bytes: 16 << 20,
            timestamp_window_secs: 900,
            nonce_capacity: 1_000_000,
            host_id: "tollgate".to_owned(),
            max_connections: crate::server::MAX_CONNECTIONS,
            workers: None,
        }
    }
}

/// The partner's credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Alibaba Cloud (BID / Virtual Operator) account.
    pub aliyun: AliyunPartnerConfig,
    /// Huawei Cloud: the BSS endpoint and the credentials the partner holds
    /// for each customer. Absent: Huawei paths are refused (`APIG.0101`).
    #[serde(default)]
    pub huawei: Option<HuaweiPartnerConfig>,
}

/// `[partner.huawei]`: where Huawei BSS calls go and, per customer, the
/// AK/SK of that customer's account the partner holds. BSS customer APIs
/// (balances, pay, renew, unsubscribe, ...) accept only the customer's own
/// credentials, so a reseller keeps one per customer; the secrets live in
/// the operator's secret store (files or environment), never in this text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiPartnerConfig {
    /// BSS base URL, e.g. `https://bss.myhuaweicloud.com` or the sim's.
    pub url: String,
    /// TCP connect timeout, ms (2 s, as for Alibaba upstreams).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Whole-call timeout, ms (30 s: BSS order calls take seconds at worst).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The held credentials, one per customer.
    #[serde(rename = "customer", default)]
    pub customers: Vec<HuaweiHeldCredential>,
}

/// The AK/SK the partner holds for one customer's Huawei account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiHeldCredential {
    /// The partner's id for the customer (`customers.toml`).
    pub customer: String,
    /// The AK (an id, not a secret).
    pub access_key_id: String,
    /// The SK: `secret_env` or `secret_file`.
    #[serde(flatten)]
    pub secret: SecretRef,
}

/// The partner's Alibaba Cloud AccessKey (the only key the cloud ever sees).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunPartnerConfig {
    /// The partner's AccessKey id.
    pub access_key_id: String,
    /// The secret: `secret_env` or `secret_file`.
    #[serde(flatten)]
    pub secret: SecretRef,
}

/// Which signature Tollgate puts on outbound calls.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutboundScheme {
    /// RPC `HMAC-SHA1` (accepted by every RPC product).
    #[default]
    Rpc,
    /// `ACS3-HMAC-SHA256`.
    V3,
}

/// One upstream endpoint, chosen by the call's `Version` (and `Host`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Product name, for logs and metrics (`bssopenapi`, `ecs`).
    pub product: String,
    /// The RPC `Version` this product speaks (`2017-12-14`).
    pub version: String,
    /// Base URL, e.g. `https://business.aliyuncs.com` or the simulator's.
    pub url: String,
    /// Inbound `Host` names (without port) that select this upstream when
    /// several share a version. Empty: selected by version alone.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Outbound signature scheme.
    #[serde(default)]
    pub signature: OutboundScheme,
    /// TCP connect timeout, ms. 2 s: a healthy endpoint connects in
    /// milliseconds; waiting longer only piles up requests.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Whole-call timeout, ms. 30 s: BSS order calls take seconds at worst;
    /// after this the outcome is unknown and reported as such.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl ServeConfig {
    /// Reads and checks the config file (not the secrets; see `proxy::Gateway::from_config`).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, &base).with_context(|| format!("in {}", path.display()))
    }

    /// Parses config text; `base_dir` anchors relative paths.
    pub fn from_toml(text: &str, base_dir: &Path) -> anyhow::Result<Self> {
        let mut cfg: Self = toml::from_str(text)?;
        cfg.base_dir = base_dir.to_path_buf();
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.ledger.validate()?;
        if self.upstreams.is_empty() {
            anyhow::bail!("no [[upstream]] configured: the gateway would have nowhere to forward");
        }
        for u in &self.upstreams {
            let uri: http::Uri = u
                .url
                .parse()
                .with_context(|| format!("upstream {}: bad url {}", u.product, u.url))?;
            if uri.scheme_str() != Some("http") {
                // TLS to the provider is the next step; refusing https
                // loudly is better than silently sending plaintext.
                anyhow::bail!(
                    "upstream {}: only http:// upstreams are supported by this build (got {})",
                    u.product,
                    u.url
                );
            }
            if uri.authority().is_none() {
                anyhow::bail!("upstream {}: url {} has no host", u.product, u.url);
            }
        }
        if let Some(h) = &self.partner.huawei {
            let uri: http::Uri = h
                .url
                .parse()
                .with_context(|| format!("[partner.huawei]: bad url {}", h.url))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                anyhow::bail!(
                    "[partner.huawei]: only http://host[:port] urls are supported by this build (got {})",
                    h.url
                );
            }
            let mut seen = std::collections::HashSet::new();
            for c in &h.customers {
                if !seen.insert(c.customer.as_str()) {
                    anyhow::bail!(
                        "[partner.huawei]: customer `{}` is listed twice",
                        c.customer
                    );
                }
            }
        }
        Ok(())
    }

    /// The customers file path, resolved.
    pub fn customers_path(&self) -> PathBuf {
        self.base_dir.join(&self.customers_file)
    }
}

#[cfg(test)]
mod tests;
