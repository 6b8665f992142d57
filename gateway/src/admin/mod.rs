//! The admin API: operators' HTTP interface, on its own listener.
//!
//! * Never on the customer listener: a customer who can reach the gateway
//!   cannot reach the admin API unless the operator exposes it.
//! * Every request needs `Authorization: Bearer <token>`; the token is a
//!   secret by reference (`secret_file` / `secret_env`) and is compared in
//!   constant time.
//! * JSON in, JSON out; errors are `{"error":{"code","message"}}` with a
//!   meaningful status.
//!
//! Routes are matched in [`AdminApi::route`], one arm per endpoint, each
//! delegating to a handler in a sibling module.

pub mod budget;
mod policy;
mod reload;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Body;
use crate::reload::Reloader;
use crate::secret::{ExposeSecret as _, SecretRef, SecretString};

/// `[admin]` in the gateway config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where the admin API listens. Keep it on loopback or a private network.
    pub listen: SocketAddr,
    /// The bearer token: `secret_file` or `secret_env`.
    #[serde(flatten)]
    pub token: SecretRef,
}

/// Largest admin request body: 1 MiB (admin calls are small JSON documents).
pub const MAX_ADMIN_BODY: usize = 1 << 20;

/// One parsed admin request.
#[derive(Debug)]
pub struct AdminRequest {
    /// HTTP method.
    pub method: Method,
    /// Path segments after the leading `/` (`["v1", "status"]`).
    pub segments: Vec<String>,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl AdminRequest {
    /// The first query value of `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON of type `T`, or a 400 naming the problem.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, AdminError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| AdminError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// An admin API failure.
#[derive(Debug)]
pub struct AdminError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl AdminError {
    /// 400 `InvalidRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidRequest",
            message: message.into(),
        }
    }

    /// 404 `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "NotFound",
            message: message.into(),
        }
    }

    /// 409 `Conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "Conflict",
            message: message.into(),
        }
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalError",
            message: message.into(),
        }
    }
}

/// What a handler returns.
pub type AdminResult = Result<(StatusCode, Value), AdminError>;

/// The admin API bound to a running gateway (whichever policy version is
/// active when a request arrives).
#[derive(Debug)]
pub struct AdminApi {
    reloader: Arc<Reloader>,
    token: SecretString,
}

impl AdminApi {
    /// An admin API for the gateway `reloader` runs, guarded by `token`.
    pub fn new(reloader: Arc<Reloader>, token: SecretString) -> Self {
        Self { reloader, token }
    }

    /// Handles one admin request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        if !self.authorized(req.headers()) {
            tracing::warn!(%peer, path = req.uri().path(), "admin request without a valid token");
            let mut resp = error_response(&AdminError {
                status: StatusCode::UNAUTHORIZED,
                code: "Unauthorized",
                message: "a valid `Authorization: Bearer <token>` header is required".into(),
            });
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
        if req.method() == Method::GET && req.uri().path() == "/metrics" {
            // Prometheus text (scrapers send the same bearer token). Served
            // here only: the customer listener does not expose operational
            // figures to customers.
            let text = self.reloader.current().metrics().encode();
            let mut resp = Response::new(Body::new(bytes::Bytes::from(text)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return resp;
        }
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_ADMIN_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error_response(&AdminError::bad_request(
                    "body unreadable or larger than 1 MiB",
                ));
            }
        };
        let request = AdminRequest {
            method: parts.method,
            segments: parts
                .uri
                .path()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            body,
        };
        let result = self.route(&request).await;
        match result {
            Ok((status, value)) => json_response(status, &value),
            Err(e) => {
                tracing::info!(%peer, code = e.code, status = e.status.as_u16(), message = %e.message, "admin request refused");
                error_response(&e)
            }
        }
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(token) = value.strip_prefix("Bearer ") else {
            return false;
        };
        tollgate_sign::constant_time_eq(token.trim(), self.token.expose_secret())
    }

    /// The route table.
    async fn route(&self, req: &AdminRequest) -> AdminResult {
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let gateway = self.reloader.current();
        match (&req.method, segs.as_slice()) {
            (&Method::GET, ["v1", "status"]) => Ok((StatusCode::OK, self.status(&gateway))),
            (&Method::GET, ["v1", "policy", "explain"]) => policy::explain(&gateway, req),
            (&Method::GET, ["v1", "policy", "status"]) => {
                Ok((StatusCode::OK, self.reloader.status()))
            }
            (&Method::POST, ["v1", "policy", "reload"]) => Ok(reload::reload(&self.reloader).await),
            (&Method::POST, ["v1", "policy", "rollback"]) => reload::rollback(&self.reloader).await,
            (&Method::GET, ["v1", "budgets"]) => budget::list(gateway.ledger()).await,
            (&Method::POST, ["v1", "budgets", c]) => budget::create(gateway.ledger(), c, req).await,
            (&Method::GET, ["v1", "budgets", c]) => budget::get(gateway.ledger(), c).await,
            (&Method::PUT, ["v1", "budgets", c, "quota"]) => {
                budget::set_quota(gateway.ledger(), c, req).await
            }
            (&Method::POST, ["v1", "budgets", c, "consumption"]) => {
                budget::change_consumption(gateway.ledger(), c, req).await
            }
            (&Method::PUT, ["v1", "budgets", c, "status"]) => {
                budget::set_status(gateway.ledger(), c, req).await
            }
            (&Method::PUT, ["v1", "budgets", c, "alarm-thresholds"]) => {
                budget::set_thresholds(gateway.ledger(), c, req).await
            }
            (&Method::GET, ["v1", "budgets", c, "holds"]) => {
                budget::holds(gateway.ledger(), c, req).await
            }
            (&Method::GET, ["v1", "budgets", c, "entries"]) => {
                budget::entries(gateway.ledger(), c, req).await
            }
            (&Method::GET, ["v1", "budgets", c, "verify"]) => {
                budget::verify(gateway.ledger(), c).await
            }
            _ => Err(AdminError::not_found(format!(
                "no admin endpoint {} /{}",
                req.method,
                req.segments.join("/")
            ))),
        }
    }

    fn status(&self, gateway: &crate::proxy::Gateway) -> Value {
        json!({
            "service": "tollgate",
            "version": env!("CARGO_PKG_VERSION"),
            "keys": gateway.key_count(),
            "policy_version": gateway.version(),
        })
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::new(Bytes::from(
        serde_json::to_vec(value).unwrap_or_default(),
    )));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &AdminError) -> Response<Body> {
    json_response(
        e.status,
        &json!({ "error": { "code": e.code, "message": e.message } }),
    )
}
