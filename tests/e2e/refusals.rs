//! Everything the gateway refuses: in Alibaba's error format, with nothing
//! reaching the cloud.

use http::Method;
use tollgate::aliyun::outbound::Freshness;
use tollgate::client::Reply;
use tollgate::config::OutboundScheme;

use crate::support::*;

fn assert_refused(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.json);
    assert_eq!(r.code(), code, "{:?}", r.json);
    assert!(r.json["RequestId"].is_string(), "{:?}", r.json);
    assert_eq!(r.json["HostId"], "tollgate.test");
    assert!(r.json["Message"].is_string());
}

#[tokio::test]
async fn every_refusal_answers_in_alibabas_format_and_reaches_nothing() {
    let stack = Stack::start();
    let acme = stack.acme();
    let shop = stack.shop();

    let forged = stack.client(ACME_AK, "globex.secret", OutboundScheme::Rpc);
    assert_refused(
        &forged.call("QueryOrders", BSS, &[]).await.expect("forged"),
        400,
        "SignatureDoesNotMatch",
    );
    let forged_v3 = stack.client(ACME_AK, "globex.secret", OutboundScheme::V3);
    assert_refused(
        &forged_v3
            .call("QueryOrders", BSS, &[])
            .await
            .expect("forged v3"),
        400,
        "SignatureDoesNotMatch",
    );

    let unknown = tollgate::client::AliyunClient::new(
        &stack.gateway.addr.to_string(),
        "TGNOSUCHKEY",
        "x",
        OutboundScheme::Rpc,
    );
    assert_refused(
        &unknown
            .call("QueryOrders", BSS, &[])
            .await
            .expect("unknown"),
        404,
        "InvalidAccessKeyId.NotFound",
    );

    let fresh = Freshness::now();
    let first = acme
        .send(acme.request_with(Method::POST, "QueryOrders", BSS, &[], &fresh))
        .await
        .expect("first");
    assert_eq!(first.status, 200);
    let replay = acme
        .send(acme.request_with(Method::POST, "QueryOrders", BSS, &[], &fresh))
        .await
        .expect("replay");
    assert_refused(&replay, 400, "SignatureNonceUsed");

    let stale = Freshness {
        timestamp: tollgate::aliyun::format_timestamp(
            time::OffsetDateTime::now_utc() - time::Duration::minutes(20),
        ),
        nonce: "stale-nonce".into(),
    };
    let r = acme
        .send(acme.request_with(Method::POST, "QueryOrders", BSS, &[], &stale))
        .await
        .expect("stale");
    assert_refused(&r, 400, "InvalidTimeStamp.Expired");

    let spoof = acme
        .call("QueryOrders", BSS, &[("OwnerId", GLOBEX_UID)])
        .await
        .expect("spoof");
    assert_refused(&spoof, 400, "InvalidOwner");
    let spoof = acme
        .call(
            "QueryOrders",
            BSS,
            &[("OwnerAccount", "globex@example.com")],
        )
        .await
        .expect("spoof");
    assert_refused(&spoof, 400, "InvalidOwner");
    let not_allowed = shop
        .call("QueryOrders", BSS, &[("OwnerId", INITECH_UID)])
        .await
        .expect("frontend");
    assert_refused(&not_allowed, 400, "InvalidOwner");
    let nameless = shop
        .call("QueryOrders", BSS, &[])
        .await
        .expect("frontend without owner");
    assert_refused(&nameless, 400, "MissingOwnerId");

    let unrouted = acme
        .call("DescribeRegions", "2099-01-01", &[])
        .await
        .expect("unknown version");
    assert_refused(&unrouted, 400, "InvalidVersion");

    let seen = stack.recorded().await;
    assert_eq!(
        seen.len(),
        1,
        "only the one genuine call reached the cloud: {seen:?}"
    );
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let stack = Stack::start();
    let addr = stack.gateway.addr;

    let body = http_send(addr, Method::POST, "/?Version=2017-12-14", String::new()).await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json envelope");
    assert_eq!(v["Code"], "MissingAction", "{v}");

    let body = http_send(
        addr,
        Method::PUT,
        "/?Action=QueryOrders&Version=2017-12-14",
        String::new(),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json envelope");
    assert_eq!(v["Code"], "UnsupportedHTTPMethod", "{v}");

    let body = http_send(
        addr,
        Method::POST,
        "/?Action=QueryOrders&Version=2017-12-14&AccessKeyId=TGACMEDEMOKEY0001&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2026-01-01T00:00:00Z",
        String::new(),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json envelope");
    assert_eq!(v["Code"], "IncompleteSignature", "{v}");

    // Bigger than the configured 64 KiB body cap.
    let big = "a".repeat(70 * 1024);
    let body = http_send(
        addr,
        Method::POST,
        "/?Action=QueryOrders&Version=2017-12-14",
        big,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json envelope");
    assert_eq!(v["Code"], "RequestTooLarge", "{v}");

    // Format=XML gets the XML envelope.
    let r = stack
        .client(ACME_AK, "globex.secret", OutboundScheme::Rpc)
        .call("QueryOrders", BSS, &[("Format", "XML")])
        .await
        .expect("xml");
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );

    assert!(stack.recorded().await.is_empty());
}

#[tokio::test]
async fn upstream_failures_are_reported_not_hidden() {
    let stack = Stack::start_with("timeout_ms = 700");
    let acme = stack.acme();

    stack.set_faults(serde_json::json!({"fail_next": 1})).await;
    let r = acme.call("QueryOrders", BSS, &[]).await.expect("5xx");
    assert_eq!(
        r.status, 503,
        "the provider's own 503 passes through: {:?}",
        r.json
    );
    assert_eq!(r.code(), "ServiceUnavailable");

    stack.set_faults(serde_json::json!({"hang_next": 1})).await;
    let r = acme.call("QueryOrders", BSS, &[]).await.expect("timeout");
    assert_eq!(r.status, 504, "{:?}", r.json);
    assert_eq!(r.code(), "ServiceTimeout");
    assert!(r.json["Message"].as_str().unwrap_or("").contains("unknown"));

    stack.set_faults(serde_json::json!({"drop_next": 1})).await;
    let r = acme.call("QueryOrders", BSS, &[]).await.expect("dropped");
    assert!(r.status == 502 || r.status == 503, "{:?}", r.json);

    stack.set_faults(serde_json::json!({})).await;
    let r = acme
        .call("QueryOrders", BSS, &[])
        .await
        .expect("healthy again");
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_retryable_503() {
    // A gateway whose upstream port has nobody listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("admin.token"), "unused-admin-token").expect("write");
    let cfg = gateway_config(dead, "connect_timeout_ms = 300", "");
    std::fs::write(dir.path().join("t.toml"), cfg).expect("write");
    let gw = Proc::start(&[
        "serve",
        "--config",
        dir.path().join("t.toml").to_str().expect("utf8"),
    ]);
    let client = tollgate::client::AliyunClient::new(
        &gw.addr.to_string(),
        ACME_AK,
        &secret("acme.secret"),
        OutboundScheme::Rpc,
    );
    let r = client.call("QueryOrders", BSS, &[]).await.expect("call");
    assert_eq!(r.status, 503, "{:?}", r.json);
    assert_eq!(r.code(), "ServiceUnavailable");
}
