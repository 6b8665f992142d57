//! What operators rely on: health, metrics, logs without secrets, clean shutdown.

use std::time::Duration;

use tollgate::config::OutboundScheme;

use crate::support::*;

#[tokio::test]
async fn health_and_metrics_are_served() {
    let stack = Stack::start();
    assert_eq!(http_get(stack.gateway.addr, "/healthz").await, "ok\n");
    let acme = stack.acme();
    assert_eq!(
        acme.call("QueryOrders", BSS, &[]).await.expect("ok").status,
        200
    );
    let forged = stack.client(ACME_AK, "globex.secret", OutboundScheme::Rpc);
    let _ = forged.call("QueryOrders", BSS, &[]).await.expect("forged");
    let _ = acme.call("MadeUpAction", BSS, &[]).await.expect("made up");

    let m = metrics_text(stack.admin, &stack.admin_token).await;
    // Operational figures are the operator's: not on the customer
    // listener, not on the admin listener without the token.
    let exposed = http_get(stack.gateway.addr, "/metrics").await;
    assert!(!exposed.contains("tollgate_"), "{exposed}");
    let (status, _) = http_request(
        stack.admin,
        http::Method::GET,
        "/metrics",
        None,
        String::new(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        m.contains(
            r#"tollgate_requests_total{provider="aliyun",action="QueryOrders",outcome="ok"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(
            r#"tollgate_requests_total{provider="aliyun",action="QueryOrders",outcome="refused"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_refusals_total{reason="signature"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("tollgate_upstream_duration_seconds_bucket"),
        "{m}"
    );
    assert!(
        m.contains(r#"action="other""#),
        "unknown actions are bucketed, not labelled: {m}"
    );
    assert!(!m.contains("MadeUpAction"), "{m}");
}

#[tokio::test]
async fn no_secret_appears_in_logs_or_answers() {
    let stack = Stack::start();
    let acme = stack.acme();
    let mut bodies = String::new();
    for r in [
        acme.call("GetSubscriptionPrice", BSS, PRICE)
            .await
            .expect("ok"),
        stack
            .client(ACME_AK, "globex.secret", OutboundScheme::Rpc)
            .call("QueryOrders", BSS, &[])
            .await
            .expect("forged"),
        stack
            .client(ACME_AK, "globex.secret", OutboundScheme::V3)
            .call("QueryOrders", BSS, &[])
            .await
            .expect("forged"),
        stack
            .shop()
            .call("QueryOrders", BSS, &[("OwnerId", INITECH_UID)])
            .await
            .expect("refused"),
    ] {
        bodies.push_str(&String::from_utf8_lossy(&r.body));
    }
    // Give the JSON log writer a moment to flush.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = format!("{}\n{}", stack.gateway.logs(), stack.sim.logs());
    assert!(
        logs.contains("forwarded"),
        "debug logs were captured: {logs}"
    );
    for secret in all_secrets() {
        assert!(!logs.contains(&secret), "a secret leaked into the logs");
        assert!(!bodies.contains(&secret), "a secret leaked into an answer");
    }
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let mut stack = Stack::start();
    assert_eq!(
        stack
            .acme()
            .call("QueryOrders", BSS, &[])
            .await
            .expect("ok")
            .status,
        200
    );
    let pid = stack.gateway.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = stack
        .gateway
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn the_admin_api_requires_its_token() {
    let stack = Stack::start();
    let (status, body) = http_request(
        stack.admin,
        http::Method::GET,
        "/v1/status",
        None,
        String::new(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = http_request(
        stack.admin,
        http::Method::GET,
        "/v1/status",
        Some("wrong-token"),
        String::new(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = admin(
        &stack,
        http::Method::GET,
        "/v1/status",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"], "tollgate");
    let (status, body) = admin(
        &stack,
        http::Method::GET,
        "/v1/nothing-here",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "NotFound");
    // The admin API is not on the customer listener.
    let (status, _) = http_request(
        stack.gateway.addr,
        http::Method::GET,
        "/v1/status",
        Some(&stack.admin_token),
        String::new(),
    )
    .await;
    assert_ne!(status, 200);
}
