//! A small signing client for Alibaba RPC calls, the way an official SDK
//! signs them. The demo, the bench and the end-to-end tests call through
//! the gateway with it; nothing in the request path uses it.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Body;
use crate::aliyun::outbound::{Freshness, OutboundCall, SigningKey};
use crate::config::OutboundScheme;

/// An answer, parsed as JSON when it is JSON.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// The body as JSON (`Null` when not JSON).
    pub json: serde_json::Value,
    /// The raw body.
    pub body: Bytes,
    /// The `x-tollgate-request-id` header, when the gateway answered.
    pub tollgate_request_id: Option<String>,
    /// The `x-tollgate-pricing-module` header: which pricing module priced
    /// the answer (`name@version sha256:prefix`), when one did.
    pub pricing_module: Option<String>,
    /// The `x-tollgate-policy-version` header: the policy snapshot that
    /// served the answer.
    pub policy_version: Option<String>,
}

impl Reply {
    /// The `Code` of an error (or BSS success) envelope; for Huawei
    /// answers, the `error_code`.
    pub fn code(&self) -> &str {
        self.json
            .get("Code")
            .or_else(|| self.json.get("error_code"))
            .and_then(|c| c.as_str())
            .unwrap_or("")
    }
}

/// Signs and sends calls to one endpoint with one key.
#[derive(Debug, Clone)]
pub struct AliyunClient {
    http: Client<HttpConnector, Body>,
    /// `host:port` of the endpoint.
    pub authority: String,
    /// AccessKey id.
    pub access_key_id: String,
    secret: String,
    /// Signature scheme used.
    pub scheme: OutboundScheme,
}

impl AliyunClient {
    /// A client for `authority` signing with `(access_key_id, secret)`.
    pub fn new(authority: &str, access_key_id: &str, secret: &str, scheme: OutboundScheme) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            authority: authority.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret: secret.to_owned(),
            scheme,
        }
    }

    /// The signed request for `action` with `params` (POST, params in the query).
    pub fn request(&self, action: &str, version: &str, params: &[(&str, &str)]) -> Request<Body> {
        self.request_with(Method::POST, action, version, params, &Freshness::now())
    }

    /// The signed request with an explicit method and freshness.
    pub fn request_with(
        &self,
        method: Method,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
        fresh: &Freshness,
    ) -> Request<Body> {
        let call = OutboundCall {
            method,
            action: action.to_owned(),
            version: version.to_owned(),
            query: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            form: Vec::new(),
        };
        call.sign(
            self.scheme,
            &self.authority,
            SigningKey {
                access_key_id: &self.access_key_id,
                secret: &self.secret,
            },
            fresh,
        )
    }

    /// Sends a prepared request.
    pub async fn send(&self, req: Request<Body>) -> anyhow::Result<Reply> {
        let resp = tokio::time::timeout(Duration::from_secs(30), self.http.request(req)).await??;
        let status = resp.status();
        let tollgate_request_id = resp
            .headers()
            .get(crate::proxy::REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let pricing_module = resp
            .headers()
            .get(crate::pricing::MODULE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let policy_version = resp
            .headers()
            .get(crate::proxy::POLICY_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.into_body().collect().await?.to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok(Reply {
            status,
            json,
            body,
            tollgate_request_id,
            pricing_module,
            policy_version,
        })
    }

    /// Signs and sends `action`.
    pub async fn call(
        &self,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.send(self.request(action, version, params)).await
    }
}

/// A small signing client for Huawei calls (`SDK-HMAC-SHA256`, as the
/// official SDKs sign with global credentials). The demo uses it; nothing
/// in the request path does.
#[derive(Debug, Clone)]
pub struct HuaweiClient {
    inner: AliyunClient,
    domain_id: Option<String>,
}

impl HuaweiClient {
    /// A client for `authority` signing with `(access_key_id, secret)`,
    /// sending `X-Domain-Id: domain_id` when given.
    pub fn new(
        authority: &str,
        access_key_id: &str,
        secret: &str,
        domain_id: Option<&str>,
    ) -> Self {
        Self {
            inner: AliyunClient::new(authority, access_key_id, secret, OutboundScheme::Rpc),
            domain_id: domain_id.map(str::to_owned),
        }
    }

    /// Signs and sends `method path?query` with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<Reply> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let body = body.map(ToString::to_string).unwrap_or_default();
        let call = crate::huawei::outbound::OutboundCall {
            method,
            raw_path: path,
            raw_query: query,
            domain_id: self.domain_id.as_deref(),
            extra_headers: Vec::new(),
            content_type: (!body.is_empty()).then_some("application/json;charset=UTF-8"),
            body: Bytes::from(body),
        };
        let req = crate::huawei::outbound::signed_request(
            &call,
            "http",
            &self.inner.authority,
            crate::huawei::outbound::HuaweiKey {
                access_key_id: &self.inner.access_key_id,
                secret: &self.inner.secret,
            },
            &crate::huawei::call::format_sdk_date(time::OffsetDateTime::now_utc()),
        );
        self.inner.send(req).await
    }
}
