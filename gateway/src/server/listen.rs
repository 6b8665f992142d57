use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::workers::Workers;
use crate::Body;

/// How long a client may take to send its request head. Slowloris clients
/// otherwise hold connections (and memory) forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections one listener keeps open at once, by default 10,000
/// (`[server] max_connections` for the customer listener). Each open
/// connection costs a socket, buffers and a task; past the cap a new
/// connection is closed at once (and counted in the log at debug level)
/// instead of letting a flood of idle sockets exhaust file descriptors for
/// everyone. Far above what one node serves (a few hundred keep-alive
/// clients), so only a flood reaches it.
pub const MAX_CONNECTIONS: usize = 10_000;

/// How long shutdown waits for in-flight requests before dropping them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The line a process prints on stdout once it accepts connections, so that
/// scripts and tests can start it on port 0 and learn the real address.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Ready {
    /// `"gateway"` or `"sim"`.
    pub role: String,
    /// The bound address.
    pub addr: SocketAddr,
}

impl Ready {
    /// Prints the ready line (`{"ready":{...}}`) and flushes stdout.
    pub fn announce(&self) {
        use std::io::Write as _;
        let line = serde_json::json!({ "ready": self });
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the server; the log line remains.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        tracing::info!(role = %self.role, addr = %self.addr, "listening");
    }

    /// Reads a ready line back.
    pub fn parse(line: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        serde_json::from_value(v.get("ready")?.clone()).ok()
    }
}

/// A handle that stops a running [`serve`] loop: new connections stop being
/// accepted and open ones finish their in-flight request.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    /// A new, not yet triggered, handle.
    pub fn new() -> Self {
        Self(watch::channel(false).0)
    }

    /// Starts the shutdown.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves HTTP/1.1 on `listener` with `handler` until `shutdown` fires, then
/// drains open connections for up to [`DRAIN_TIMEOUT`]. Connections run on
/// the calling runtime.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: Shutdown)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_on(listener, handler, shutdown, None, MAX_CONNECTIONS).await;
}

/// Like [`serve`], but each accepted connection is handed, round-robin, to
/// one of `workers`' threads and lives there until it closes (see
/// [`super::workers`]), and at most `max_connections` are open at once
/// (see [`MAX_CONNECTIONS`]). The accept loop itself stays on the calling
/// runtime.
pub async fn serve_on<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: Shutdown,
    workers: Option<Arc<Workers>>,
    max_connections: usize,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let mut stop = shutdown.subscribe();
    let tracker = TaskTracker::new();
    let open = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, "connection cap reached: closing new connections");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let conn_stop = shutdown.subscribe();
        match &workers {
            None => {
                tracker.spawn(async move {
                    connection(stream, peer, handler, conn_stop).await;
                    drop(permit);
                });
            }
            Some(workers) => {
                // The socket moves to the worker's reactor: deregistered
                // here, registered there (inside the worker's runtime).
                let std_stream = match stream.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, %peer, "could not hand over a connection");
                        continue;
                    }
                };
                workers
                    .next_handle()
                    .spawn(tracker.track_future(async move {
                        match tokio::net::TcpStream::from_std(std_stream) {
                            Ok(stream) => connection(stream, peer, handler, conn_stop).await,
                            Err(e) => {
                                tracing::debug!(error = %e, %peer, "could not adopt a connection");
                            }
                        }
                        drop(permit);
                    }));
            }
        }
    }
    tracker.close();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait()).await;
}

/// One HTTP/1.1 connection until it closes or, on shutdown, finishes its
/// in-flight request.
async fn connection<H, F>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    mut conn_stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let svc = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req, peer).await) }
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
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        }
        _ = conn_stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
