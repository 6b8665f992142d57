//! `tollgate-bench proxy`: what the gateway costs on the request path.
//!
//! The same authenticated read (`QueryOrders` on BSS) three ways, each on a
//! fresh simulated cloud so no scenario inherits another's state:
//!
//! 1. `direct`: signed with the partner's key (`OwnerId` set), sent to the sim;
//! 2. `gateway`: signed with a customer's key, sent to `tollgate serve`,
//!    which verifies it, re-signs it with the partner's key and forwards it;
//! 3. `nginx`: the requests of (1), sent through nginx as a plain reverse
//!    proxy with upstream keep-alive (nginx does not re-sign).
//!
//! Each scenario runs a closed loop (max req/s) and then an open loop at half
//! of the gateway's max req/s ("half load" of the system under test), the
//! same rate for all three, so the "added p99" compares like with like. The
//! gateway runs first to set that rate (the direct scenario's, if the
//! gateway fails; `--open-rate` overrides both).
//!
//! Everything shares the machine's cores (loopback): the load generator runs
//! on one thread, and each measured phase also reports the CPU each process
//! used (from `/proc`) and what *other* processes used meanwhile, so a run
//! skewed by unrelated load says so instead of printing misleading figures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::{Method, StatusCode};
use serde_json::json;
use tollgate::aliyun::outbound::OutboundCall;

use crate::load::{self, Conn, Pool, Signer, Tally, Target};
use crate::procs::{self, CpuGroup, CpuMeter, CpuUse, Nginx, TempDir, Tollgate};

const PARTNER_AK: &str = "TGPARTNERDEMOKEY01";
const ACME_AK: &str = "TGACMEDEMOKEY0001";
/// acme's Alibaba UID (policies/customers.toml).
const ACME_UID: &str = "2000000000000001";
const BSS_VERSION: &str = "2017-12-14";
const ACTION: &str = "QueryOrders";

/// Cores other processes may use while a phase is measured before its
/// figures are flagged as skewed.
const QUIET_CORES: f64 = 0.15;

/// Targets from the issue.
const TARGET_RATIO: f64 = 1.0;
const TARGET_ADDED_P99_US: i64 = 250;

/// Arguments of `tollgate-bench proxy`.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The `tollgate` binary (a release build: `target/release/tollgate`).
    #[arg(long, default_value = "target/release/tollgate")]
    tollgate: PathBuf,
    /// The example policy folder (sim.toml, customers.toml, secrets/).
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
    /// Seconds measured per phase (default 10, or 3 with --quick).
    #[arg(long)]
    duration: Option<u64>,
    /// A short run: 3 s per phase.
    #[arg(long)]
    quick: bool,
    /// Seconds of warm-up before each measured phase.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Concurrent HTTP/1.1 keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The nginx binary.
    #[arg(long, default_value = "nginx")]
    nginx: PathBuf,
    /// Skip the nginx scenario, giving the reason (e.g. it could not be installed).
    #[arg(long, value_name = "REASON")]
    skip_nginx: Option<String>,
    /// nginx worker processes (default: one per core, like the gateway's runtime).
    #[arg(long)]
    nginx_workers: Option<usize>,
    /// Open-loop rate in req/s (default: half the gateway's max; the direct scenario's if the gateway fails).
    #[arg(long)]
    open_rate: Option<f64>,
    /// Wait up to this many seconds for other processes to leave the CPU
    /// idle (under 0.15 cores) before starting; 0 starts at once.
    #[arg(long, default_value_t = 10)]
    wait_quiet: u64,
    /// Also authorize in the gateway: `[authz]` with the example policy
    /// set (policies/catalog, policies/permissions), as a deployment would.
    #[arg(long)]
    authz: bool,
    /// Append every half-load request's release time and latency to this
    /// file (`release_us latency_us`, a `# scenario` line per phase), to
    /// see whether slow answers come in bursts.
    #[arg(long, value_name = "FILE")]
    latency_trace: Option<PathBuf>,
    /// Run only these scenarios (comma-separated: direct,gateway,nginx).
    #[arg(long, value_delimiter = ',', value_parser = ["direct", "gateway", "nginx"])]
    only: Vec<String>,
}

/// The three ways of sending the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Direct,
    Gateway,
    Nginx,
}

impl Kind {
    /// In running order: the gateway first, as half its max is the
    /// open-loop rate for all three.
    const RUN_ORDER: [Self; 3] = [Self::Gateway, Self::Direct, Self::Nginx];

    fn key(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Gateway => "gateway",
            Self::Nginx => "nginx",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct (sim)",
            Self::Gateway => "gateway",
            Self::Nginx => "nginx",
        }
    }
}

/// Resolved settings shared by the scenarios.
#[derive(Debug)]
struct Setup {
    tollgate: PathBuf,
    policies: PathBuf,
    partner_secret: String,
    acme_secret: String,
    connections: usize,
    latency_trace: Option<PathBuf>,
    warmup: Duration,
    duration: Duration,
    nginx: Result<PathBuf, String>,
    nginx_workers: usize,
    authz: bool,
    cores: usize,
    ticks: u64,
    /// Cores busy just before the start (other processes).
    busy_before: f64,
}

/// One measured phase.
#[derive(Debug, Clone)]
struct Phase {
    rps: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    requests: u64,
    errors: u64,
    samples: Vec<String>,
    exhausted: bool,
    cpu: Vec<CpuUse>,
}

impl Phase {
    fn from_tally(tally: &Tally, warm_errors: &Tally, elapsed: Duration, cpu: Vec<CpuUse>) -> Self {
        let mut samples = warm_errors.samples.clone();
        samples.extend(tally.samples.iter().cloned());
        samples.truncate(3);
        Self {
            rps: tally.ok as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: tally.percentile(0.50),
            p99: tally.percentile(0.99),
            p999: tally.percentile(0.999),
            requests: tally.ok,
            errors: tally.errors + warm_errors.errors,
            samples,
            exhausted: tally.exhausted,
            cpu,
        }
    }

    fn json(&self) -> serde_json::Value {
        let cpu: serde_json::Map<String, serde_json::Value> = self
            .cpu
            .iter()
            .map(|c| {
                let us = per_request_us(c, self.requests);
                let mut v = json!({ "cores": round2(c.cores), "us_per_request": round1(us) });
                if let Some(k) = kernel_us_per_request(c, self.requests) {
                    v["kernel_us_per_request"] = json!(round1(k));
                }
                (c.name.to_owned(), v)
            })
            .collect();
        json!({
            "rps": round1(self.rps),
            "p50_us": self.p50,
            "p99_us": self.p99,
            "p999_us": self.p999,
            "requests": self.requests,
            "errors": self.errors,
            "cpu": cpu,
        })
    }
}

/// A scenario's outcome: both phases, or why it could not run.
#[derive(Debug)]
struct Outcome {
    kind: Kind,
    result: Result<(Phase, Phase), String>,
    unavailable: bool,
}

/// The processes of one scenario, the endpoint the load goes to, and how to sign.
/// Fields drop in order: proxies first, then the sim, then the scratch folder.
#[derive(Debug)]
struct Stack {
    nginx: Option<Nginx>,
    gateway: Option<Tollgate>,
    sim: Tollgate,
    _dir: TempDir,
    target: Target,
    signer: Signer,
}

impl Stack {
    fn cpu_groups(&self) -> Vec<CpuGroup> {
        let mut groups = vec![CpuGroup {
            name: "sim",
            pids: vec![self.sim.pid()],
        }];
        if let Some(g) = &self.gateway {
            groups.push(CpuGroup {
                name: "gateway",
                pids: vec![g.pid()],
            });
        }
        if let Some(n) = &self.nginx {
            groups.push(CpuGroup {
                name: "nginx",
                pids: n.pids.clone(),
            });
        }
        groups.push(CpuGroup {
            name: "loadgen",
            pids: vec![0],
        });
        groups
    }
}

fn call(owner: Option<&str>) -> OutboundCall {
    let mut query = vec![("PageSize".to_owned(), "20".to_owned())];
    if let Some(uid) = owner {
        query.push(("OwnerId".to_owned(), uid.to_owned()));
    }
    OutboundCall {
        method: Method::GET,
        action: ACTION.to_owned(),
        version: BSS_VERSION.to_owned(),
        query,
        form: Vec::new(),
    }
}

fn toml_str(path: &Path) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::Value::String(path.display().to_string()).to_string()
}

fn start_stack(setup: &Setup, kind: Kind) -> anyhow::Result<Stack> {
    let dir = TempDir::new(kind.key())?;
    let sim = Tollgate::sim(&setup.tollgate, &setup.policies, dir.path())?;
    let partner = |authority: String| Signer {
        call: call(Some(ACME_UID)),
        authority,
        access_key_id: PARTNER_AK.to_owned(),
        secret: setup.partner_secret.clone(),
    };
    match kind {
        Kind::Direct => {
            let target = Target::new(sim.addr)?;
            let signer = partner(sim.addr.to_string());
            Ok(Stack {
                nginx: None,
                gateway: None,
                sim,
                _dir: dir,
                target,
                signer,
            })
        }
        Kind::Gateway => {
            let config = format!(
                r#"# Generated by tollgate-bench (the shape of policies/tollgate.toml).
customers_file = {customers}

[server]
listen = "127.0.0.1:0"
host_id = "tollgate.bench"
# Every request of a run has a fresh nonce, remembered for the whole
# 15-minute window: leave room for a long run at full speed.
nonce_capacity = 8000000

[partner.aliyun]
access_key_id = "{PARTNER_AK}"
secret_file = {partner_secret}
{authz}

[[upstream]]
product = "bssopenapi"
version = "{BSS_VERSION}"
url = "http://{sim}"
signature = "rpc"

[[upstream]]
product = "ecs"
version = "2014-05-26"
url = "http://{sim}"
signature = "v3"
"#,
                customers = toml_str(&setup.policies.join("customers.toml")),
                partner_secret = toml_str(&setup.policies.join("secrets/partner-aliyun.secret")),
                sim = sim.addr,
                authz = if setup.authz {
                    format!(
                        "\n[authz]\ncatalog_dir = {}\npermissions_dir = {}\n",
                        toml_str(&setup.policies.join("catalog")),
                        toml_str(&setup.policies.join("permissions"))
                    )
                } else {
                    String::new()
                },
            );
            let path = dir.path().join("tollgate.toml");
            std::fs::write(&path, config)?;
            let gateway = Tollgate::start(
                &setup.tollgate,
                &[
                    "serve",
                    "--config",
                    &path.display().to_string(),
                    "--listen",
                    "127.0.0.1:0",
                ],
                dir.path(),
                "gateway",
            )?;
            let target = Target::new(gateway.addr)?;
            let signer = Signer {
                call: call(None),
                authority: gateway.addr.to_string(),
                access_key_id: ACME_AK.to_owned(),
                secret: setup.acme_secret.clone(),
            };
            Ok(Stack {
                nginx: None,
                gateway: Some(gateway),
                sim,
                _dir: dir,
                target,
                signer,
            })
        }
        Kind::Nginx => {
            let binary = setup
                .nginx
                .as_ref()
                .map_err(|reason| anyhow::anyhow!("{reason}"))?;
            let nginx = Nginx::start(binary, dir.path(), sim.addr, setup.nginx_workers)?;
            let target = Target::new(nginx.addr)?;
            // RPC signatures do not cover Host: signed for nginx's address,
            // they verify at the sim behind it.
            let signer = partner(nginx.addr.to_string());
            Ok(Stack {
                nginx: Some(nginx),
                gateway: None,
                sim,
                _dir: dir,
                target,
                signer,
            })
        }
    }
}

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// Closed loop: warm-up (which also sizes the measured pool), then measured.
async fn closed_phase(setup: &Setup, stack: &Stack, conns: Vec<Conn>) -> (Vec<Conn>, Phase) {
    let warm_secs = setup.warmup.as_secs_f64();
    let warm_pool = Arc::new(load::presign(
        &stack.signer,
        (60_000.0 * warm_secs.max(0.5)) as usize,
    ));
    let t0 = Instant::now();
    let (conns, warm) = load::closed_loop(
        conns,
        &stack.target,
        &warm_pool,
        Some(t0),
        t0 + setup.warmup,
    )
    .await;
    let warm_elapsed = warm.last_done.map_or(setup.warmup, |d| d - t0);
    let warm_rate = warm.ok as f64 / warm_elapsed.as_secs_f64().max(1e-3);
    // 1.5 times the warm-up rate, so the measured phase does not run dry
    // (if it does, its rate is over the time it ran, and the report says so).
    let count = (warm_rate * setup.duration.as_secs_f64() * 1.5) as usize
        + 200 * setup.connections
        + 10_000;
    let pool = Arc::new(load::presign(&stack.signer, count));
    let meter = CpuMeter::start(stack.cpu_groups());
    let start = Instant::now();
    let (conns, tally) = load::closed_loop(
        conns,
        &stack.target,
        &pool,
        Some(start),
        start + setup.duration,
    )
    .await;
    let cpu = meter.stop(setup.ticks);
    let elapsed = if tally.exhausted {
        tally.last_done.map_or(setup.duration, |d| d - start)
    } else {
        setup.duration
    };
    (conns, Phase::from_tally(&tally, &warm, elapsed, cpu))
}

/// Open loop at `rate` req/s: warm-up, then measured.
async fn open_phase(
    setup: &Setup,
    kind: Kind,
    stack: &Stack,
    conns: Vec<Conn>,
    rate: f64,
) -> (Vec<Conn>, Phase) {
    let sized = |d: Duration| -> Arc<Pool> {
        Arc::new(load::presign(
            &stack.signer,
            (rate * d.as_secs_f64()).ceil() as usize + setup.connections,
        ))
    };
    let warm_pool = sized(setup.warmup);
    let pool = sized(setup.duration);
    let (conns, warm) = load::open_loop(
        conns,
        &stack.target,
        &warm_pool,
        rate,
        setup.warmup,
        false,
        false,
    )
    .await;
    let meter = CpuMeter::start(stack.cpu_groups());
    let keep_trace = setup.latency_trace.is_some();
    let (conns, tally) = load::open_loop(
        conns,
        &stack.target,
        &pool,
        rate,
        setup.duration,
        true,
        keep_trace,
    )
    .await;
    let cpu = meter.stop(setup.ticks);
    if let Some(path) = &setup.latency_trace {
        let label = format!("{} half load {rate:.0} req/s", kind.key());
        if let Err(e) = load::write_trace(path, &label, &tally.trace) {
            progress(&format!(
                "could not write the latency trace {}: {e}",
                path.display()
            ));
        }
    }
    let mut phase = Phase::from_tally(&tally, &warm, setup.duration, cpu);
    // Served within the schedule, not eventually: an overloaded server
    // drains its queue after the schedule ends.
    phase.rps = tally.on_time as f64 / setup.duration.as_secs_f64();
    (conns, phase)
}

/// Runs one scenario; `half` is the open-loop rate (`None` for the first
/// scenario, which sets it to half its own max).
async fn run_scenario(
    setup: &Setup,
    kind: Kind,
    half: Option<f64>,
) -> anyhow::Result<(Phase, Phase)> {
    let stack = start_stack(setup, kind)?;
    let (status, body) = load::probe(&stack.target, &stack.signer).await?;
    if status != StatusCode::OK {
        anyhow::bail!(
            "the check before timing failed: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(500)
                .collect::<String>()
        );
    }
    let conns = load::connect_all(stack.target.addr, setup.connections).await?;
    progress(&format!(
        "{}: max throughput, {} connections, {} s",
        kind.label(),
        setup.connections,
        setup.duration.as_secs()
    ));
    let (conns, closed) = closed_phase(setup, &stack, conns).await;
    let rate = half.unwrap_or(closed.rps / 2.0);
    progress(&format!(
        "{}: open loop at {rate:.0} req/s, {} s",
        kind.label(),
        setup.duration.as_secs()
    ));
    let (_conns, open) = open_phase(setup, kind, &stack, conns, rate).await;
    if closed.errors + open.errors > 0 {
        for (name, p) in stack
            .gateway
            .iter()
            .map(|g| ("gateway", g))
            .chain([("sim", &stack.sim)])
        {
            progress(&format!(
                "{} had errors; the {name}'s last log lines:\n{}",
                kind.label(),
                procs::log_tail(&p.log, 5)
            ));
        }
    }
    Ok((closed, open))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn per_request_us(cpu: &CpuUse, requests: u64) -> f64 {
    cpu.seconds * 1e6 / (requests.max(1) as f64)
}

/// Of [`per_request_us`], the kernel's part (when measured).
fn kernel_us_per_request(cpu: &CpuUse, requests: u64) -> Option<f64> {
    cpu.kernel_seconds
        .map(|k| k * 1e6 / (requests.max(1) as f64))
}

fn as_i64(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

/// Runs the bench and prints the table and the JSON line.
pub async fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let policies = args.policies.canonicalize().with_context(|| {
        format!(
            "the policy folder {} (run from the repository root or pass --policies)",
            args.policies.display()
        )
    })?;
    let secret = |file: &str| -> anyhow::Result<String> {
        let path = policies.join("secrets").join(file);
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    };
    let tollgate = args.tollgate.canonicalize().with_context(|| {
        format!(
            "the tollgate binary {} (build it: cargo build --release -p tollgate)",
            args.tollgate.display()
        )
    })?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let nginx = match &args.skip_nginx {
        Some(reason) => Err(reason.clone()),
        None => match std::process::Command::new(&args.nginx).arg("-v").output() {
            Ok(o) if o.status.success() => Ok(args.nginx.clone()),
            Ok(o) => Err(format!(
                "`{} -v` failed: {}",
                args.nginx.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("{} not runnable: {e}", args.nginx.display())),
        },
    };
    let setup = Setup {
        tollgate,
        partner_secret: secret("partner-aliyun.secret")?,
        acme_secret: secret("acme.secret")?,
        policies,
        connections: args.connections.max(1),
        latency_trace: args.latency_trace.clone(),
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(
            args.duration
                .unwrap_or(if args.quick { 3 } else { 10 })
                .max(1),
        ),
        nginx,
        nginx_workers: args.nginx_workers.unwrap_or(cores).max(1),
        authz: args.authz,
        cores,
        ticks: procs::clock_ticks_per_sec(),
        busy_before: 0.0,
    };
    let mut setup = setup;
    let quiet_deadline = Instant::now() + Duration::from_secs(args.wait_quiet);
    loop {
        setup.busy_before = procs::machine_busy_cores(Duration::from_secs(1), setup.ticks);
        if setup.busy_before <= QUIET_CORES || Instant::now() >= quiet_deadline {
            break;
        }
        progress(&format!(
            "other processes keep {:.2} cores busy; waiting for quiet (up to {} s, --wait-quiet)",
            setup.busy_before, args.wait_quiet
        ));
    }
    if setup.busy_before > QUIET_CORES {
        progress(&format!(
            "starting anyway on a busy machine ({:.2} cores used by other processes): the figures will be skewed",
            setup.busy_before
        ));
    }

    let mut outcomes = Vec::new();
    let mut half: Option<f64> = args.open_rate;
    for kind in Kind::RUN_ORDER {
        if !args.only.is_empty() && !args.only.iter().any(|k| k == kind.key()) {
            continue;
        }
        if kind == Kind::Nginx
            && let Err(reason) = &setup.nginx
        {
            outcomes.push(Outcome {
                kind,
                result: Err(reason.clone()),
                unavailable: true,
            });
            continue;
        }
        let result = run_scenario(&setup, kind, half)
            .await
            .map_err(|e| format!("{e:#}"));
        if half.is_none() {
            half = result.as_ref().ok().map(|(closed, _)| closed.rps / 2.0);
        }
        if let Err(e) = &result {
            progress(&format!("{} failed: {e}", kind.label()));
        }
        outcomes.push(Outcome {
            kind,
            result,
            unavailable: false,
        });
    }
    Ok(report(&setup, &outcomes, half.unwrap_or(0.0)))
}

fn find(outcomes: &[Outcome], kind: Kind) -> Option<&(Phase, Phase)> {
    outcomes
        .iter()
        .find(|o| o.kind == kind)
        .and_then(|o| o.result.as_ref().ok())
}

/// Whether the half-load rate is beyond what the scenario can serve (its
/// max throughput, with a margin for run-to-run noise).
fn overloaded(closed: &Phase, half: f64) -> bool {
    half > closed.rps * 0.95
}

fn report(setup: &Setup, outcomes: &[Outcome], half: f64) -> ExitCode {
    let secs = setup.duration.as_secs();
    println!();
    println!(
        "proxy bench: {ACTION} (authenticated, re-signed read), {} connections, {secs} s per phase after {} s warm-up",
        setup.connections,
        setup.warmup.as_secs()
    );
    println!(
        "{} cores shared by the load generator (1 thread), the sim, the gateway ({} request threads) and nginx ({} workers); each scenario on a fresh sim",
        setup.cores, setup.cores, setup.nginx_workers
    );
    println!(
        "machine before start: {:.2} cores busy with other processes",
        setup.busy_before
    );
    if setup.authz {
        println!("gateway with [authz] (the example policy set)");
    }
    println!();
    println!(
        "{:<14} {:<44}| half load: open loop at {half:.0} req/s",
        "", "max throughput: closed loop"
    );
    println!(
        "{:<14} {:>9} {:>8} {:>8} {:>7} {:>8} | {:>8} {:>8} {:>8} {:>12} {:>7}",
        "scenario",
        "req/s",
        "p50 µs",
        "p99 µs",
        "p99.9",
        "errors",
        "req/s",
        "p50 µs",
        "p99 µs",
        "added p99 µs",
        "errors"
    );
    let direct_open_p99 = find(outcomes, Kind::Direct).map(|(_, open)| as_i64(open.p99));
    for o in outcomes {
        match &o.result {
            Ok((closed, open)) => {
                let added = direct_open_p99
                    .map_or("n/a".to_owned(), |d| format!("{:+}", as_i64(open.p99) - d));
                println!(
                    "{:<14} {:>9.0} {:>8} {:>8} {:>7} {:>8} | {:>8.0} {:>8} {:>8} {:>12} {:>7}",
                    o.kind.label(),
                    closed.rps,
                    closed.p50,
                    closed.p99,
                    closed.p999,
                    closed.errors,
                    open.rps,
                    open.p50,
                    open.p99,
                    if o.kind == Kind::Direct {
                        "-".to_owned()
                    } else {
                        added
                    },
                    open.errors,
                );
            }
            Err(reason) => {
                let what = if o.unavailable {
                    "unavailable"
                } else {
                    "FAILED"
                };
                println!("{:<14} {what}: {reason}", o.kind.label());
            }
        }
    }

    for o in outcomes {
        if let Ok((closed, _)) = &o.result
            && overloaded(closed, half)
        {
            println!(
                "note: {} tops out at {:.0} req/s, below the half-load rate: its half-load figures measure a growing queue",
                o.kind.label(),
                closed.rps
            );
        }
    }
    println!();
    println!(
        "CPU while measured, cores busy (CPU µs per request, of which in the kernel); `other` = processes outside the bench:"
    );
    let mut worst_other: f64 = 0.0;
    for o in outcomes {
        if let Ok((closed, open)) = &o.result {
            let fmt = |p: &Phase| {
                p.cpu
                    .iter()
                    .map(|c| {
                        if c.name == "other" {
                            format!("other {:.2}", c.cores)
                        } else {
                            format!(
                                "{} {:.2} ({:.0}, kernel {:.0})",
                                c.name,
                                c.cores,
                                per_request_us(c, p.requests),
                                c.kernel_seconds.unwrap_or(0.0) * 1e6 / p.requests.max(1) as f64
                            )
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            for p in [closed, open] {
                worst_other = p
                    .cpu
                    .iter()
                    .filter(|c| c.name == "other")
                    .fold(worst_other, |w, c| w.max(c.cores));
            }
            println!("  {:<14} max:  {}", o.kind.label(), fmt(closed));
            println!("  {:<14} half: {}", "", fmt(open));
        }
    }
    if worst_other > QUIET_CORES {
        println!(
            "!!! other processes used up to {worst_other:.2} cores while measuring: the figures are skewed; rerun on a quiet machine !!!"
        );
    }

    let gateway = find(outcomes, Kind::Gateway);
    let nginx = find(outcomes, Kind::Nginx);
    let direct = find(outcomes, Kind::Direct);
    let ratio = match (gateway, nginx) {
        (Some((g, _)), Some((n, _))) if n.rps > 0.0 => Some(g.rps / n.rps),
        _ => None,
    };
    let gateway_direct = match (gateway, direct) {
        (Some((g, _)), Some((d, _))) if d.rps > 0.0 => Some(g.rps / d.rps),
        _ => None,
    };
    let added = |p: Option<&(Phase, Phase)>| match (p, direct_open_p99) {
        (Some((_, open)), Some(d)) => Some(as_i64(open.p99) - d),
        _ => None,
    };
    let gateway_added = added(gateway);
    let nginx_added = added(nginx);
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!();
    match ratio {
        Some(r) => println!(
            "ratio: gateway/nginx req/s = {r:.2}x (target >= {TARGET_RATIO:.1}x: {})",
            verdict(r >= TARGET_RATIO)
        ),
        None => println!("ratio: gateway/nginx req/s = n/a (nginx or gateway did not run)"),
    }
    if let Some(r) = gateway_direct {
        println!("ratio: gateway/direct req/s = {r:.2}x");
    }
    // A negative difference means the direct run's tail was noisier than
    // the proxied one (a scheduling hiccup on shared cores): no verdict.
    let added_met = gateway_added
        .filter(|a| *a >= 0)
        .map(|a| a <= TARGET_ADDED_P99_US);
    match (gateway_added, added_met) {
        (Some(a), Some(met)) => println!(
            "gateway added p99 at half load = {a} µs (target <= {TARGET_ADDED_P99_US} µs: {})",
            verdict(met)
        ),
        (Some(a), None) => println!(
            "gateway added p99 at half load = {a} µs (inconclusive: the direct run's p99 was the noisier; rerun)"
        ),
        (None, _) => println!("gateway added p99 at half load = n/a"),
    }
    if let Some(a) = nginx_added {
        println!("nginx added p99 at half load = {a} µs");
    }

    let skewed = worst_other > QUIET_CORES || setup.busy_before > QUIET_CORES;
    let total_errors: u64 = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(|(c, o)| c.errors + o.errors)
        .sum();
    let failed = outcomes.iter().any(|o| o.result.is_err() && !o.unavailable);
    let exhausted = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .any(|(c, o)| c.exhausted || o.exhausted);
    if exhausted {
        println!(
            "note: a phase used up its pre-signed requests early; its req/s is over the time it ran"
        );
    }
    if total_errors > 0 {
        println!();
        println!("!!! {total_errors} REQUESTS FAILED: the figures above are NOT meaningful !!!");
        for o in outcomes {
            if let Ok((c, op)) = &o.result {
                for s in c.samples.iter().chain(op.samples.iter()).take(3) {
                    println!("  {}: {s}", o.kind.label());
                }
            }
        }
    }

    let scenarios: serde_json::Map<String, serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let v = match &o.result {
                Ok((closed, open)) => {
                    let mut half_json = open.json();
                    if let (Some(d), true) = (direct_open_p99, o.kind != Kind::Direct) {
                        half_json["added_p99_us"] = json!(as_i64(open.p99) - d);
                    }
                    half_json["overloaded"] = json!(overloaded(closed, half));
                    let mut v = closed.json();
                    v["half_load"] = half_json;
                    v
                }
                Err(reason) if o.unavailable => json!({ "unavailable": reason }),
                Err(reason) => json!({ "failed": reason }),
            };
            (o.kind.key().to_owned(), v)
        })
        .collect();
    let line = json!({
        "bench": "proxy",
        "action": ACTION,
        "authz": setup.authz,
        "connections": setup.connections,
        "duration_s": secs,
        "warmup_s": setup.warmup.as_secs(),
        "cores": setup.cores,
        "half_load_rps": round1(half),
        "scenarios": scenarios,
        "gateway_over_nginx_rps": ratio.map(round2),
        "gateway_over_direct_rps": gateway_direct.map(round2),
        "gateway_added_p99_us": gateway_added,
        "nginx_added_p99_us": nginx_added,
        "targets": {
            "gateway_over_nginx_rps": { "target": TARGET_RATIO, "met": ratio.map(|r| r >= TARGET_RATIO) },
            "gateway_added_p99_us": { "target": TARGET_ADDED_P99_US, "met": added_met },
        },
        "errors": total_errors,
        "other_cores_max": round2(worst_other),
        "skewed_by_other_load": skewed,
    });
    println!();
    println!("{line}");
    if total_errors > 0 || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
