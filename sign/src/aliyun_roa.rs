//! Alibaba Cloud ROA signature (`Authorization: acs AK:signature`).
//!
//! ```text
//! string_to_sign = METHOD \n Accept \n Content-MD5 \n Content-Type \n Date \n
//!                  canonicalized_headers canonicalized_resource
//! canonicalized_headers  = for every x-acs-* header, sorted by lower-case name: "name:value\n"
//! canonicalized_resource = path [ "?" sorted(k=v | k) joined by "&" ]
//! signature      = base64(HMAC-SHA1(secret, string_to_sign))
//! Authorization: acs AK:signature
//! ```
//!
//! Unlike RPC and V3, nothing in the resource is percent-encoded: the SDKs sign
//! the *decoded* path and query values (`val ue`, `http://domain/?q=v`), so
//! callers pass decoded strings and this module writes them as they are.
//! The body is not signed directly; only its `Content-MD5` header is (see
//! [`content_md5`]); checking that header against the body is the caller's job.
//!
//! Two SDK differences are options ([`Options`]):
//! - an empty query value is written `k=` by `aliyunsdkcore` (Python) and bare
//!   `k` by the darabonba `openapi-util` and the Go SDK ([`EmptyValue`]);
//!   [`verify`] accepts both.
//! - the Go SDK's `buildRoaStringToSign` skips the line of an absent standard
//!   header instead of writing an empty one ([`AbsentStdHeaders::Omit`]). Real
//!   Go requests always carry all four, so this only matters to reproduce its
//!   unit tests; [`verify`] does not try it.

use base64::Engine as _;
use md5::Digest as _;

/// The scheme word of the `Authorization` header.
pub const SCHEME: &str = "acs";
/// The prefix of the headers signed as `name:value` lines (lower case).
pub const HEADER_PREFIX: &str = "x-acs-";
/// The standard headers whose values form lines 2–5, in that order (lower case).
pub const STD_HEADERS: [&str; 4] = ["accept", "content-md5", "content-type", "date"];

/// How a query parameter with an empty (`Some("")`) value is written.
///
/// A `None` value is always a bare key, whatever this says: that is how
/// `aliyunsdkcore` writes a parameter that has no value at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyValue {
    /// `k=`: `aliyunsdkcore` (the older Python core SDK).
    #[default]
    KeyEquals,
    /// `k`: darabonba `openapi-util` (all languages) and the Go SDK.
    BareKey,
}

/// What to write for a standard header (`Accept`, `Content-MD5`,
/// `Content-Type`, `Date`) the request does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbsentStdHeaders {
    /// An empty line: what every SDK puts on the wire.
    #[default]
    EmptyLine,
    /// No line at all. Go SDK quirk (`appendIfContain` in
    /// `buildRoaStringToSign`), visible only in its unit tests because real Go
    /// requests always set all four headers first.
    Omit,
}

/// The SDK differences that change the string to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// How an empty query value is written.
    pub empty_value: EmptyValue,
    /// What an absent standard header contributes.
    pub absent_std_headers: AbsentStdHeaders,
}

/// All values of the header `name` (case-insensitive), in the order given.
fn header_values<'h, N: AsRef<str>, V: AsRef<str>>(
    headers: &'h [(N, V)],
    name: &str,
) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.as_ref().trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
        .collect()
}

/// Joins repeated values of one header. SDKs never send a name twice (their
/// headers are maps), so this is our choice: HTTP's field combination with
/// `,`, values sorted so the result does not depend on wire order, as V3 does.
fn join_values(mut values: Vec<&str>) -> String {
    values.sort_unstable();
    values.join(",")
}

/// The `x-acs-*` lines: lower-case name, sorted, `name:value\n` each.
///
/// Values are written as given, not trimmed: the SDKs sign their own header
/// map untouched (and an HTTP server has already stripped surrounding spaces
/// by the time a verifier sees them).
pub fn canonicalized_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> String {
    let mut map: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
    for (n, v) in headers {
        let name = n.as_ref().trim().to_ascii_lowercase();
        if name.starts_with(HEADER_PREFIX) {
            map.entry(name).or_default().push(v.as_ref());
        }
    }
    let mut out = String::new();
    for (name, values) in map {
        out.push_str(&name);
        out.push(':');
        out.push_str(&join_values(values));
        out.push('\n');
    }
    out
}

/// `path`, then `?` and the query sorted by name, when there is a query.
///
/// Names and values are written decoded, as given. Repeated names keep their
/// order (stable sort): the SDKs hold the query in a map and cannot produce
/// them, so the wire order is the only order there is.
pub fn canonicalized_resource<K: AsRef<str>, V: AsRef<str>>(
    path: &str,
    query: &[(K, Option<V>)],
    empty_value: EmptyValue,
) -> String {
    let mut pairs: Vec<(&str, Option<&str>)> = query
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref().map(AsRef::as_ref)))
        .collect();
    // Byte order: upper case sorts before lower case, as the C# vector shows.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::with_capacity(
        path.len()
            + 1
            + pairs
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, str::len) + 2)
                .sum::<usize>(),
    );
    out.push_str(path);
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        match v {
            None => {}
            Some("") if empty_value == EmptyValue::BareKey => {}
            Some(v) => {
                out.push('=');
                out.push_str(v);
            }
        }
    }
    out
}

/// The full string to sign.
///
/// `headers`: as sent, names in any case; `path` and `query`: decoded.
pub fn string_to_sign<N: AsRef<str>, H: AsRef<str>, K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    headers: &[(N, H)],
    path: &str,
    query: &[(K, Option<V>)],
    options: Options,
) -> String {
    let mut out = String::new();
    out.push_str(method);
    out.push('\n');
    for name in STD_HEADERS {
        let values = header_values(headers, name);
        if values.is_empty() && options.absent_std_headers == AbsentStdHeaders::Omit {
            continue;
        }
        out.push_str(&join_values(values));
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(headers));
    out.push_str(&canonicalized_resource(path, query, options.empty_value));
    out
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`: the bare secret, no `&`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mac = crate::hmac_sha1(secret.as_bytes(), string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// `base64(md5(body))`, the `Content-MD5` value that stands for the body in
/// the string to sign.
pub fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// The `Authorization` header value, `acs AK:signature`.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("{SCHEME} {access_key_id}:{signature}")
}

/// A parsed `Authorization: acs AK:signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The AccessKey id.
    pub access_key_id: String,
    /// The base64 signature, as sent (base64 is case-sensitive).
    pub signature: String,
}

/// Why an `acs` `Authorization` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationError {
    /// The first word is not `acs`.
    Scheme,
    /// The AccessKey id or the signature is missing or empty.
    Missing(&'static str),
    /// Extra `:` or whitespace inside `AK:signature`.
    Malformed,
}

impl std::fmt::Display for AuthorizationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scheme => write!(f, "the Authorization scheme is not {SCHEME}"),
            Self::Missing(part) => write!(f, "the Authorization header has no {part}"),
            Self::Malformed => write!(f, "the Authorization header is not `{SCHEME} AK:signature`"),
        }
    }
}

impl std::error::Error for AuthorizationError {}

impl Authorization {
    /// Parses `acs AK:signature` (surrounding whitespace allowed).
    ///
    /// Strict inside the credential: neither part may hold whitespace, and
    /// there is exactly one `:`, since neither AccessKey ids nor base64 ever
    /// contain one. Being strict here keeps odd inputs from reaching a lookup.
    pub fn parse(value: &str) -> Result<Self, AuthorizationError> {
        let rest = value
            .trim()
            .strip_prefix(SCHEME)
            .filter(|r| r.starts_with([' ', '\t']))
            .ok_or(AuthorizationError::Scheme)?
            .trim_start();
        let (ak, sig) = rest
            .split_once(':')
            .ok_or(AuthorizationError::Missing("`:`"))?;
        if ak.is_empty() {
            return Err(AuthorizationError::Missing("AccessKey id"));
        }
        if sig.is_empty() {
            return Err(AuthorizationError::Missing("signature"));
        }
        if sig.contains(':') || rest.chars().any(char::is_whitespace) {
            return Err(AuthorizationError::Malformed);
        }
        Ok(Self {
            access_key_id: ak.to_owned(),
            signature: sig.to_owned(),
        })
    }
}

/// Everything an ROA signature covers, decoded.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a, K: AsRef<str>, V: AsRef<str>, H: AsRef<str>> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Decoded path, written as is (`""` stays empty, no `/` is added).
    pub path: &'a str,
    /// Decoded query; `None` is a parameter without a value (bare key).
    pub query: &'a [(K, Option<V>)],
    /// Headers as sent (names in any case).
    pub headers: &'a [(H, H)],
}

/// What signing produced, kept for debugging output (`tollgate sign`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The string to sign.
    pub string_to_sign: String,
    /// base64 signature.
    pub signature: String,
}

/// Signs `req` with the given SDK options.
pub fn sign<K: AsRef<str>, V: AsRef<str>, H: AsRef<str>>(
    req: &Request<'_, K, V, H>,
    secret: &str,
    options: Options,
) -> Signed {
    let string_to_sign = string_to_sign(req.method, req.headers, req.path, req.query, options);
    let signature = signature(secret, &string_to_sign);
    Signed {
        string_to_sign,
        signature,
    }
}

/// Recomputes the signature and compares it with `auth` in constant time,
/// accepting either empty-value style ([`EmptyValue`]); the request does not
/// say which SDK sent it. On mismatch returns the `k=` computation.
pub fn verify<K: AsRef<str>, V: AsRef<str>, H: AsRef<str>>(
    req: &Request<'_, K, V, H>,
    secret: &str,
    auth: &Authorization,
) -> Result<(), Signed> {
    let key_equals = Options {
        empty_value: EmptyValue::KeyEquals,
        ..Options::default()
    };
    let signed = sign(req, secret, key_equals);
    if crate::constant_time_eq(&signed.signature, &auth.signature) {
        return Ok(());
    }
    // The two styles differ only when some value is empty; skip the second
    // HMAC otherwise.
    let has_empty = req
        .query
        .iter()
        .any(|(_, v)| v.as_ref().is_some_and(|v| v.as_ref().is_empty()));
    if has_empty {
        let bare = Options {
            empty_value: EmptyValue::BareKey,
            ..Options::default()
        };
        if crate::constant_time_eq(&sign(req, secret, bare).signature, &auth.signature) {
            return Ok(());
        }
    }
    Err(signed)
}
