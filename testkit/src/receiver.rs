//! A partner's endpoint for tests: records every request and answers from a plan.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use shared::signing::{self, WebhookSecret};
use tokio::net::TcpListener;

/// One answer of the receiver.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Answer nothing for this long (longer than the sender's timeout).
    Hang(Duration),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or("").to_owned()
    }

    /// Verifies the signature with `secret` as a partner would, now.
    pub fn verify(&self, secret: &str) -> Result<(), signing::VerifyError> {
        let secret = WebhookSecret::parse(secret).expect("a whsec_ secret");
        signing::verify(
            &secret,
            self.header(signing::ID_HEADER),
            self.header(signing::TIMESTAMP_HEADER),
            self.header(signing::SIGNATURE_HEADER),
            &self.body,
            chrono::Utc::now().timestamp(),
            signing::DEFAULT_TOLERANCE_SECS,
        )
    }
}

#[derive(Clone, Default)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    plan: Arc<Mutex<VecDeque<Reply>>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind receiver"),
        )
        .await
    }

    pub async fn start_on(listener: TcpListener) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let shared = Shared::default();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, shared }
    }

    /// The next answers, in order; 200 once they run out.
    pub fn plan(&self, replies: &[Reply]) {
        self.shared
            .plan
            .lock()
            .unwrap()
            .extend(replies.iter().copied());
    }

    /// Forgets the answers not given yet: 200 from now on.
    pub fn clear_plan(&self) {
        self.shared.plan.lock().unwrap().clear();
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Waits (10 s at most) until `n` requests have arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Hit> {
        for _ in 0..500 {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} webhooks, got {}: {:?}",
            self.hits().len(),
            self.hits().iter().map(Hit::event_type).collect::<Vec<_>>()
        );
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    shared.hits.lock().unwrap().push(Hit { headers, body });
    let reply = shared.plan.lock().unwrap().pop_front();
    match reply {
        None => (StatusCode::OK, "thanks").into_response(),
        Some(Reply::Status(s)) => {
            (StatusCode::from_u16(s).unwrap(), format!("status {s}")).into_response()
        }
        Some(Reply::Hang(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::RetryAfter(s, secs)) => (
            StatusCode::from_u16(s).unwrap(),
            [("retry-after", secs.to_string())],
            "later",
        )
            .into_response(),
    }
}

/// Whether the official `standardwebhooks` Python package accepts a request, when
/// `STANDARDWEBHOOKS_PYTHON` names a Python that has it (scripts/test and CI set it up);
/// `None` when it is not available (never in CI).
pub fn python_verifies(secret: &str, hit: &Hit) -> Option<bool> {
    let Ok(python) = std::env::var("STANDARDWEBHOOKS_PYTHON") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set STANDARDWEBHOOKS_PYTHON"
        );
        eprintln!("STANDARDWEBHOOKS_PYTHON is not set: skipping the standardwebhooks check");
        return None;
    };
    let script = r#"
import os, sys
from standardwebhooks.webhooks import Webhook
body = sys.stdin.buffer.read()
headers = {k: os.environ["WH_" + k.replace("-", "_").upper()] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
Webhook(os.environ["WH_SECRET"]).verify(body, headers)
print("verified")
"#;
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .env("WH_SECRET", secret)
        .env("WH_WEBHOOK_ID", hit.header("webhook-id"))
        .env("WH_WEBHOOK_TIMESTAMP", hit.header("webhook-timestamp"))
        .env("WH_WEBHOOK_SIGNATURE", hit.header("webhook-signature"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the standardwebhooks verifier");
    child.stdin.take().unwrap().write_all(&hit.body).unwrap();
    let out = child.wait_with_output().unwrap();
    Some(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "verified")
}
