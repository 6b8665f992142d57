//! `tollgate-bench ledger`: budget holds per second, in process, on each
//! backend.
//!
//! One unit of work is a purchase's whole ledger cost: **hold** (the atomic
//! budget check + hold row + entry) then **commit** (hold → consumed with an
//! order id + entry), each durable before it returns — SQLite in WAL mode
//! with `synchronous=FULL` (group commit), PostgreSQL with its default
//! synchronous commit. `concurrency` purchases are in flight at once,
//! spread over `customers` budgets (the realistic case: many customers
//! buying at once); a second run puts them all on one budget (the hot-row
//! worst case: every hold waits for the previous one's row lock).
//!
//! PostgreSQL runs when `--postgres-url` / `TOLLGATE_BENCH_POSTGRES_URL` /
//! `TOLLGATE_TEST_POSTGRES_URL` (or the default local URL) is reachable,
//! in a fresh schema that is dropped afterwards; otherwise it says why not.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tollgate::ledger::{Micros, NewHold, PgStore, Provider, Reserved, SqliteStore, Store, now_ms};

/// `tollgate-bench ledger` options.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// Seconds measured per run.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// A short run: 2 s per run.
    #[arg(long)]
    quick: bool,
    /// Purchases in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Budgets the purchases are spread over.
    #[arg(long, default_value_t = 1_000)]
    customers: usize,
    /// PostgreSQL connections (the gateway's default pool size is 16).
    #[arg(long, default_value_t = 32)]
    pg_pool: usize,
    /// PostgreSQL URL (default: the env variables above, then
    /// postgres://postgres@127.0.0.1:5432/test). Not printed: it may hold a password.
    #[arg(long)]
    postgres_url: Option<String>,
}

/// One run's result.
struct Run {
    backend: &'static str,
    customers: usize,
    concurrency: usize,
    pairs: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.pairs as f64 / self.seconds
    }
}

async fn seed(store: &Store, customers: usize) -> anyhow::Result<()> {
    // Limits far above what the run can spend: nothing is refused, every
    // pair is a full hold + commit.
    let limit = Micros::parse_amount("1000000000.00").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..customers {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .create_budget(&format!("bench-{c}"), "CNY", limit, None, now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("seeding budgets: {e}"))
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

async fn measure(
    store: &Store,
    backend: &'static str,
    customers: usize,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for w in 0..concurrency {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut n: u64 = 0;
            let price = Micros(91_800_000);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let now = now_ms();
                let id = uuid::Uuid::new_v4().to_string();
                let hold = NewHold {
                    id: id.clone(),
                    customer: format!(
                        "bench-{}",
                        (w + usize::try_from(n).unwrap_or(0) * concurrency) % customers
                    ),
                    amount: price,
                    currency: "CNY".into(),
                    client_token: Some(id.clone()),
                    fingerprint: "bench".into(),
                    request_id: id.clone(),
                    action: "CreateInstance".into(),
                    product: "oss".into(),
                    official: Some(price),
                    provider: Provider::Alibaba,
                    provider_ref: None,
                    replay_key: None,
                    now,
                    forward_deadline: now + 30_000,
                    expires_at: now + 900_000,
                };
                match store.reserve(hold).await {
                    Ok(Reserved::New(_)) => {}
                    other => anyhow::bail!("hold failed: {other:?}"),
                }
                store
                    .commit(&id, Some(&id), None, now_ms())
                    .await
                    .map_err(|e| anyhow::anyhow!("commit failed: {e}"))?;
                hist.saturating_record(
                    u64::try_from(t.elapsed().as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1),
                );
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, hist))
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut pairs = 0;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    while let Some(r) = tasks.join_next().await {
        let (n, h) = r??;
        pairs += n;
        hist.add(&h)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Run {
        backend,
        customers,
        concurrency,
        pairs,
        seconds,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    })
}

fn print(run: &Run) {
    println!(
        "  {:<10} {:>6} budget(s)  concurrency {:>4}  {:>9.0} hold+commit/s   p50 {:>6.2} ms  p99 {:>7.2} ms  ({} pairs in {:.1} s)",
        run.backend,
        run.customers,
        run.concurrency,
        run.rate(),
        run.p50_us as f64 / 1000.0,
        run.p99_us as f64 / 1000.0,
        run.pairs,
        run.seconds
    );
}

/// Runs the ledger bench.
pub async fn run(args: LedgerArgs) -> anyhow::Result<ExitCode> {
    let duration = Duration::from_secs(if args.quick { 2 } else { args.duration.max(1) });
    let customers = args.customers.max(1);
    let mut runs = Vec::new();
    println!(
        "ledger: durable hold+commit pairs per second (one pair = one purchase's ledger work)"
    );

    // SQLite: a fresh file (durable: WAL + synchronous=FULL, group commit).
    let dir = crate::procs::TempDir::new("ledger")?;
    let sqlite = Store::Sqlite(
        SqliteStore::open(&dir.path().join("ledger.sqlite")).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    seed(&sqlite, customers).await?;
    println!(
        "  sqlite: {} (WAL, synchronous=FULL, group commit)",
        dir.path().display()
    );
    for c in [customers, 1] {
        let r = measure(&sqlite, "sqlite", c, args.concurrency, duration).await?;
        print(&r);
        runs.push(r);
    }
    drop(sqlite);
    drop(dir);

    // PostgreSQL, when reachable.
    let url = args
        .postgres_url
        .clone()
        .or_else(|| std::env::var("TOLLGATE_BENCH_POSTGRES_URL").ok())
        .or_else(|| std::env::var("TOLLGATE_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("tg_bench_{}", uuid::Uuid::new_v4().simple());
    let pg = PgStore::new(&url, &schema, args.pg_pool).map_err(|e| anyhow::anyhow!("{e}"));
    let pg_note = match pg {
        Err(e) => Some(format!("not run: {e}")),
        Ok(pg) => match pg.migrate().await {
            Err(e) => Some(format!("not run: PostgreSQL is not reachable ({e})")),
            Ok(_) => {
                let store = Store::Postgres(pg.clone());
                let result = async {
                    seed(&store, customers).await?;
                    println!("  postgres: schema {schema}, pool {}", args.pg_pool);
                    for c in [customers, 1] {
                        let r = measure(&store, "postgres", c, args.concurrency, duration).await?;
                        print(&r);
                        runs.push(r);
                    }
                    anyhow::Ok(())
                }
                .await;
                let _ = pg.drop_schema().await;
                result?;
                None
            }
        },
    };
    if let Some(note) = &pg_note {
        println!("  postgres: {note}");
    }
    let json_runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "backend": r.backend,
                "budgets": r.customers,
                "concurrency": r.concurrency,
                "hold_commit_per_s": r.rate().round(),
                "p50_ms": r.p50_us as f64 / 1000.0,
                "p99_ms": r.p99_us as f64 / 1000.0,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({"bench": "ledger", "runs": json_runs, "postgres": pg_note.unwrap_or_else(|| "run".into())})
    );
    Ok(ExitCode::SUCCESS)
}
