//! Building a signed Huawei call: the one place Huawei requests are signed on
//! the way out. The gateway uses it with the credentials the partner holds
//! for a customer; the tests and the demo use it with a customer's key.
//!
//! What is signed is what is sent: `host` (the upstream's authority, with
//! port), `x-sdk-date`, `x-domain-id` when given, and every extra header
//! passed in (`content-type` is sent but, as in every SDK, not signed).

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use tollgate_sign::huawei;

use crate::Body;

/// The AK/SK that signs.
#[derive(Debug, Clone, Copy)]
pub struct HuaweiKey<'a> {
    /// Access key id (AK).
    pub access_key_id: &'a str,
    /// Secret access key (SK).
    pub secret: &'a str,
}

/// An unsigned Huawei call.
#[derive(Debug, Clone)]
pub struct OutboundCall<'a> {
    /// HTTP method.
    pub method: Method,
    /// The path, percent-encoded as it goes on the wire.
    pub raw_path: &'a str,
    /// The query string as it goes on the wire (no `?`; may be empty).
    pub raw_query: &'a str,
    /// `X-Domain-Id`: the account acted on (global services such as BSS).
    pub domain_id: Option<&'a str>,
    /// Other headers to send and sign (lower-case names), e.g. `x-language`.
    pub extra_headers: Vec<(String, String)>,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'a str>,
    /// The body, byte for byte.
    pub body: Bytes,
}

/// Signs `call` for `authority` (`host[:port]`) at `sdk_date`
/// (`YYYYMMDDTHHMMSSZ`) and builds the request to `scheme://authority`.
pub fn signed_request(
    call: &OutboundCall<'_>,
    scheme: &str,
    authority: &str,
    key: HuaweiKey<'_>,
    sdk_date: &str,
) -> Request<Body> {
    let mut headers: Vec<(String, String)> = vec![
        ("host".to_owned(), authority.to_owned()),
        (huawei::DATE_HEADER.to_owned(), sdk_date.to_owned()),
    ];
    if let Some(d) = call.domain_id {
        headers.push(("x-domain-id".to_owned(), d.to_owned()));
    }
    headers.extend(call.extra_headers.iter().cloned());
    let signed_names = huawei::default_signed_headers(&headers);
    let path = tollgate_sign::encode::percent_decode(call.raw_path);
    let query: Vec<(String, String)> = form_urlencoded::parse(call.raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let signed = huawei::sign(
        &huawei::Request {
            method: call.method.as_str(),
            path: &path,
            query: &query,
            headers: &headers,
            body: &call.body,
        },
        key.secret,
        sdk_date,
        &signed_names,
    );
    let uri = if call.raw_query.is_empty() {
        format!("{scheme}://{authority}{}", call.raw_path)
    } else {
        format!("{scheme}://{authority}{}?{}", call.raw_path, call.raw_query)
    };
    let mut req = Request::new(Body::new(call.body.clone()));
    *req.method_mut() = call.method.clone();
    *req.uri_mut() = uri.parse().unwrap_or_default();
    let h = req.headers_mut();
    for (name, value) in &headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    }
    if let Some(ct) = call.content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&huawei::authorization(
        key.access_key_id,
        &signed.signed_headers,
        &signed.signature,
    )) {
        h.insert(header::AUTHORIZATION, v);
    }
    req
}
