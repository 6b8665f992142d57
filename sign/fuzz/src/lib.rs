//! The properties the fuzz targets check, as plain functions so that
//! `cargo test` can run them on stable over a fixed pseudo-random corpus (the
//! libFuzzer runs need nightly and cargo-fuzz).

use tollgate_sign::{aliyun_roa, aliyun_rpc, aliyun_v3, encode, huawei};

/// Feeds `value` to the V3, Huawei and ROA `Authorization` parsers.
///
/// None may panic; each accepted value must have a non-empty key id and
/// signature, and formatting what was parsed then parsing again must give the
/// same result (so the parser and the formatter agree on the grammar).
pub fn authorization_parse(value: &str) {
    if let Ok(a) = aliyun_v3::Authorization::parse(value) {
        assert!(
            !a.access_key_id.is_empty() && !a.signature.is_empty(),
            "{value:?}"
        );
        let again =
            aliyun_v3::authorization(&a.access_key_id, &a.signed_headers.join(";"), &a.signature);
        assert_eq!(
            aliyun_v3::Authorization::parse(&again).as_ref(),
            Ok(&a),
            "{value:?}"
        );
    }
    if let Some(a) = huawei::Authorization::parse(value) {
        assert!(
            !a.access_key_id.is_empty() && !a.signature.is_empty(),
            "{value:?}"
        );
        let again =
            huawei::authorization(&a.access_key_id, &a.signed_headers.join(";"), &a.signature);
        assert_eq!(
            huawei::Authorization::parse(&again).as_ref(),
            Some(&a),
            "{value:?}"
        );
    }
    if let Ok(a) = aliyun_roa::Authorization::parse(value) {
        assert!(
            !a.access_key_id.is_empty() && !a.signature.is_empty(),
            "{value:?}"
        );
        let again = aliyun_roa::authorization(&a.access_key_id, &a.signature);
        assert_eq!(
            aliyun_roa::Authorization::parse(&again).as_ref(),
            Ok(&a),
            "{value:?}"
        );
    }
}

/// Whether every byte is RFC 3986 unreserved, `=`, `&`, or a `%XX` escape
/// with upper-case hex.
fn only_query_chars(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'=' | b'&' => {
                i += 1
            }
            b'%' => {
                let hex = |c: Option<&u8>| matches!(c, Some(b'0'..=b'9' | b'A'..=b'F'));
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return false;
                }
                i += 3;
            }
            _ => return false,
        }
    }
    true
}

/// Splits a canonical query back into decoded pairs.
fn decode_query(s: &str) -> Vec<(String, String)> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split('&')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("pair without '=': {kv:?} in {s:?}"));
            (encode::percent_decode(k), encode::percent_decode(v))
        })
        .collect()
}

/// Feeds `pairs` to every canonical-query builder (shared, V3, Huawei, RPC)
/// and to the ROA resource builder.
///
/// The encoded outputs may only hold unreserved characters, `%XX`, `=` and
/// `&`, must list every pair exactly once (RPC: all but `Signature`), and the
/// shared form must be sorted. The RPC string to sign obeys the same alphabet.
pub fn canonical_query(pairs: &[(String, String)]) {
    let mut want: Vec<(String, String)> = pairs.to_vec();
    want.sort();
    let mut want_rpc: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    want_rpc.sort();

    for (name, out, want) in [
        ("encode", encode::canonical_query(pairs), &want),
        ("v3", aliyun_v3::canonical_query(pairs), &want),
        ("huawei", huawei::canonical_query(pairs), &want),
        ("rpc", aliyun_rpc::canonicalized_query(pairs), &want_rpc),
    ] {
        assert!(only_query_chars(&out), "{name}: {out:?}");
        let mut got = decode_query(&out);
        got.sort();
        assert_eq!(&got, want, "{name}: {out:?}");
    }

    let shared = encode::canonical_query(pairs);
    let encoded: Vec<&str> = if shared.is_empty() {
        Vec::new()
    } else {
        shared.split('&').collect()
    };
    let sorted = encoded.windows(2).all(|w| {
        let (a, b) = (w[0].split_once('='), w[1].split_once('='));
        a <= b
    });
    assert!(sorted, "not sorted: {shared:?}");

    let sts = aliyun_rpc::string_to_sign("GET", &aliyun_rpc::canonicalized_query(pairs));
    assert!(only_query_chars(&sts), "rpc string to sign: {sts:?}");

    // ROA writes values raw; it only has to cope.
    let optional: Vec<(&str, Option<&str>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    let _ = aliyun_roa::canonicalized_resource("/", &optional, aliyun_roa::EmptyValue::BareKey);
}

#[cfg(test)]
mod tests {
    use tollgate_sign::{aliyun_roa, aliyun_v3, huawei};

    /// Pieces that hit the grammar: scheme words, part names, separators,
    /// whitespace of both kinds, percent signs and multi-byte characters.
    const PIECES: [&str; 34] = [
        "ACS3-HMAC-SHA256",
        "SDK-HMAC-SHA256",
        "acs",
        " ",
        "  ",
        "\t",
        "\n",
        ",",
        ";",
        ":",
        "=",
        "&",
        "%",
        "%2",
        "%zz",
        "+",
        "*",
        "~",
        "/",
        "Credential=",
        "SignedHeaders=",
        "Signature=",
        "Access=",
        "a",
        "B",
        "0",
        "host",
        "x-acs-date",
        "一",
        "é",
        "\u{85}",
        "\u{a0}",
        "Signature",
        "",
    ];

    /// A fixed linear congruential generator: reproducible, no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // The high bits of an LCG are the well-mixed ones.
            usize::try_from(self.0 >> 33).unwrap_or(0) % bound.max(1)
        }

        fn string(&mut self, max_pieces: usize) -> String {
            let n = self.next(max_pieces + 1);
            (0..n).map(|_| PIECES[self.next(PIECES.len())]).collect()
        }

        /// `name=value` parts in the shape of a V3/Huawei header, so that
        /// the parsers get past their first checks often.
        fn parts(&mut self) -> String {
            const NAMES: [&str; 6] = [
                "Credential",
                "SignedHeaders",
                "Signature",
                "Access",
                " Signature ",
                "x",
            ];
            const SEPARATORS: [&str; 4] = [",", ", ", " ,", ";"];
            let mut out = String::new();
            for i in 0..self.next(6) + 1 {
                if i > 0 {
                    out.push_str(SEPARATORS[self.next(SEPARATORS.len())]);
                }
                out.push_str(NAMES[self.next(NAMES.len())]);
                out.push('=');
                let value = self.string(3);
                out.push_str(if value.is_empty() { "v" } else { &value });
            }
            out
        }
    }

    #[test]
    fn authorization_parse_corpus() {
        let mut rng = Lcg(1);
        for fixed in [
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=a=b,SignedHeaders=;,Signature=x,Credential=c",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=ab",
            "acs AK:c2ln",
            "acs \u{a0}AK:c2ln",
        ] {
            super::authorization_parse(fixed);
        }
        // How many inputs each parser accepted: the round-trip checks only
        // mean something if the corpus reaches them.
        let mut accepted = [0_u32; 3];
        for _ in 0..50_000 {
            let prefix = ["ACS3-HMAC-SHA256 ", "SDK-HMAC-SHA256 ", "acs ", ""][rng.next(4)];
            let body = if rng.next(2) == 0 {
                rng.string(12)
            } else {
                rng.parts()
            };
            let value = format!("{prefix}{body}");
            super::authorization_parse(&value);
            accepted[0] += u32::from(aliyun_v3::Authorization::parse(&value).is_ok());
            accepted[1] += u32::from(huawei::Authorization::parse(&value).is_some());
            accepted[2] += u32::from(aliyun_roa::Authorization::parse(&value).is_ok());
        }
        assert!(
            accepted.iter().all(|&n| n >= 20),
            "corpus too weak: {accepted:?}"
        );
    }

    #[test]
    fn canonical_query_corpus() {
        let mut rng = Lcg(2);
        super::canonical_query(&[]);
        super::canonical_query(&[(String::new(), String::new())]);
        for _ in 0..5_000 {
            let n = rng.next(6);
            let pairs: Vec<(String, String)> =
                (0..n).map(|_| (rng.string(4), rng.string(4))).collect();
            super::canonical_query(&pairs);
        }
    }
}
