//! The HTTP listener shared by `tollgate serve` and `tollgate sim`: accept
//! loop, HTTP/1.1 connections, graceful shutdown, and the ready line.

mod listen;
pub mod workers;

pub use listen::{MAX_CONNECTIONS, Ready, Shutdown, serve, serve_on};
pub use workers::Workers;

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests;
