//! Steps: classify (which upstream serves the call) and forward (send it
//! with pooling and timeouts, read the answer with a size cap).
//!
//! Forwarding failures keep their meaning: a connect failure means the
//! provider never saw the call (safe to retry); a timeout or a reset after
//! sending means the outcome is unknown (not safe to blindly retry a
//! purchase), and the error says so.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use thread_local::ThreadLocal;

use crate::Body;
use crate::config::{OutboundScheme, UpstreamConfig};
use crate::error::Error;

/// One configured upstream endpoint.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Product name (`bssopenapi`).
    pub product: String,
    /// `host:port` to connect to and sign as `Host`.
    pub authority: String,
    /// Outbound signature scheme.
    pub scheme: OutboundScheme,
    /// Whole-call timeout.
    pub timeout: Duration,
}

/// Upstreams sharing one `Version`, each with the inbound hosts that pick it.
type Candidates = Vec<(Vec<String>, Arc<Upstream>)>;

/// The routing table: `Version` (and optionally `Host`) → upstream.
#[derive(Debug, Default)]
pub struct Routes {
    by_version: HashMap<String, Candidates>,
}

impl Routes {
    /// Builds the table from config.
    pub fn from_config(upstreams: &[UpstreamConfig]) -> anyhow::Result<Self> {
        let mut by_version: HashMap<String, Candidates> = HashMap::new();
        for u in upstreams {
            let uri: http::Uri = u.url.parse()?;
            let authority = uri
                .authority()
                .map(|a| a.to_string())
                .ok_or_else(|| anyhow::anyhow!("upstream {} has no host", u.product))?;
            let up = Arc::new(Upstream {
                product: u.product.clone(),
                authority,
                scheme: u.signature,
                timeout: Duration::from_millis(u.timeout_ms),
            });
            let hosts = u.hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
            by_version
                .entry(u.version.clone())
                .or_default()
                .push((hosts, up));
        }
        Ok(Self { by_version })
    }

    /// The upstream for a call with this `Version`, addressed to `host`.
    ///
    /// An upstream listing the host wins; otherwise one that lists no hosts.
    pub fn route(&self, version: &str, host: &str) -> Option<&Arc<Upstream>> {
        let candidates = self.by_version.get(version)?;
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .to_ascii_lowercase();
        candidates
            .iter()
            .find(|(hosts, _)| hosts.contains(&host))
            .or_else(|| candidates.iter().find(|(hosts, _)| hosts.is_empty()))
            .map(|(_, u)| u)
    }
}

/// A complete upstream answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`, if any.
    pub content_type: Option<http::HeaderValue>,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The same answer (status, content type) with another body: a
    /// re-priced one.
    pub fn with_body(self, body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            ..self
        }
    }
}

/// The pooled HTTP client to the providers.
///
/// One client (and so one connection pool) per thread that forwards: on
/// the gateway's request threads (`server::workers`) a call and its
/// upstream connection then stay on one thread, with no cross-thread
/// wake-ups and no pool lock shared between threads.
#[derive(Debug, Clone)]
pub struct Forwarder {
    clients: Arc<ThreadLocal<Client<HttpConnector, Body>>>,
    connect_timeout: Duration,
    max_body: usize,
}

/// How long an idle pooled connection is kept. 90 s: below the providers'
/// and load balancers' usual idle cut-offs, so we close first.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per upstream host. 256: enough for bursts of a
/// few hundred concurrent calls without reconnect storms.
pub const POOL_MAX_IDLE_PER_HOST: usize = 256;

impl Forwarder {
    /// `connect_timeout`: TCP connect limit; `max_body`: largest answer read.
    pub fn new(connect_timeout: Duration, max_body: usize) -> Self {
        Self {
            clients: Arc::new(ThreadLocal::new()),
            connect_timeout,
            max_body,
        }
    }

    /// This thread's client, made on first use.
    fn client(&self) -> &Client<HttpConnector, Body> {
        self.clients.get_or(|| {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(self.connect_timeout));
            connector.set_nodelay(true);
            connector.set_keepalive(Some(Duration::from_secs(60)));
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector)
        })
    }

    /// Sends `req` and reads the whole answer within `timeout`.
    pub async fn send(&self, req: Request<Body>, timeout: Duration) -> Result<Answer, Error> {
        let fut = async {
            let resp: Response<hyper::body::Incoming> =
                self.client().request(req).await.map_err(|e| {
                    if e.is_connect() {
                        Error::upstream(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "ServiceUnavailable",
                            "The request has failed due to a temporary failure of the server.",
                            "upstream_connect",
                            true,
                        )
                    } else {
                        unknown_outcome(
                            "the connection to the provider failed after the call was sent",
                        )
                    }
                })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|_| unknown_outcome("the provider's answer was cut off or too large"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                content_type: parts.headers.get(http::header::CONTENT_TYPE).cloned(),
                body,
            })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(res) => res,
            Err(_) => Err(Error::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "ServiceTimeout",
                "The provider did not answer in time; the outcome of the call is unknown. Query before retrying a purchase.",
                "upstream_timeout",
                false,
            )),
        }
    }
}

fn unknown_outcome(what: &str) -> Error {
    Error::upstream(
        StatusCode::BAD_GATEWAY,
        "ServiceUnavailable",
        format!("{what}; the outcome of the call is unknown. Query before retrying a purchase."),
        "upstream_reset",
        false,
    )
}

#[cfg(test)]
mod tests;
