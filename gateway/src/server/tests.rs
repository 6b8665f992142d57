use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{Shutdown, Workers, serve_on};
use crate::Body;

/// Connections are spread over the request threads, every request is
/// answered, and shutdown drains and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_run_on_the_request_threads() {
    let workers = Arc::new(Workers::start(2, "test-req").expect("threads"));
    assert_eq!(workers.len(), 2);
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let record = seen.clone();
    let server = tokio::spawn(serve_on(
        listener,
        move |_req, _peer| {
            let record = record.clone();
            async move {
                let name = std::thread::current().name().unwrap_or("").to_owned();
                record.lock().expect("lock").insert(name.clone());
                Response::new(Body::new(Bytes::from(name)))
            }
        },
        shutdown.clone(),
        Some(workers.clone()),
        super::MAX_CONNECTIONS,
    ));

    // Separate clients: separate connections, handed out round-robin.
    let mut answered = 0;
    for _ in 0..4 {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let resp = client
            .get(format!("http://{addr}/").parse().expect("uri"))
            .await
            .expect("answer");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(body.starts_with(b"test-req-"), "{body:?}");
        answered += 1;
    }
    assert_eq!(answered, 4);
    let threads = seen.lock().expect("lock").clone();
    assert_eq!(
        threads,
        HashSet::from(["test-req-0".to_owned(), "test-req-1".to_owned()]),
        "both request threads served connections"
    );

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .expect("serve task");
}

/// Past the connection cap a new connection is closed at once; once one
/// closes, the next is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let server = tokio::spawn(serve_on(
        listener,
        |_req, _peer| async { Response::new(Body::new(Bytes::from_static(b"ok"))) },
        shutdown.clone(),
        None,
        2,
    ));
    // Two connections that have sent half a head: both stay open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        held.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The third is closed without an answer.
    let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        third.read_to_end(&mut buf),
    )
    .await
    .expect("closed at once, not left hanging");
    assert!(
        read.is_err() || buf.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // One of the first two goes away: there is room again.
    drop(held.pop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut fourth = tokio::net::TcpStream::connect(addr).await.expect("connect");
    fourth
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    fourth.read_to_end(&mut buf).await.expect("answer");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    drop(held);
    shutdown.trigger();
    server.await.expect("server");
}
