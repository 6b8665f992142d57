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
