//! A local fake of the external inventory service (the API of docs/orders.md), with a ledger
//! the tests read: stock on hand per SKU, every reservation and what each call did to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Committed,
    Released,
}

#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: String,
    /// The tracked lines held: (sku, quantity).
    pub lines: Vec<(String, i64)>,
    pub status: Status,
    pub expires_at: DateTime<Utc>,
    /// How many times on hand went down for it (never more than once).
    pub commits_applied: u32,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub on_hand: HashMap<String, i64>,
    pub reservations: HashMap<String, Reservation>,
    /// Every call: (operation, reservation id, status answered).
    pub calls: Vec<(String, String, u16)>,
}

impl Ledger {
    /// Units of `sku` held by active reservations not yet expired at `now`.
    pub fn held(&self, sku: &str, now: DateTime<Utc>) -> i64 {
        self.reservations
            .values()
            .filter(|r| r.status == Status::Active && r.expires_at > now)
            .flat_map(|r| r.lines.iter())
            .filter(|(s, _)| s == sku)
            .map(|(_, q)| q)
            .sum()
    }
}

#[derive(Clone)]
struct Shared {
    ledger: Arc<Mutex<Ledger>>,
    down: Arc<AtomicBool>,
}

pub struct FakeInventory {
    pub url: String,
    shared: Shared,
}

impl FakeInventory {
    pub async fn start() -> FakeInventory {
        let shared = Shared {
            ledger: Arc::new(Mutex::new(Ledger::default())),
            down: Arc::new(AtomicBool::new(false)),
        };
        let app = Router::new()
            .route("/reservations", post(reserve))
            .route("/reservations/{id}/commit", post(commit))
            .route("/reservations/{id}/release", post(release))
            .route("/stock/{sku}", get(stock))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeInventory { url, shared }
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.shared.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_stock(&self, sku: &str, on_hand: i64) {
        self.ledger().on_hand.insert(sku.to_owned(), on_hand);
    }

    /// Makes a reservation lapse now, as its expiry would.
    pub fn lapse(&self, id: &str) {
        if let Some(r) = self.ledger().reservations.get_mut(id) {
            r.expires_at = Utc::now() - chrono::TimeDelta::seconds(1);
        }
    }

    /// While down, every call is answered 503.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Ledger> {
    shared.ledger.lock().unwrap_or_else(|e| e.into_inner())
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn view(r: &Reservation) -> Value {
    json!({
        "id": r.id,
        "status": match r.status { Status::Active => "active", Status::Committed => "committed", Status::Released => "released" },
        "lines": r.lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect::<Vec<_>>(),
        "expires_at": r.expires_at,
    })
}

async fn reserve(State(shared): State<Shared>, axum::Json(body): axum::Json<Value>) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({}));
    }
    let (Some(id), Some(lines), Some(expires_at)) = (
        body["id"].as_str(),
        body["lines"].as_array(),
        body["expires_at"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok()),
    ) else {
        return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"code": "invalid"}));
    };
    let mut ledger = lock(&shared);
    if let Some(existing) = ledger.reservations.get(id) {
        let body = view(existing);
        ledger.calls.push(("reserve".into(), id.into(), 200));
        return answer(StatusCode::OK, body);
    }
    let now = Utc::now();
    let mut held = Vec::new();
    let mut shorts = Vec::new();
    for line in lines {
        let (Some(sku), Some(quantity)) = (line["sku"].as_str(), line["quantity"].as_i64()) else {
            return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"code": "invalid"}));
        };
        let Some(on_hand) = ledger.on_hand.get(sku).copied() else {
            continue; // not tracked here
        };
        let available = on_hand - ledger.held(sku, now);
        if available < quantity {
            shorts.push(json!({"sku": sku, "wanted": quantity, "available": available.max(0)}));
        }
        held.push((sku.to_owned(), quantity));
    }
    if !shorts.is_empty() {
        ledger.calls.push(("reserve".into(), id.into(), 409));
        return answer(
            StatusCode::CONFLICT,
            json!({"code": "out_of_stock", "shorts": shorts}),
        );
    }
    let reservation = Reservation {
        id: id.to_owned(),
        lines: held,
        status: Status::Active,
        expires_at,
        commits_applied: 0,
    };
    let body = view(&reservation);
    ledger.reservations.insert(id.to_owned(), reservation);
    ledger.calls.push(("reserve".into(), id.into(), 201));
    answer(StatusCode::CREATED, body)
}

async fn commit(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({}));
    }
    let mut ledger = lock(&shared);
    let now = Utc::now();
    let (status, body) = match ledger.reservations.get(&id).cloned() {
        None => (StatusCode::NOT_FOUND, json!({"code": "not_found"})),
        Some(r) if r.status == Status::Committed => (StatusCode::OK, view(&r)),
        Some(r) if r.status == Status::Released => {
            (StatusCode::CONFLICT, json!({"code": "released"}))
        }
        Some(r) if r.expires_at <= now => (StatusCode::CONFLICT, json!({"code": "expired"})),
        Some(mut r) => {
            for (sku, quantity) in &r.lines {
                *ledger.on_hand.entry(sku.clone()).or_default() -= quantity;
            }
            r.status = Status::Committed;
            r.commits_applied += 1;
            let body = view(&r);
            ledger.reservations.insert(id.clone(), r);
            (StatusCode::OK, body)
        }
    };
    ledger.calls.push(("commit".into(), id, status.as_u16()));
    answer(status, body)
}

async fn release(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({}));
    }
    let mut ledger = lock(&shared);
    let (status, body) = match ledger.reservations.get_mut(&id) {
        None => (StatusCode::NOT_FOUND, json!({"code": "not_found"})),
        Some(r) if r.status == Status::Committed => {
            (StatusCode::CONFLICT, json!({"code": "committed"}))
        }
        Some(r) => {
            r.status = Status::Released;
            (StatusCode::OK, view(r))
        }
    };
    ledger.calls.push(("release".into(), id, status.as_u16()));
    answer(status, body)
}

async fn stock(State(shared): State<Shared>, Path(sku): Path<String>) -> Response {
    let ledger = lock(&shared);
    match ledger.on_hand.get(&sku) {
        None => answer(StatusCode::NOT_FOUND, json!({"code": "not_found"})),
        Some(on_hand) => {
            let reserved = ledger.held(&sku, Utc::now());
            answer(
                StatusCode::OK,
                json!({"sku": sku, "on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}),
            )
        }
    }
}
