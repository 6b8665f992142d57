use super::*;
use crate::huawei::outbound::{HuaweiKey, OutboundCall, signed_request};

const AK: &str = "HWTESTAK000000000001";
const SK: &str = "test-secret-key-not-real-0000000000000000";

fn signed(method: Method, path: &str, query: &str, body: &str, date: &str) -> http::request::Parts {
    let call = OutboundCall {
        method,
        raw_path: path,
        raw_query: query,
        domain_id: Some("0a7c3b2f3d80d4a20f7ac004cbde0001"),
        extra_headers: vec![],
        content_type: (!body.is_empty()).then_some("application/json;charset=UTF-8"),
        body: Bytes::from(body.to_owned()),
    };
    let req = signed_request(
        &call,
        "http",
        "127.0.0.1:9000",
        HuaweiKey {
            access_key_id: AK,
            secret: SK,
        },
        date,
    );
    req.into_parts().0
}

fn now() -> OffsetDateTime {
    parse_sdk_date("20260105T083000Z").expect("date")
}

#[test]
fn a_call_signed_by_the_outbound_signer_verifies() {
    let parts = signed(
        Method::GET,
        "/v2/orders/customer-orders",
        "limit=10&status=6",
        "",
        "20260105T083000Z",
    );
    let call = HuaweiCall::parse(&parts, Bytes::new()).expect("parse");
    assert_eq!(call.access_key_id(), AK);
    assert_eq!(call.host, "127.0.0.1:9000");
    call.check_date(now()).expect("in window");
    call.verify(SK).expect("signature");
    let err = call.verify("another-secret").expect_err("wrong secret");
    assert_eq!(err.code, APIG_AUTH_FAILED);
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_swapped_body_or_query_fails_the_signature() {
    let body = r#"{"order_id":"CS1"}"#;
    let parts = signed(
        Method::PUT,
        "/v2/orders/customer-orders/cancel",
        "",
        body,
        "20260105T083000Z",
    );
    let ok = HuaweiCall::parse(&parts, Bytes::from(body)).expect("parse");
    ok.verify(SK).expect("signature");
    let swapped = HuaweiCall::parse(&parts, Bytes::from(r#"{"order_id":"CS2"}"#)).expect("parse");
    assert!(swapped.verify(SK).is_err());
    let mut parts = signed(
        Method::GET,
        "/v2/orders/customer-orders",
        "limit=10",
        "",
        "20260105T083000Z",
    );
    parts.uri = "/v2/orders/customer-orders?limit=100".parse().expect("uri");
    let call = HuaweiCall::parse(&parts, Bytes::new()).expect("parse");
    assert!(call.verify(SK).is_err());
}

#[test]
fn stale_or_future_dates_are_refused_like_apig() {
    let parts = signed(
        Method::GET,
        "/v2/orders/customer-orders",
        "",
        "",
        "20260105T081400Z",
    );
    let call = HuaweiCall::parse(&parts, Bytes::new()).expect("parse");
    let err = call.check_date(now()).expect_err("16 minutes old");
    assert_eq!(err.code, APIG_AUTH_FAILED);
    let parts = signed(
        Method::GET,
        "/v2/orders/customer-orders",
        "",
        "",
        "20260105T084500Z",
    );
    let call = HuaweiCall::parse(&parts, Bytes::new()).expect("parse");
    call.check_date(now())
        .expect("15 minutes ahead is inside the window");
}

#[test]
fn missing_or_foreign_authorization_is_apig_0301() {
    let mut parts = signed(
        Method::GET,
        "/v2/orders/customer-orders",
        "",
        "",
        "20260105T083000Z",
    );
    parts.headers.remove("authorization");
    let err = HuaweiCall::parse(&parts, Bytes::new()).expect_err("no auth");
    assert_eq!(err.code, APIG_AUTH_FAILED);
    parts.headers.insert(
        "authorization",
        "ACS3-HMAC-SHA256 Credential=x".parse().expect("hv"),
    );
    assert!(HuaweiCall::parse(&parts, Bytes::new()).is_err());
    let mut parts = signed(
        Method::GET,
        "/v2/orders/customer-orders",
        "",
        "",
        "20260105T083000Z",
    );
    parts.headers.remove("x-sdk-date");
    assert!(HuaweiCall::parse(&parts, Bytes::new()).is_err());
}

#[test]
fn huawei_paths_are_told_from_alibaba_ones() {
    assert!(is_huawei_path("/v2/orders/customer-orders"));
    assert!(is_huawei_path("/v1.0/abc/payments/intl-invoices"));
    assert!(is_huawei_path("/v4/costs/cost-analysed-bills/query"));
    assert!(!is_huawei_path("/"));
    assert!(!is_huawei_path("/healthz"));
    assert!(!is_huawei_path("/v5/x"));
}

/// The public SDK-HMAC-SHA256 examples (`sign/tests/vectors/`, the same as
/// `shared/vectors/`), received as HTTP requests: the gateway's inbound
/// verifier accepts each published `Authorization`, and refuses it under
/// another secret or with a changed body.
#[test]
fn the_public_vectors_verify_as_inbound_calls() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sign/tests/vectors/huawei_sdk_hmac_sha256.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    let mut checked = 0;
    for v in file["vectors"].as_array().expect("vectors") {
        let Some(auth) = v["expected"]["authorization"].as_str() else {
            continue;
        };
        let i = &v["inputs"];
        let query: Vec<String> = i["query"]
            .as_array()
            .expect("query")
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    tollgate_sign::encode::percent_encode(kv[0].as_str().expect("k")),
                    tollgate_sign::encode::percent_encode(kv[1].as_str().expect("v"))
                )
            })
            .collect();
        let mut uri = tollgate_sign::encode::encode_path(i["path"].as_str().expect("path"));
        if !query.is_empty() {
            uri = format!("{uri}?{}", query.join("&"));
        }
        let mut req = http::Request::builder()
            .method(i["method"].as_str().expect("method"))
            .uri(uri);
        for h in i["headers"].as_array().expect("headers") {
            req = req.header(h[0].as_str().expect("name"), h[1].as_str().expect("value"));
        }
        req = req.header("authorization", auth);
        let body = Bytes::from(i["body"].as_str().unwrap_or("").to_owned());
        let (parts, ()) = req.body(()).expect("request").into_parts();
        let call = HuaweiCall::parse(&parts, body).unwrap_or_else(|e| panic!("{}: {e:?}", v["id"]));
        let secret = i["access_key_secret"].as_str().expect("secret");
        call.verify(secret)
            .unwrap_or_else(|e| panic!("{}: {}", v["id"], e.message));
        assert_eq!(
            call.access_key_id(),
            i["access_key_id"].as_str().expect("ak")
        );
        assert!(call.verify("another-secret").is_err(), "{}", v["id"]);
        let mut changed = call.clone();
        changed.body = Bytes::from_static(b"{\"changed\":true}");
        assert!(changed.verify(secret).is_err(), "{}", v["id"]);
        checked += 1;
    }
    assert_eq!(checked, 5, "every published Authorization was checked");
}
