//! Alibaba Cloud `ACS3-HMAC-SHA256` (the V3 signature of current SDKs).
//!
//! ```text
//! canonical_request = METHOD \n encode_path(path) \n canonical_query \n
//!                     canonical_headers \n signed_headers \n hashed_payload
//! string_to_sign    = "ACS3-HMAC-SHA256\n" + hex(sha256(canonical_request))
//! signature         = hex(HMAC-SHA256(secret, string_to_sign))
//! Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex
//! ```
//! Signers sign `host`, `content-type` and every `x-acs-*` header; verifiers
//! must use the `SignedHeaders` list the request carries.

use crate::encode::{canonical_query as encode_query, encode_path};

/// The algorithm name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Canonical query: keys sorted, `key=pct(value)`, empty value as `key=`.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    encode_query(params)
}

/// Canonical URI of a decoded path (`/` when empty).
pub fn canonical_uri(path: &str) -> String {
    encode_path(path)
}

/// Whether a signer includes this (lower-case) header by default.
pub fn is_default_signed(name: &str) -> bool {
    name == "host" || name == "content-type" || name.starts_with("x-acs-")
}

/// Canonical headers and the `;`-joined signed-header list.
///
/// `signed`: the names to sign (lower case); `None` picks the defaults
/// ([`is_default_signed`]). Values are trimmed. A name that appears more than
/// once (in any case) gives one line whose values are sorted and joined by
/// `,`, as the Go and Python SDKs do (vector `v3-openapi-util-python-head`).
/// The Java/Swift SDKs keep a single value instead (whichever their map
/// iterates last); that is an SDK quirk this function does not reproduce.
pub fn canonical_headers<N: AsRef<str>, V: AsRef<str>>(
    headers: &[(N, V)],
    signed: Option<&[String]>,
) -> (String, String) {
    let keep = |name: &str| match signed {
        Some(list) => list.iter().any(|s| s.eq_ignore_ascii_case(name)),
        None => is_default_signed(name),
    };
    crate::canonical::headers(headers, keep, crate::canonical::Repeated::JoinSorted)
}

/// The six-line canonical request.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    hashed_payload: &str,
) -> String {
    crate::canonical::request(
        method,
        canonical_uri,
        canonical_query,
        canonical_headers,
        signed_headers,
        hashed_payload,
    )
}

/// `ACS3-HMAC-SHA256\n` + hex(sha256(canonical_request)).
pub fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
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
        "{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// A parsed `Authorization: ACS3-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `Credential=`: the AccessKey id.
    pub access_key_id: String,
    /// `SignedHeaders=`: lower-case names, in the order given.
    pub signed_headers: Vec<String>,
    /// `Signature=`: lower-case hex.
    pub signature: String,
}

/// Why an `Authorization` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationError {
    /// The first word is not `ACS3-HMAC-SHA256`.
    Algorithm,
    /// A required part (`Credential`, `SignedHeaders`, `Signature`) is missing or empty.
    Missing(&'static str),
}

impl std::fmt::Display for AuthorizationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Algorithm => write!(f, "the Authorization algorithm is not {ALGORITHM}"),
            Self::Missing(part) => write!(f, "the Authorization header has no {part}"),
        }
    }
}

impl std::error::Error for AuthorizationError {}

impl Authorization {
    /// Parses `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`
    /// (parts separated by `,` with optional spaces, in any order).
    pub fn parse(value: &str) -> Result<Self, AuthorizationError> {
        let rest = value
            .trim()
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or(AuthorizationError::Algorithm)?;
        let (mut cred, mut signed, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            match k.trim() {
                "Credential" => cred = Some(v.trim().to_owned()),
                "SignedHeaders" => signed = Some(v.trim().to_owned()),
                "Signature" => sig = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        let access_key_id = cred
            .filter(|s| !s.is_empty())
            .ok_or(AuthorizationError::Missing("Credential"))?;
        let signed = signed
            .filter(|s| !s.is_empty())
            .ok_or(AuthorizationError::Missing("SignedHeaders"))?;
        let signature = sig
            .filter(|s| !s.is_empty())
            .ok_or(AuthorizationError::Missing("Signature"))?;
        Ok(Self {
            access_key_id,
            signed_headers: signed
                .split(';')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// Everything a V3 signature covers, with decoded names and values.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a, Q: AsRef<str>, H: AsRef<str>> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Decoded path (`""` means `/`).
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(Q, Q)],
    /// Headers as sent (names in any case).
    pub headers: &'a [(H, H)],
    /// hex(sha256(body)): the `x-acs-content-sha256` value.
    pub hashed_payload: &'a str,
}

/// What signing produced, kept for debugging output (`tollgate sign`).
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

/// Signs `req`; `signed`: the header names to sign, `None` for the defaults.
pub fn sign<Q: AsRef<str>, H: AsRef<str>>(
    req: &Request<'_, Q, H>,
    secret: &str,
    signed: Option<&[String]>,
) -> Signed {
    let (headers, signed_headers) = canonical_headers(req.headers, signed);
    let canonical_request = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query(req.query),
        &headers,
        &signed_headers,
        req.hashed_payload,
    );
    let string_to_sign = string_to_sign(&canonical_request);
    let signature = signature(secret, &string_to_sign);
    Signed {
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
    }
}

/// Recomputes the signature with the request's own `SignedHeaders` list and
/// compares in constant time. On mismatch returns what the server computed.
pub fn verify<Q: AsRef<str>, H: AsRef<str>>(
    req: &Request<'_, Q, H>,
    secret: &str,
    auth: &Authorization,
) -> Result<(), Signed> {
    let signed = sign(req, secret, Some(&auth.signed_headers));
    if crate::constant_time_eq(&signed.signature, &auth.signature) {
        Ok(())
    } else {
        Err(signed)
    }
}
