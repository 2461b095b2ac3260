//! The public API of DESIGN.md. The gateway authenticates, decides what roles alone decide
//! (creating orders), and passes everything else to the same path under `/internal/v1` on
//! payment-ms, which decides ownership with the data in hand.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, patch, post};
use shared::Problem;
use shared::http::Limits;
use shared::ids;
use shared::internal::{Role, names};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::AppState;
use crate::auth::AuthUser;
use crate::upstream::{Call, Repeat};

mod checkout;
mod health;

/// The public API's prefix; payment-ms serves the same paths under `/internal/v1`.
const API: &str = "/api/v1";

pub fn router(state: AppState) -> Router {
    let limits = Limits {
        service: "gateway",
        request_timeout: state.config.request_timeout,
        timeout_status: StatusCode::GATEWAY_TIMEOUT,
        body_limit: state.config.body_limit,
        admission: Some(Arc::new({
            let state = state.clone();
            move |request: &Request| crate::limits::admit(&state, request)
        })),
    };
    // The API's full paths, not a router nested under `/api/v1`: nesting costs every request
    // a second routing step and a rewritten URI, on the gateway's hottest path.
    let api = [
        ("/orders", post(pass).get(pass)),
        ("/orders/{id}", get(pass).patch(pass)),
        ("/orders/{id}/checkout", post(pass)),
        ("/orders/{id}/cancel", post(pass)),
        ("/orders/{id}/transition", post(trusted)),
        ("/orders/{id}/history", get(pass)),
        ("/orders/{id}/items", post(pass)),
        ("/orders/{id}/items/{item_id}", patch(pass).delete(pass)),
        ("/payments", get(pass)),
        ("/payments/{id}", get(pass)),
        ("/payments/{id}/verify", post(verify)),
        ("/payments/{id}/cancel", post(pass)),
        ("/payments/{id}/refunds", post(admin).get(pass)),
        ("/partners", post(admin).get(admin)),
        ("/partners/{id}", get(admin).patch(admin).delete(admin)),
        ("/partners/{id}/rotate-secret", post(admin)),
        ("/partners/{id}/deliveries", get(admin)),
        ("/partners/{id}/deliveries/{delivery_id}", get(admin)),
        ("/partners/{id}/resend", post(admin)),
        ("/partners/{id}/recover", post(admin)),
        ("/events/{id}/deliveries", get(admin)),
        ("/events", post(trusted)),
        ("/inbox", get(admin)),
        ("/dead-letters", get(admin)),
        ("/dead-letters/{id}", get(admin)),
        ("/dead-letters/{id}/replay", post(admin)),
        ("/plans", post(trusted).get(pass)),
        ("/plans/{id}", get(pass)),
        ("/plans/{id}/archive", post(trusted)),
        ("/subscriptions", post(pass).get(pass)),
        ("/subscriptions/{id}", get(pass)),
        ("/subscriptions/{id}/cancel", post(pass)),
        ("/subscriptions/{id}/pause", post(pass)),
        ("/subscriptions/{id}/resume", post(pass)),
        ("/subscriptions/{id}/change", post(pass)),
        ("/subscriptions/{id}/payment-method", post(pass)),
        ("/invoices", get(pass)),
        ("/invoices/{id}", get(pass)),
        ("/invoices/{id}/html", get(pass)),
        ("/invoices/{id}/pdf", get(pass)),
        ("/invoices/{id}/checkout", post(pass)),
        ("/invoices/{id}/void", post(trusted)),
        ("/invoices/{id}/mark-uncollectible", post(trusted)),
        ("/test-clocks", post(admin)),
        ("/test-clocks/{id}", get(admin)),
        ("/test-clocks/{id}/advance", post(admin)),
        ("/stats/revenue", get(admin)),
        ("/stats/mrr", get(admin)),
        ("/stats/subscriptions", get(admin)),
        ("/inventory/{sku}", get(trusted).put(trusted)),
        ("/products", get(pass)),
        ("/products/{sku}", get(pass).put(trusted)),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, handler)| {
        router.route(&format!("{API}{path}"), handler)
    });
    let cors = cors(&state.config.cors_origins);
    let router = Router::new()
        .merge(health::router())
        .merge(checkout::router())
        .merge(api)
        .fallback(shared::problem::not_found)
        .with_state(state);
    let router = shared::http::with_common_layers(router, limits, &[header::AUTHORIZATION]);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for the configured browser origins, so a frontend on another origin can run the
/// checkout flow; none configured, none allowed.
fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                names::IDEMPOTENCY_KEY,
                names::REQUEST_ID,
            ])
            .expose_headers([
                names::REQUEST_ID,
                names::IDEMPOTENT_REPLAYED,
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// For trusted backends only (the service or admin role): only they price an order (a browser
/// never does) or send events from other services.
async fn trusted(
    state: State<AppState>,
    user: AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    user.require_any(&[Role::Service, Role::Admin])?;
    pass(state, user, method, uri, headers, body).await
}

/// Partners and deliveries are for admins only.
async fn admin(
    state: State<AppState>,
    user: AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    user.require_any(&[Role::Admin])?;
    pass(state, user, method, uri, headers, body).await
}

/// Verifying a payment changes nothing the second time: when payment-ms drops the connection,
/// it is tried once more.
async fn verify(
    state: State<AppState>,
    user: AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    forward(state, user, method, uri, headers, body, Repeat::Once).await
}

/// Passes an authenticated request to `/internal/v1/<same path>?<same query>`.
async fn pass(
    state: State<AppState>,
    user: AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    forward(state, user, method, uri, headers, body, Repeat::IfSafe).await
}

async fn forward(
    State(state): State<AppState>,
    user: AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    repeat: Repeat,
) -> Result<Response, Problem> {
    let path = uri
        .path()
        .strip_prefix(API)
        .ok_or_else(|| Problem::not_found("this resource"))?;
    check_resource_id(path)?;
    let mut path_and_query = format!("/internal/v1{path}");
    if let Some(query) = uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    state
        .payment_ms
        .call(Call {
            method,
            path_and_query,
            user: Some(&user),
            headers: &headers,
            body,
            repeat,
        })
        .await
}

/// Every id in the path (`/orders/{id}/…`, `/partners/{id}/deliveries/{id}`) must have the
/// shape of its type: anything else is a 404 without bothering payment-ms, and no id can
/// reshape the upstream path.
fn check_resource_id(path: &str) -> Result<(), Problem> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for pair in segments.windows(2) {
        if pair[0] == "inventory" || pair[0] == "products" {
            check_sku(pair[1])?;
            continue;
        }
        let (prefix, what) = match pair[0] {
            "orders" => (ids::ORDER, "order"),
            "payments" => (ids::PAYMENT, "payment"),
            "partners" => (ids::PARTNER, "partner"),
            "deliveries" => (ids::DELIVERY, "delivery"),
            "events" => (ids::EVENT, "event"),
            "dead-letters" => (ids::DEAD_LETTER, "dead letter"),
            "plans" => (ids::PLAN, "plan"),
            "subscriptions" => (ids::SUBSCRIPTION, "subscription"),
            "invoices" => (ids::INVOICE, "invoice"),
            "test-clocks" => (ids::TEST_CLOCK, "test clock"),
            _ => continue,
        };
        check_id(prefix, pair[1], what)?;
    }
    Ok(())
}

/// A SKU in a path: 1 to 255 characters once percent-decoded, none of them a control
/// character, and not a dot segment.
fn check_sku(raw: &str) -> Result<(), Problem> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8();
    match decoded {
        Ok(sku)
            if (1..=255).contains(&sku.chars().count())
                && !sku.chars().any(char::is_control)
                && sku != "."
                && sku != ".." =>
        {
            Ok(())
        }
        _ => Err(Problem::not_found(format!("stock of {raw}"))),
    }
}

fn check_id(prefix: &str, id: &str, what: &str) -> Result<(), Problem> {
    if ids::is_valid(prefix, id) {
        Ok(())
    } else {
        Err(Problem::not_found(format!("{what} {id}")))
    }
}
