//! Request-handling threads: one single-threaded tokio runtime per core.
//!
//! Why not tokio's multi-threaded runtime for the request path: a proxied
//! call wakes three tasks (the inbound connection, the pooled upstream
//! connection, and the request future between them). On a work-stealing
//! runtime those wake-ups often cross threads (a futex wake and a cache
//! miss each), which cost more CPU than the gateway's own work on a small
//! machine. Here every connection lives its whole life on one thread, its
//! upstream calls use that thread's own connection pool
//! (`upstream::Forwarder` keeps one client per thread), and the wake-ups
//! stay thread-local.
//!
//! Connections are handed out round-robin by the one accept loop
//! (`server::serve`), so a busy thread is not chosen twice in a row. A
//! connection is not moved once placed; with keep-alive clients that is the
//! same trade-off nginx's workers make.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Default number of request threads: one per core the process may use.
/// More threads than cores only adds context switches.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A set of request threads, each running a current-thread runtime.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` threads (at least one), named `{name}-{i}`.
    pub fn start(count: usize, name: &str) -> std::io::Result<Self> {
        let count = count.max(1);
        let mut handles = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    // Runs the thread's tasks until told to stop (or
                    // until the `Workers` is dropped).
                    let _ = runtime.block_on(stopped);
                    // Tasks still running were given their drain time
                    // by `serve`; do not wait for stragglers.
                    runtime.shutdown_background();
                })?;
        }
        Ok(Self {
            handles,
            stops,
            next: AtomicUsize::new(0),
        })
    }

    /// How many threads.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Never true: there is at least one thread.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The runtime of the next thread, round-robin.
    pub fn next_handle(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Each thread ends its runtime and exits; not joined, as `drop` may
        // run inside an async context (`serve` has already drained).
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}
