//! `tollgate-bench`: benchmarks for Tollgate, one subcommand per section.
//!
//! * `proxy`: the same authenticated, re-signed read sent directly to the
//!   simulated cloud, through the gateway, and through nginx as a plain
//!   reverse proxy; prints req/s, p50/p99 and the ratios.
//! * `policy`: permission decision latency on a generated policy set
//!   (in process); prints p50/p99 and decisions/s.
//! * `ledger`: durable budget hold+commit pairs per second on SQLite and
//!   PostgreSQL (in process).
//!
//! * `reload`: policy hot reload, file change to the first answer served
//!   by the new version, example set and 1,000 customers / 10 modules.
//! * `pricing`: per price call with a fresh Wasm instance (p50/p99), calls/s,
//!   the same rule natively and the ratio, the proxy with pricing on vs off.
//!
//! Usually run through `scripts/bench`, which builds the release binaries
//! and installs nginx first. Later sections (pricing, ledger, reload) are new
//! subcommands next to `proxy`, reusing [`load`] and [`procs`].

// Rates, percentiles and ratios are measurements, computed and printed as
// floating point on purpose; no money is ever handled here.
#![allow(clippy::float_arithmetic)]

mod ledger;
mod load;
mod policy;
mod pricing;
mod procs;
mod proxy;
mod reload;

use std::process::ExitCode;

// The gateway's own allocator (`gateway/src/main.rs`): the in-process
// figures (price calls, policy decisions, ledger operations) then pay what
// the same code pays inside `tollgate serve`, not glibc malloc's costs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Benchmarks for Tollgate (see `scripts/bench`).
#[derive(Debug, Parser)]
#[command(name = "tollgate-bench", version, about, long_about = None)]
struct Cli {
    /// Which bench to run.
    #[command(subcommand)]
    command: Command,
}

/// The bench sections.
#[derive(Debug, Subcommand)]
enum Command {
    /// Direct-to-sim vs through the gateway vs through nginx: req/s, p50/p99.
    Proxy(proxy::ProxyArgs),
    /// Permission decision latency on 100+ policies / 800-1,000 statements.
    Policy(policy::PolicyArgs),
    /// Budget ledger: durable hold+commit per second on SQLite and PostgreSQL.
    Ledger(ledger::LedgerArgs),
    /// Pricing modules: per-call latency, calls/s, native ratio, proxy on vs off.
    Pricing(pricing::PricingArgs),
    /// Hot reload: file change -> first answer served by the new version.
    Reload(reload::ReloadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The load generator runs on ONE thread (a current-thread runtime), so
    // that it takes at most one of the machine's cores away from the
    // servers under test; pre-signing uses threads, but only while the
    // servers are idle, between timed phases.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Proxy(args) => proxy::run(args).await,
            Command::Policy(args) => policy::run(&args),
            Command::Ledger(args) => ledger::run(args).await,
            Command::Pricing(args) => pricing::run(args).await,
            Command::Reload(args) => reload::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
