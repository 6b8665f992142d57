use bytes::Bytes;

use super::*;

/// A parsed RPC call from a query string and an optional form body.
fn rpc(query: &str, form: &str) -> (AliyunCall, HeaderMap) {
    let base = "Action=CreateInstance&Version=2017-12-14&AccessKeyId=K&Signature=s&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2026-01-01T00:00:00Z";
    let uri = if query.is_empty() {
        format!("/?{base}")
    } else {
        format!("/?{base}&{query}")
    };
    let req = http::Request::post(uri)
        .header("host", "gw")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(())
        .expect("request");
    let (parts, ()) = req.into_parts();
    let call = AliyunCall::parse(&parts, Bytes::from(form.to_owned())).expect("parses");
    (call, parts.headers)
}

fn code(r: Result<()>) -> String {
    r.expect_err("refused").code.to_string()
}

#[test]
fn distinct_parameters_pass() {
    let (call, headers) = rpc(
        "ProductCode=oss&Parameter.1.Code=PackageCode&Parameter.1.Value=standard_40G",
        "ClientToken=t1",
    );
    check_params(&call).expect("plain call");
    check_headers(&call, &headers).expect("plain headers");
}

#[test]
fn a_repeated_parameter_is_refused_wherever_and_however_it_repeats() {
    // The 1 TB-for-40 GB attack: the same name twice in the query.
    let (call, _) = rpc(
        "Parameter.1.Value=standard_40G&Parameter.1.Value=standard_1T",
        "",
    );
    assert_eq!(code(check_params(&call)), "InvalidParameter.Duplicate");
    // Split between query and body.
    let (call, _) = rpc(
        "Parameter.1.Value=standard_40G",
        "Parameter.1.Value=standard_1T",
    );
    assert_eq!(code(check_params(&call)), "InvalidParameter.Duplicate");
    // Re-cased.
    let (call, _) = rpc(
        "Parameter.1.Value=standard_40G",
        "parameter.1.value=standard_1T",
    );
    assert_eq!(code(check_params(&call)), "InvalidParameter.Duplicate");
    // The signature parameters too (the parser reads the first).
    let (call, _) = rpc("", "SignatureNonce=other");
    assert_eq!(code(check_params(&call)), "InvalidParameter.Duplicate");
}

#[test]
fn reserved_names_have_one_spelling() {
    for bad in [
        "ownerid=1",
        "OwnerID=1",
        "securitytoken=x",
        "resourceOwnerId=1",
    ] {
        let (call, _) = rpc(bad, "");
        assert_eq!(code(check_params(&call)), "InvalidParameter", "{bad}");
    }
    // A trailing space or a control byte is no parameter name at all.
    for bad in [
        "OwnerId%20=1",
        "OwnerId%09=1",
        "%20OwnerId=1",
        "=1",
        "Owner%00Id=1",
    ] {
        let (call, _) = rpc(bad, "");
        let err = check_params(&call).expect_err(bad);
        assert_eq!(err.reason, "parameter_name", "{bad}");
        assert!(!err.message.contains('\0'), "control bytes are escaped");
    }
}

#[test]
fn too_many_parameters_are_refused_in_one_pass() {
    let many: Vec<String> = (1..=MAX_PARAMS)
        .map(|i| format!("Parameter.{i}.Code=c"))
        .collect();
    let (call, _) = rpc(&many.join("&"), "");
    let err = check_params(&call).expect_err("over the cap");
    assert_eq!(err.reason, "too_many_parameters");
}

#[test]
fn duplicated_security_headers_are_refused() {
    let (call, mut headers) = rpc("", "");
    headers.append("content-type", "text/plain".parse().expect("value"));
    assert_eq!(
        check_headers(&call, &headers)
            .expect_err("two types")
            .reason,
        "duplicate_header"
    );
    let (call, mut headers) = rpc("", "");
    headers.append("x-acs-action", "A".parse().expect("value"));
    headers.append("x-acs-action", "B".parse().expect("value"));
    assert_eq!(
        check_headers(&call, &headers)
            .expect_err("two actions")
            .reason,
        "duplicate_header"
    );
}

fn v3(signed: &str) -> AliyunCall {
    let body = Bytes::new();
    let req = http::Request::post("/?ProductCode=oss")
        .header("host", "gw")
        .header("x-acs-action", "CreateInstance")
        .header("x-acs-version", "2017-12-14")
        .header("x-acs-date", "2026-01-01T00:00:00Z")
        .header("x-acs-signature-nonce", "n")
        .header("x-acs-content-sha256", tollgate_sign::sha256_hex(&body))
        .header(
            "authorization",
            format!("ACS3-HMAC-SHA256 Credential=K,SignedHeaders={signed},Signature=00"),
        )
        .body(())
        .expect("request");
    let (parts, ()) = req.into_parts();
    AliyunCall::parse(&parts, body).expect("parses")
}

#[test]
fn a_v3_signature_must_cover_what_the_call_is() {
    let all =
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    check_headers(&v3(all), &HeaderMap::new()).expect("all signed");
    let err = check_headers(&v3("host"), &HeaderMap::new()).expect_err("only host");
    assert_eq!(err.code, "IncompleteSignature");
    let without_action = "host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    let err = check_headers(&v3(without_action), &HeaderMap::new()).expect_err("no action");
    assert!(err.message.contains("x-acs-action"), "{}", err.message);
}
