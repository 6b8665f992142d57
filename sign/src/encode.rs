//! The percent-encoding every signer here shares.
//!
//! RFC 3986: `A-Z a-z 0-9 - _ . ~` stay as they are, every other byte of the
//! UTF-8 form becomes `%XX` with upper-case hex. This gives the providers'
//! documented fix-ups for free: space is `%20` (never `+`), `*` is `%2A`, `~`
//! is kept, `"` is `%22`.

/// `true` for the RFC 3986 unreserved bytes, which are never encoded.
const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' || c == b'~';
        b += 1;
    }
    t
};

/// Upper-case hex digits, as RFC 3986 percent-encoding writes them.
pub const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX: &[u8; 16] = HEX_UPPER;

/// Whether `b` is an RFC 3986 unreserved byte (kept as is when encoding).
pub fn is_unreserved_byte(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// Appends the encoded form of `s` to `out`, keeping `/` when `keep_slash`.
///
/// Table-driven with a fast path for the common case (names and values that
/// need no escaping are copied in one go): signing runs twice per proxied
/// call, and this was its hottest part.
fn encode_into(out: &mut String, s: &str, keep_slash: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if UNRESERVED[usize::from(b)] || (keep_slash && b == b'/') {
            continue;
        }
        // A non-empty unescaped run holds only ASCII, so it starts and ends
        // on char boundaries; an empty one may not (inside a UTF-8 sequence).
        if start < i {
            out.push_str(&s[start..i]);
        }
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
        start = i + 1;
    }
    if start < bytes.len() {
        out.push_str(&s[start..]);
    }
}

/// Appends the RFC 3986 encoding of `s` to `out` (no allocation of its own).
pub fn percent_encode_into(out: &mut String, s: &str) {
    encode_into(out, s, false);
}

/// Whether `s` is already in its encoded form (only unreserved bytes).
pub fn is_unreserved(s: &str) -> bool {
    s.bytes().all(|b| UNRESERVED[usize::from(b)])
}

/// Percent-encodes a name or a value (RFC 3986 unreserved kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    encode_into(&mut out, s, false);
    out
}

/// Percent-encodes a decoded path, keeping `/` separators. An empty path is `/`.
pub fn encode_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 8);
    encode_into(&mut out, path, true);
    out
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
