//! Building a signed Alibaba RPC call: the one place requests are signed on
//! the way out. The gateway uses it with the partner's key (`resign`); the
//! demo, the bench and the tests use it with a customer's key.

use bytes::Bytes;
use http::{Method, Request, header};
use tollgate_sign::{aliyun_rpc, aliyun_v3};

use crate::Body;
use crate::config::OutboundScheme;

/// The key that signs.
#[derive(Debug, Clone, Copy)]
pub struct SigningKey<'a> {
    /// AccessKey id.
    pub access_key_id: &'a str,
    /// Its secret.
    pub secret: &'a str,
}

/// An unsigned RPC call: action, version and business parameters.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// `GET` or `POST`.
    pub method: Method,
    /// `Action`.
    pub action: String,
    /// `Version`.
    pub version: String,
    /// Business parameters for the query string.
    pub query: Vec<(String, String)>,
    /// Business parameters for a form body (sent only when non-empty).
    pub form: Vec<(String, String)>,
}

/// Per-request signing inputs that must be fresh each time.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// `Timestamp` / `x-acs-date`, Alibaba format.
    pub timestamp: String,
    /// `SignatureNonce` / `x-acs-signature-nonce`.
    pub nonce: String,
}

impl Freshness {
    /// Now, with a random nonce.
    pub fn now() -> Self {
        // The timestamp has whole seconds: each thread formats it once per
        // second instead of once per forwarded call.
        thread_local! {
            static FORMATTED: std::cell::RefCell<(i64, String)> =
                const { std::cell::RefCell::new((i64::MIN, String::new())) };
        }
        let now = time::OffsetDateTime::now_utc();
        let timestamp = FORMATTED.with_borrow_mut(|(second, text)| {
            if *second != now.unix_timestamp() {
                *second = now.unix_timestamp();
                *text = super::format_timestamp(now);
            }
            text.clone()
        });
        Self {
            timestamp,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// `k=v&...`, each side RFC 3986-encoded (space as %20, which every server decodes).
fn encode_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        tollgate_sign::encode::percent_encode_into(&mut out, k.as_ref());
        out.push('=');
        tollgate_sign::encode::percent_encode_into(&mut out, v.as_ref());
    }
    out
}

impl OutboundCall {
    /// Signs the call for `authority` (`host:port`, also the signed `Host`)
    /// and returns the HTTP request, with an absolute URI so it can be sent as is.
    pub fn sign(
        &self,
        scheme: OutboundScheme,
        authority: &str,
        key: SigningKey<'_>,
        fresh: &Freshness,
    ) -> Request<Body> {
        OutboundParts {
            method: &self.method,
            action: &self.action,
            version: &self.version,
            query: self
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            form: self
                .form
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
        .sign(scheme, authority, key, fresh)
    }
}

/// An [`OutboundCall`] that borrows its parameters: the request path
/// re-signs a customer's call from the parsed call's own strings, without
/// copying them.
#[derive(Debug, Clone)]
pub struct OutboundParts<'a> {
    /// `GET` or `POST`.
    pub method: &'a Method,
    /// `Action`.
    pub action: &'a str,
    /// `Version`.
    pub version: &'a str,
    /// Business parameters for the query string (decoded).
    pub query: Vec<(&'a str, &'a str)>,
    /// Business parameters for a form body (decoded); empty: no body.
    pub form: Vec<(&'a str, &'a str)>,
}

impl OutboundParts<'_> {
    /// Signs the call for `authority` (`host:port`, also the signed `Host`)
    /// and returns the HTTP request, with an absolute URI so it can be sent as is.
    pub fn sign(
        &self,
        scheme: OutboundScheme,
        authority: &str,
        key: SigningKey<'_>,
        fresh: &Freshness,
    ) -> Request<Body> {
        let form_body = encode_pairs(&self.form);
        let has_body = !self.form.is_empty();
        let mut builder = Request::builder()
            .method(self.method.clone())
            .header(header::HOST, authority);
        if has_body {
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let uri_query = match scheme {
            OutboundScheme::Rpc => {
                let common = [
                    ("Action", self.action),
                    ("Version", self.version),
                    ("AccessKeyId", key.access_key_id),
                    ("SignatureMethod", aliyun_rpc::SIGNATURE_METHOD),
                    ("SignatureVersion", aliyun_rpc::SIGNATURE_VERSION),
                    ("SignatureNonce", fresh.nonce.as_str()),
                    ("Timestamp", fresh.timestamp.as_str()),
                ];
                // One pass: business parameters minus any stale copy of the
                // common ones, then the fresh common ones.
                let mut query: Vec<(&str, &str)> = self
                    .query
                    .iter()
                    .copied()
                    .filter(|(k, _)| !common.iter().any(|(c, _)| c == k))
                    .collect();
                query.extend(common);
                if !query.iter().any(|(k, _)| *k == "Format")
                    && !self.form.iter().any(|(k, _)| *k == "Format")
                {
                    query.push(("Format", "JSON"));
                }
                let signed_query = query.len();
                query.extend(self.form.iter().copied());
                let canonical = aliyun_rpc::canonicalized_query(&query);
                let signature = aliyun_rpc::signature_of_canonical(
                    key.secret,
                    self.method.as_str(),
                    &canonical,
                );
                // Without a form body the canonical string is exactly the
                // encoded query the URI needs; with one, the query carries
                // only its own parameters.
                let mut uri_query = if has_body {
                    encode_pairs(&query[..signed_query])
                } else {
                    canonical
                };
                uri_query.push_str("&Signature=");
                tollgate_sign::encode::percent_encode_into(&mut uri_query, &signature);
                uri_query
            }
            OutboundScheme::V3 => {
                let query: Vec<(&str, &str)> = self
                    .query
                    .iter()
                    .copied()
                    .filter(|(k, _)| *k != "Action" && *k != "Version")
                    .collect();
                let hashed = tollgate_sign::sha256_hex(form_body.as_bytes());
                let mut headers: Vec<(String, String)> = vec![
                    ("host".into(), authority.to_owned()),
                    ("x-acs-action".into(), self.action.to_owned()),
                    ("x-acs-version".into(), self.version.to_owned()),
                    ("x-acs-date".into(), fresh.timestamp.clone()),
                    ("x-acs-signature-nonce".into(), fresh.nonce.clone()),
                    ("x-acs-content-sha256".into(), hashed.clone()),
                ];
                if has_body {
                    headers.push((
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ));
                }
                let req = aliyun_v3::Request {
                    method: self.method.as_str(),
                    path: "/",
                    query: &query,
                    headers: &headers,
                    hashed_payload: &hashed,
                };
                let signed = aliyun_v3::sign(&req, key.secret, None);
                for (k, v) in headers.iter().filter(|(k, _)| k.starts_with("x-acs-")) {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                builder = builder.header(
                    header::AUTHORIZATION,
                    aliyun_v3::authorization(
                        key.access_key_id,
                        &signed.signed_headers,
                        &signed.signature,
                    ),
                );
                encode_pairs(&query)
            }
        };
        let uri = format!("http://{authority}/?{uri_query}");
        builder
            .uri(uri)
            .body(Body::new(Bytes::from(form_body)))
            .unwrap_or_else(|_| Request::new(Body::default()))
    }
}
