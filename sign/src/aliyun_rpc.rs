//! Alibaba Cloud RPC signature, `HMAC-SHA1`, SignatureVersion `1.0`.
//!
//! ```text
//! canonicalized  = sorted(k=v for every parameter but Signature), RFC 3986-encoded, '&'-joined
//! string_to_sign = METHOD & pct("/") & pct(canonicalized)
//! signature      = base64(HMAC-SHA1(secret + "&", string_to_sign))
//! ```
//! Query and form-body parameters are merged before signing.

use base64::Engine as _;

use crate::encode::{is_unreserved, percent_encode, percent_encode_into};

/// The only `SignatureMethod` this scheme defines.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// The only `SignatureVersion` this scheme defines.
pub const SIGNATURE_VERSION: &str = "1.0";
/// The parameters every RPC request carries for its signature (not business data).
pub const SIGNATURE_PARAMS: [&str; 7] = [
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
];

/// The canonicalized query string: every parameter except `Signature`, sorted
/// by encoded name (byte order), each side RFC 3986-encoded.
pub fn canonicalized_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    // Names are nearly always unreserved already: borrow those instead of
    // allocating an encoded copy, and write everything into one buffer.
    let mut pairs: Vec<(std::borrow::Cow<'_, str>, &str)> = params
        .iter()
        .filter(|(k, _)| k.as_ref() != "Signature")
        .map(|(k, v)| {
            let k = k.as_ref();
            let name = if is_unreserved(k) {
                std::borrow::Cow::Borrowed(k)
            } else {
                std::borrow::Cow::Owned(percent_encode(k))
            };
            (name, v.as_ref())
        })
        .collect();
    // Stable sort on the name only: repeated names keep their order, as the SDKs do.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 8).sum());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

/// `METHOD&%2F&pct(canonicalized)`.
pub fn string_to_sign(method: &str, canonicalized: &str) -> String {
    let mut out = String::with_capacity(method.len() + 5 + canonicalized.len() * 5 / 4);
    out.push_str(method);
    out.push_str("&%2F&");
    percent_encode_into(&mut out, canonicalized);
    out
}

/// `base64(HMAC-SHA1(secret + "&", string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut key = String::with_capacity(secret.len() + 1);
    key.push_str(secret);
    key.push('&');
    let mac = crate::hmac_sha1(key.as_bytes(), string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Signs a full parameter list (which must already hold `AccessKeyId`,
/// `SignatureMethod`, `SignatureVersion`, `SignatureNonce` and `Timestamp`)
/// and returns `(string_to_sign, signature)`.
pub fn sign<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
    secret: &str,
) -> (String, String) {
    let sts = string_to_sign(method, &canonicalized_query(params));
    let sig = signature(secret, &sts);
    (sts, sig)
}

/// Recomputes the signature and compares it with `provided` in constant time.
/// Returns the server-side string to sign on mismatch, for the
/// `SignatureDoesNotMatch` message (it holds no secret).
pub fn verify<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
    secret: &str,
    provided: &str,
) -> Result<(), String> {
    let canonical = canonicalized_query(params);
    let sig = signature_of_canonical(secret, method, &canonical);
    if crate::constant_time_eq(&sig, provided) {
        Ok(())
    } else {
        Err(string_to_sign(method, &canonical))
    }
}

/// `signature(secret, &string_to_sign(method, canonicalized))`, without
/// building the string to sign: its percent-encoding is streamed into the
/// HMAC through a small buffer. This is the request path's form (the
/// gateway signs and verifies every call); the two-step form stays for
/// people and tests that want to see the string.
pub fn signature_of_canonical(secret: &str, method: &str, canonicalized: &str) -> String {
    use hmac::Mac as _;
    let mut mac = crate::hmac_sha1_keyed(&[secret.as_bytes(), b"&"]);
    mac.update(method.as_bytes());
    mac.update(b"&%2F&");
    // Stream pct(canonicalized): unreserved runs go straight in, the rest
    // through `buf` as %XX triples.
    let bytes = canonicalized.as_bytes();
    let mut start = 0;
    let mut buf = [0u8; 3];
    for (i, &b) in bytes.iter().enumerate() {
        if crate::encode::is_unreserved_byte(b) {
            continue;
        }
        if start < i {
            mac.update(&bytes[start..i]);
        }
        buf[0] = b'%';
        buf[1] = crate::encode::HEX_UPPER[usize::from(b >> 4)];
        buf[2] = crate::encode::HEX_UPPER[usize::from(b & 0x0f)];
        mac.update(&buf);
        start = i + 1;
    }
    if start < bytes.len() {
        mac.update(&bytes[start..]);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
