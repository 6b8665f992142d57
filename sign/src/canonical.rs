//! The pieces V3 and Huawei canonical requests share: header
//! canonicalisation, the six-line request, and the hex HMAC-SHA256.

use std::collections::BTreeMap;

/// What to do with a header name that appears more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeated {
    /// One line, values sorted and joined by `,` (Alibaba Go/Python SDKs).
    JoinSorted,
    /// Keep the last value (Huawei's signers build a map).
    Last,
}

/// Canonical headers (`name:value\n`, lower-case names, trimmed values,
/// sorted by name) for the headers `keep` accepts, and the `;`-joined list.
pub(crate) fn headers<N: AsRef<str>, V: AsRef<str>>(
    headers: &[(N, V)],
    keep: impl Fn(&str) -> bool,
    repeated: Repeated,
) -> (String, String) {
    let mut map: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (n, v) in headers {
        let name = n.as_ref().trim().to_ascii_lowercase();
        if keep(&name) {
            let values = map.entry(name).or_default();
            if repeated == Repeated::Last {
                values.clear();
            }
            values.push(v.as_ref().trim());
        }
    }
    let mut canonical = String::new();
    for (n, values) in &mut map {
        values.sort_unstable();
        canonical.push_str(n);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    let list = map.keys().map(String::as_str).collect::<Vec<_>>().join(";");
    (canonical, list)
}

/// `METHOD\nURI\nQUERY\nHEADERS\nSIGNED\nPAYLOAD` (HEADERS ends in its own `\n`).
pub(crate) fn request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{payload_hash}")
}

/// hex(HMAC-SHA256(secret, string_to_sign)).
pub(crate) fn hex_hmac_sha256(secret: &str, string_to_sign: &str) -> String {
    hex::encode(crate::hmac_sha256(
        secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}
