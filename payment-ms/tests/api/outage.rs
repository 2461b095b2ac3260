//! A database outage is a 503 a client may retry (with `Retry-After`), answered quickly once
//! known, through the gateway too; and the service recovers by itself when the database is back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use testkit::helpers::{Backend, TestApp, TestDb, order_body, problem};

/// A TCP forwarder in front of PostgreSQL that a test can pull out (the port closed, every
/// connection through it cut) and put back on the same port.
struct Plug {
    addr: SocketAddr,
    upstream: SocketAddr,
    running: Mutex<Option<CancellationToken>>,
}

impl Plug {
    async fn start(upstream: SocketAddr) -> Arc<Plug> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plug = Arc::new(Plug {
            addr: listener.local_addr().unwrap(),
            upstream,
            running: Mutex::new(None),
        });
        plug.serve(listener).await;
        plug
    }

    async fn serve(&self, listener: TcpListener) {
        let stop = CancellationToken::new();
        *self.running.lock().await = Some(stop.clone());
        let upstream = self.upstream;
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
    }

    /// The database becomes unreachable: connecting is refused, open connections are cut.
    async fn pull(&self) {
        if let Some(stop) = self.running.lock().await.take() {
            stop.cancel();
        }
        // Let the accept loop drop the listener before anyone tries to connect.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn put_back(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn a_database_outage_is_a_503_to_retry_and_recovers_by_itself() {
    let mut test_db = TestDb::create(Backend::Postgres).await;
    let mut url = url::Url::parse(&test_db.url).unwrap();
    let upstream: SocketAddr =
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
            .parse()
            .unwrap();
    let plug = Plug::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(plug.addr.port())).unwrap();
    test_db.url = url.into();
    let app = TestApp::spawn_on(test_db, |_| {}, |_| {}).await;
    let token = app.service_token();
    let created = app
        .post("/api/v1/orders", &token, &order_body("alice"), None)
        .await;
    assert_eq!(created.status(), 201);
    let order: Value = created.json().await.unwrap();

    plug.pull().await;
    // The first request to meet the outage waits for the pool, then says so.
    let response = app.get("/api/v1/orders", &token).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(problem(response).await["code"], "database_unavailable");
    // Once the outage is known, requests are answered at once instead of each waiting out
    // the pool's acquire timeout (5 s), reads and writes alike.
    let known = Instant::now();
    loop {
        let ready = app
            .client
            .get(format!("{}/readyz", app.payment_ms))
            .send()
            .await
            .unwrap();
        if ready.status() == 503 && ready.headers().contains_key("retry-after") {
            break;
        }
        assert!(known.elapsed() < Duration::from_secs(20), "never seen down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let response = app
        .post("/api/v1/orders", &token, &order_body("alice"), None)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(problem(response).await["code"], "database_unavailable");
    let read = app
        .get(
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(read.status(), 503);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    plug.put_back().await;
    let back = Instant::now();
    loop {
        let response = app.get("/api/v1/orders", &token).await;
        if response.status() == 200 {
            let list: Value = response.json().await.unwrap();
            assert_eq!(list["data"][0]["id"], order["id"]);
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(back.elapsed() < Duration::from_secs(30), "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let created = app
        .post("/api/v1/orders", &token, &order_body("alice"), None)
        .await;
    assert_eq!(created.status(), 201);
}

#[test]
fn only_what_a_retry_can_mend_counts_as_an_outage() {
    use payment_ms::platform::db::is_transient;
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
    assert!(is_transient(&DbErr::ConnectionAcquire(
        ConnAcquireErr::Timeout
    )));
    assert!(is_transient(&DbErr::Conn(RuntimeErr::Internal(
        "refused".into()
    ))));
    let io = sea_orm::sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    assert!(is_transient(&DbErr::Query(RuntimeErr::SqlxError(
        Arc::new(io)
    ))));
    // A bug stays a bug (a 500).
    assert!(!is_transient(&DbErr::Custom("bad statement".into())));
    assert!(!is_transient(&DbErr::Json("bad json".into())));
    let decode = sea_orm::sqlx::Error::ColumnNotFound("amount".into());
    assert!(!is_transient(&DbErr::Query(RuntimeErr::SqlxError(
        Arc::new(decode)
    ))));
}
