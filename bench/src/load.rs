//! The load generator: pre-signed requests sent over raw HTTP/1.1 keep-alive
//! connections (one task per `hyper::client::conn::http1` connection).
//!
//! * [`presign`]: every request of a phase is signed before the phase starts
//!   (each carries its own nonce, and signing must not compete for CPU with
//!   the servers under test).
//! * [`closed_loop`]: each connection sends back-to-back: max throughput.
//! * [`open_loop`]: a pacer thread releases sends on a fixed schedule and
//!   latency counts from the release time, so a slow answer delays the
//!   clock of the sends queued behind it (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::BodyExt as _;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tollgate::Body;
use tollgate::aliyun::outbound::{Freshness, OutboundCall, SigningKey};
use tollgate::config::OutboundScheme;

/// The open loop's pacer sleeps at least this long between releases, and
/// releases every send that fell due meanwhile: fewer wake-ups (each costs
/// the load generator a cross-thread wake) at the price of arrivals in
/// small bursts (rate x tick, e.g. 3 at 15k req/s).
const PACER_TICK: Duration = Duration::from_micros(200);

/// How many error answers are kept verbatim for the report.
const ERROR_SAMPLES: usize = 3;

/// Signs one kind of call with one key for one endpoint.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The unsigned call.
    pub call: OutboundCall,
    /// `host:port` the requests are signed for and sent to (the `Host` header).
    pub authority: String,
    /// AccessKey id.
    pub access_key_id: String,
    /// Its secret.
    pub secret: String,
}

impl Signer {
    /// One freshly signed request (a new nonce), as an origin-form URI.
    fn sign_one(&self, timestamp: &str) -> Uri {
        let fresh = Freshness {
            timestamp: timestamp.to_owned(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        };
        let key = SigningKey {
            access_key_id: &self.access_key_id,
            secret: &self.secret,
        };
        let req = self
            .call
            .sign(OutboundScheme::Rpc, &self.authority, key, &fresh);
        req.uri()
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()))
    }
}

/// A phase's pre-signed requests, handed out once each.
#[derive(Debug)]
pub struct Pool {
    uris: Vec<Uri>,
    next: AtomicUsize,
}

impl Pool {
    /// The next unused request, or `None` once all are used.
    fn take(&self) -> Option<Uri> {
        self.uris
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .cloned()
    }
}

/// Signs `count` requests, on all cores (the servers are idle meanwhile).
pub fn presign(signer: &Signer, count: usize) -> Pool {
    let timestamp = tollgate::aliyun::format_timestamp(time::OffsetDateTime::now_utc());
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .max(1);
    let per = count.div_ceil(threads);
    let uris = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = per.min(count.saturating_sub(t * per));
                let timestamp = &timestamp;
                s.spawn(move || {
                    (0..n)
                        .map(|_| signer.sign_one(timestamp))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    Pool {
        uris,
        next: AtomicUsize::new(0),
    }
}

/// Where requests go: the address to connect to and the `Host` to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// Address to connect to.
    pub addr: SocketAddr,
    /// `Host` header (the authority the requests are signed for).
    pub host: HeaderValue,
}

impl Target {
    /// A target whose `Host` is its own address.
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }
}

/// One HTTP/1.1 keep-alive connection.
pub type Conn = SendRequest<Body>;

/// Opens one connection (`TCP_NODELAY`, as every HTTP client does).
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Opens `n` connections.
pub async fn connect_all(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(connect(addr).await?);
    }
    Ok(conns)
}

/// Sends one request and reads the whole answer.
async fn send(
    conn: &mut Conn,
    target: &Target,
    uri: Uri,
) -> Result<(StatusCode, Bytes), hyper::Error> {
    let mut req = Request::new(Body::default());
    *req.uri_mut() = uri;
    req.headers_mut().insert(header::HOST, target.host.clone());
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Sends one pre-signed request on a new connection and returns the answer
/// (the check before timing that a scenario works at all).
pub async fn probe(target: &Target, signer: &Signer) -> anyhow::Result<(StatusCode, Bytes)> {
    let pool = presign(signer, 1);
    let uri = pool.take().context("no request signed")?;
    let mut conn = connect(target.addr).await?;
    Ok(send(&mut conn, target, uri).await?)
}

/// What a phase measured (merged over its connections).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latencies of the recorded successful requests, microseconds.
    pub hist: Histogram<u64>,
    /// Recorded successful (HTTP 200) requests.
    pub ok: u64,
    /// Failed requests (non-200 answers and transport errors), recorded or not.
    pub errors: u64,
    /// The first few failures, verbatim.
    pub samples: Vec<String>,
    /// The pool of pre-signed requests ran out before the phase's end.
    pub exhausted: bool,
    /// When the last recorded request completed.
    pub last_done: Option<Instant>,
    /// Open loop: recorded requests completed before the schedule ended
    /// (below the scheduled count when the server could not keep up).
    pub on_time: u64,
    /// Open loop: (release, latency) of every recorded request, kept only
    /// when asked for (`--latency-trace`).
    pub trace: Vec<(Instant, Duration)>,
}

impl Tally {
    fn new() -> Self {
        Self {
            // 1 µs .. 100 s, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds"),
            ok: 0,
            errors: 0,
            samples: Vec::new(),
            exhausted: false,
            last_done: None,
            on_time: 0,
            trace: Vec::new(),
        }
    }

    fn record(&mut self, latency: Duration, done: Instant) {
        self.hist.saturating_record(
            u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        self.ok += 1;
        self.last_done = Some(self.last_done.map_or(done, |d| d.max(done)));
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(what);
        }
    }

    fn merge(&mut self, other: Self) {
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        self.on_time += other.on_time;
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < ERROR_SAMPLES {
                self.samples.push(s);
            }
        }
        self.exhausted |= other.exhausted;
        self.trace.extend(other.trace);
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Latency at `quantile` (0..=1), microseconds.
    pub fn percentile(&self, quantile: f64) -> u64 {
        self.hist.value_at_quantile(quantile)
    }
}

/// Sends `uri` on `conn`, reconnecting if the connection broke; a non-200
/// answer or a transport error is an error. Returns whether it succeeded.
async fn send_checked(conn: &mut Conn, target: &Target, uri: Uri, tally: &mut Tally) -> bool {
    match send(conn, target, uri).await {
        Ok((StatusCode::OK, _)) => true,
        Ok((status, body)) => {
            let text = String::from_utf8_lossy(&body);
            tally.error(format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ));
            false
        }
        Err(e) => {
            tally.error(format!("transport: {e}"));
            match connect(target.addr).await {
                Ok(c) => *conn = c,
                Err(e) => {
                    tally.error(format!("reconnect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            false
        }
    }
}

/// Closed loop: every connection sends back-to-back until `until`.
/// Requests started at or after `record_from` and done by `until` are
/// recorded (`None`: nothing is, a warm-up).
pub async fn closed_loop(
    conns: Vec<Conn>,
    target: &Target,
    pool: &Arc<Pool>,
    record_from: Option<Instant>,
    until: Instant,
) -> (Vec<Conn>, Tally) {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let target = target.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < until {
                    let Some(uri) = pool.take() else {
                        tally.exhausted = true;
                        break;
                    };
                    let start = Instant::now();
                    let ok = send_checked(&mut conn, &target, uri, &mut tally).await;
                    let done = Instant::now();
                    if ok && record_from.is_some_and(|from| start >= from) && done <= until {
                        tally.record(done - start, done);
                    }
                }
                (conn, tally)
            })
        })
        .collect();
    join(tasks).await
}

/// Open loop: sends are released at `rate` per second in total for
/// `duration`, round-robin over the connections (each connection sends its
/// share in order, one at a time, as HTTP/1.1 does), by a pacer thread
/// (tokio's timer ticks in milliseconds, too coarse here). Latency counts
/// from the release, so time spent queued behind a slow answer counts.
pub async fn open_loop(
    conns: Vec<Conn>,
    target: &Target,
    pool: &Arc<Pool>,
    rate: f64,
    duration: Duration,
    record: bool,
    keep_trace: bool,
) -> (Vec<Conn>, Tally) {
    if conns.is_empty() {
        return (conns, Tally::new());
    }
    let start = Instant::now();
    let end = start + duration;
    let trace_each = record && keep_trace;
    let mut senders = Vec::with_capacity(conns.len());
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
            senders.push(tx);
            let target = target.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while let Some(released) = rx.recv().await {
                    let Some(uri) = pool.take() else {
                        tally.exhausted = true;
                        // Keep draining: the pacer must not block on us.
                        continue;
                    };
                    if send_checked(&mut conn, &target, uri, &mut tally).await && record {
                        let done = Instant::now();
                        tally.record(done - released, done);
                        if trace_each {
                            tally.trace.push((released, done - released));
                        }
                        if done <= end {
                            tally.on_time += 1;
                        }
                    }
                }
                (conn, tally)
            })
        })
        .collect();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let pacer = std::thread::spawn(move || {
        let mut next = start;
        let mut k: usize = 0;
        while next < end {
            let now = Instant::now();
            if next > now {
                std::thread::sleep((next - now).max(PACER_TICK));
            }
            let released = Instant::now();
            // Release every send that is due (a late wake-up releases a burst).
            while next <= released && next < end {
                let _ = senders[k % senders.len()].send(released);
                k += 1;
                next = start + interval.mul_f64(k as f64);
            }
        }
        // Dropping the senders ends the connection tasks once they drain.
    });
    let result = join(tasks).await;
    let _ = pacer.join();
    result
}

/// Appends `trace` to `path` under a `# {label}` line: one
/// `release_us latency_us` line per request (microseconds since the first
/// release), in release order. Shows whether slow answers are spread out
/// or come in bursts (a stalled process or core delays every request
/// released meanwhile).
pub fn write_trace(
    path: &std::path::Path,
    label: &str,
    trace: &[(Instant, Duration)],
) -> std::io::Result<()> {
    use std::io::Write as _;
    let Some(start) = trace.iter().map(|(r, _)| *r).min() else {
        return Ok(());
    };
    let mut rows: Vec<(u128, u128)> = trace
        .iter()
        .map(|(r, l)| (r.duration_since(start).as_micros(), l.as_micros()))
        .collect();
    rows.sort_unstable();
    let mut f = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?,
    );
    writeln!(f, "# {label}")?;
    for (r, l) in rows {
        writeln!(f, "{r} {l}")?;
    }
    f.flush()
}

async fn join(tasks: Vec<tokio::task::JoinHandle<(Conn, Tally)>>) -> (Vec<Conn>, Tally) {
    let mut conns = Vec::with_capacity(tasks.len());
    let mut total = Tally::new();
    for t in tasks {
        match t.await {
            Ok((conn, tally)) => {
                conns.push(conn);
                total.merge(tally);
            }
            Err(e) => total.error(format!("load task failed: {e}")),
        }
    }
    (conns, total)
}
