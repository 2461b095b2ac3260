//! A stateful stand-in for Stripe's API on a local port (wiremock), answering with bodies in
//! Stripe's shapes (API version 2024-06-20): Checkout Sessions, PaymentIntents, Refunds, lists
//! and the error object. It keeps what it was asked, replays a repeated Idempotency-Key's first
//! answer as Stripe does, and lets a test play the buyer (`pay`) or Stripe's dashboard
//! (`refund_in_dashboard`), and sign events as Stripe would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SECRET_KEY: &str = "sk_test_fake_0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "whsec_fake_endpoint_secret";

/// One request Stripe received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
    pub version: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Value>,
    /// What a session's PaymentIntent will carry (`payment_intent_data[metadata]`).
    intent_metadata: HashMap<String, Value>,
    intents: HashMap<String, Value>,
    refunds: Vec<Value>,
    replies: HashMap<String, (u16, Value)>,
    seen: Vec<Seen>,
    /// Answer the next N refund creations with this status (5xx: Stripe down).
    refund_failures: Vec<u16>,
    /// How long every answer takes.
    delay: std::time::Duration,
    counter: u64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_test_{:024}", self.counter)
    }
}

pub struct FakeStripe {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {
            "type": kind,
            "code": code,
            "message": message,
            "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake",
        }}),
    )
}

fn list(url: &str, data: Vec<Value>) -> Value {
    json!({"object": "list", "url": url, "has_more": false, "data": data})
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(any())
            .respond_with(Handler(state.clone()))
            .mount(&server)
            .await;
        FakeStripe { server, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    pub fn session(&self, id: &str) -> Value {
        self.state().sessions[id].clone()
    }

    pub fn intent(&self, id: &str) -> Value {
        self.state().intents[id].clone()
    }

    pub fn refunds(&self) -> Vec<Value> {
        self.state().refunds.clone()
    }

    /// Every answer from now on takes this long (a slow Stripe).
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.state().delay = delay;
    }

    pub fn fail_next_refunds(&self, statuses: &[u16]) {
        self.state().refund_failures = statuses.to_vec();
    }

    /// The buyer pays on Stripe's page: the session completes with a succeeded PaymentIntent.
    pub fn pay(&self, session_id: &str) -> Value {
        let mut state = self.state();
        let intent_id = state.id("pi");
        let charge = state.id("ch");
        let session = state.sessions[session_id].clone();
        let intent = json!({
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": session["amount_total"],
            "capture_method": "automatic_async",
            "client_secret": format!("{intent_id}_secret_fake"),
            "confirmation_method": "automatic",
            "created": now(),
            "currency": session["currency"],
            "last_payment_error": null,
            "latest_charge": charge,
            "livemode": false,
            "metadata": state.intent_metadata.get(session_id).cloned().unwrap_or_default(),
            "next_action": null,
            "payment_method": "pm_fake_visa",
            "payment_method_types": ["card"],
            "status": "succeeded",
        });
        state.intents.insert(intent_id.clone(), intent);
        let s = state.sessions.get_mut(session_id).expect("session");
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        s["payment_intent"] = json!(intent_id);
        s.clone()
    }

    /// Someone refunds in Stripe's dashboard: a refund without our metadata.
    pub fn refund_in_dashboard(&self, intent_id: &str, amount: i64) -> Value {
        let mut state = self.state();
        let id = state.id("re");
        let refund = refund_object(&id, intent_id, amount, "usd", json!({}));
        state.refunds.push(refund.clone());
        refund
    }

    /// A webhook body and its `Stripe-Signature`, as Stripe would send them now.
    pub fn event(&self, event_type: &str, object: Value) -> (String, String) {
        let id = self.state().id("evt");
        let body = json!({
            "id": id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": now(),
            "data": {"object": object},
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": event_type,
        })
        .to_string();
        let signature =
            payment_ms::providers::stripe::signature::sign(WEBHOOK_SECRET, now(), body.as_bytes());
        (body, signature)
    }
}

fn refund_object(id: &str, intent_id: &str, amount: i64, currency: &str, metadata: Value) -> Value {
    json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": format!("txn_{id}"),
        "charge": format!("ch_of_{intent_id}"),
        "created": now(),
        "currency": currency,
        "metadata": metadata,
        "payment_intent": intent_id,
        "reason": null,
        "status": "succeeded",
    })
}

struct Handler(Arc<Mutex<State>>);

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let form: HashMap<String, String> =
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
                .unwrap_or_default()
                .into_iter()
                .collect();
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = Seen {
            method: request.method.to_string(),
            path: request.url.path().to_owned(),
            form: form.clone(),
            authorization: header("authorization"),
            version: header("stripe-version"),
            idempotency_key: header("idempotency-key"),
        };
        state.seen.push(seen.clone());
        if seen.authorization.as_deref() != Some(&format!("Bearer {SECRET_KEY}")) {
            let (status, body) = error(
                401,
                "invalid_request_error",
                "api_key_invalid",
                "Invalid API Key provided: sk_test_****cdef",
            );
            return ResponseTemplate::new(status).set_body_json(body);
        }
        if let Some(key) = &seen.idempotency_key
            && let Some((status, body)) = state.replies.get(key)
        {
            return ResponseTemplate::new(*status)
                .insert_header("idempotent-replayed", "true")
                .set_body_json(body.clone());
        }
        let (status, body) = route(&mut state, &seen, request.url.query_pairs().collect());
        if let Some(key) = seen.idempotency_key
            && status < 500
        {
            state.replies.insert(key, (status, body.clone()));
        }
        ResponseTemplate::new(status)
            .set_body_json(body)
            .set_delay(state.delay)
    }
}

fn route(
    state: &mut State,
    seen: &Seen,
    query: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>,
) -> (u16, Value) {
    let form = &seen.form;
    let parts: Vec<&str> = seen.path.trim_matches('/').split('/').collect();
    let missing = || {
        error(
            404,
            "invalid_request_error",
            "resource_missing",
            "No such object",
        )
    };
    match (seen.method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "checkout", "sessions"]) => {
            let id = state.id("cs");
            let mut total = 0;
            for i in 0.. {
                let key = |k: &str| format!("line_items[{i}]{k}");
                let Some(quantity) = form.get(&key("[quantity]")) else {
                    break;
                };
                let unit: i64 = form[&key("[price_data][unit_amount]")].parse().unwrap_or(0);
                total += unit * quantity.parse::<i64>().unwrap_or(0);
            }
            let metadata = |prefix: &str| {
                let mut m = serde_json::Map::new();
                for (k, v) in form {
                    if let Some(name) = k
                        .strip_prefix(prefix)
                        .and_then(|r| r.strip_prefix('['))
                        .and_then(|r| r.strip_suffix(']'))
                    {
                        m.insert(name.to_owned(), json!(v));
                    }
                }
                Value::Object(m)
            };
            let session = json!({
                "id": id,
                "object": "checkout.session",
                "amount_subtotal": total,
                "amount_total": total,
                "cancel_url": form.get("cancel_url"),
                "client_reference_id": form.get("client_reference_id"),
                "created": now(),
                "currency": form.get("line_items[0][price_data][currency]"),
                "customer": null,
                "expires_at": form.get("expires_at").and_then(|e| e.parse::<i64>().ok()),
                "livemode": false,
                "metadata": metadata("metadata"),
                "mode": form.get("mode"),
                "payment_intent": null,
                "payment_method_types": ["card"],
                "payment_status": "unpaid",
                "status": "open",
                "success_url": form.get("success_url"),
                "url": format!("https://checkout.stripe.com/c/pay/{id}"),
            });
            state
                .intent_metadata
                .insert(id.clone(), metadata("payment_intent_data[metadata]"));
            state.sessions.insert(id, session.clone());
            (200, session)
        }
        ("GET", ["v1", "checkout", "sessions", id]) => {
            let Some(mut session) = state.sessions.get(*id).cloned() else {
                return missing();
            };
            let expand = query
                .iter()
                .any(|(k, v)| k == "expand[]" && v == "payment_intent");
            if expand && let Some(pi) = session["payment_intent"].as_str() {
                session["payment_intent"] = state.intents[pi].clone();
            }
            (200, session)
        }
        ("POST", ["v1", "checkout", "sessions", id, "expire"]) => {
            let Some(session) = state.sessions.get_mut(*id) else {
                return missing();
            };
            if session["status"] != "open" {
                return error(
                    400,
                    "invalid_request_error",
                    "checkout_session_not_open",
                    "Only Checkout Sessions with a status in [\"open\"] can be expired.",
                );
            }
            session["status"] = json!("expired");
            (200, session.clone())
        }
        ("POST", ["v1", "payment_intents"]) => {
            let id = state.id("pi");
            let method = form.get("payment_method").cloned();
            let confirm = form.get("confirm").map(String::as_str) == Some("true");
            let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
            let mut intent = json!({
                "id": id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0,
                "capture_method": "automatic_async",
                "client_secret": format!("{id}_secret_fake"),
                "confirmation_method": "automatic",
                "created": now(),
                "currency": form.get("currency"),
                "last_payment_error": null,
                "latest_charge": null,
                "livemode": false,
                "metadata": {
                    "payment_id": form.get("metadata[payment_id]"),
                    "order_id": form.get("metadata[order_id]"),
                },
                "next_action": null,
                "payment_method": method,
                "payment_method_types": ["card"],
                "status": "requires_payment_method",
            });
            let declined = json!({
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "type": "card_error",
            });
            match (confirm, method.as_deref()) {
                (true, Some("pm_card_visa")) => {
                    intent["status"] = json!("succeeded");
                    intent["amount_received"] = json!(amount);
                    intent["latest_charge"] = json!(format!("ch_of_{id}"));
                }
                (true, Some("pm_card_chargeDeclined")) => {
                    intent["last_payment_error"] = declined.clone();
                    state.intents.insert(id, intent.clone());
                    let mut body = declined;
                    body["payment_intent"] = intent;
                    return (402, json!({"error": body}));
                }
                (true, Some("pm_card_authenticationRequired")) => {
                    intent["status"] = json!("requires_action");
                    intent["next_action"] = json!({
                        "type": "use_stripe_sdk",
                        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "https://hooks.stripe.com/3d_secure_2/hosted"},
                    });
                }
                (true, Some(_)) => {
                    return error(
                        400,
                        "invalid_request_error",
                        "resource_missing",
                        "No such PaymentMethod",
                    );
                }
                _ => {}
            }
            state.intents.insert(id, intent.clone());
            (200, intent)
        }
        ("GET", ["v1", "payment_intents", id]) => match state.intents.get(*id) {
            Some(intent) => (200, intent.clone()),
            None => missing(),
        },
        ("POST", ["v1", "payment_intents", id, "cancel"]) => {
            let Some(intent) = state.intents.get_mut(*id) else {
                return missing();
            };
            if intent["status"] == "succeeded" || intent["status"] == "canceled" {
                return error(
                    400,
                    "invalid_request_error",
                    "payment_intent_unexpected_state",
                    "This PaymentIntent's status is not cancelable.",
                );
            }
            intent["status"] = json!("canceled");
            intent["next_action"] = Value::Null;
            (200, intent.clone())
        }
        ("POST", ["v1", "refunds"]) => {
            if !state.refund_failures.is_empty() {
                let status = state.refund_failures.remove(0);
                return error(
                    status,
                    "api_error",
                    "api_error",
                    "Stripe is having a moment",
                );
            }
            let Some(intent_id) = form.get("payment_intent").cloned() else {
                return error(
                    400,
                    "invalid_request_error",
                    "parameter_missing",
                    "Missing payment_intent",
                );
            };
            let Some(intent) = state.intents.get(&intent_id).cloned() else {
                return missing();
            };
            if intent["status"] != "succeeded" {
                return error(
                    400,
                    "invalid_request_error",
                    "charge_not_paid",
                    "This PaymentIntent has no successful charge to refund.",
                );
            }
            let paid = intent["amount_received"].as_i64().unwrap_or(0);
            let refunded: i64 = state
                .refunds
                .iter()
                .filter(|r| r["payment_intent"] == intent_id.as_str())
                .map(|r| r["amount"].as_i64().unwrap_or(0))
                .sum();
            let amount = form
                .get("amount")
                .and_then(|a| a.parse::<i64>().ok())
                .unwrap_or(paid - refunded);
            if refunded >= paid {
                return error(
                    400,
                    "invalid_request_error",
                    "charge_already_refunded",
                    "Charge has already been refunded.",
                );
            }
            if amount > paid - refunded {
                return error(
                    400,
                    "invalid_request_error",
                    "amount_too_large",
                    "Refund amount is greater than unrefunded amount on charge.",
                );
            }
            let mut metadata = serde_json::Map::new();
            for (k, v) in form {
                if let Some(name) = k
                    .strip_prefix("metadata[")
                    .and_then(|r| r.strip_suffix(']'))
                {
                    metadata.insert(name.to_owned(), json!(v));
                }
            }
            let id = state.id("re");
            let currency = intent["currency"].as_str().unwrap_or("usd").to_owned();
            let mut refund =
                refund_object(&id, &intent_id, amount, &currency, Value::Object(metadata));
            refund["reason"] = json!(form.get("reason"));
            state.refunds.push(refund.clone());
            (200, refund)
        }
        ("GET", ["v1", "refunds"]) => {
            let intent = query
                .iter()
                .find(|(k, _)| k == "payment_intent")
                .map(|(_, v)| v.to_string());
            let data = state
                .refunds
                .iter()
                .filter(|r| intent.as_deref().is_none_or(|pi| r["payment_intent"] == pi))
                .rev()
                .cloned()
                .collect();
            (200, list("/v1/refunds", data))
        }
        _ => error(
            404,
            "invalid_request_error",
            "url_invalid",
            "Unrecognized request URL",
        ),
    }
}
