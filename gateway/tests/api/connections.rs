//! Connections: a client that never sends its request head is cut off by both services, and a
//! connection to payment-ms that drops a `verify` is tried again.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use testkit::helpers::{Backend, TestApp, test_env};

/// Waits until the server closes the connection; how long that took.
async fn closed_after(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_send_their_request_head_are_closed() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |c| c.header_read_timeout = Duration::from_millis(500),
        |c| c.header_read_timeout = Duration::from_millis(500),
    )
    .await;
    for base in [&app.gateway, &app.payment_ms] {
        let addr = base.trim_start_matches("http://");
        // Silent from the start.
        let silent = TcpStream::connect(addr).await.unwrap();
        // Half a request head, then nothing (slowloris).
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        for stream in [silent, partial] {
            let closed = closed_after(stream, Duration::from_secs(5)).await;
            assert!(closed.is_some(), "{base} kept a silent connection open");
        }
    }
    // A client that sends its request is served as ever.
    let ok = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

/// A payment-ms in front of the real one that drops the first connection as soon as the
/// request arrives, then passes everything through.
async fn dropping_once(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut client, _)) = listener.accept().await {
            if first {
                first = false;
                let mut buf = [0u8; 4096];
                let _ = client.read(&mut buf).await;
                drop(client);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_that_payment_ms_drops_is_tried_again() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);

    // A second gateway whose way to payment-ms drops the first connection.
    let env = test_env("sqlite::memory:");
    let mut config = gateway::Config::from_source(&env).unwrap();
    config.addr = "127.0.0.1:0".parse().unwrap();
    let upstream = app.payment_ms.trim_start_matches("http://").to_owned();
    config.payment_ms_url = dropping_once(upstream).await.parse().unwrap();
    let flaky = gateway::Application::build(config).await.unwrap();
    let flaky_url = format!("http://{}", flaky.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(flaky.run_until(stop.clone()));

    let response = app
        .client
        .post(format!("{flaky_url}/api/v1/payments/{payment_id}/verify"))
        .bearer_auth(app.token("alice", &[]))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let verified: serde_json::Value = response.json().await.unwrap();
    assert_eq!(verified["status"], "succeeded");
    // Verified once as far as the record goes: one event.
    let events = app.events_of(payment_id).await;
    assert_eq!(
        events
            .iter()
            .filter(|t| t.as_str() == "payment.succeeded")
            .count(),
        1
    );
    stop.cancel();
}
