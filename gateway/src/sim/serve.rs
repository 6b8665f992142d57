//! The sim's own accept loop. Like `server::serve`, plus one thing that loop
//! cannot do: close a connection without answering (fault `drop_next`). A
//! response carrying [`DropConnection`] becomes a service error here, and
//! hyper aborts the connection on a service error without writing a byte.

use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use super::{DropConnection, Sim, closed};

/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping waits for in-flight calls.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `sim` on `listener` until the sim is closed, then drains.
pub async fn serve(listener: TcpListener, sim: Sim) {
    let mut closing = sim.closing();
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "sim accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = closed(&mut closing) => break,
        };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let mut conn_closing = sim.closing();
        tracker.spawn(async move {
            let svc = service_fn(move |req| {
                let sim = sim.clone();
                async move {
                    let resp = sim.handle(req, peer).await;
                    if resp.extensions().get::<DropConnection>().is_some() {
                        Err(std::io::Error::other(
                            "connection dropped by fault injection",
                        ))
                    } else {
                        Ok(resp)
                    }
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, %peer, "sim connection ended with an error");
                    }
                }
                () = closed(&mut conn_closing) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait()).await;
}
