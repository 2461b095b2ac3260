//! A whole stack per test: payment-ms on its own database (a temporary SQLite file, or a fresh
//! PostgreSQL database when `TEST_DATABASE_URL` is set), and a gateway in front of it, both on
//! port 0.

use std::sync::Arc;
use std::time::Duration;

use gateway::config::JwtConfig;
use payment_ms::clock::ShiftedClock;
use payment_ms::events::entities::events;
use reqwest::{Client, Response};
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};
use serde_json::{Value, json};
use shared::config::Env;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const JWT_SECRET: &str = "test-secret-for-hs256-tokens-0123456789";
pub const INTERNAL_TOKEN: &str = "test-internal-token";

/// Declares each listed `async fn name(backend: Backend)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)")]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of one test, dropped with it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A new database of its own on SQLite, or on the PostgreSQL server of [`postgres_url`].
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_url();
                let name = format!("test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                TestDb {
                    url: url.into(),
                    _dir: None,
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }
}

/// The PostgreSQL server the tests may create databases on. A test that needs it is ignored
/// when the tests were built without `TEST_DATABASE_URL`; run all the same (`--include-ignored`),
/// or without the variable since, it fails rather than pass without having run.
pub fn postgres_url() -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_DATABASE_URL is not set: this test needs PostgreSQL (scripts/test sets it when \
             a server answers on 127.0.0.1:5432)"
        ),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside any runtime we may block: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let admin = Database::connect(&admin_url).await?;
                admin
                    .execute_raw(Statement::from_string(
                        admin.get_database_backend(),
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ))
                    .await?;
                admin.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
    }
}

pub struct TestApp {
    pub gateway: String,
    pub payment_ms: String,
    /// Follows no redirects: tests look at the 303 themselves.
    pub client: Client,
    pub db: DatabaseConnection,
    pub ms: payment_ms::AppState,
    /// payment-ms's clock: a test moves it forward past an expiry instead of editing rows.
    pub clock: ShiftedClock,
    pub jwt: JwtConfig,
    shutdown: CancellationToken,
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn test_env(database_url: &str) -> Env {
    Env::from_pairs([
        ("APP_PROFILE", "dev"),
        ("DATABASE_URL", database_url),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("JWT_HS256_SECRET", JWT_SECRET),
        ("JWT_LEEWAY", "0s"),
        ("DATABASE_MAX_CONNECTIONS", "5"),
        ("EXPIRY_SWEEP_INTERVAL", "1h"),
        ("WEBHOOK_RETRY_SCHEDULE", "100ms,200ms,300ms"),
        ("WEBHOOK_JITTER_PERCENT", "0"),
        ("WEBHOOK_TIMEOUT", "2s"),
        ("WEBHOOK_POLL_INTERVAL", "50ms"),
        // Tests fire many requests from one address; the limits have their own tests.
        ("RATE_LIMIT_USER_PER_SECOND", "0"),
        ("RATE_LIMIT_IP_PER_SECOND", "0"),
        ("RATE_LIMIT_SERVICE_PER_SECOND", "0"),
    ])
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}, |_| {}).await
    }

    /// As [`spawn`](Self::spawn), with each service's configuration adjusted first.
    pub async fn spawn_with(
        backend: Backend,
        adjust_payment_ms: impl FnOnce(&mut payment_ms::Config),
        adjust_gateway: impl FnOnce(&mut gateway::Config),
    ) -> TestApp {
        let test_db = TestDb::create(backend).await;
        Self::spawn_on(test_db, adjust_payment_ms, adjust_gateway).await
    }

    /// A stack on a database made by the caller (tests that start a second payment-ms on it).
    pub async fn spawn_on(
        test_db: TestDb,
        adjust_payment_ms: impl FnOnce(&mut payment_ms::Config),
        adjust_gateway: impl FnOnce(&mut gateway::Config),
    ) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            shared::telemetry::init(false);
        }
        let env = test_env(&test_db.url);
        let shutdown = CancellationToken::new();

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind payment-ms");
        let ms_addr = listener.local_addr().expect("payment-ms address");
        let payment_ms_url = format!("http://{ms_addr}");
        let mut ms_config = payment_ms::Config::from_source(&env).expect("payment-ms config");
        ms_config.public_base_url = url::Url::parse(&payment_ms_url).expect("url");
        adjust_payment_ms(&mut ms_config);
        let clock = ShiftedClock::default();
        let ms = payment_ms::Application::with_clock(ms_config, listener, Arc::new(clock.clone()))
            .await
            .expect("payment-ms starts");
        let ms_state = ms.state().clone();
        tokio::spawn(ms.run_until(shutdown.clone()));

        let mut gw_config = gateway::Config::from_source(&env).expect("gateway config");
        gw_config.addr = "127.0.0.1:0".parse().expect("addr");
        gw_config.payment_ms_url = url::Url::parse(&payment_ms_url).expect("url");
        adjust_gateway(&mut gw_config);
        let jwt = gw_config.jwt.clone();
        let gw = gateway::Application::build(gw_config)
            .await
            .expect("gateway starts");
        let gateway_url = format!("http://{}", gw.local_addr().expect("gateway address"));
        tokio::spawn(gw.run_until(shutdown.clone()));

        let db = Database::connect(&test_db.url)
            .await
            .expect("test connection");
        TestApp {
            gateway: gateway_url,
            payment_ms: payment_ms_url,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            db,
            ms: ms_state,
            clock,
            jwt,
            shutdown,
            _db: test_db,
        }
    }

    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        gateway::auth::mint_token(&self.jwt, sub, roles, Duration::from_secs(600)).expect("token")
    }

    pub fn admin_token(&self) -> String {
        self.token("root", &["admin"])
    }

    pub fn service_token(&self) -> String {
        self.token("shop_backend", &["service"])
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// A service's Prometheus metrics: `base` is `self.gateway` or `self.payment_ms`.
    pub async fn metrics(&self, base: &str) -> String {
        let response = self.client.get(format!("{base}/metrics")).send().await;
        response.unwrap().text().await.unwrap()
    }

    /// payment-ms's `/readyz` answer (it reports NATS and the account service when configured).
    pub async fn readiness(&self) -> Value {
        let response = self
            .client
            .get(format!("{}/readyz", self.payment_ms))
            .send()
            .await
            .expect("GET /readyz");
        response.json().await.expect("readiness JSON")
    }

    /// GETs `path` through the gateway and answers the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value, key: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST")
    }

    /// Creates an order for `user_id` as the shop's backend; returns its JSON.
    pub async fn create_order(&self, user_id: &str) -> Value {
        let response = self
            .post(
                "/api/v1/orders",
                &self.service_token(),
                &order_body(user_id),
                None,
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("order JSON")
    }

    /// Starts a checkout of `order_id` as `user_id`; returns the response.
    pub async fn checkout(&self, user_id: &str, order_id: &str, key: Option<&str>) -> Response {
        self.post(
            &format!("/api/v1/orders/{order_id}/checkout"),
            &self.token(user_id, &[]),
            &checkout_body(),
            key,
        )
        .await
    }

    /// An order for `user_id`, checked out by them; returns (order, payment).
    pub async fn order_and_payment(&self, user_id: &str) -> (Value, Value) {
        let order = self.create_order(user_id).await;
        let response = self
            .checkout(user_id, order["id"].as_str().expect("id"), None)
            .await;
        assert_eq!(response.status(), 201);
        (order, response.json().await.expect("payment JSON"))
    }

    /// Presses a button on the mock provider's hosted page (through the gateway).
    pub async fn press(&self, payment_id: &str, action: &str) -> Response {
        self.client
            .post(self.url(&format!("/checkout/{payment_id}")))
            .form(&[("action", action)])
            .send()
            .await
            .expect("press")
    }

    pub async fn verify(&self, user_id: &str, payment_id: &str) -> Value {
        let response = self
            .post(
                &format!("/api/v1/payments/{payment_id}/verify"),
                &self.token(user_id, &[]),
                &json!({}),
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("payment JSON")
    }

    /// Event types recorded about `subject_id`, oldest first.
    pub async fn events_of(&self, subject_id: &str) -> Vec<String> {
        events::Entity::find()
            .filter(events::Column::SubjectId.eq(subject_id))
            .order_by_asc(events::Column::Id)
            .all(&self.db)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

pub fn order_body(user_id: &str) -> Value {
    json!({
        "user_id": user_id,
        "currency": "usd",
        "reference": "res_42",
        "items": [
            {"sku": "tee", "name": "T-shirt", "quantity": 2, "unit_price": 1999},
            {"sku": "mug", "name": "Mug", "quantity": 1, "unit_price": 850}
        ]
    })
}

pub fn checkout_body() -> Value {
    json!({
        "success_url": "https://shop.example/paid?step=done",
        "cancel_url": "https://shop.example/cart"
    })
}

/// The fields a problem's `errors` name, in order (a 422's).
pub async fn error_fields(response: Response) -> Vec<String> {
    problem(response).await["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn problem(response: Response) -> Value {
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "errors are problem+json"
    );
    response.json().await.expect("problem JSON")
}

/// Waits until `check` holds, failing the test after `within` with what it waited for.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until something listens on `port` (a process the test started).
pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// A payment-ms process to start (`bin`: the test's `env!("CARGO_BIN_EXE_payment-ms")`): the dev
/// profile on `database_url`, listening on `port`, no webhook worker, warnings to `log`. The test
/// adds its own settings before spawning it.
pub fn payment_ms_command(
    bin: &str,
    database_url: &str,
    port: u16,
    internal_token: &str,
    log: &std::path::Path,
) -> std::process::Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file");
    let mut command = std::process::Command::new(bin);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_PROFILE", "dev")
        .env("DATABASE_URL", database_url)
        .env("PAYMENT_MS_ADDR", format!("127.0.0.1:{port}"))
        .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("INTERNAL_TOKEN", internal_token)
        .env("WEBHOOK_ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    command
}
