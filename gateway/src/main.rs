//! The `tollgate` binary: see `tollgate --help`.

use clap::Parser as _;

// mimalloc: the request path allocates many small, short-lived strings
// (parameters, canonical strings); glibc malloc was ~30% of the gateway's
// instructions under load (callgrind, `scripts/bench proxy`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tollgate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo prints a table on stdout; keep its logs quiet unless asked.
    let level = match (&cli.command, cli.log_level.as_str()) {
        (Command::Demo(_), "info") => "error",
        (_, level) => level,
    };
    tollgate::telemetry::init(cli.log_format, level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { config, listen } => tollgate::proxy::run(&config, listen).await,
            Command::Sim { config, listen } => tollgate::sim::run(&config, listen).await,
            Command::Sign(args) => tollgate::cli::sign::run(&args).map(|out| print!("{out}")),
            Command::Demo(args) => tollgate::cli::demo::run(&args).await,
            Command::Policy(args) => tollgate::cli::policy::run(&args).map(|out| print!("{out}")),
            Command::Budget(args) => tollgate::cli::budget::run(&args)
                .await
                .map(|out| print!("{out}")),
            Command::Pricing(args) => tollgate::cli::pricing::run(&args).map(|out| print!("{out}")),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
