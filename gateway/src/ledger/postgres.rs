//! The shared backend: PostgreSQL, for several gateway replicas.
//!
//! * Zero overspend across replicas comes from the database, not from the
//!   application: a hold is ONE statement whose `UPDATE budgets ... WHERE
//!   credit_limit - consumed - held >= amount` takes the row lock, re-checks
//!   the condition on the latest row version (READ COMMITTED re-evaluation)
//!   and, in the same statement (data-modifying CTEs), inserts the hold and
//!   its entry. No read-modify-write in Rust.
//! * Commit, release and mark-unknown are one statement each too; only
//!   operator actions (rare) use explicit transactions with `FOR UPDATE`.
//! * Pooled connections (`deadpool-postgres`); plain TCP (`NoTls`): run the
//!   database on loopback or a private network, or put a TLS tunnel in front.
//! * The connection string is a secret (it can hold a password): it is read
//!   by reference and never logged; errors carry the server's message only.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{GenericClient, NoTls, Row};

use super::alarms;
use super::money::Micros;
use super::schema;
use super::types::{
    AdjustType, Budget, Committed, Entry, Hold, HoldState, LedgerError, NewHold, OutboxAlarm,
    Provider, Recomputed, Reserved, Status, Threshold,
};

/// Default pool size per gateway process. 16: one statement per operation
/// keeps connections busy only for a round trip, so 16 saturate a server
/// long before the pool does, and six replicas still fit PostgreSQL's
/// default `max_connections` of 100.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long an operation waits for a pooled connection. 5 s: longer means
/// the database is down or overloaded, and the purchase is better refused.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// Key of the advisory lock that serializes migrations across replicas.
const MIGRATION_LOCK: i64 = 0x7017_6a7e_1ed6_0001;

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    schema: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the connection string: it may hold a password.
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn pg(e: tokio_postgres::Error) -> LedgerError {
    match e.as_db_error() {
        Some(d) => LedgerError::Db(format!("{} ({})", d.message(), d.code().code())),
        None => LedgerError::Db(e.to_string()),
    }
}

fn unique_on(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint()) == Some(constraint)
}

/// Whether `s` is a plain lower-case SQL identifier (schema names are put
/// into SQL text, so nothing else is accepted).
pub fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PgStore {
    /// A pool for `url` using `schema` (created by [`migrate`](Self::migrate)
    /// if missing). Connects lazily.
    pub fn new(url: &str, schema: &str, pool_size: usize) -> Result<Self, LedgerError> {
        if !valid_schema(schema) {
            return Err(LedgerError::Invalid(format!(
                "ledger schema \"{schema}\" must be a lower-case identifier"
            )));
        }
        let mut cfg: tokio_postgres::Config = url.parse().map_err(|_| {
            // The parser's message may quote the URL: do not pass it on.
            LedgerError::Invalid("the PostgreSQL connection string is not valid".into())
        })?;
        cfg.options(format!("-c search_path={schema}"));
        if cfg.get_application_name().is_none() {
            cfg.application_name("tollgate-ledger");
        }
        cfg.connect_timeout(POOL_WAIT);
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| LedgerError::Db(format!("building the pool: {e}")))?;
        Ok(Self {
            pool,
            schema: schema.to_owned(),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg(e),
            other => LedgerError::Db(format!("no database connection: {other}")),
        })
    }

    /// Creates the schema if needed and applies the missing migrations.
    pub async fn migrate(&self) -> Result<i64, LedgerError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.schema))
            .await
            .map_err(pg)?;
        tx.batch_execute(schema::VERSION_TABLE).await.map_err(pg)?;
        let mut current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        schema::check_not_newer(current).map_err(LedgerError::Db)?;
        let applied = current;
        for m in schema::POSTGRES.iter().filter(|m| m.version > applied) {
            tx.batch_execute(m.sql).await.map_err(|e| {
                LedgerError::Db(format!("migration {} ({}): {}", m.version, m.name, pg(e)))
            })?;
            tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &super::now_ms()],
            )
            .await
            .map_err(pg)?;
            tracing::info!(version = m.version, name = m.name, "ledger schema migrated");
            current = m.version;
        }
        tx.commit().await.map_err(pg)?;
        Ok(current)
    }

    /// Schema version applied.
    pub async fn schema_version(&self) -> Result<i64, LedgerError> {
        let c = self.client().await?;
        Ok(c.query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0))
    }

    /// Drops the schema and everything in it (tests clean up with this).
    pub async fn drop_schema(&self) -> Result<(), LedgerError> {
        let c = self.client().await?;
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await
            .map_err(pg)
    }

    // ------------------------------------------------------------ budgets

    /// See [`super::Store::create_budget`].
    pub async fn create_budget(
        &self,
        customer: String,
        currency: String,
        limit: Micros,
        out_biz_id: Option<String>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        self.admin_tx(|tx| {
            let (customer, currency, out_biz_id) =
                (customer.clone(), currency.clone(), out_biz_id.clone());
            Box::pin(async move {
                if let Some(b) =
                    replayed(tx, &customer, out_biz_id.as_deref(), "quota_create", limit.0).await?
                {
                    return Ok(b);
                }
                let inserted = tx
                    .query_opt(
                        &format!(
                            "INSERT INTO budgets (customer, currency, credit_limit, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (customer) DO NOTHING
                             RETURNING {BUDGET_COLS}"
                        ),
                        &[&customer, &currency, &limit.0, &now],
                    )
                    .await
                    .map_err(pg)?;
                let Some(row) = inserted else {
                    return Err(LedgerError::Exists(customer));
                };
                let b = budget_row(&row);
                append(
                    tx,
                    &b,
                    &Draft {
                        amount: limit.0,
                        d_limit: limit.0,
                        out_biz_id: out_biz_id.as_deref(),
                        detail: &currency,
                        ..Draft::note("quota_create")
                    },
                    now,
                )
                .await?;
                Ok(b)
            })
        })
        .await
    }

    /// See [`super::Store::set_limit`].
    pub async fn set_limit(
        &self,
        customer: String,
        limit: Micros,
        currency: Option<String>,
        out_biz_id: Option<String>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        self.admin_tx(|tx| {
            let (customer, currency, out_biz_id) =
                (customer.clone(), currency.clone(), out_biz_id.clone());
            Box::pin(async move {
                if let Some(b) =
                    replayed(tx, &customer, out_biz_id.as_deref(), "quota_set", limit.0).await?
                {
                    return Ok(b);
                }
                let before = lock_budget(tx, &customer).await?;
                if let Some(cur) = currency
                    && cur != before.currency
                {
                    return Err(LedgerError::Currency {
                        budget: before.currency,
                        amount: cur,
                    });
                }
                let b = budget_row(
                    &tx.query_one(
                        &format!(
                            "UPDATE budgets SET credit_limit = $2, updated_at = $3 WHERE customer = $1 RETURNING {BUDGET_COLS}"
                        ),
                        &[&customer, &limit.0, &now],
                    )
                    .await
                    .map_err(pg)?,
                );
                append(
                    tx,
                    &b,
                    &Draft {
                        amount: limit.0,
                        d_limit: limit.0 - before.limit.0,
                        out_biz_id: out_biz_id.as_deref(),
                        ..Draft::note("quota_set")
                    },
                    now,
                )
                .await?;
                apply_alarms(tx, &b, now).await?;
                Ok(b)
            })
        })
        .await
    }

    /// See [`super::Store::adjust_consumed`].
    pub async fn adjust_consumed(
        &self,
        customer: String,
        adjust: AdjustType,
        amount: Micros,
        currency: String,
        out_biz_id: String,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        self.admin_tx(|tx| {
            let (customer, currency, out_biz_id) =
                (customer.clone(), currency.clone(), out_biz_id.clone());
            Box::pin(async move {
                let kind = adjust.entry_kind();
                if let Some(b) = replayed(tx, &customer, Some(&out_biz_id), kind, amount.0).await? {
                    return Ok(b);
                }
                let before = lock_budget(tx, &customer).await?;
                if before.currency != currency {
                    return Err(LedgerError::Currency {
                        budget: before.currency,
                        amount: currency,
                    });
                }
                let delta = match adjust {
                    AdjustType::Increase => amount.0,
                    AdjustType::Decrease => -amount.0,
                };
                let b = budget_row(
                    &tx.query_one(
                        &format!(
                            "UPDATE budgets SET consumed = consumed + $2, updated_at = $3 WHERE customer = $1 RETURNING {BUDGET_COLS}"
                        ),
                        &[&customer, &delta, &now],
                    )
                    .await
                    .map_err(pg)?,
                );
                append(
                    tx,
                    &b,
                    &Draft {
                        amount: amount.0,
                        d_consumed: delta,
                        out_biz_id: Some(&out_biz_id),
                        ..Draft::note(kind)
                    },
                    now,
                )
                .await?;
                apply_alarms(tx, &b, now).await?;
                Ok(b)
            })
        })
        .await
    }

    /// See [`super::Store::set_status`].
    pub async fn set_status(
        &self,
        customer: String,
        status: Status,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        self.admin_tx(|tx| {
            let customer = customer.clone();
            Box::pin(async move {
                let before = lock_budget(tx, &customer).await?;
                if status == Status::Normal
                    && before.status != Status::Normal
                    && before.available().0 < 0
                {
                    return Err(LedgerError::QuotaNegative(customer));
                }
                let b = budget_row(
                    &tx.query_one(
                        &format!(
                            "UPDATE budgets SET status = $2, updated_at = $3 WHERE customer = $1 RETURNING {BUDGET_COLS}"
                        ),
                        &[&customer, &status.as_str(), &now],
                    )
                    .await
                    .map_err(pg)?,
                );
                let detail = format!("{} -> {}", before.status.as_str(), status.as_str());
                append(
                    tx,
                    &b,
                    &Draft {
                        detail: &detail,
                        ..Draft::note("status")
                    },
                    now,
                )
                .await?;
                Ok(b)
            })
        })
        .await
    }

    /// See [`super::Store::set_thresholds`].
    pub async fn set_thresholds(
        &self,
        customer: String,
        thresholds: Vec<Threshold>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        let json =
            serde_json::to_string(&thresholds).map_err(|e| LedgerError::Db(e.to_string()))?;
        self.admin_tx(|tx| {
            let (customer, json) = (customer.clone(), json.clone());
            Box::pin(async move {
                lock_budget(tx, &customer).await?;
                let b = budget_row(
                    &tx.query_one(
                        &format!(
                            "UPDATE budgets SET thresholds = $2, alarm_fired = 0, updated_at = $3 WHERE customer = $1 RETURNING {BUDGET_COLS}"
                        ),
                        &[&customer, &json, &now],
                    )
                    .await
                    .map_err(pg)?,
                );
                append(
                    tx,
                    &b,
                    &Draft {
                        detail: &json,
                        ..Draft::note("thresholds")
                    },
                    now,
                )
                .await?;
                apply_alarms(tx, &b, now).await?;
                Ok(b)
            })
        })
        .await
    }

    /// Runs an operator action in a transaction; a concurrent use of the
    /// same OutBizId (unique violation) is retried once, then replays.
    async fn admin_tx<R>(
        &self,
        f: impl for<'t> Fn(
            &'t tokio_postgres::Transaction<'t>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = Result<R, LedgerError>> + Send + 't>,
        >,
    ) -> Result<R, LedgerError> {
        let mut client = self.client().await?;
        for attempt in 0..2 {
            let tx = client.transaction().await.map_err(pg)?;
            match f(&tx).await {
                Ok(r) => match tx.commit().await {
                    Ok(()) => return Ok(r),
                    Err(e) if attempt == 0 && unique_on(&e, "entries_out_biz") => {}
                    Err(e) => return Err(pg(e)),
                },
                Err(LedgerError::Db(msg)) if attempt == 0 && msg.contains("entries_out_biz") => {
                    let _ = tx.rollback().await;
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
            }
        }
        Err(LedgerError::Db("the operation kept conflicting".into()))
    }

    /// See [`super::Store::budget`].
    pub async fn budget(&self, customer: String) -> Result<Option<Budget>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {BUDGET_COLS} FROM budgets WHERE customer = $1"),
            &[&customer],
        )
        .await
        .map_err(pg)?
        .as_ref()
        .map(budget_row))
    }

    // -------------------------------------------------------------- holds

    /// See [`super::Store::reserve`]: one statement.
    pub async fn reserve(&self, h: NewHold) -> Result<Reserved, LedgerError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(RESERVE_SQL).await.map_err(pg)?;
        let mut found = None;
        for _ in 0..3 {
            let row = c
                .query_one(
                    &stmt,
                    &[
                        &h.customer,
                        &h.amount.0,
                        &h.now,
                        &h.currency,
                        &h.client_token,
                        &h.id,
                        &h.fingerprint,
                        &h.request_id,
                        &h.action,
                        &h.product,
                        &h.official.map(|m| m.0),
                        &h.forward_deadline,
                        &h.expires_at,
                        &h.provider.as_str(),
                        &h.provider_ref,
                        &h.replay_key,
                    ],
                )
                .await;
            match row {
                Ok(row) => {
                    found = Some(row);
                    break;
                }
                // A concurrent purchase with the same token won the race:
                // the statement was rolled back; the next round finds it.
                Err(e) if unique_on(&e, "holds_token") => {}
                // This very signed call made a hold before (here or on
                // another replica, before or after a restart).
                Err(e) if unique_on(&e, "holds_replay_key") => return Err(LedgerError::Replayed),
                Err(e) => return Err(pg(e)),
            }
        }
        // Follow-up reads take their own connection: never hold one while
        // waiting for another (the pool could deadlock).
        drop(c);
        let row = found.ok_or_else(|| LedgerError::Db("the hold kept conflicting".into()))?;
        if let Some(existing) = row.get::<_, Option<String>>(0) {
            return match self.hold(existing.clone()).await? {
                Some(hold) => Ok(Reserved::Existing(Box::new(hold))),
                None => Err(LedgerError::NoHold(existing)),
            };
        }
        if row.get::<_, Option<String>>(1).is_some() {
            let b = budget_row_at(&row, 1);
            if alarms::evaluate(&b).is_some() {
                self.alarm_pass(&b.customer, h.now).await?;
            }
            return Ok(Reserved::New(b));
        }
        // No budget row was updated. With a token, a concurrent copy of
        // this purchase may have won the budget row first: its hold was
        // invisible to this statement's snapshot (taken before the winner
        // committed), while the budget check re-ran on the winner's row
        // and found no room. A fresh read sees the winner: the copy is told
        // `LastTokenProcessing` (or replayed), never "nothing was bought"
        // while its twin buys.
        if let Some(token) = &h.client_token
            && let Some(existing) = self
                .hold_by_token(h.customer.clone(), token.clone())
                .await?
        {
            return Ok(Reserved::Existing(Box::new(existing)));
        }
        Err(self.diagnose(&h).await)
    }

    async fn diagnose(&self, h: &NewHold) -> LedgerError {
        match self.budget(h.customer.clone()).await {
            Err(e) => e,
            Ok(None) => LedgerError::NoBudget(h.customer.clone()),
            Ok(Some(b)) if !b.status.can_buy() => LedgerError::NotBuying {
                customer: b.customer,
                status: b.status,
            },
            Ok(Some(b)) if b.currency != h.currency => LedgerError::Currency {
                budget: b.currency,
                amount: h.currency.clone(),
            },
            Ok(Some(b)) => LedgerError::Insufficient {
                available: b.available(),
                needed: h.amount,
                currency: b.currency,
            },
        }
    }

    /// Records alarm crossings for `customer` in their own transaction (after
    /// a one-statement hold or release showed a crossing).
    async fn alarm_pass(&self, customer: &str, now: i64) -> Result<(), LedgerError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let b = lock_budget(&*tx, customer).await?;
        apply_alarms(&*tx, &b, now).await?;
        tx.commit().await.map_err(pg)
    }

    /// See [`super::Store::commit`]: one statement.
    pub async fn commit(
        &self,
        id: String,
        order_id: Option<String>,
        answer: Option<String>,
        now: i64,
    ) -> Result<Committed, LedgerError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(COMMIT_SQL).await.map_err(pg)?;
        let rows = c
            .query(&stmt, &[&id, &order_id, &answer, &now])
            .await
            .map_err(|e| {
                if unique_on(&e, "holds_order") {
                    LedgerError::OrderClaimed(order_id.clone().unwrap_or_default())
                } else {
                    pg(e)
                }
            })?;
        drop(c);
        if !rows.is_empty() {
            return Ok(Committed::Now);
        }
        match self.hold(id.clone()).await? {
            Some(h) if h.state == HoldState::Committed && h.order_id == order_id => {
                Ok(Committed::Already)
            }
            Some(h) => Err(LedgerError::NotOpen { id, state: h.state }),
            None => Err(LedgerError::NoHold(id)),
        }
    }

    /// See [`super::Store::release`]: one statement.
    pub async fn release(
        &self,
        id: String,
        reason: String,
        expired: bool,
        now: i64,
    ) -> Result<(), LedgerError> {
        let (state, kind) = if expired {
            ("expired", "expire")
        } else {
            ("released", "release")
        };
        let c = self.client().await?;
        let stmt = c.prepare_cached(RELEASE_SQL).await.map_err(pg)?;
        let row = c
            .query_opt(&stmt, &[&id, &state, &reason, &now, &kind])
            .await
            .map_err(pg)?;
        drop(c);
        let Some(row) = row else {
            return Err(self.not_open(id).await);
        };
        let b = budget_row(&row);
        if alarms::evaluate(&b).is_some() {
            self.alarm_pass(&b.customer, now).await?;
        }
        Ok(())
    }

    async fn not_open(&self, id: String) -> LedgerError {
        match self.hold(id.clone()).await {
            Err(e) => e,
            Ok(None) => LedgerError::NoHold(id),
            Ok(Some(h)) => LedgerError::NotOpen { id, state: h.state },
        }
    }

    /// See [`super::Store::mark_unknown`]: one statement.
    pub async fn mark_unknown(
        &self,
        id: String,
        reason: String,
        now: i64,
    ) -> Result<(), LedgerError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(UNKNOWN_SQL).await.map_err(pg)?;
        let row = c
            .query_opt(&stmt, &[&id, &reason, &now])
            .await
            .map_err(pg)?;
        drop(c);
        if row.is_none() {
            return Err(self.not_open(id).await);
        }
        Ok(())
    }

    /// See [`super::Store::hold`].
    pub async fn hold(&self, id: String) -> Result<Option<Hold>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg)?
        .as_ref()
        .map(hold_row))
    }

    /// See [`super::Store::hold_by_token`].
    pub async fn hold_by_token(
        &self,
        customer: String,
        token: String,
    ) -> Result<Option<Hold>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &format!(
                "SELECT {HOLD_COLS} FROM holds WHERE customer = $1 AND client_token = $2
                 AND state IN ('held', 'unknown', 'committed')"
            ),
            &[&customer, &token],
        )
        .await
        .map_err(pg)?
        .as_ref()
        .map(hold_row))
    }

    /// See [`super::Store::holds`].
    pub async fn holds(
        &self,
        customer: String,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<Hold>, LedgerError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {HOLD_COLS} FROM holds WHERE customer = $1 {} ORDER BY created_at DESC, id LIMIT $2",
            if open_only {
                "AND state IN ('held', 'unknown')"
            } else {
                ""
            }
        );
        Ok(c.query(&sql, &[&customer, &limit])
            .await
            .map_err(pg)?
            .iter()
            .map(hold_row)
            .collect())
    }

    /// See [`super::Store::entries`].
    pub async fn entries(
        &self,
        customer: String,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Entry>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query(
            &format!(
                "SELECT {ENTRY_COLS} FROM entries WHERE customer = $1 AND id > $2 ORDER BY id LIMIT $3"
            ),
            &[&customer, &after, &limit],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(entry_row)
        .collect())
    }

    /// See [`super::Store::due_holds`].
    pub async fn due_holds(
        &self,
        now: i64,
        grace_ms: i64,
        limit: i64,
    ) -> Result<Vec<Hold>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query(
            &format!(
                "SELECT {HOLD_COLS} FROM holds
                 WHERE (state = 'unknown' AND unknown_at + $2 <= $1)
                    OR (state = 'held' AND forward_deadline + $2 <= $1)
                 ORDER BY created_at LIMIT $3"
            ),
            &[&now, &grace_ms, &limit],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(hold_row)
        .collect())
    }

    /// See [`super::Store::expired_holds`].
    pub async fn expired_holds(&self, now: i64, limit: i64) -> Result<Vec<Hold>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query(
            &format!(
                "SELECT {HOLD_COLS} FROM holds WHERE state IN ('held', 'unknown') AND expires_at <= $1
                 ORDER BY expires_at LIMIT $2"
            ),
            &[&now, &limit],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(hold_row)
        .collect())
    }

    /// See [`super::Store::claimed_orders`].
    pub async fn claimed_orders(
        &self,
        customer: String,
        order_ids: Vec<String>,
    ) -> Result<Vec<String>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT order_id FROM holds WHERE customer = $1 AND order_id = ANY($2)",
            &[&customer, &order_ids],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// See [`super::Store::customers`].
    pub async fn customers(&self) -> Result<Vec<String>, LedgerError> {
        let c = self.client().await?;
        Ok(
            c.query("SELECT customer FROM budgets ORDER BY customer", &[])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        )
    }

    /// See [`super::Store::claim_alarms`]: rows another replica holds are
    /// skipped (`SKIP LOCKED`), and a claim is a lease, not a delivery.
    pub async fn claim_alarms(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxAlarm>, LedgerError> {
        let c = self.client().await?;
        Ok(c.query(
            "UPDATE alarm_outbox SET next_attempt_at = $1 + $2
             WHERE id IN (SELECT id FROM alarm_outbox
                          WHERE delivered_at IS NULL AND next_attempt_at <= $1
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id, customer, payload, attempts",
            &[&now, &lease_ms, &limit],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| OutboxAlarm {
            id: r.get(0),
            customer: r.get(1),
            payload: r.get(2),
            attempts: r.get(3),
        })
        .collect())
    }

    /// See [`super::Store::alarm_attempted`].
    pub async fn alarm_attempted(
        &self,
        id: i64,
        outcome: Result<(), String>,
        next_at: i64,
        give_up: bool,
        now: i64,
    ) -> Result<(), LedgerError> {
        let c = self.client().await?;
        match outcome {
            Ok(()) => c
                .execute(
                    "UPDATE alarm_outbox SET attempts = attempts + 1, delivered_at = $2, last_error = NULL WHERE id = $1",
                    &[&id, &now],
                )
                .await
                .map_err(pg)?,
            Err(e) => {
                let next = if give_up { i64::MAX } else { next_at };
                c.execute(
                    "UPDATE alarm_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1",
                    &[&id, &e, &next],
                )
                .await
                .map_err(pg)?
            }
        };
        Ok(())
    }

    /// See [`super::Store::recompute`].
    pub async fn recompute(&self, customer: String) -> Result<Recomputed, LedgerError> {
        let c = self.client().await?;
        let e = c
            .query_one(
                "SELECT COALESCE(SUM(limit_delta), 0)::BIGINT, COALESCE(SUM(consumed_delta), 0)::BIGINT,
                        COALESCE(SUM(held_delta), 0)::BIGINT,
                        COALESCE(SUM(CASE WHEN kind IN ('consume_increase', 'consume_decrease')
                                          THEN consumed_delta ELSE 0 END), 0)::BIGINT
                 FROM entries WHERE customer = $1",
                &[&customer],
            )
            .await
            .map_err(pg)?;
        let h = c
            .query_one(
                "SELECT COALESCE(SUM(CASE WHEN state IN ('held', 'unknown') THEN amount ELSE 0 END), 0)::BIGINT,
                        COALESCE(SUM(CASE WHEN state = 'committed' THEN amount ELSE 0 END), 0)::BIGINT
                 FROM holds WHERE customer = $1",
                &[&customer],
            )
            .await
            .map_err(pg)?;
        Ok(Recomputed {
            limit: Micros(e.get(0)),
            consumed: Micros(e.get(1)),
            held: Micros(e.get(2)),
            adjustments: Micros(e.get(3)),
            open_holds: Micros(h.get(0)),
            committed_holds: Micros(h.get(1)),
        })
    }
}

// ------------------------------------------------------------------- SQL

const BUDGET_COLS: &str = "customer, currency, credit_limit, consumed, held, status, thresholds, alarm_fired, created_at, updated_at";
const HOLD_COLS: &str = "id, customer, amount, currency, client_token, fingerprint, request_id, action, product, official, state, order_id, answer, reason, created_at, forward_deadline, expires_at, unknown_at, settled_at, provider, provider_ref";
const ENTRY_COLS: &str = "id, customer, at, kind, amount, limit_delta, consumed_delta, held_delta, limit_after, consumed_after, held_after, hold_id, order_id, out_biz_id, detail";

/// The hold: token lookup, atomic budget check, hold row and entry in one
/// statement. Returns one row: the existing hold's id (a retry), or the
/// budget after the hold, or neither (refused).
const RESERVE_SQL: &str = "
WITH existing AS (
    SELECT id FROM holds
    WHERE customer = $1 AND client_token = $5::TEXT AND state IN ('held', 'unknown', 'committed')
), b AS (
    UPDATE budgets SET held = held + $2, updated_at = $3
    WHERE customer = $1 AND status = 'normal' AND currency = $4
      AND credit_limit - consumed - held >= $2
      AND NOT EXISTS (SELECT 1 FROM existing)
    RETURNING customer, currency, credit_limit, consumed, held, status, thresholds, alarm_fired, created_at, updated_at
), h AS (
    INSERT INTO holds (id, customer, amount, currency, client_token, fingerprint, request_id, action,
                       product, official, state, created_at, forward_deadline, expires_at,
                       provider, provider_ref, replay_key)
    SELECT $6::TEXT, $1, $2, $4, $5::TEXT, $7::TEXT, $8::TEXT, $9::TEXT, $10::TEXT, $11::BIGINT, 'held', $3,
           $12::BIGINT, $13::BIGINT, $14::TEXT, $15::TEXT, $16::TEXT
    FROM b
    RETURNING id
), e AS (
    INSERT INTO entries (customer, at, kind, amount, held_delta, limit_after, consumed_after, held_after,
                         hold_id, detail)
    SELECT customer, $3, 'hold', $2, $2, credit_limit, consumed, held, $6::TEXT, $9::TEXT FROM b
)
SELECT (SELECT id FROM existing LIMIT 1) AS existing_id,
       b.customer, b.currency, b.credit_limit, b.consumed, b.held, b.status, b.thresholds, b.alarm_fired,
       b.created_at, b.updated_at
FROM (SELECT 1) AS one LEFT JOIN b ON TRUE";

/// Commit: the hold, the budget (held → consumed) and the entry.
const COMMIT_SQL: &str = "
WITH h AS (
    UPDATE holds SET state = 'committed', order_id = $2::TEXT, answer = $3::TEXT, settled_at = $4
    WHERE id = $1 AND state IN ('held', 'unknown')
    RETURNING customer, amount
), b AS (
    UPDATE budgets SET held = budgets.held - h.amount, consumed = budgets.consumed + h.amount,
                       updated_at = $4
    FROM h WHERE budgets.customer = h.customer
    RETURNING budgets.customer, budgets.credit_limit, budgets.consumed, budgets.held, h.amount
), e AS (
    INSERT INTO entries (customer, at, kind, amount, consumed_delta, held_delta, limit_after,
                         consumed_after, held_after, hold_id, order_id)
    SELECT customer, $4, 'commit', amount, amount, -amount, credit_limit, consumed, held, $1, $2::TEXT
    FROM b
)
SELECT customer FROM b";

/// Release or expire: the hold, the budget (held back) and the entry;
/// returns the budget after it (for alarm re-arming).
const RELEASE_SQL: &str = "
WITH h AS (
    UPDATE holds SET state = $2::TEXT, reason = $3::TEXT, settled_at = $4
    WHERE id = $1 AND state IN ('held', 'unknown')
    RETURNING customer, amount
), b AS (
    UPDATE budgets SET held = budgets.held - h.amount, updated_at = $4
    FROM h WHERE budgets.customer = h.customer
    RETURNING budgets.customer, budgets.currency, budgets.credit_limit, budgets.consumed, budgets.held,
              budgets.status, budgets.thresholds, budgets.alarm_fired, budgets.created_at,
              budgets.updated_at, h.amount
), e AS (
    INSERT INTO entries (customer, at, kind, amount, held_delta, limit_after, consumed_after, held_after,
                         hold_id, detail)
    SELECT customer, $4, $5::TEXT, amount, -amount, credit_limit, consumed, held, $1, $3::TEXT FROM b
)
SELECT customer, currency, credit_limit, consumed, held, status, thresholds, alarm_fired, created_at,
       updated_at FROM b";

/// Mark unknown: the hold and a zero-delta entry.
const UNKNOWN_SQL: &str = "
WITH h AS (
    UPDATE holds SET state = 'unknown', reason = $2::TEXT, unknown_at = $3
    WHERE id = $1 AND state = 'held'
    RETURNING customer
), e AS (
    INSERT INTO entries (customer, at, kind, limit_after, consumed_after, held_after, hold_id, detail)
    SELECT bu.customer, $3, 'unknown', bu.credit_limit, bu.consumed, bu.held, $1, $2::TEXT
    FROM budgets bu JOIN h ON bu.customer = h.customer
)
SELECT customer FROM h";

// ------------------------------------------------------------------- rows

fn budget_row(r: &Row) -> Budget {
    budget_row_at(r, 0)
}

fn budget_row_at(r: &Row, at: usize) -> Budget {
    let status: String = r.get(at + 5);
    let thresholds: String = r.get(at + 6);
    Budget {
        customer: r.get(at),
        currency: r.get(at + 1),
        limit: Micros(r.get(at + 2)),
        consumed: Micros(r.get(at + 3)),
        held: Micros(r.get(at + 4)),
        status: Status::parse(&status).unwrap_or(Status::Frozen),
        thresholds: serde_json::from_str(&thresholds).unwrap_or_default(),
        alarm_fired: r.get(at + 7),
        created_at: r.get(at + 8),
        updated_at: r.get(at + 9),
    }
}

fn hold_row(r: &Row) -> Hold {
    let state: String = r.get(10);
    Hold {
        id: r.get(0),
        customer: r.get(1),
        amount: Micros(r.get(2)),
        currency: r.get(3),
        client_token: r.get(4),
        fingerprint: r.get(5),
        request_id: r.get(6),
        action: r.get(7),
        product: r.get(8),
        official: r.get::<_, Option<i64>>(9).map(Micros),
        state: HoldState::parse(&state).unwrap_or(HoldState::Unknown),
        order_id: r.get(11),
        answer: r.get(12),
        reason: r.get(13),
        created_at: r.get(14),
        forward_deadline: r.get(15),
        expires_at: r.get(16),
        unknown_at: r.get(17),
        settled_at: r.get(18),
        provider: Provider::parse(r.get::<_, &str>(19)).unwrap_or_default(),
        provider_ref: r.get(20),
    }
}

fn entry_row(r: &Row) -> Entry {
    Entry {
        id: r.get(0),
        customer: r.get(1),
        at: r.get(2),
        kind: r.get(3),
        amount: Micros(r.get(4)),
        limit_delta: Micros(r.get(5)),
        consumed_delta: Micros(r.get(6)),
        held_delta: Micros(r.get(7)),
        limit_after: Micros(r.get(8)),
        consumed_after: Micros(r.get(9)),
        held_after: Micros(r.get(10)),
        hold_id: r.get(11),
        order_id: r.get(12),
        out_biz_id: r.get(13),
        detail: r.get(14),
    }
}

async fn lock_budget<C: GenericClient>(c: &C, customer: &str) -> Result<Budget, LedgerError> {
    c.query_opt(
        &format!("SELECT {BUDGET_COLS} FROM budgets WHERE customer = $1 FOR UPDATE"),
        &[&customer],
    )
    .await
    .map_err(pg)?
    .as_ref()
    .map(budget_row)
    .ok_or_else(|| LedgerError::NoBudget(customer.to_owned()))
}

struct Draft<'a> {
    kind: &'a str,
    amount: i64,
    d_limit: i64,
    d_consumed: i64,
    d_held: i64,
    out_biz_id: Option<&'a str>,
    detail: &'a str,
}

impl Draft<'_> {
    fn note(kind: &str) -> Draft<'_> {
        Draft {
            kind,
            amount: 0,
            d_limit: 0,
            d_consumed: 0,
            d_held: 0,
            out_biz_id: None,
            detail: "",
        }
    }
}

async fn append<C: GenericClient>(
    c: &C,
    after: &Budget,
    d: &Draft<'_>,
    now: i64,
) -> Result<i64, LedgerError> {
    let row = c
        .query_one(
            "INSERT INTO entries (customer, at, kind, amount, limit_delta, consumed_delta, held_delta,
                                  limit_after, consumed_after, held_after, out_biz_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &[
                &after.customer,
                &now,
                &d.kind,
                &d.amount,
                &d.d_limit,
                &d.d_consumed,
                &d.d_held,
                &after.limit.0,
                &after.consumed.0,
                &after.held.0,
                &d.out_biz_id,
                &d.detail,
            ],
        )
        .await
        .map_err(|e| {
            if unique_on(&e, "entries_out_biz") {
                // Recognized by `admin_tx`, which retries (then replays).
                LedgerError::Db("duplicate OutBizId (entries_out_biz)".into())
            } else {
                pg(e)
            }
        })?;
    Ok(row.get(0))
}

async fn replayed<C: GenericClient>(
    c: &C,
    customer: &str,
    out_biz_id: Option<&str>,
    kind: &str,
    amount: i64,
) -> Result<Option<Budget>, LedgerError> {
    let Some(id) = out_biz_id else {
        return Ok(None);
    };
    let prior = c
        .query_opt(
            "SELECT kind, amount FROM entries WHERE customer = $1 AND out_biz_id = $2",
            &[&customer, &id],
        )
        .await
        .map_err(pg)?;
    match prior {
        None => Ok(None),
        Some(r) if r.get::<_, String>(0) == kind && r.get::<_, i64>(1) == amount => {
            lock_budget(c, customer).await.map(Some)
        }
        Some(_) => Err(LedgerError::OutBizConflict(id.to_owned())),
    }
}

async fn apply_alarms<C: GenericClient>(c: &C, b: &Budget, now: i64) -> Result<(), LedgerError> {
    let Some(change) = alarms::evaluate(b) else {
        return Ok(());
    };
    c.execute(
        "UPDATE budgets SET alarm_fired = $2 WHERE customer = $1",
        &[&b.customer, &change.mask],
    )
    .await
    .map_err(pg)?;
    for (i, t, level) in &change.fired {
        let detail = format!("threshold {i} ({}) level {level}", t.kind());
        let entry = append(
            c,
            b,
            &Draft {
                amount: level.0,
                detail: &detail,
                ..Draft::note("alarm")
            },
            now,
        )
        .await?;
        c.execute(
            "INSERT INTO alarm_outbox (entry_id, customer, payload, next_attempt_at) VALUES ($1, $2, $3, $4)",
            &[&entry, &b.customer, &alarms::payload(b, *t, *level, entry, now), &now],
        )
        .await
        .map_err(pg)?;
    }
    for (i, t, level) in &change.rearmed {
        let detail = format!("threshold {i} ({}) level {level}", t.kind());
        append(
            c,
            b,
            &Draft {
                amount: level.0,
                detail: &detail,
                ..Draft::note("alarm_rearm")
            },
            now,
        )
        .await?;
    }
    Ok(())
}
