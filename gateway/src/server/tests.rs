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
