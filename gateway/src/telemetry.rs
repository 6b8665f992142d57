//! Structured logs via `tracing`: human-readable by default, JSON with
//! `--log-format json`. The filter comes from `--log-level` or `RUST_LOG`.
//!
//! Nothing secret is ever a field: keys are logged by id, secrets live in
//! `SecretString` (redacted `Debug`), and signatures are not logged.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (logs go to stderr; stdout carries only
/// the ready line and command output).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
