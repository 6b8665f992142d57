//! Runs every public test vector in `tests/vectors/` (a byte-identical copy of
//! the team's shared set) against the signers.
//!
//! Rules, so that a vector cannot be skipped silently:
//! - every vector of every file runs; the number run must equal the file's `count`;
//! - every field of a vector's `expected` must be recomputed and compared
//!   (a field this test does not know fails the test);
//! - an unknown `kind`, `function`, option or file fails the test;
//! - for each `full` vector, `verify` must accept the published signature and
//!   reject it with one character changed.
//!
//! Each file's test prints `file: n/count vectors` straight to stderr (not via
//! `eprintln!`, which the harness captures) so the summary shows in a plain
//! `cargo test` run.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tollgate_sign::{aliyun_roa, aliyun_rpc, aliyun_v3, encode, huawei, sha256_hex};

/// The vector files, each with the test that runs it below.
const VECTOR_FILES: [&str; 5] = [
    "aliyun_roa.json",
    "aliyun_rpc_v1.json",
    "aliyun_v3.json",
    "encoding.json",
    "huawei_sdk_hmac_sha256.json",
];
/// Copied along with the vectors; it documents the kinds.
const README: &str = "README.md";

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
}

/// The team's shared copy, present in the development tree but not in a clone.
fn shared_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors")).to_path_buf()
}

// ---------------------------------------------------------------- helpers --

/// A vector file: checks the header, hands each vector to `run`, checks the
/// count and prints the summary line.
fn run_file(name: &str, algorithm: &str, mut run: impl FnMut(&Value)) {
    let path = repo_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(file["algorithm"], algorithm, "{name}: algorithm");
    let count = file["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name}: no count"));
    let vectors = file["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no vectors"));
    let mut ids = BTreeSet::new();
    let mut checked: u64 = 0;
    for v in vectors {
        let id = s(v, "id");
        assert!(ids.insert(id.to_owned()), "{name}: duplicate id {id}");
        assert_eq!(
            v["algorithm"], algorithm,
            "{id}: algorithm differs from the file's"
        );
        run(v);
        checked += 1;
    }
    assert_eq!(
        checked, count,
        "{name}: ran {checked} vectors but the file says count = {count}"
    );
    summary(&format!("{name}: {checked}/{count} vectors\n"));
}

/// Writes `line` to stderr in one call, past the harness's capture and
/// without being split by other tests' output.
fn summary(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A string field that must be there.
fn s<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key:?} in {v}"))
}

/// `[[k, v], ...]` as owned pairs.
fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list of pairs: {v}"))
        .iter()
        .map(|p| match p.as_array().map(Vec::as_slice) {
            Some([k, v]) => (
                k.as_str()
                    .unwrap_or_else(|| panic!("bad key in {p}"))
                    .to_owned(),
                v.as_str()
                    .unwrap_or_else(|| panic!("bad value in {p}"))
                    .to_owned(),
            ),
            _ => panic!("not a pair: {p}"),
        })
        .collect()
}

/// `[[k, v|null], ...]`: ROA distinguishes a missing value from an empty one.
fn optional_pairs(v: &Value) -> Vec<(String, Option<String>)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list of pairs: {v}"))
        .iter()
        .map(|p| match p.as_array().map(Vec::as_slice) {
            Some([k, Value::Null]) => (
                k.as_str()
                    .unwrap_or_else(|| panic!("bad key in {p}"))
                    .to_owned(),
                None,
            ),
            Some([k, Value::String(v)]) => (
                k.as_str()
                    .unwrap_or_else(|| panic!("bad key in {p}"))
                    .to_owned(),
                Some(v.clone()),
            ),
            _ => panic!("not a pair: {p}"),
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("not a string: {x}"))
                .to_owned()
        })
        .collect()
}

/// Changes one character in the middle, staying inside the alphabet of both
/// hex and base64 so the change is a wrong signature, not a malformed one.
fn flip(sig: &str) -> String {
    let mut chars: Vec<char> = sig.chars().collect();
    assert!(!chars.is_empty(), "empty signature");
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

/// A vector's `expected` object and which of its fields were compared.
struct Expected<'v> {
    id: &'v str,
    fields: &'v Map<String, Value>,
    checked: BTreeSet<&'v str>,
}

impl<'v> Expected<'v> {
    fn of(v: &'v Value) -> Self {
        let id = s(v, "id");
        let fields = v["expected"]
            .as_object()
            .unwrap_or_else(|| panic!("{id}: expected is not an object"));
        Self {
            id,
            fields,
            checked: BTreeSet::new(),
        }
    }

    fn get(&self, field: &str) -> Option<&'v str> {
        self.fields.get(field).map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("{}: expected.{field} is not a string", self.id))
        })
    }

    /// Compares `field` when the vector publishes it.
    fn check(&mut self, field: &str, actual: &str) {
        if let Some((key, want)) = self.fields.get_key_value(field) {
            let want = want
                .as_str()
                .unwrap_or_else(|| panic!("{}: expected.{field} is not a string", self.id));
            assert_eq!(actual, want, "{}: expected.{field}", self.id);
            self.checked.insert(key.as_str());
        }
    }

    /// Every published field must have been compared, and at least one.
    fn finish(self) {
        for key in self.fields.keys() {
            assert!(
                self.checked.contains(key.as_str()),
                "{}: expected.{key} is not recomputed by this test (new field? teach the test)",
                self.id
            );
        }
        assert!(!self.checked.is_empty(), "{}: nothing compared", self.id);
    }
}

/// The signature a `full` vector publishes, directly or inside its Authorization.
fn published_signature(exp: &Expected<'_>, from_authorization: impl Fn(&str) -> String) -> String {
    exp.get("signature")
        .map(str::to_owned)
        .or_else(|| exp.get("authorization").map(from_authorization))
        .unwrap_or_else(|| {
            panic!(
                "{}: a full vector must publish a signature or an Authorization",
                exp.id
            )
        })
}

// ---------------------------------------------------------------- RPC --

#[test]
fn aliyun_rpc_v1_vectors() {
    run_file("aliyun_rpc_v1.json", "ALIYUN-RPC-V1", |v| {
        let id = s(v, "id");
        let inputs = &v["inputs"];
        let method = s(inputs, "method");
        let params = pairs(&inputs["params"]);
        let mut exp = Expected::of(v);
        match s(v, "kind") {
            "full" => {
                let secret = s(inputs, "access_key_secret");
                let canonical = aliyun_rpc::canonicalized_query(&params);
                exp.check("canonicalized_query", &canonical);
                let (sts, sig) = aliyun_rpc::sign(method, &params, secret);
                assert_eq!(sts, aliyun_rpc::string_to_sign(method, &canonical), "{id}");
                assert_eq!(sig, aliyun_rpc::signature(secret, &sts), "{id}");
                assert_eq!(
                    sig,
                    aliyun_rpc::signature_of_canonical(
                        secret,
                        method,
                        &aliyun_rpc::canonicalized_query(&params)
                    ),
                    "{id}: streamed signature"
                );
                exp.check("string_to_sign", &sts);
                exp.check("signature", &sig);

                let published =
                    published_signature(&exp, |_| unreachable!("RPC has no Authorization"));
                assert_eq!(
                    aliyun_rpc::verify(method, &params, secret, &published),
                    Ok(()),
                    "{id}: verify"
                );
                assert_eq!(
                    aliyun_rpc::verify(method, &params, secret, &flip(&published)),
                    Err(sts.clone()),
                    "{id}: verify must reject a changed signature"
                );
                // On the wire the Signature travels among the parameters; it must not sign itself.
                let mut with_sig = params.clone();
                with_sig.push(("Signature".to_owned(), published.clone()));
                assert_eq!(
                    aliyun_rpc::verify(method, &with_sig, secret, &published),
                    Ok(()),
                    "{id}"
                );
            }
            "string_to_sign_only" => {
                let sts =
                    aliyun_rpc::string_to_sign(method, &aliyun_rpc::canonicalized_query(&params));
                exp.check("string_to_sign", &sts);
                // `params` is the merge of query and form parameters; signing the
                // two lists concatenated must give the same string.
                let mut merged = pairs(&inputs["query_params"]);
                merged.extend(pairs(&inputs["form_params"]));
                let merged_sts =
                    aliyun_rpc::string_to_sign(method, &aliyun_rpc::canonicalized_query(&merged));
                assert_eq!(merged_sts, sts, "{id}: query + form merge");
            }
            kind => panic!("{id}: unknown kind {kind:?} in aliyun_rpc_v1.json"),
        }
        exp.finish();
    });
}

// ---------------------------------------------------------------- V3 --

/// The `SignedHeaders` line of a V3 or Huawei canonical request (the line
/// before the payload hash).
fn signed_headers_line(canonical_request: &str) -> &str {
    let mut lines = canonical_request.rsplit('\n');
    lines.next();
    lines
        .next()
        .unwrap_or_else(|| panic!("not a canonical request: {canonical_request:?}"))
}

#[test]
fn aliyun_v3_vectors() {
    run_file("aliyun_v3.json", "ACS3-HMAC-SHA256", |v| {
        let id = s(v, "id");
        let inputs = &v["inputs"];
        let ak = s(inputs, "access_key_id");
        let secret = s(inputs, "access_key_secret");
        let mut exp = Expected::of(v);
        match s(v, "kind") {
            "full" => {
                let query = pairs(&inputs["query"]);
                let headers = pairs(&inputs["headers"]);
                let hashed_payload = match (inputs.get("payload_hash"), inputs.get("body")) {
                    (Some(h), None) => h
                        .as_str()
                        .unwrap_or_else(|| panic!("{id}: payload_hash"))
                        .to_owned(),
                    (None, Some(b)) => sha256_hex(
                        b.as_str()
                            .unwrap_or_else(|| panic!("{id}: body"))
                            .as_bytes(),
                    ),
                    _ => panic!("{id}: needs exactly one of body / payload_hash"),
                };
                let req = aliyun_v3::Request {
                    method: s(inputs, "method"),
                    path: s(inputs, "path"),
                    query: &query,
                    headers: &headers,
                    hashed_payload: &hashed_payload,
                };
                // Signers sign the default header set.
                let signed = aliyun_v3::sign(&req, secret, None);
                assert_eq!(
                    signed.string_to_sign,
                    aliyun_v3::string_to_sign(&signed.canonical_request),
                    "{id}"
                );
                exp.check("canonical_request", &signed.canonical_request);
                exp.check(
                    "canonical_request_sha256",
                    &sha256_hex(signed.canonical_request.as_bytes()),
                );
                exp.check("string_to_sign", &signed.string_to_sign);
                exp.check("signature", &signed.signature);
                let authorization =
                    aliyun_v3::authorization(ak, &signed.signed_headers, &signed.signature);
                exp.check("authorization", &authorization);

                // Verifiers read the request's own Authorization.
                let header = exp
                    .get("authorization")
                    .map_or(authorization, str::to_owned);
                let auth = aliyun_v3::Authorization::parse(&header)
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(auth.access_key_id, ak, "{id}");
                assert_eq!(auth.signed_headers.join(";"), signed.signed_headers, "{id}");
                let published = published_signature(&exp, |h| {
                    aliyun_v3::Authorization::parse(h)
                        .map(|a| a.signature)
                        .unwrap_or_else(|e| panic!("{id}: {e}"))
                });
                assert_eq!(auth.signature, published, "{id}");
                assert_eq!(
                    aliyun_v3::verify(&req, secret, &auth),
                    Ok(()),
                    "{id}: verify"
                );
                let bad = aliyun_v3::Authorization {
                    signature: flip(&published),
                    ..auth
                };
                assert_eq!(
                    aliyun_v3::verify(&req, secret, &bad),
                    Err(signed),
                    "{id}: verify must reject"
                );
            }
            "from_canonical_request" => {
                let canonical_request = s(inputs, "canonical_request");
                let sts = aliyun_v3::string_to_sign(canonical_request);
                let sig = aliyun_v3::signature(secret, &sts);
                exp.check(
                    "canonical_request_sha256",
                    &sha256_hex(canonical_request.as_bytes()),
                );
                exp.check("string_to_sign", &sts);
                exp.check("signature", &sig);
                let signed_headers = signed_headers_line(canonical_request);
                exp.check(
                    "authorization",
                    &aliyun_v3::authorization(ak, signed_headers, &sig),
                );
            }
            kind => panic!("{id}: unknown kind {kind:?} in aliyun_v3.json"),
        }
        exp.finish();
    });
}

// ---------------------------------------------------------------- Huawei --

#[test]
fn huawei_vectors() {
    run_file("huawei_sdk_hmac_sha256.json", "SDK-HMAC-SHA256", |v| {
        let id = s(v, "id");
        let inputs = &v["inputs"];
        let mut exp = Expected::of(v);
        match s(v, "kind") {
            kind @ ("full" | "canonical_request_only") => {
                let query = pairs(&inputs["query"]);
                let headers = pairs(&inputs["headers"]);
                let signed_names = strings(&inputs["signed_headers"]);
                let req = huawei::Request {
                    method: s(inputs, "method"),
                    path: s(inputs, "path"),
                    query: &query,
                    headers: &headers,
                    body: s(inputs, "body").as_bytes(),
                };
                // canonical_request_only vectors carry no date or key; the
                // canonical request does not depend on either.
                let sdk_date = inputs["sdk_date"].as_str().unwrap_or("");
                let secret = inputs["access_key_secret"].as_str().unwrap_or("");
                let signed = huawei::sign(&req, secret, sdk_date, &signed_names);
                assert_eq!(
                    signed.signed_headers,
                    signed_names.join(";"),
                    "{id}: signed headers"
                );
                exp.check("canonical_request", &signed.canonical_request);
                exp.check(
                    "canonical_request_sha256",
                    &sha256_hex(signed.canonical_request.as_bytes()),
                );
                if let Some(derived) = v.get("derived") {
                    assert_eq!(
                        signed.canonical_request,
                        s(derived, "canonical_request"),
                        "{id}: derived"
                    );
                }
                if kind == "canonical_request_only" {
                    exp.finish();
                    return;
                }
                let ak = s(inputs, "access_key_id");
                assert_eq!(
                    signed.string_to_sign,
                    huawei::string_to_sign(sdk_date, &signed.canonical_request)
                );
                exp.check("string_to_sign", &signed.string_to_sign);
                exp.check("signature", &signed.signature);
                let authorization =
                    huawei::authorization(ak, &signed.signed_headers, &signed.signature);
                exp.check("authorization", &authorization);

                let header = exp
                    .get("authorization")
                    .map_or(authorization, str::to_owned);
                let auth =
                    huawei::Authorization::parse(&header).unwrap_or_else(|| panic!("{id}: parse"));
                assert_eq!(auth.access_key_id, ak, "{id}");
                assert_eq!(auth.signed_headers, signed_names, "{id}");
                let published = published_signature(&exp, |h| {
                    huawei::Authorization::parse(h)
                        .map(|a| a.signature)
                        .unwrap_or_else(|| panic!("{id}: parse"))
                });
                assert_eq!(auth.signature, published, "{id}");
                assert_eq!(
                    huawei::verify(&req, secret, sdk_date, &auth),
                    Ok(()),
                    "{id}: verify"
                );
                let bad = huawei::Authorization {
                    signature: flip(&published),
                    ..auth
                };
                assert_eq!(
                    huawei::verify(&req, secret, sdk_date, &bad),
                    Err(signed),
                    "{id}: verify must reject"
                );
            }
            "hmac_only" => {
                let sig =
                    huawei::signature(s(inputs, "access_key_secret"), s(inputs, "string_to_sign"));
                exp.check("signature", &sig);
            }
            kind => panic!("{id}: unknown kind {kind:?} in huawei_sdk_hmac_sha256.json"),
        }
        exp.finish();
    });
}

// ---------------------------------------------------------------- ROA --

/// `inputs.options`, absent meaning the defaults.
fn roa_options(id: &str, inputs: &Value) -> aliyun_roa::Options {
    let mut options = aliyun_roa::Options::default();
    let Some(given) = inputs.get("options") else {
        return options;
    };
    let given = given
        .as_object()
        .unwrap_or_else(|| panic!("{id}: options is not an object"));
    for (key, value) in given {
        let value = value
            .as_str()
            .unwrap_or_else(|| panic!("{id}: options.{key} is not a string"));
        match (key.as_str(), value) {
            ("empty_value", "key=") => options.empty_value = aliyun_roa::EmptyValue::KeyEquals,
            ("empty_value", "key") => options.empty_value = aliyun_roa::EmptyValue::BareKey,
            ("sdk_quirk", "go_omit_absent_std_headers") => {
                options.absent_std_headers = aliyun_roa::AbsentStdHeaders::Omit;
            }
            _ => panic!("{id}: unknown ROA option {key} = {value:?}"),
        }
    }
    options
}

#[test]
fn aliyun_roa_vectors() {
    run_file("aliyun_roa.json", "ALIYUN-ROA", |v| {
        let id = s(v, "id");
        let inputs = &v["inputs"];
        let mut exp = Expected::of(v);
        match s(v, "kind") {
            kind @ ("full" | "string_to_sign_only") => {
                let options = roa_options(id, inputs);
                let query = optional_pairs(&inputs["query"]);
                let headers = pairs(&inputs["headers"]);
                let req = aliyun_roa::Request {
                    method: s(inputs, "method"),
                    path: s(inputs, "path"),
                    query: &query,
                    headers: &headers,
                };
                let sts = aliyun_roa::string_to_sign(
                    req.method,
                    req.headers,
                    req.path,
                    req.query,
                    options,
                );
                exp.check("string_to_sign", &sts);
                if kind == "string_to_sign_only" {
                    // Whatever empty-value style produced it, a verifier accepts
                    // the signature (the Go quirk is not a wire format).
                    if options.absent_std_headers == aliyun_roa::AbsentStdHeaders::EmptyLine {
                        let auth = aliyun_roa::Authorization {
                            access_key_id: "ak".to_owned(),
                            signature: aliyun_roa::signature("secret", &sts),
                        };
                        assert_eq!(
                            aliyun_roa::verify(&req, "secret", &auth).map_err(drop),
                            Ok(()),
                            "{id}"
                        );
                    }
                    exp.finish();
                    return;
                }
                let ak = s(inputs, "access_key_id");
                let secret = s(inputs, "access_key_secret");
                let signed = aliyun_roa::sign(&req, secret, options);
                assert_eq!(signed.string_to_sign, sts, "{id}");
                exp.check("signature", &signed.signature);
                let authorization = aliyun_roa::authorization(ak, &signed.signature);
                exp.check("authorization", &authorization);
                // The body is covered only through Content-MD5.
                if let Some(body) = inputs.get("body") {
                    let body = body.as_str().unwrap_or_else(|| panic!("{id}: body"));
                    let md5 = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-md5"));
                    let (_, md5) =
                        md5.unwrap_or_else(|| panic!("{id}: a body without Content-MD5"));
                    assert_eq!(
                        &aliyun_roa::content_md5(body.as_bytes()),
                        md5,
                        "{id}: Content-MD5"
                    );
                }

                let header = exp
                    .get("authorization")
                    .map_or(authorization, str::to_owned);
                let auth = aliyun_roa::Authorization::parse(&header)
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(auth.access_key_id, ak, "{id}");
                let published = published_signature(&exp, |h| {
                    aliyun_roa::Authorization::parse(h)
                        .map(|a| a.signature)
                        .unwrap_or_else(|e| panic!("{id}: {e}"))
                });
                assert_eq!(auth.signature, published, "{id}");
                assert_eq!(
                    aliyun_roa::verify(&req, secret, &auth),
                    Ok(()),
                    "{id}: verify"
                );
                let bad = aliyun_roa::Authorization {
                    signature: flip(&published),
                    ..auth
                };
                assert!(
                    aliyun_roa::verify(&req, secret, &bad).is_err(),
                    "{id}: verify must reject"
                );
            }
            "hmac_only" => {
                let sig = aliyun_roa::signature(
                    s(inputs, "access_key_secret"),
                    s(inputs, "string_to_sign"),
                );
                exp.check("signature", &sig);
            }
            kind => panic!("{id}: unknown kind {kind:?} in aliyun_roa.json"),
        }
        exp.finish();
    });
}

// ---------------------------------------------------------------- encoding --

#[test]
fn encoding_vectors() {
    run_file("encoding.json", "ENCODING", |v| {
        let id = s(v, "id");
        let inputs = &v["inputs"];
        let want = s(v, "expected");
        assert!(
            v.get("kind").is_none(),
            "{id}: encoding vectors are dispatched by `function`, not `kind`"
        );
        let got = match s(v, "function") {
            "v3_canonical_query" => aliyun_v3::canonical_query(&pairs(&inputs["params"])),
            "v3_canonical_uri" => aliyun_v3::canonical_uri(s(inputs, "path")),
            "hw_canonical_query" => huawei::canonical_query(&pairs(&inputs["params"])),
            "percent_encode" => {
                let value = s(inputs, "value");
                let encoded = encode::percent_encode(value);
                assert_eq!(encode::percent_decode(&encoded), value, "{id}: round trip");
                encoded
            }
            function => panic!("{id}: unknown function {function:?} in encoding.json"),
        };
        assert_eq!(got, want, "{id}");
    });
}

// ---------------------------------------------------------------- files --

/// A vector file nobody runs would pass silently; so would a stale copy.
#[test]
fn every_vector_file_is_run() {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(repo_dir()).expect("tests/vectors") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("UTF-8 file name");
        found.insert(name);
    }
    let mut known: BTreeSet<String> = VECTOR_FILES.iter().map(|f| (*f).to_owned()).collect();
    known.insert(README.to_owned());
    assert_eq!(
        found, known,
        "tests/vectors/ holds files this test does not run (or lacks some)"
    );
}

/// The repository's copy must stay byte-identical to the shared set when the
/// latter is around (development tree); a fresh clone only has the copy.
#[test]
fn repo_copies_match_shared_vectors() {
    let shared = shared_dir();
    if !shared.is_dir() {
        summary(&format!(
            "shared vectors not found at {}: drift check skipped\n",
            shared.display()
        ));
        return;
    }
    let mut shared_names = BTreeSet::new();
    for entry in std::fs::read_dir(&shared).expect("shared vectors dir") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("UTF-8 file name");
        shared_names.insert(name);
    }
    let mut ours: BTreeSet<String> = VECTOR_FILES.iter().map(|f| (*f).to_owned()).collect();
    ours.insert(README.to_owned());
    assert_eq!(
        shared_names, ours,
        "the shared vector set gained or lost files; copy them into sign/tests/vectors/"
    );
    for name in &ours {
        let a = std::fs::read(repo_dir().join(name)).expect("repo copy");
        let b = std::fs::read(shared.join(name)).expect("shared copy");
        assert!(
            a == b,
            "sign/tests/vectors/{name} differs from {}; re-copy it",
            shared.join(name).display()
        );
    }
}
