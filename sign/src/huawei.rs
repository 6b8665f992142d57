//! Huawei Cloud APIG `SDK-HMAC-SHA256` (AK/SK signing of the official SDKs).
//!
//! ```text
//! canonical_request = METHOD \n canonical_uri \n canonical_query \n
//!                     canonical_headers \n signed_headers \n hashed_body
//! hashed_body       = X-Sdk-Content-Sha256 if sent (e.g. UNSIGNED-PAYLOAD), else hex(sha256(body))
//! canonical_uri     = each segment RFC 3986-encoded, always ending in '/'
//! string_to_sign    = "SDK-HMAC-SHA256\n" + X-Sdk-Date + "\n" + hex(sha256(canonical_request))
//! signature         = hex(HMAC-SHA256(secret, string_to_sign))
//! Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex
//! ```
//! The signed `host` includes the port; the body is hashed byte for byte.

use crate::encode::{canonical_query as encode_query, encode_path};

/// The algorithm name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The header that carries the signing time, `YYYYMMDDTHHMMSSZ`.
pub const DATE_HEADER: &str = "x-sdk-date";
/// The header whose value, when present, stands in for the body hash (the
/// SDKs send `UNSIGNED-PAYLOAD` for bodies that are not JSON).
pub const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";

/// Canonical URI: the decoded path encoded per segment, always ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let mut uri = encode_path(path);
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Canonical query: sorted by key, then by value for repeated keys.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    encode_query(params)
}

/// The headers current SDKs sign by default: all of them, lower-cased, but
/// `content-type` and names containing `_`.
pub fn default_signed_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.as_ref().trim().to_ascii_lowercase())
        .filter(|n| n != "content-type" && !n.contains('_'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Canonical headers (`name:value\n` each, sorted) and the `;`-joined list for `signed`.
/// A repeated header keeps its last value.
pub fn canonical_headers<N: AsRef<str>, V: AsRef<str>>(
    headers: &[(N, V)],
    signed: &[String],
) -> (String, String) {
    let keep = |name: &str| signed.iter().any(|s| s.eq_ignore_ascii_case(name));
    crate::canonical::headers(headers, keep, crate::canonical::Repeated::Last)
}

/// The last line of the canonical request: the value of
/// `X-Sdk-Content-Sha256` when the request carries one, else hex(sha256(body)).
///
/// The SDK signers (`CanonicalRequest` in the Go SDK, the APIG demo signers)
/// do exactly this, whether or not that header is itself signed; APIG
/// recomputes the same way, so a verifier must too. Whether to accept
/// `UNSIGNED-PAYLOAD` at all is the caller's policy.
pub fn hashed_body<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)], body: &[u8]) -> String {
    headers
        .iter()
        .find(|(n, _)| {
            n.as_ref()
                .trim()
                .eq_ignore_ascii_case(CONTENT_SHA256_HEADER)
        })
        .map_or_else(
            || crate::sha256_hex(body),
            |(_, v)| v.as_ref().trim().to_owned(),
        )
}

/// The six-line canonical request.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    hashed_body: &str,
) -> String {
    crate::canonical::request(
        method,
        canonical_uri,
        canonical_query,
        canonical_headers,
        signed_headers,
        hashed_body,
    )
}

/// `SDK-HMAC-SHA256\n{sdk_date}\n{hex(sha256(canonical_request))}`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        crate::sha256_hex(canonical_request.as_bytes())
    )
}

/// hex(HMAC-SHA256(secret, string_to_sign)).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    crate::canonical::hex_hmac_sha256(secret, string_to_sign)
}

/// The `Authorization` header value.
pub fn authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "{ALGORITHM} Access={access_key_id}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// A parsed `Authorization: SDK-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `Access=`: the AK.
    pub access_key_id: String,
    /// `SignedHeaders=`: lower-case names.
    pub signed_headers: Vec<String>,
    /// `Signature=`: lower-case hex.
    pub signature: String,
}

impl Authorization {
    /// Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`.
    /// Returns `None` when the algorithm differs or a part is missing.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix(ALGORITHM)?;
        if !rest.starts_with(' ') {
            return None;
        }
        let (mut ak, mut signed, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            match k.trim() {
                "Access" => ak = Some(v.trim().to_owned()),
                "SignedHeaders" => signed = Some(v.trim().to_owned()),
                "Signature" => sig = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        Some(Self {
            access_key_id: ak.filter(|s| !s.is_empty())?,
            signed_headers: signed
                .filter(|s| !s.is_empty())?
                .split(';')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            signature: sig.filter(|s| !s.is_empty())?.to_ascii_lowercase(),
        })
    }
}

/// Everything an SDK-HMAC-SHA256 signature covers, decoded.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a, Q: AsRef<str>, H: AsRef<str>> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Decoded path.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(Q, Q)],
    /// Headers as sent; must include `host` and `x-sdk-date` when signed.
    pub headers: &'a [(H, H)],
    /// The raw body bytes (hashed unless `X-Sdk-Content-Sha256` is sent, see [`hashed_body`]).
    pub body: &'a [u8],
}

/// What signing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// `;`-joined signed header names.
    pub signed_headers: String,
    /// hex signature.
    pub signature: String,
}

/// Signs `req` with the given signed-header names at `sdk_date`.
pub fn sign<Q: AsRef<str>, H: AsRef<str>>(
    req: &Request<'_, Q, H>,
    secret: &str,
    sdk_date: &str,
    signed: &[String],
) -> Signed {
    let (headers, signed_headers) = canonical_headers(req.headers, signed);
    let canonical_request = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query(req.query),
        &headers,
        &signed_headers,
        &hashed_body(req.headers, req.body),
    );
    let string_to_sign = string_to_sign(sdk_date, &canonical_request);
    let signature = signature(secret, &string_to_sign);
    Signed {
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
    }
}

/// Recomputes with the request's own `SignedHeaders` and compares in constant time.
pub fn verify<Q: AsRef<str>, H: AsRef<str>>(
    req: &Request<'_, Q, H>,
    secret: &str,
    sdk_date: &str,
    auth: &Authorization,
) -> Result<(), Signed> {
    let signed = sign(req, secret, sdk_date, &auth.signed_headers);
    if crate::constant_time_eq(&signed.signature, &auth.signature) {
        Ok(())
    } else {
        Err(signed)
    }
}
