use super::*;

fn up(product: &str, version: &str, hosts: &[&str]) -> UpstreamConfig {
    UpstreamConfig {
        product: product.into(),
        version: version.into(),
        url: format!("http://{product}.internal:80"),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        signature: OutboundScheme::Rpc,
        connect_timeout_ms: 1,
        timeout_ms: 1,
    }
}

#[test]
fn routes_by_version_then_host() {
    let routes = Routes::from_config(&[
        up("bss", "2017-12-14", &[]),
        up(
            "bss-intl",
            "2017-12-14",
            &["business.ap-southeast-1.aliyuncs.com"],
        ),
        up("ecs", "2014-05-26", &[]),
    ])
    .expect("routes");
    assert_eq!(
        routes
            .route("2017-12-14", "127.0.0.1:8080")
            .map(|u| u.product.as_str()),
        Some("bss")
    );
    assert_eq!(
        routes
            .route("2017-12-14", "business.ap-southeast-1.aliyuncs.com:443")
            .map(|u| u.product.as_str()),
        Some("bss-intl")
    );
    assert_eq!(
        routes
            .route("2014-05-26", "x")
            .map(|u| u.authority.as_str()),
        Some("ecs.internal:80")
    );
    assert!(routes.route("1999-01-01", "x").is_none());
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_says_so() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let fwd = Forwarder::new(Duration::from_millis(500), 1024);
    let req = Request::get(format!("http://127.0.0.1:{port}/"))
        .body(Body::default())
        .expect("req");
    let err = fwd
        .send(req, Duration::from_secs(2))
        .await
        .expect_err("refused");
    assert!(err.retryable);
    assert_eq!(err.code, "ServiceUnavailable");
}

#[tokio::test]
async fn a_silent_upstream_times_out_as_unknown_outcome() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let (_s, _) = l.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let fwd = Forwarder::new(Duration::from_millis(500), 1024);
    let req = Request::get(format!("http://{addr}/"))
        .body(Body::default())
        .expect("req");
    let err = fwd
        .send(req, Duration::from_millis(200))
        .await
        .expect_err("timeout");
    assert!(
        !err.retryable,
        "a timed-out purchase must not be blindly retried"
    );
    assert_eq!(err.status, StatusCode::GATEWAY_TIMEOUT);
    hold.abort();
}
