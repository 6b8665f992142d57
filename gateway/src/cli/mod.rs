//! The `tollgate` command line.

pub mod budget;
pub mod demo;
pub mod policy;
pub mod pricing;
pub mod sign;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Tollgate: the reseller's gateway to Alibaba Cloud.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, long_about = None)]
pub struct Cli {
    /// Log line format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `tollgate=debug,hyper=warn`); `RUST_LOG` wins when set.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// The gateway config (e.g. `policies/tollgate.toml`).
        #[arg(long, default_value = "policies/tollgate.toml")]
        config: PathBuf,
        /// Override the config's listen address (`127.0.0.1:0` picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the simulated cloud (Alibaba BSS + ECS).
    Sim {
        /// The simulator config (e.g. `policies/sim.toml`).
        #[arg(long, default_value = "policies/sim.toml")]
        config: PathBuf,
        /// Where to listen (`127.0.0.1:0` picks a free port).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
    },
    /// Print the canonical string and signature of a request (signature debugging).
    Sign(sign::SignArgs),
    /// Start the simulated cloud and the gateway on the example policies and
    /// run a short scripted session.
    Demo(demo::DemoArgs),
    /// Permission policies: `check` the files, `explain` a decision.
    Policy(policy::PolicyArgs),
    /// Budgets over the admin API: show, create, set quota, change
    /// consumption, set status, alarm thresholds, holds, entries, verify.
    Budget(budget::BudgetArgs),
    /// Pricing modules: `test` one order, `check` the self-check and golden tests.
    Pricing(pricing::PricingArgs),
}
