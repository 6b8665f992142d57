//! The percent-encoding every signer here shares.
//!
//! RFC 3986: `A-Z a-z 0-9 - _ . ~` stay as they are, every other byte of the
//! UTF-8 form becomes `%XX` with upper-case hex. This gives the providers'
//! documented fix-ups for free: space is `%20` (never `+`), `*` is `%2A`, `~`
//! is kept, `"` is `%22`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the RFC 3986 unreserved characters.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Same as [`RFC3986`] but keeps `/`, for path encoding.
const RFC3986_PATH: &AsciiSet = &RFC3986.remove(b'/');

/// Percent-encodes a name or a value (RFC 3986 unreserved kept).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Percent-encodes a decoded path, keeping `/` separators. An empty path is `/`.
pub fn encode_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    utf8_percent_encode(path, RFC3986_PATH).to_string()
}

/// Decodes `%XX` escapes (not `+`): the inverse of [`percent_encode`] for paths.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `k=v` pairs, each side encoded, sorted by encoded key then value, joined by `&`.
///
/// The sort is a byte-order sort of the *encoded* forms, which equals the
/// providers' order for the ASCII names they use and keeps repeated keys in
/// value order (Huawei signs repeated keys sorted by value).
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k.as_ref()), percent_encode(v.as_ref())))
        .collect();
    pairs.sort();
    join_pairs(&pairs)
}

pub(crate) fn join_pairs(pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}
