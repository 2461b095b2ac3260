//! What operators rely on: rate limits, CORS, shutdown, and start-up errors.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway::limits::Rate;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use testkit::helpers::{Backend, TestApp, problem};

#[tokio::test]
async fn a_user_over_the_limit_gets_429_and_others_do_not() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.rate_per_user = Rate {
                per_second: 1,
                burst: 5,
            };
        },
    )
    .await;
    let alice = app.token("alice", &[]);
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/orders", &alice).await.status(), 200);
    }
    let refused = app.get("/api/v1/orders", &alice).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(refused).await["code"], "rate_limited");
    // Bob is not affected; Alice may go on once the wait is over.
    assert_eq!(
        app.get("/api/v1/orders", &app.token("bob", &[]))
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/api/v1/orders", &alice).await.status(), 200);
}

#[tokio::test]
async fn an_address_over_the_limit_gets_429_but_health_checks_pass() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.rate_per_address = Rate {
                per_second: 1,
                burst: 3,
            };
        },
    )
    .await;
    for user in ["a", "b", "c"] {
        assert_eq!(
            app.get("/api/v1/orders", &app.token(user, &[]))
                .await
                .status(),
            200
        );
    }
    let refused = app.get("/api/v1/orders", &app.token("d", &[])).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // Unauthenticated requests count too, so token guessing is bounded as well.
    assert_eq!(
        app.client
            .get(app.url("/api/v1/orders"))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A shop's backend creates every order from one service account and one address: it has a
/// limit of its own, so the per-user and per-address limits of buyers do not throttle it.
#[tokio::test]
async fn service_callers_have_their_own_limit() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.rate_per_user = Rate {
                per_second: 1,
                burst: 2,
            };
            c.rate_per_address = Rate {
                per_second: 1,
                burst: 4,
            };
            c.rate_per_trusted = Rate {
                per_second: 1,
                burst: 30,
            };
        },
    )
    .await;
    let service = app.service_token();
    for i in 0..30 {
        let response = app
            .post(
                "/api/v1/orders",
                &service,
                &testkit::helpers::order_body("alice"),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "order {i}");
    }
    // Its own limit holds all the same.
    let refused = app
        .post(
            "/api/v1/orders",
            &service,
            &testkit::helpers::order_body("alice"),
            None,
        )
        .await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // A buyer from the same address still has the buyers' limits.
    let alice = app.token("alice", &[]);
    assert_eq!(app.get("/api/v1/orders", &alice).await.status(), 200);
    assert_eq!(app.get("/api/v1/orders", &alice).await.status(), 200);
    assert_eq!(app.get("/api/v1/orders", &alice).await.status(), 429);
}

#[tokio::test]
async fn configured_origins_may_call_the_api_from_a_browser() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.cors_origins = vec!["https://shop.example".parse().unwrap()];
        },
    )
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/api/v1/orders/ord_0/checkout"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let response = app
        .client
        .get(app.url("/api/v1/orders"))
        .bearer_auth(app.token("alice", &[]))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

fn gateway_binary(envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command.env_clear().envs(envs.iter().copied());
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command
}

/// In the dev profile with no key set, the gateway says so once logging runs, and shows the
/// key it made so that tokens can be minted for it: such a token is let in.
#[tokio::test]
async fn a_dev_gateway_without_a_key_shows_the_one_it_made() {
    use std::io::{BufRead, BufReader};
    let mut child = gateway_binary(&[
        ("APP_PROFILE", "dev"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
        ("PAYMENT_MS_URL", "http://127.0.0.1:9"),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Both outputs are read to their end on threads of their own: a pipe closed early would
    // fail the gateway's next log write.
    let lines = |pipe: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rx
    };
    let stderr = lines(Box::new(child.stderr.take().unwrap()));
    let stdout = lines(Box::new(child.stdout.take().unwrap()));
    let wait = Duration::from_secs(30);
    let mut key = None;
    while let Ok(line) = stderr.recv_timeout(wait) {
        if let Some(k) = line.trim().strip_prefix("JWT_HS256_SECRET=") {
            key = Some(k.split_whitespace().next().unwrap().to_owned());
            break;
        }
    }
    let key = key.expect("the generated key is shown");
    let mut warned = false;
    let mut addr = None;
    while let Ok(line) = stdout.recv_timeout(wait) {
        warned |= line.contains("WARN") && line.contains("no JWT key is configured");
        if line.contains("gateway listening") {
            addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .map(str::to_owned);
            break;
        }
    }
    assert!(warned, "the warning is logged once logging runs");
    let addr = addr.expect("listening");
    let minted = gateway_binary(&[("JWT_HS256_SECRET", key.as_str())])
        .args(["token", "--sub", "alice", "--roles", "service"])
        .output()
        .unwrap();
    assert!(minted.status.success());
    let token = String::from_utf8(minted.stdout).unwrap();
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/orders"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    // Let in (payment-ms is not running, hence 503), not refused as 401.
    assert_eq!(response.status(), 503);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn each_missing_or_bad_setting_stops_the_gateway_with_one_line_naming_it() {
    let secret = "a-secret-of-at-least-32-characters-0123";
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("APP_PROFILE", "prod"), ("JWT_HS256_SECRET", secret)],
            "gateway: INTERNAL_TOKEN is required in the prod profile",
        ),
        (
            &[("APP_PROFILE", "prod"), ("INTERNAL_TOKEN", "t")],
            "gateway: JWT_HS256_SECRET, JWT_PUBLIC_KEY_PEM or JWT_JWKS_URL is required in the prod profile",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                ("INTERNAL_TOKEN", "t"),
                ("JWT_HS256_SECRET", secret),
                ("GATEWAY_ADDR", "nowhere"),
            ],
            "gateway: GATEWAY_ADDR is invalid",
        ),
        (
            &[
                ("APP_PROFILE", "prod"),
                ("INTERNAL_TOKEN", "t"),
                ("JWT_HS256_SECRET", secret),
                ("PAYMENT_MS_URL", "ftp://x"),
            ],
            "gateway: PAYMENT_MS_URL is invalid",
        ),
        (
            &[("APP_PROFILE", "staging")],
            "gateway: APP_PROFILE is invalid",
        ),
    ];
    for (envs, expected) in cases {
        let out = gateway_binary(envs).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(expected),
            "{stderr} should start with {expected}"
        );
        assert!(
            !stderr.contains(secret),
            "the secret stays out of the message"
        );
    }
}

/// SIGTERM: the request in flight completes, new connections are refused, the process exits
/// within the bound.
#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_then_exits() {
    // A payment-ms stand-in that takes a second to answer.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                let body = r#"{"data":[],"next_cursor":null}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let secret = "a-secret-of-at-least-32-characters-0123";
    let mut child = gateway_binary(&[
        ("APP_PROFILE", "prod"),
        ("INTERNAL_TOKEN", "t"),
        ("JWT_HS256_SECRET", secret),
        ("GATEWAY_ADDR", &addr),
        ("PAYMENT_MS_URL", &upstream_url),
        ("SHUTDOWN_TIMEOUT", "5s"),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jwt = gateway::config::JwtConfig {
        key: gateway::config::JwtKey::Hs256(secret.to_owned().into()),
        issuer: None,
        audience: None,
        leeway: Duration::from_secs(0),
        jwks_min_refresh: Duration::from_secs(30),
        jwks_ttl: Duration::from_secs(600),
        verified_cache: 0,
        generated: false,
    };
    let token = gateway::auth::mint_token(&jwt, "alice", &[], Duration::from_secs(60)).unwrap();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/api/v1/orders");
        async move { client.get(url).bearer_auth(token).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    // New connections are refused while the old request is still finishing.
    let mut refused = false;
    for _ in 0..30 {
        let fresh = reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await;
        if fresh.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "new connections were still accepted after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "the request in flight was still running then"
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["data"], serde_json::json!([]));

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(6),
            "the gateway did not exit within the bound"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains(secret));
}

/// A payment-ms stand-in that cuts its first `drops` connections off, then answers 200; it
/// counts the connections it saw.
async fn flaky_upstream(drops: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
            if n < drops {
                drop(socket);
                continue;
            }
            let body = r#"{"ok":true}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn only_calls_safe_to_repeat_are_retried() {
    use std::sync::atomic::Ordering;
    for (method, key, expected_status, expected_connections) in [
        ("GET", None, 200, 2),
        ("POST", Some("k-1"), 200, 2),
        ("POST", None, 502, 1),
    ] {
        let (upstream, seen) = flaky_upstream(1).await;
        let app = TestApp::spawn_with(
            Backend::Sqlite,
            |_| {},
            |c| {
                c.payment_ms_url = upstream.parse().unwrap();
            },
        )
        .await;
        let token = app.service_token();
        let mut request = match method {
            "GET" => app.client.get(app.url("/api/v1/orders")),
            _ => app
                .client
                .post(app.url("/api/v1/orders"))
                .json(&serde_json::json!({})),
        }
        .bearer_auth(&token);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected_status, "{method} {key:?}");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            expected_connections,
            "{method} {key:?}"
        );
    }
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .client
        .get(app.url("/api/v1/orders"))
        .bearer_auth(app.token("alice", &[]))
        .header("x-padding", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(problem(response).await["code"], "headers_too_large");
}

/// Collects everything logged on this thread.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A full flow logged at `debug` holds no token, secret or card-like number. The test runtime
/// is single-threaded, so the thread's subscriber sees every task of the stack.
#[tokio::test(flavor = "current_thread")]
async fn logs_of_a_full_flow_hold_no_secrets() {
    // With one subscriber in the process, tracing decides whether a span or event is wanted by
    // asking the default subscriber *of the thread that reaches it first*, and keeps that answer
    // for every thread: a parallel test reaching the request span first (with no subscriber)
    // would switch it off for this one. A second live subscriber makes tracing ask all of them.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::spawn(Backend::Sqlite).await;
    let receiver = testkit::receiver::Receiver::start().await;
    let partner: Value = app
        .post(
            "/api/v1/partners",
            &app.admin_token(),
            &serde_json::json!({"name": "p", "url": receiver.url}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let (order, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    app.press(payment_id, "pay").await;
    app.verify("alice", payment_id).await;
    receiver.wait_for(4).await;
    // A request with a bad token and a card number in its body is logged too.
    app.client
        .post(app.url("/api/v1/orders"))
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.forged")
        .json(&serde_json::json!({"card": "4242424242424242"}))
        .send()
        .await
        .unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(payment_id) && logs.contains(order["id"].as_str().unwrap()),
        "the capture works"
    );
    // What a handler logs carries its request's id: payment-ms's "event recorded" line of
    // the order it created, under the request span the gateway's id was passed on to.
    let created = logs
        .lines()
        .find(|line| line.contains("event recorded") && line.contains("order.created"))
        .expect("payment-ms logged the order's event");
    assert!(
        created.contains("\"request_id\""),
        "the handler's log line has no request id: {created}"
    );
    let secrets = [
        app.token("alice", &[]),
        app.service_token(),
        app.admin_token(),
        testkit::helpers::JWT_SECRET.to_owned(),
        testkit::helpers::INTERNAL_TOKEN.to_owned(),
        partner["secret"].as_str().unwrap().to_owned(),
        "eyJhbGciOiJIUzI1NiJ9".to_owned(),
        "whsec_".to_owned(),
        "4242424242424242".to_owned(),
    ];
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "the logs show {secret}");
    }
    // Nothing that looks like a card number: a standalone number of 13 to 19 digits (hex ids
    // may hold digit runs; they are not standalone).
    let card_like = logs
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|token| {
            (13..=19).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_digit())
        });
    assert_eq!(card_like, None, "a card-like number in the logs");
}

/// "event recorded" is logged once the event is committed: an order whose transaction fails
/// after its event was written (here, storing the idempotent answer is refused) logs none.
#[tokio::test(flavor = "current_thread")]
async fn an_event_is_logged_only_once_committed() {
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn(Backend::Sqlite).await;
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared(
            "CREATE TRIGGER refuse BEFORE UPDATE ON idempotency_keys \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .await
        .unwrap();
    let token = app.service_token();
    let failed = app
        .post(
            "/api/v1/orders",
            &token,
            &testkit::helpers::order_body("alice"),
            Some("key-1"),
        )
        .await;
    assert_eq!(failed.status(), 500);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request failed"), "the capture works: {logs}");
    assert!(
        !logs.contains("event recorded"),
        "an event that was rolled back was logged: {logs}"
    );

    app.db
        .execute_unprepared("DROP TRIGGER refuse")
        .await
        .unwrap();
    let order = app.create_order("alice").await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let recorded: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("event recorded"))
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(recorded[0].contains(order["id"].as_str().unwrap()));
}

#[tokio::test]
async fn metrics_show_requests_payments_and_webhooks() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let receiver = testkit::receiver::Receiver::start().await;
    app.post(
        "/api/v1/partners",
        &app.admin_token(),
        &serde_json::json!({"name": "p", "url": receiver.url}),
        None,
    )
    .await;
    let (_, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    app.press(payment_id, "pay").await;
    app.verify("alice", payment_id).await;
    app.order_and_payment("bob").await;
    receiver.wait_for(6).await;

    let gateway = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(
        gateway.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let gateway = gateway.text().await.unwrap();
    assert!(
        gateway.contains(r#"route="/api/v1/orders/{id}/checkout""#),
        "{gateway}"
    );
    assert!(gateway.contains("http_request_duration_seconds_bucket"));
    assert!(
        !gateway.contains(payment_id),
        "routes are templates, never raw paths"
    );

    let ms = app.metrics(&app.payment_ms).await;
    assert!(ms.contains(r#"payments{status="succeeded"} 1"#), "{ms}");
    assert!(ms.contains(r#"payments{status="pending"} 1"#), "{ms}");
    assert!(
        ms.contains(r#"webhook_attempts_total{outcome="succeeded"}"#),
        "{ms}"
    );
    assert!(ms.contains("webhook_queue_depth"));
    assert!(ms.contains(r#"db_pool_connections{state="idle"}"#));
    assert!(ms.contains(r#"service="payment-ms""#));
}

/// When PostgreSQL drops every connection of payment-ms (a restart, a failover, an
/// administrator), later requests are served on new connections. (payment-ms's pool pings
/// only connections idle for a second or more; a dropped one is found broken either way.)
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn connections_the_database_dropped_are_replaced() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.create_order("alice").await;
    let dropped = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .await
        .unwrap();
    assert!(!dropped.is_empty(), "payment-ms had connections to drop");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..5 {
        let order = app.create_order("alice").await;
        assert_eq!(order["status"], "pending");
    }
}
