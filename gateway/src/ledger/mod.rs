//! Budgets: real-time holds with zero overspend (issue 5).
//!
//! A purchase is a hold: price → **reserve** (atomically: limit − consumed −
//! held ≥ amount, else refused) → forward → **settle** (commit with the
//! provider's order id; release on a clear failure; mark unknown on a
//! timeout or reset and let the reconciler ask the provider). Semantics
//! follow Alibaba's reseller quota APIs (`alibaba-bss.md` §8): per customer a
//! credit limit and currency, consumption, status, alarm thresholds,
//! adjustments idempotent on `OutBizId`.
//!
//! | part | file |
//! |---|---|
//! | exact money (micro-units) | [`money`] |
//! | vocabulary | [`types`] |
//! | versioned schema | [`schema`] + `schema/*.sql` |
//! | SQLite (one node, group commit) | [`sqlite`] |
//! | PostgreSQL (replicas, one statement per op) | [`postgres`] |
//! | request path: amount, reserve, settle | [`purchase`] |
//! | reconciler + expiry sweeper | [`reconcile`] |
//! | alarms: crossings + webhooks | [`alarms`] |
//! | `[ledger]` config | [`config`] |
//!
//! Invariants (tested on both backends):
//! * `consumed + held ≤ limit` after every hold, whatever the concurrency
//!   and the number of replicas (the check is one SQL statement);
//! * every balance equals the sum of its entries' deltas (append-only log);
//! * a (customer, `ClientToken`) has at most one open or committed hold, and
//!   a provider order is attached to at most one hold;
//! * an acknowledged operation is durable (SQLite `synchronous=FULL` / the
//!   PostgreSQL commit).

pub mod alarms;
pub mod config;
pub mod money;
pub mod postgres;
pub mod purchase;
pub mod reconcile;
pub mod reconcile_huawei;
pub mod schema;
pub mod sqlite;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

pub use config::{Backend, LedgerConfig};
pub use money::Micros;
pub use postgres::PgStore;
pub use purchase::{Reservation, Ticket};
pub use sqlite::SqliteStore;
pub use types::{
    AdjustType, Budget, Committed, Entry, Hold, HoldState, LedgerError, NewHold, OutboxAlarm,
    Provider, Recomputed, Reserved, Status, Threshold,
};

use crate::metrics::Metrics;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A ledger database: SQLite or PostgreSQL, the same operations and
/// semantics. Every operation is one atomic transaction that also appends
/// to the entry log.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded, one node.
    Sqlite(SqliteStore),
    /// Shared, several replicas.
    Postgres(PgStore),
}

macro_rules! on_store {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call.await,
            Store::Postgres($s) => $call.await,
        }
    };
}

impl Store {
    /// Applies the migrations (SQLite did when opening) and returns the
    /// schema version.
    pub async fn migrate(&self) -> Result<i64, LedgerError> {
        match self {
            Self::Sqlite(s) => s.schema_version().await,
            Self::Postgres(s) => s.migrate().await,
        }
    }

    /// Schema version applied.
    pub async fn schema_version(&self) -> Result<i64, LedgerError> {
        on_store!(self, s => s.schema_version())
    }

    /// `CreateResellerUserQuota`: a new budget (status normal). A repeat with
    /// the same `out_biz_id` and amount answers the budget; a second budget
    /// is refused ([`LedgerError::Exists`]).
    pub async fn create_budget(
        &self,
        customer: &str,
        currency: &str,
        limit: Micros,
        out_biz_id: Option<&str>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        let (c, cur, o) = (
            customer.to_owned(),
            currency.to_owned(),
            out_biz_id.map(str::to_owned),
        );
        on_store!(self, s => s.create_budget(c, cur, limit, o, now))
    }

    /// `SetResellerUserQuota`: overwrites the limit (idempotent on `out_biz_id`).
    pub async fn set_limit(
        &self,
        customer: &str,
        limit: Micros,
        currency: Option<&str>,
        out_biz_id: Option<&str>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        let (c, cur, o) = (
            customer.to_owned(),
            currency.map(str::to_owned),
            out_biz_id.map(str::to_owned),
        );
        on_store!(self, s => s.set_limit(c, limit, cur, o, now))
    }

    /// `ChangeResellerConsumeAmount`: changes consumption (idempotent on
    /// `out_biz_id`, which is required as in the reference).
    pub async fn adjust_consumed(
        &self,
        customer: &str,
        adjust: AdjustType,
        amount: Micros,
        currency: &str,
        out_biz_id: &str,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        let (c, cur, o) = (
            customer.to_owned(),
            currency.to_owned(),
            out_biz_id.to_owned(),
        );
        on_store!(self, s => s.adjust_consumed(c, adjust, amount, cur, o, now))
    }

    /// `SetResellerUserStatus`. Thawing a budget whose available quota is
    /// below zero is refused (`-116`).
    pub async fn set_status(
        &self,
        customer: &str,
        status: Status,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.set_status(c, status, now))
    }

    /// `SetResellerUserAlarmThreshold`: replaces the thresholds (all armed;
    /// one already crossed fires at once).
    pub async fn set_thresholds(
        &self,
        customer: &str,
        thresholds: Vec<Threshold>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.set_thresholds(c, thresholds, now))
    }

    /// The budget of `customer`.
    pub async fn budget(&self, customer: &str) -> Result<Option<Budget>, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.budget(c))
    }

    /// Holds `hold.amount` if the budget allows it (status normal, same
    /// currency, limit − consumed − held ≥ amount), in one atomic step with
    /// the hold row and its entry. A (customer, token) that already has an
    /// open or committed hold gets that hold back instead.
    pub async fn reserve(&self, hold: NewHold) -> Result<Reserved, LedgerError> {
        on_store!(self, s => s.reserve(hold))
    }

    /// Commits an open hold: held → consumed, with the provider's order id.
    /// Committing again with the same order is [`Committed::Already`].
    pub async fn commit(
        &self,
        hold_id: &str,
        order_id: Option<&str>,
        answer: Option<&str>,
        now: i64,
    ) -> Result<Committed, LedgerError> {
        let (h, o, a) = (
            hold_id.to_owned(),
            order_id.map(str::to_owned),
            answer.map(str::to_owned),
        );
        on_store!(self, s => s.commit(h, o, a, now))
    }

    /// Releases an open hold (`expired`: because it expired).
    pub async fn release(
        &self,
        hold_id: &str,
        reason: &str,
        expired: bool,
        now: i64,
    ) -> Result<(), LedgerError> {
        let (h, r) = (hold_id.to_owned(), reason.to_owned());
        on_store!(self, s => s.release(h, r, expired, now))
    }

    /// Marks a `held` hold's outcome unknown (for the reconciler).
    pub async fn mark_unknown(
        &self,
        hold_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), LedgerError> {
        let (h, r) = (hold_id.to_owned(), reason.to_owned());
        on_store!(self, s => s.mark_unknown(h, r, now))
    }

    /// One hold.
    pub async fn hold(&self, hold_id: &str) -> Result<Option<Hold>, LedgerError> {
        let h = hold_id.to_owned();
        on_store!(self, s => s.hold(h))
    }

    /// The open or committed hold of (customer, token).
    pub async fn hold_by_token(
        &self,
        customer: &str,
        token: &str,
    ) -> Result<Option<Hold>, LedgerError> {
        let (c, t) = (customer.to_owned(), token.to_owned());
        on_store!(self, s => s.hold_by_token(c, t))
    }

    /// A customer's holds, newest first.
    pub async fn holds(
        &self,
        customer: &str,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<Hold>, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.holds(c, open_only, limit))
    }

    /// A customer's entries with id > `after`, oldest first.
    pub async fn entries(
        &self,
        customer: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Entry>, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.entries(c, after, limit))
    }

    /// Holds the reconciler should settle: unknown for longer than
    /// `grace_ms`, or still `held` `grace_ms` past their forward deadline
    /// (their request died with its process).
    pub async fn due_holds(
        &self,
        now: i64,
        grace_ms: i64,
        limit: i64,
    ) -> Result<Vec<Hold>, LedgerError> {
        on_store!(self, s => s.due_holds(now, grace_ms, limit))
    }

    /// Open holds past their expiry.
    pub async fn expired_holds(&self, now: i64, limit: i64) -> Result<Vec<Hold>, LedgerError> {
        on_store!(self, s => s.expired_holds(now, limit))
    }

    /// Which of `order_ids` are already attached to a hold of `customer`.
    pub async fn claimed_orders(
        &self,
        customer: &str,
        order_ids: Vec<String>,
    ) -> Result<Vec<String>, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.claimed_orders(c, order_ids))
    }

    /// Every customer with a budget.
    pub async fn customers(&self) -> Result<Vec<String>, LedgerError> {
        on_store!(self, s => s.customers())
    }

    /// Leases up to `limit` due outbox alarms for `lease_ms`.
    pub async fn claim_alarms(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxAlarm>, LedgerError> {
        on_store!(self, s => s.claim_alarms(now, lease_ms, limit))
    }

    /// Records a delivery attempt: delivered, or failed (retry at `next_at`,
    /// or never again when `give_up`).
    pub async fn alarm_attempted(
        &self,
        id: i64,
        outcome: Result<(), String>,
        next_at: i64,
        give_up: bool,
        now: i64,
    ) -> Result<(), LedgerError> {
        on_store!(self, s => s.alarm_attempted(id, outcome, next_at, give_up, now))
    }

    /// Sums of the entry log and of the holds of `customer`, to compare with
    /// the stored budget (see [`check_consistency`]).
    pub async fn recompute(&self, customer: &str) -> Result<Recomputed, LedgerError> {
        let c = customer.to_owned();
        on_store!(self, s => s.recompute(c))
    }
}

/// Checks the ledger invariants of one budget; `Err` describes the first
/// violation. Holds: balances = sums of entry deltas; held = open holds;
/// consumed = committed holds + adjustments.
pub async fn check_consistency(store: &Store, customer: &str) -> Result<Budget, String> {
    let b = store
        .budget(customer)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no budget for {customer}"))?;
    let r = store.recompute(customer).await.map_err(|e| e.to_string())?;
    let checks = [
        ("limit = Σ limit deltas", b.limit, r.limit),
        ("consumed = Σ consumed deltas", b.consumed, r.consumed),
        ("held = Σ held deltas", b.held, r.held),
        ("held = Σ open holds", b.held, r.open_holds),
        (
            "consumed = Σ committed holds + adjustments",
            b.consumed,
            Micros(r.committed_holds.0 + r.adjustments.0),
        ),
    ];
    for (what, stored, computed) in checks {
        if stored != computed {
            return Err(format!(
                "{customer}: {what} violated: stored {stored}, recomputed {computed}"
            ));
        }
    }
    Ok(b)
}

/// Timing and defaults of a running ledger.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Unsettled holds expire after this.
    pub hold_expiry: Duration,
    /// Reconciler / sweeper period.
    pub reconcile_interval: Duration,
    /// Wait before asking the provider about a pending hold.
    pub reconcile_grace: Duration,
    /// Hours of a pay-as-you-go rate held and charged at purchase.
    pub payg_hold_hours: u32,
    /// Budget for customers without one, if any.
    pub default_budget: Option<config::LimitSpec>,
    /// Budgets created at startup when absent: (customer, limit).
    pub initial_budgets: Vec<(String, config::LimitSpec)>,
}

impl Settings {
    /// From the config section.
    pub fn from_config(cfg: &LedgerConfig) -> anyhow::Result<Self> {
        let mut initial = Vec::new();
        for b in &cfg.budgets {
            initial.push((
                b.customer.clone(),
                config::parse_limit(&b.limit, &b.currency)?,
            ));
        }
        Ok(Self {
            hold_expiry: Duration::from_secs(cfg.hold_expiry_secs),
            reconcile_interval: Duration::from_millis(cfg.reconcile_interval_ms),
            reconcile_grace: Duration::from_millis(cfg.reconcile_grace_ms),
            payg_hold_hours: cfg.payg_hold_hours,
            default_budget: cfg.default_limit(),
            initial_budgets: initial,
        })
    }
}

/// The running ledger: a store, its settings, the customers it knows, and
/// the background machinery's state.
#[derive(Debug)]
pub struct Ledger {
    store: Store,
    settings: Settings,
    ready: OnceCell<i64>,
    webhooks: alarms::Webhooks,
    metrics: Arc<Metrics>,
    /// customer id → provider UID. Grows on a policy reload
    /// ([`Ledger::learn_policy`]); never shrinks, so the pending holds of a
    /// customer removed from the files are still reconciled.
    uids: std::sync::RwLock<Arc<HashMap<String, String>>>,
    /// `[ledger.default_budget]` as of the running policy version.
    default_budget: std::sync::RwLock<Option<config::LimitSpec>>,
    prices: purchase::ModuleCache,
}

impl Ledger {
    /// Opens the configured store (SQLite: now, with its migrations;
    /// PostgreSQL: a lazy pool, migrated by [`ready`](Self::ready)).
    /// `customers`: (customer id, provider UID) pairs.
    pub fn open(
        cfg: &LedgerConfig,
        base_dir: &Path,
        customers: impl IntoIterator<Item = (String, String)>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        use crate::secret::ExposeSecret as _;
        cfg.validate()?;
        let store = match cfg.backend {
            Backend::Sqlite => {
                let path = cfg.sqlite_path(base_dir);
                Store::Sqlite(SqliteStore::open(&path).map_err(|e| anyhow::anyhow!("{e}"))?)
            }
            Backend::Postgres => {
                let url = cfg.postgres_url(base_dir)?;
                Store::Postgres(
                    PgStore::new(url.expose_secret(), &cfg.schema, cfg.pool_size)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            }
        };
        Ok(Self::with_store(
            store,
            Settings::from_config(cfg)?,
            alarms::Webhooks::new(&cfg.alarm_webhooks)?,
            customers,
            metrics,
        ))
    }

    /// A ledger over an already opened store (tests, bench).
    pub fn with_store(
        store: Store,
        settings: Settings,
        webhooks: alarms::Webhooks,
        customers: impl IntoIterator<Item = (String, String)>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            default_budget: std::sync::RwLock::new(settings.default_budget.clone()),
            store,
            settings,
            ready: OnceCell::new(),
            webhooks,
            metrics,
            uids: std::sync::RwLock::new(Arc::new(customers.into_iter().collect())),
            prices: purchase::ModuleCache::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether `customer` is a known customer id.
    pub fn knows(&self, customer: &str) -> bool {
        self.uid_table().contains_key(customer)
    }

    /// The provider UID of a customer id.
    pub fn uid(&self, customer: &str) -> Option<String> {
        self.uid_table().get(customer).cloned()
    }

    fn uid_table(&self) -> Arc<HashMap<String, String>> {
        Arc::clone(&self.uids.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The budget a customer without one is granted at its first purchase.
    pub fn default_budget(&self) -> Option<config::LimitSpec> {
        self.default_budget
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A policy reload (see `reload`): makes new customers known (ids are
    /// added or their UID updated, never forgotten), sets the default budget
    /// of the new version, and creates the `[[ledger.budget]]` budgets that
    /// do not exist yet (an existing budget belongs to the admin API and is
    /// never overwritten, exactly as at start-up).
    pub async fn learn_policy(
        &self,
        customers: impl IntoIterator<Item = (String, String)>,
        cfg: &LedgerConfig,
    ) -> Result<(), LedgerError> {
        {
            let mut uids = self.uids.write().unwrap_or_else(|p| p.into_inner());
            let mut table = HashMap::clone(&uids);
            table.extend(customers);
            *uids = Arc::new(table);
        }
        *self
            .default_budget
            .write()
            .unwrap_or_else(|p| p.into_inner()) = cfg.default_limit();
        self.ready().await?;
        let now = now_ms();
        for b in &cfg.budgets {
            let Ok((limit, currency)) = config::parse_limit(&b.limit, &b.currency) else {
                continue; // refused by validation before a reload gets here
            };
            match self
                .store
                .create_budget(&b.customer, &currency, limit, None, now)
                .await
            {
                Ok(_) => {
                    tracing::info!(customer = %b.customer, limit = %limit, currency = %currency, "ledger: budget created by a policy reload");
                }
                Err(LedgerError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Migrates and creates the configured initial budgets, once; every
    /// operation waits for it. Returns the schema version.
    pub async fn ready(&self) -> Result<i64, LedgerError> {
        self.ready
            .get_or_try_init(|| async {
                let version = self.store.migrate().await?;
                let now = now_ms();
                for (customer, (limit, currency)) in &self.settings.initial_budgets {
                    match self.store.create_budget(customer, currency, *limit, None, now).await {
                        Ok(_) => tracing::info!(customer = %customer, limit = %limit, currency = %currency, "ledger: initial budget created"),
                        Err(LedgerError::Exists(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(version)
            })
            .await
            .copied()
    }
}
