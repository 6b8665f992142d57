//! The embedded backend: one SQLite file, one node.
//!
//! * Durable commit: WAL journal with `synchronous=FULL`, so an
//!   acknowledged operation survives `kill -9` and power loss.
//! * Throughput by group commit: a single writer thread owns the only
//!   connection. It takes every operation queued while the previous batch
//!   was being flushed, runs each inside its own SAVEPOINT (so each is
//!   atomic and individually checked — a refused hold rolls back alone),
//!   commits the batch with one fsync, and only then answers each caller.
//!   No artificial delay: under light load a batch is one operation.
//! * `locking_mode=EXCLUSIVE`: a second process opening the same file fails
//!   at once instead of silently sharing a single-node ledger. (For several
//!   replicas, use PostgreSQL.) The lock dies with the process, so a
//!   restart after `kill -9` opens the file normally.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension as _, Row, params};
use tokio::sync::oneshot;

use super::alarms;
use super::money::Micros;
use super::schema;
use super::types::{
    AdjustType, Budget, Committed, Entry, Hold, HoldState, LedgerError, NewHold, OutboxAlarm,
    Provider, Recomputed, Reserved, Status, Threshold,
};

/// Most operations committed in one transaction. 1024: large enough that
/// batching, not the cap, sets the pace at thousands of operations per
/// second; small enough that one batch's latency stays in milliseconds.
pub const MAX_BATCH: usize = 1024;

/// One queued operation: given the connection (or `None` when the batch
/// could not even begin), it runs and returns what to do once the batch's
/// fate (`true`: committed) is known.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Box<dyn FnOnce(bool) + Send> + Send>;

/// Handle to the writer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
}

fn db(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Db(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies the
    /// migrations and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LedgerError::Db(format!("creating {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)
            .map_err(|e| LedgerError::Db(format!("opening {}: {e}", path.display())))?;
        conn.execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 1000;",
        )
        .map_err(|e| LedgerError::Db(format!("configuring {}: {e}", path.display())))?;
        migrate(&mut conn)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ledger-sqlite".into())
            .spawn(move || writer(conn, rx))
            .map_err(db)?;
        Ok(Self {
            tx,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the writer thread inside the next batch; the answer comes
    /// after the batch is durably committed.
    async fn run<R, F>(&self, f: F) -> Result<R, LedgerError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, LedgerError> + Send + 'static,
    {
        let (done, wait) = oneshot::channel::<Result<R, LedgerError>>();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(LedgerError::Db("the batch could not begin".into())),
            };
            Box::new(move |committed: bool| {
                let result = match result {
                    Ok(_) if !committed => {
                        Err(LedgerError::Db("the batch could not be committed".into()))
                    }
                    other => other,
                };
                let _ = done.send(result);
            })
        });
        self.tx
            .send(job)
            .map_err(|_| LedgerError::Db("the ledger writer has stopped".into()))?;
        wait.await
            .map_err(|_| LedgerError::Db("the ledger writer dropped an operation".into()))?
    }

    /// Schema version applied.
    pub async fn schema_version(&self) -> Result<i64, LedgerError> {
        self.run(current_version).await
    }

    /// See [`super::Store::create_budget`].
    pub async fn create_budget(
        &self,
        customer: String,
        currency: String,
        limit: Micros,
        out_biz_id: Option<String>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        self.run(move |c| create_budget(c, &customer, &currency, limit, out_biz_id, now))
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
        self.run(move |c| set_limit(c, &customer, limit, currency.as_deref(), out_biz_id, now))
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
        self.run(move |c| {
            adjust_consumed(c, &customer, adjust, amount, &currency, &out_biz_id, now)
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
        self.run(move |c| set_status(c, &customer, status, now))
            .await
    }

    /// See [`super::Store::set_thresholds`].
    pub async fn set_thresholds(
        &self,
        customer: String,
        thresholds: Vec<Threshold>,
        now: i64,
    ) -> Result<Budget, LedgerError> {
        self.run(move |c| set_thresholds(c, &customer, &thresholds, now))
            .await
    }

    /// See [`super::Store::budget`].
    pub async fn budget(&self, customer: String) -> Result<Option<Budget>, LedgerError> {
        self.run(move |c| get_budget(c, &customer)).await
    }

    /// See [`super::Store::reserve`].
    pub async fn reserve(&self, hold: NewHold) -> Result<Reserved, LedgerError> {
        self.run(move |c| reserve(c, &hold)).await
    }

    /// See [`super::Store::commit`].
    pub async fn commit(
        &self,
        id: String,
        order_id: Option<String>,
        answer: Option<String>,
        now: i64,
    ) -> Result<Committed, LedgerError> {
        self.run(move |c| commit(c, &id, order_id.as_deref(), answer.as_deref(), now))
            .await
    }

    /// See [`super::Store::release`].
    pub async fn release(
        &self,
        id: String,
        reason: String,
        expired: bool,
        now: i64,
    ) -> Result<(), LedgerError> {
        self.run(move |c| release(c, &id, &reason, expired, now))
            .await
    }

    /// See [`super::Store::mark_unknown`].
    pub async fn mark_unknown(
        &self,
        id: String,
        reason: String,
        now: i64,
    ) -> Result<(), LedgerError> {
        self.run(move |c| mark_unknown(c, &id, &reason, now)).await
    }

    /// See [`super::Store::hold`].
    pub async fn hold(&self, id: String) -> Result<Option<Hold>, LedgerError> {
        self.run(move |c| get_hold(c, &id)).await
    }

    /// See [`super::Store::hold_by_token`].
    pub async fn hold_by_token(
        &self,
        customer: String,
        token: String,
    ) -> Result<Option<Hold>, LedgerError> {
        self.run(move |c| hold_by_token(c, &customer, &token)).await
    }

    /// See [`super::Store::holds`].
    pub async fn holds(
        &self,
        customer: String,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<Hold>, LedgerError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {HOLD_COLS} FROM holds WHERE customer = ?1 {} ORDER BY created_at DESC, id LIMIT ?2",
                if open_only {
                    "AND state IN ('held', 'unknown')"
                } else {
                    ""
                }
            );
            collect(c, &sql, params![customer, limit], hold_row)
        })
        .await
    }

    /// See [`super::Store::entries`].
    pub async fn entries(
        &self,
        customer: String,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Entry>, LedgerError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {ENTRY_COLS} FROM entries WHERE customer = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            );
            collect(c, &sql, params![customer, after, limit], entry_row)
        })
        .await
    }

    /// See [`super::Store::due_holds`].
    pub async fn due_holds(
        &self,
        now: i64,
        grace_ms: i64,
        limit: i64,
    ) -> Result<Vec<Hold>, LedgerError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {HOLD_COLS} FROM holds
                 WHERE (state = 'unknown' AND unknown_at + ?2 <= ?1)
                    OR (state = 'held' AND forward_deadline + ?2 <= ?1)
                 ORDER BY created_at LIMIT ?3"
            );
            collect(c, &sql, params![now, grace_ms, limit], hold_row)
        })
        .await
    }

    /// See [`super::Store::expired_holds`].
    pub async fn expired_holds(&self, now: i64, limit: i64) -> Result<Vec<Hold>, LedgerError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {HOLD_COLS} FROM holds
                 WHERE state IN ('held', 'unknown') AND expires_at <= ?1
                 ORDER BY expires_at LIMIT ?2"
            );
            collect(c, &sql, params![now, limit], hold_row)
        })
        .await
    }

    /// See [`super::Store::claimed_orders`].
    pub async fn claimed_orders(
        &self,
        customer: String,
        order_ids: Vec<String>,
    ) -> Result<Vec<String>, LedgerError> {
        self.run(move |c| {
            let mut out = Vec::new();
            let mut stmt = c
                .prepare_cached("SELECT 1 FROM holds WHERE customer = ?1 AND order_id = ?2")
                .map_err(db)?;
            for id in order_ids {
                if stmt.exists(params![customer, id]).map_err(db)? {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
    }

    /// See [`super::Store::customers`].
    pub async fn customers(&self) -> Result<Vec<String>, LedgerError> {
        self.run(|c| {
            collect(
                c,
                "SELECT customer FROM budgets ORDER BY customer",
                [],
                |r| r.get(0),
            )
        })
        .await
    }

    /// See [`super::Store::claim_alarms`].
    pub async fn claim_alarms(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxAlarm>, LedgerError> {
        self.run(move |c| {
            let rows = collect(
                c,
                "UPDATE alarm_outbox SET next_attempt_at = ?1 + ?2
                 WHERE id IN (SELECT id FROM alarm_outbox
                              WHERE delivered_at IS NULL AND next_attempt_at <= ?1
                              ORDER BY id LIMIT ?3)
                 RETURNING id, customer, payload, attempts",
                params![now, lease_ms, limit],
                |r| {
                    Ok(OutboxAlarm {
                        id: r.get(0)?,
                        customer: r.get(1)?,
                        payload: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                },
            )?;
            Ok(rows)
        })
        .await
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
        self.run(move |c| {
            match outcome {
                Ok(()) => c.execute(
                    "UPDATE alarm_outbox SET attempts = attempts + 1, delivered_at = ?2, last_error = NULL WHERE id = ?1",
                    params![id, now],
                ),
                Err(e) => c.execute(
                    "UPDATE alarm_outbox SET attempts = attempts + 1, last_error = ?2,
                         next_attempt_at = CASE WHEN ?4 THEN 9223372036854775807 ELSE ?3 END
                     WHERE id = ?1",
                    params![id, e, next_at, give_up],
                ),
            }
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    /// See [`super::Store::recompute`].
    pub async fn recompute(&self, customer: String) -> Result<Recomputed, LedgerError> {
        self.run(move |c| {
            let (limit, consumed, held, adjustments): (i64, i64, i64, i64) = c
                .query_row(
                    "SELECT COALESCE(SUM(limit_delta), 0), COALESCE(SUM(consumed_delta), 0),
                            COALESCE(SUM(held_delta), 0),
                            COALESCE(SUM(CASE WHEN kind IN ('consume_increase', 'consume_decrease')
                                              THEN consumed_delta ELSE 0 END), 0)
                     FROM entries WHERE customer = ?1",
                    params![customer],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(db)?;
            let (open, committed): (i64, i64) = c
                .query_row(
                    "SELECT COALESCE(SUM(CASE WHEN state IN ('held', 'unknown') THEN amount ELSE 0 END), 0),
                            COALESCE(SUM(CASE WHEN state = 'committed' THEN amount ELSE 0 END), 0)
                     FROM holds WHERE customer = ?1",
                    params![customer],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db)?;
            Ok(Recomputed {
                limit: Micros(limit),
                consumed: Micros(consumed),
                held: Micros(held),
                open_holds: Micros(open),
                committed_holds: Micros(committed),
                adjustments: Micros(adjustments),
            })
        })
        .await
    }
}

// ------------------------------------------------------------------ writer

fn writer(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let mut finishers = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            finishers.push(job(began.then_some(&conn)));
        }
        let committed = began && conn.execute_batch("COMMIT").is_ok();
        if !committed {
            tracing::error!("ledger: a SQLite batch failed to commit; its operations are refused");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishers {
            finish(committed);
        }
    }
}

fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, LedgerError>,
) -> Result<R, LedgerError> {
    conn.execute_batch("SAVEPOINT op").map_err(db)?;
    let result = f(conn);
    let end = if result.is_ok() {
        conn.execute_batch("RELEASE op")
    } else {
        conn.execute_batch("ROLLBACK TO op; RELEASE op")
    };
    match (result, end) {
        (Ok(_), Err(e)) => Err(db(e)),
        (r, _) => r,
    }
}

// -------------------------------------------------------------- migrations

fn current_version(c: &Connection) -> Result<i64, LedgerError> {
    c.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
    .map_err(db)
}

/// Applies the missing migrations (each in its own transaction).
pub fn migrate(conn: &mut Connection) -> Result<i64, LedgerError> {
    conn.execute_batch(schema::VERSION_TABLE).map_err(db)?;
    let mut current = current_version(conn)?;
    schema::check_not_newer(current).map_err(LedgerError::Db)?;
    let applied = current;
    for m in schema::SQLITE.iter().filter(|m| m.version > applied) {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(m.sql)
            .map_err(|e| LedgerError::Db(format!("migration {} ({}): {e}", m.version, m.name)))?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, super::now_ms()],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(version = m.version, name = m.name, "ledger schema migrated");
        current = m.version;
    }
    Ok(current)
}

// ------------------------------------------------------------------- rows

const BUDGET_COLS: &str = "customer, currency, credit_limit, consumed, held, status, thresholds, alarm_fired, created_at, updated_at";
const HOLD_COLS: &str = "id, customer, amount, currency, client_token, fingerprint, request_id, action, product, official, state, order_id, answer, reason, created_at, forward_deadline, expires_at, unknown_at, settled_at, provider, provider_ref";
const ENTRY_COLS: &str = "id, customer, at, kind, amount, limit_delta, consumed_delta, held_delta, limit_after, consumed_after, held_after, hold_id, order_id, out_biz_id, detail";

fn budget_row(r: &Row<'_>) -> rusqlite::Result<Budget> {
    let status: String = r.get(5)?;
    let thresholds: String = r.get(6)?;
    Ok(Budget {
        customer: r.get(0)?,
        currency: r.get(1)?,
        limit: Micros(r.get(2)?),
        consumed: Micros(r.get(3)?),
        held: Micros(r.get(4)?),
        status: Status::parse(&status).unwrap_or(Status::Frozen),
        thresholds: serde_json::from_str(&thresholds).unwrap_or_default(),
        alarm_fired: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn hold_row(r: &Row<'_>) -> rusqlite::Result<Hold> {
    let state: String = r.get(10)?;
    Ok(Hold {
        id: r.get(0)?,
        customer: r.get(1)?,
        amount: Micros(r.get(2)?),
        currency: r.get(3)?,
        client_token: r.get(4)?,
        fingerprint: r.get(5)?,
        request_id: r.get(6)?,
        action: r.get(7)?,
        product: r.get(8)?,
        official: r.get::<_, Option<i64>>(9)?.map(Micros),
        state: HoldState::parse(&state).unwrap_or(HoldState::Unknown),
        order_id: r.get(11)?,
        answer: r.get(12)?,
        reason: r.get(13)?,
        created_at: r.get(14)?,
        forward_deadline: r.get(15)?,
        expires_at: r.get(16)?,
        unknown_at: r.get(17)?,
        settled_at: r.get(18)?,
        provider: Provider::parse(&r.get::<_, String>(19)?).unwrap_or_default(),
        provider_ref: r.get(20)?,
    })
}

fn entry_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        customer: r.get(1)?,
        at: r.get(2)?,
        kind: r.get(3)?,
        amount: Micros(r.get(4)?),
        limit_delta: Micros(r.get(5)?),
        consumed_delta: Micros(r.get(6)?),
        held_delta: Micros(r.get(7)?),
        limit_after: Micros(r.get(8)?),
        consumed_after: Micros(r.get(9)?),
        held_after: Micros(r.get(10)?),
        hold_id: r.get(11)?,
        order_id: r.get(12)?,
        out_biz_id: r.get(13)?,
        detail: r.get(14)?,
    })
}

fn collect<T, P: rusqlite::Params>(
    c: &Connection,
    sql: &str,
    p: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, LedgerError> {
    let mut stmt = c.prepare_cached(sql).map_err(db)?;
    let rows = stmt.query_map(p, f).map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(db)
}

fn get_budget(c: &Connection, customer: &str) -> Result<Option<Budget>, LedgerError> {
    c.prepare_cached(&format!(
        "SELECT {BUDGET_COLS} FROM budgets WHERE customer = ?1"
    ))
    .map_err(db)?
    .query_row(params![customer], budget_row)
    .optional()
    .map_err(db)
}

fn need_budget(c: &Connection, customer: &str) -> Result<Budget, LedgerError> {
    get_budget(c, customer)?.ok_or_else(|| LedgerError::NoBudget(customer.to_owned()))
}

fn get_hold(c: &Connection, id: &str) -> Result<Option<Hold>, LedgerError> {
    c.prepare_cached(&format!("SELECT {HOLD_COLS} FROM holds WHERE id = ?1"))
        .map_err(db)?
        .query_row(params![id], hold_row)
        .optional()
        .map_err(db)
}

fn hold_by_token(c: &Connection, customer: &str, token: &str) -> Result<Option<Hold>, LedgerError> {
    c.prepare_cached(&format!(
        "SELECT {HOLD_COLS} FROM holds WHERE customer = ?1 AND client_token = ?2
         AND state IN ('held', 'unknown', 'committed')"
    ))
    .map_err(db)?
    .query_row(params![customer, token], hold_row)
    .optional()
    .map_err(db)
}

/// An entry to append; the balances after it come from `after`.
struct Draft<'a> {
    kind: &'a str,
    amount: i64,
    d_limit: i64,
    d_consumed: i64,
    d_held: i64,
    hold_id: Option<&'a str>,
    order_id: Option<&'a str>,
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
            hold_id: None,
            order_id: None,
            out_biz_id: None,
            detail: "",
        }
    }
}

fn append(c: &Connection, after: &Budget, d: &Draft<'_>, now: i64) -> Result<i64, LedgerError> {
    c.prepare_cached(
        "INSERT INTO entries (customer, at, kind, amount, limit_delta, consumed_delta, held_delta,
                              limit_after, consumed_after, held_after, hold_id, order_id, out_biz_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .map_err(db)?
    .execute(params![
        after.customer,
        now,
        d.kind,
        d.amount,
        d.d_limit,
        d.d_consumed,
        d.d_held,
        after.limit.0,
        after.consumed.0,
        after.held.0,
        d.hold_id,
        d.order_id,
        d.out_biz_id,
        d.detail,
    ])
    .map_err(|e| {
        if is_unique(&e, "out_biz_id") {
            LedgerError::OutBizConflict(d.out_biz_id.unwrap_or_default().to_owned())
        } else {
            db(e)
        }
    })?;
    Ok(c.last_insert_rowid())
}

fn is_unique(e: &rusqlite::Error, column: &str) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg)) => {
            f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column)
        }
        _ => false,
    }
}

/// Records alarm crossings of `b` (already updated) in the same transaction.
fn apply_alarms(c: &Connection, b: &Budget, now: i64) -> Result<(), LedgerError> {
    let Some(change) = alarms::evaluate(b) else {
        return Ok(());
    };
    c.execute(
        "UPDATE budgets SET alarm_fired = ?2 WHERE customer = ?1",
        params![b.customer, change.mask],
    )
    .map_err(db)?;
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
        )?;
        c.execute(
            "INSERT INTO alarm_outbox (entry_id, customer, payload, next_attempt_at) VALUES (?1, ?2, ?3, ?4)",
            params![entry, b.customer, alarms::payload(b, *t, *level, entry, now), now],
        )
        .map_err(db)?;
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
        )?;
    }
    Ok(())
}

/// An earlier adjustment with this OutBizId: the same change → its budget
/// now (idempotent replay); a different one → conflict.
fn replayed(
    c: &Connection,
    customer: &str,
    out_biz_id: Option<&str>,
    kind: &str,
    amount: i64,
) -> Result<Option<Budget>, LedgerError> {
    let Some(id) = out_biz_id else {
        return Ok(None);
    };
    let prior: Option<(String, i64)> = c
        .prepare_cached("SELECT kind, amount FROM entries WHERE customer = ?1 AND out_biz_id = ?2")
        .map_err(db)?
        .query_row(params![customer, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?;
    match prior {
        None => Ok(None),
        Some((k, a)) if k == kind && a == amount => need_budget(c, customer).map(Some),
        Some(_) => Err(LedgerError::OutBizConflict(id.to_owned())),
    }
}

// --------------------------------------------------------------- budget ops

fn create_budget(
    c: &Connection,
    customer: &str,
    currency: &str,
    limit: Micros,
    out_biz_id: Option<String>,
    now: i64,
) -> Result<Budget, LedgerError> {
    if let Some(b) = replayed(c, customer, out_biz_id.as_deref(), "quota_create", limit.0)? {
        return Ok(b);
    }
    if get_budget(c, customer)?.is_some() {
        return Err(LedgerError::Exists(customer.to_owned()));
    }
    c.execute(
        "INSERT INTO budgets (customer, currency, credit_limit, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![customer, currency, limit.0, now],
    )
    .map_err(db)?;
    let b = need_budget(c, customer)?;
    append(
        c,
        &b,
        &Draft {
            amount: limit.0,
            d_limit: limit.0,
            out_biz_id: out_biz_id.as_deref(),
            detail: currency,
            ..Draft::note("quota_create")
        },
        now,
    )?;
    Ok(b)
}

fn set_limit(
    c: &Connection,
    customer: &str,
    limit: Micros,
    currency: Option<&str>,
    out_biz_id: Option<String>,
    now: i64,
) -> Result<Budget, LedgerError> {
    if let Some(b) = replayed(c, customer, out_biz_id.as_deref(), "quota_set", limit.0)? {
        return Ok(b);
    }
    let before = need_budget(c, customer)?;
    if let Some(cur) = currency
        && cur != before.currency
    {
        return Err(LedgerError::Currency {
            budget: before.currency,
            amount: cur.to_owned(),
        });
    }
    let b = c
        .prepare_cached(&format!(
            "UPDATE budgets SET credit_limit = ?2, updated_at = ?3 WHERE customer = ?1 RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(params![customer, limit.0, now], budget_row)
        .map_err(db)?;
    append(
        c,
        &b,
        &Draft {
            amount: limit.0,
            d_limit: limit.0 - before.limit.0,
            out_biz_id: out_biz_id.as_deref(),
            ..Draft::note("quota_set")
        },
        now,
    )?;
    apply_alarms(c, &b, now)?;
    Ok(b)
}

fn adjust_consumed(
    c: &Connection,
    customer: &str,
    adjust: AdjustType,
    amount: Micros,
    currency: &str,
    out_biz_id: &str,
    now: i64,
) -> Result<Budget, LedgerError> {
    let kind = adjust.entry_kind();
    if let Some(b) = replayed(c, customer, Some(out_biz_id), kind, amount.0)? {
        return Ok(b);
    }
    let before = need_budget(c, customer)?;
    if before.currency != currency {
        return Err(LedgerError::Currency {
            budget: before.currency,
            amount: currency.to_owned(),
        });
    }
    let delta = match adjust {
        AdjustType::Increase => amount.0,
        AdjustType::Decrease => -amount.0,
    };
    let b = c
        .prepare_cached(&format!(
            "UPDATE budgets SET consumed = consumed + ?2, updated_at = ?3 WHERE customer = ?1 RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(params![customer, delta, now], budget_row)
        .map_err(db)?;
    append(
        c,
        &b,
        &Draft {
            amount: amount.0,
            d_consumed: delta,
            out_biz_id: Some(out_biz_id),
            ..Draft::note(kind)
        },
        now,
    )?;
    apply_alarms(c, &b, now)?;
    Ok(b)
}

fn set_status(
    c: &Connection,
    customer: &str,
    status: Status,
    now: i64,
) -> Result<Budget, LedgerError> {
    let before = need_budget(c, customer)?;
    if status == Status::Normal && before.status != Status::Normal && before.available().0 < 0 {
        return Err(LedgerError::QuotaNegative(customer.to_owned()));
    }
    let b = c
        .prepare_cached(&format!(
            "UPDATE budgets SET status = ?2, updated_at = ?3 WHERE customer = ?1 RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(params![customer, status.as_str(), now], budget_row)
        .map_err(db)?;
    let detail = format!("{} -> {}", before.status.as_str(), status.as_str());
    append(
        c,
        &b,
        &Draft {
            detail: &detail,
            ..Draft::note("status")
        },
        now,
    )?;
    Ok(b)
}

fn set_thresholds(
    c: &Connection,
    customer: &str,
    thresholds: &[Threshold],
    now: i64,
) -> Result<Budget, LedgerError> {
    need_budget(c, customer)?;
    let json = serde_json::to_string(thresholds).map_err(db)?;
    // New thresholds start armed; one already below fires at once.
    let b = c
        .prepare_cached(&format!(
            "UPDATE budgets SET thresholds = ?2, alarm_fired = 0, updated_at = ?3 WHERE customer = ?1 RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(params![customer, json, now], budget_row)
        .map_err(db)?;
    append(
        c,
        &b,
        &Draft {
            detail: &json,
            ..Draft::note("thresholds")
        },
        now,
    )?;
    apply_alarms(c, &b, now)?;
    Ok(b)
}

// ----------------------------------------------------------------- hold ops

/// Why the atomic hold statement matched no row (for the refusal message;
/// the decision itself was the statement's).
fn diagnose(c: &Connection, h: &NewHold) -> LedgerError {
    match get_budget(c, &h.customer) {
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

fn reserve(c: &Connection, h: &NewHold) -> Result<Reserved, LedgerError> {
    if let Some(token) = &h.client_token
        && let Some(existing) = hold_by_token(c, &h.customer, token)?
    {
        return Ok(Reserved::Existing(Box::new(existing)));
    }
    // The whole budget check is this one statement.
    let updated = c
        .prepare_cached(&format!(
            "UPDATE budgets SET held = held + ?2, updated_at = ?3
             WHERE customer = ?1 AND status = 'normal' AND currency = ?4
               AND credit_limit - consumed - held >= ?2
             RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(
            params![h.customer, h.amount.0, h.now, h.currency],
            budget_row,
        )
        .optional()
        .map_err(db)?;
    let Some(b) = updated else {
        return Err(diagnose(c, h));
    };
    c.prepare_cached(
        "INSERT INTO holds (id, customer, amount, currency, client_token, fingerprint, request_id, action,
                            product, official, state, created_at, forward_deadline, expires_at,
                            provider, provider_ref, replay_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'held', ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .map_err(db)?
    .execute(params![
        h.id,
        h.customer,
        h.amount.0,
        h.currency,
        h.client_token,
        h.fingerprint,
        h.request_id,
        h.action,
        h.product,
        h.official.map(|m| m.0),
        h.now,
        h.forward_deadline,
        h.expires_at,
        h.provider.as_str(),
        h.provider_ref,
        h.replay_key,
    ])
    .map_err(|e| match &e {
        // The same signed call made a hold before (the savepoint rolls
        // the budget update back with this error).
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && msg.contains("holds.replay_key") =>
        {
            LedgerError::Replayed
        }
        _ => db(e),
    })?;
    append(
        c,
        &b,
        &Draft {
            amount: h.amount.0,
            d_held: h.amount.0,
            hold_id: Some(&h.id),
            detail: &h.action,
            ..Draft::note("hold")
        },
        h.now,
    )?;
    apply_alarms(c, &b, h.now)?;
    Ok(Reserved::New(b))
}

fn not_open(c: &Connection, id: &str) -> LedgerError {
    match get_hold(c, id) {
        Err(e) => e,
        Ok(None) => LedgerError::NoHold(id.to_owned()),
        Ok(Some(h)) => LedgerError::NotOpen {
            id: id.to_owned(),
            state: h.state,
        },
    }
}

fn commit(
    c: &Connection,
    id: &str,
    order_id: Option<&str>,
    answer: Option<&str>,
    now: i64,
) -> Result<Committed, LedgerError> {
    let taken: Option<(String, i64)> = c
        .prepare_cached(
            "UPDATE holds SET state = 'committed', order_id = ?2, answer = ?3, settled_at = ?4
             WHERE id = ?1 AND state IN ('held', 'unknown')
             RETURNING customer, amount",
        )
        .map_err(db)?
        .query_row(params![id, order_id, answer, now], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(|e| {
            if is_unique(&e, "order_id") {
                LedgerError::OrderClaimed(order_id.unwrap_or_default().to_owned())
            } else {
                db(e)
            }
        })?;
    let Some((customer, amount)) = taken else {
        return match get_hold(c, id)? {
            Some(h) if h.state == HoldState::Committed && h.order_id.as_deref() == order_id => {
                Ok(Committed::Already)
            }
            _ => Err(not_open(c, id)),
        };
    };
    let b = c
        .prepare_cached(&format!(
            "UPDATE budgets SET held = held - ?2, consumed = consumed + ?2, updated_at = ?3
             WHERE customer = ?1 RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(params![customer, amount, now], budget_row)
        .map_err(db)?;
    append(
        c,
        &b,
        &Draft {
            amount,
            d_consumed: amount,
            d_held: -amount,
            hold_id: Some(id),
            order_id,
            ..Draft::note("commit")
        },
        now,
    )?;
    Ok(Committed::Now)
}

fn release(
    c: &Connection,
    id: &str,
    reason: &str,
    expired: bool,
    now: i64,
) -> Result<(), LedgerError> {
    let state = if expired { "expired" } else { "released" };
    let taken: Option<(String, i64)> = c
        .prepare_cached(
            "UPDATE holds SET state = ?2, reason = ?3, settled_at = ?4
             WHERE id = ?1 AND state IN ('held', 'unknown')
             RETURNING customer, amount",
        )
        .map_err(db)?
        .query_row(params![id, state, reason, now], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db)?;
    let Some((customer, amount)) = taken else {
        return Err(not_open(c, id));
    };
    let b = c
        .prepare_cached(&format!(
            "UPDATE budgets SET held = held - ?2, updated_at = ?3 WHERE customer = ?1 RETURNING {BUDGET_COLS}"
        ))
        .map_err(db)?
        .query_row(params![customer, amount, now], budget_row)
        .map_err(db)?;
    append(
        c,
        &b,
        &Draft {
            amount,
            d_held: -amount,
            hold_id: Some(id),
            detail: reason,
            ..Draft::note(if expired { "expire" } else { "release" })
        },
        now,
    )?;
    apply_alarms(c, &b, now)?;
    Ok(())
}

fn mark_unknown(c: &Connection, id: &str, reason: &str, now: i64) -> Result<(), LedgerError> {
    let taken: Option<String> = c
        .prepare_cached(
            "UPDATE holds SET state = 'unknown', reason = ?2, unknown_at = ?3
             WHERE id = ?1 AND state = 'held' RETURNING customer",
        )
        .map_err(db)?
        .query_row(params![id, reason, now], |r| r.get(0))
        .optional()
        .map_err(db)?;
    let Some(customer) = taken else {
        return Err(not_open(c, id));
    };
    let b = need_budget(c, &customer)?;
    append(
        c,
        &b,
        &Draft {
            hold_id: Some(id),
            detail: reason,
            ..Draft::note("unknown")
        },
        now,
    )?;
    Ok(())
}
