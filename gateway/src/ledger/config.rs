//! `[ledger]` in the gateway config.
//!
//! ```toml
//! [ledger]
//! backend = "sqlite"                   # or "postgres"
//! path = "tollgate-ledger.sqlite"      # sqlite: relative to the config file
//! # url_env = "TOLLGATE_LEDGER_URL"    # postgres: the connection string is a
//! # url_file = "secrets/ledger.url"    #   secret, by reference only
//! # schema = "public"                  # postgres schema (created if missing)
//! hold_expiry_secs = 900
//! reconcile_interval_ms = 2000
//! reconcile_grace_ms = 30000
//! alarm_webhooks = ["http://127.0.0.1:9900/alarms"]
//!
//! [[ledger.budget]]                    # created at startup when absent
//! customer = "acme"
//! limit = "50000.00"
//! currency = "CNY"
//!
//! # [ledger.default_budget]            # absent: no budget, no purchases
//! # limit = "1000.00"
//! # currency = "CNY"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::money::{Micros, check_currency};
use super::postgres::{DEFAULT_POOL_SIZE, valid_schema};
use crate::secret::{SecretRef, SecretString};

/// Which database holds the ledger.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One SQLite file: one gateway node (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL server: several gateway replicas.
    Postgres,
}

/// The `[ledger]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// `sqlite` (default) or `postgres`.
    #[serde(default)]
    pub backend: Backend,
    /// SQLite file, relative to the config file's folder. Default
    /// `tollgate-ledger.sqlite` next to the config.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// PostgreSQL: environment variable holding the connection string.
    #[serde(default)]
    pub url_env: Option<String>,
    /// PostgreSQL: file holding the connection string.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// PostgreSQL schema for the ledger's tables (created if missing).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// PostgreSQL connections per gateway process (see
    /// `postgres::DEFAULT_POOL_SIZE` for the default's reason).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long an unsettled hold lives. 900 s (15 minutes) is the
    /// providers' signature window: a call signed for the provider can no
    /// longer be accepted after it, so an order that does not exist by
    /// then never will, and the held amount can safely be freed.
    #[serde(default = "default_expiry")]
    pub hold_expiry_secs: u64,
    /// How often the reconciler and the expiry sweeper run. 2 s: pending
    /// holds block budget, so settle them soon, at a handful of queries.
    #[serde(default = "default_interval")]
    pub reconcile_interval_ms: u64,
    /// How long after a hold's outcome became unknown (or its request's
    /// forward timeout passed) the reconciler asks the provider. 30 s: a
    /// call that reached the provider has produced its order by then, so
    /// "no order" means the call never took effect.
    #[serde(default = "default_grace")]
    pub reconcile_grace_ms: u64,
    /// Pay-as-you-go purchases charge nothing up front at the provider,
    /// but each one commits the reseller to paying for usage. So that a
    /// customer with nothing left cannot start resources by the dozen,
    /// such a purchase holds, and on success charges, its first
    /// `payg_hold_hours` hours at the partner's rate (the pricing module's
    /// quote of the hourly price); later usage enters the budget through
    /// `ChangeResellerConsumeAmount`. 1 hour: the provider bills the first
    /// hour of a pay-as-you-go resource in any case. 0 turns the hold off
    /// (pay-as-you-go then only needs a budget that can buy).
    #[serde(default = "default_payg_hours")]
    pub payg_hold_hours: u32,
    /// Operator webhooks that receive alarm crossings (POST JSON).
    #[serde(default)]
    pub alarm_webhooks: Vec<String>,
    /// Budgets created at startup for customers that have none yet (an
    /// existing budget is never overwritten: the admin API owns it).
    #[serde(default, rename = "budget")]
    pub budgets: Vec<InitialBudget>,
    /// A budget given to a customer without one on their first purchase.
    /// Absent (the default): a customer without a budget cannot buy — a
    /// reseller must never pay for purchases nobody granted.
    #[serde(default)]
    pub default_budget: Option<DefaultBudget>,
}

/// One `[[ledger.budget]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialBudget {
    /// Customer id (from the customers file).
    pub customer: String,
    /// Credit limit, a decimal string in the currency's unit (`"50000.00"`).
    pub limit: String,
    /// Currency code.
    pub currency: String,
}

/// `[ledger.default_budget]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultBudget {
    /// Credit limit (decimal string).
    pub limit: String,
    /// Currency code.
    pub currency: String,
}

fn default_path() -> PathBuf {
    PathBuf::from("tollgate-ledger.sqlite")
}
fn default_schema() -> String {
    "public".to_owned()
}
fn default_pool_size() -> usize {
    DEFAULT_POOL_SIZE
}
fn default_expiry() -> u64 {
    900
}
fn default_interval() -> u64 {
    2_000
}
fn default_grace() -> u64 {
    30_000
}
fn default_payg_hours() -> u32 {
    1
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            path: default_path(),
            url_env: None,
            url_file: None,
            schema: default_schema(),
            pool_size: default_pool_size(),
            hold_expiry_secs: default_expiry(),
            reconcile_interval_ms: default_interval(),
            reconcile_grace_ms: default_grace(),
            payg_hold_hours: default_payg_hours(),
            alarm_webhooks: Vec::new(),
            budgets: Vec::new(),
            default_budget: None,
        }
    }
}

/// A parsed budget amount and currency.
pub type LimitSpec = (Micros, String);

impl LedgerConfig {
    /// Checks values that the types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                if self.url_env.is_some() || self.url_file.is_some() {
                    bail!("[ledger] url_env/url_file are for backend = \"postgres\"");
                }
            }
            Backend::Postgres => {
                if self.url_env.is_some() == self.url_file.is_some() {
                    bail!(
                        "[ledger] backend = \"postgres\" needs exactly one of url_env or url_file (the connection string is a secret)"
                    );
                }
                if !valid_schema(&self.schema) {
                    bail!(
                        "[ledger] schema \"{}\" must be a lower-case SQL identifier",
                        self.schema
                    );
                }
            }
        }
        if self.hold_expiry_secs == 0 || self.reconcile_interval_ms == 0 {
            bail!("[ledger] hold_expiry_secs and reconcile_interval_ms must be positive");
        }
        if self.reconcile_grace_ms >= self.hold_expiry_secs.saturating_mul(1000) {
            bail!("[ledger] reconcile_grace_ms must be shorter than hold_expiry_secs");
        }
        let mut seen = std::collections::HashSet::new();
        for b in &self.budgets {
            if !seen.insert(b.customer.as_str()) {
                bail!("[[ledger.budget]] for {} is listed twice", b.customer);
            }
            parse_limit(&b.limit, &b.currency)
                .with_context(|| format!("[[ledger.budget]] for {}", b.customer))?;
        }
        if let Some(d) = &self.default_budget {
            parse_limit(&d.limit, &d.currency).context("[ledger.default_budget]")?;
        }
        super::alarms::Webhooks::new(&self.alarm_webhooks)?;
        Ok(())
    }

    /// The SQLite file, resolved against `base_dir`.
    pub fn sqlite_path(&self, base_dir: &Path) -> PathBuf {
        if self.path.is_absolute() {
            self.path.clone()
        } else {
            base_dir.join(&self.path)
        }
    }

    /// Loads the PostgreSQL connection string (a secret).
    pub fn postgres_url(&self, base_dir: &Path) -> anyhow::Result<SecretString> {
        let r = SecretRef {
            secret_env: self.url_env.clone(),
            secret_file: self.url_file.clone(),
        };
        Ok(r.load(base_dir, "ledger PostgreSQL URL")?)
    }

    /// The default budget, parsed.
    pub fn default_limit(&self) -> Option<LimitSpec> {
        self.default_budget
            .as_ref()
            .and_then(|d| parse_limit(&d.limit, &d.currency).ok())
    }
}

/// Parses a limit and a currency from config text.
pub fn parse_limit(limit: &str, currency: &str) -> anyhow::Result<LimitSpec> {
    let amount = Micros::parse_amount(limit).map_err(|e| anyhow::anyhow!("limit: {e}"))?;
    let currency = check_currency(currency).map_err(|e| anyhow::anyhow!("currency: {e}"))?;
    Ok((amount, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<LedgerConfig> {
        let cfg: LedgerConfig = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn defaults_are_sqlite_with_no_budgets() {
        let cfg = parse("").expect("empty section");
        assert_eq!(cfg.backend, Backend::Sqlite);
        assert_eq!(
            cfg.sqlite_path(Path::new("/etc/tollgate")),
            Path::new("/etc/tollgate/tollgate-ledger.sqlite")
        );
        assert_eq!(cfg.hold_expiry_secs, 900);
        assert!(cfg.budgets.is_empty() && cfg.default_budget.is_none());
    }

    #[test]
    fn the_postgres_url_is_a_secret_by_reference_only() {
        // An inline URL (it could hold a password) is not even a field.
        assert!(parse("backend = \"postgres\"\nurl = \"postgres://u:p@h/db\"").is_err());
        assert!(
            parse("backend = \"postgres\"").is_err(),
            "a URL reference is required"
        );
        assert!(
            parse("backend = \"postgres\"\nurl_env = \"A\"\nurl_file = \"b\"").is_err(),
            "exactly one reference"
        );
        assert!(parse("backend = \"postgres\"\nurl_env = \"A\"\nschema = \"Bad-Name\"").is_err());
        assert!(parse("backend = \"postgres\"\nurl_env = \"TOLLGATE_LEDGER_URL\"").is_ok());
        assert!(
            parse("url_env = \"A\"").is_err(),
            "a URL for sqlite is a mistake"
        );
    }

    #[test]
    fn budgets_and_amounts_are_checked() {
        let ok = parse(
            "[[budget]]\ncustomer = \"acme\"\nlimit = \"50.00\"\ncurrency = \"CNY\"\n[default_budget]\nlimit = \"1\"\ncurrency = \"USD\"",
        )
        .expect("valid");
        assert_eq!(
            ok.default_limit(),
            Some((Micros(1_000_000), "USD".to_owned()))
        );
        for bad in [
            "[[budget]]\ncustomer = \"acme\"\nlimit = \"1.0000001\"\ncurrency = \"CNY\"",
            "[[budget]]\ncustomer = \"acme\"\nlimit = \"-1\"\ncurrency = \"CNY\"",
            "[[budget]]\ncustomer = \"acme\"\nlimit = \"1\"\ncurrency = \"yuan\"",
            "[[budget]]\ncustomer = \"a\"\nlimit = \"1\"\ncurrency = \"CNY\"\n[[budget]]\ncustomer = \"a\"\nlimit = \"2\"\ncurrency = \"CNY\"",
            "hold_expiry_secs = 10\nreconcile_grace_ms = 20000",
            "alarm_webhooks = [\"https://example.invalid/x\"]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
