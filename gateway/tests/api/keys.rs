//! Tokens from an identity provider: RS256/ES256 keys in PEM form or from a JWKS, each key pinned
//! to its algorithm.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway::config::JwtKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp};

const RSA1_KEY: &str = include_str!("../fixtures/rsa-1.key.pem");
const RSA1_PUB: &str = include_str!("../fixtures/rsa-1.pub.pem");
const RSA2_KEY: &str = include_str!("../fixtures/rsa-2.key.pem");
const EC1_KEY: &str = include_str!("../fixtures/ec-1.key.pem");
const EC1_PUB: &str = include_str!("../fixtures/ec-1.pub.pem");
const JWKS_1: &str = include_str!("../fixtures/jwks-1.json");
const JWKS_2: &str = include_str!("../fixtures/jwks-2.json");

fn claims(extra: Value) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({"sub": "alice", "exp": now + 600, "iat": now});
    if let (Some(base), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    claims
}

fn sign(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

fn ec(pem: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/orders", token).await.status().as_u16()
}

fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!(
        "{header}.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
    )
}

#[tokio::test]
async fn an_rs256_key_accepts_only_its_own_tokens() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.jwt.key = JwtKey::Pem {
                pem: RSA1_PUB.to_owned(),
                algorithm: Algorithm::RS256,
            };
        },
    )
    .await;
    let good = claims(json!({}));
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, None, &rsa(RSA1_KEY), &good)).await,
        200
    );
    // Another key, another algorithm, no signature.
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, None, &rsa(RSA2_KEY), &good)).await,
        401
    );
    assert_eq!(
        status(&app, &sign(Algorithm::ES256, None, &ec(EC1_KEY), &good)).await,
        401
    );
    assert_eq!(status(&app, &unsigned(&good)).await, 401);
    // The classic confusion: HS256 "signed" with the public key as the shared secret.
    let confused = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(RSA1_PUB.as_bytes()),
        &good,
    );
    assert_eq!(status(&app, &confused).await, 401);
    // Expired, not yet valid.
    let now = jsonwebtoken::get_current_timestamp();
    let expired = claims(json!({"exp": now - 10}));
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::RS256, None, &rsa(RSA1_KEY), &expired)
        )
        .await,
        401
    );
    let early = claims(json!({"nbf": now + 300}));
    let response = app
        .get(
            "/api/v1/orders",
            &sign(Algorithm::RS256, None, &rsa(RSA1_KEY), &early),
        )
        .await;
    assert_eq!(response.status(), 401);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["detail"], "The token is not valid yet");
}

#[tokio::test]
async fn an_es256_key_accepts_es256_tokens() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.jwt.key = JwtKey::Pem {
                pem: EC1_PUB.to_owned(),
                algorithm: Algorithm::ES256,
            };
        },
    )
    .await;
    let good = claims(json!({"roles": ["service"]}));
    assert_eq!(
        status(&app, &sign(Algorithm::ES256, None, &ec(EC1_KEY), &good)).await,
        200
    );
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, None, &rsa(RSA1_KEY), &good)).await,
        401
    );
    let confused = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(EC1_PUB.as_bytes()),
        &good,
    );
    assert_eq!(status(&app, &confused).await, 401);
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.jwt.key = JwtKey::Pem {
                pem: RSA1_PUB.to_owned(),
                algorithm: Algorithm::RS256,
            };
            c.jwt.issuer = Some("https://idp.example".into());
            c.jwt.audience = Some("payments".into());
        },
    )
    .await;
    let key = rsa(RSA1_KEY);
    let right = claims(json!({"iss": "https://idp.example", "aud": "payments"}));
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, None, &key, &right)).await,
        200
    );
    for wrong in [
        json!({"aud": "payments"}),
        json!({"iss": "https://idp.example"}),
        json!({"iss": "https://evil.example", "aud": "payments"}),
        json!({"iss": "https://idp.example", "aud": "billing"}),
    ] {
        assert_eq!(
            status(
                &app,
                &sign(Algorithm::RS256, None, &key, &claims(wrong.clone()))
            )
            .await,
            401,
            "{wrong}"
        );
    }
}

/// A JWKS endpoint whose key set can change, counting its fetches.
async fn jwks_server(initial: &str) -> (String, Arc<Mutex<String>>, Arc<AtomicUsize>) {
    let body = Arc::new(Mutex::new(initial.to_owned()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (b, f) = (body.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let (b, f) = (b.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                (
                    [("content-type", "application/json")],
                    b.lock().unwrap().clone(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, body, fetches)
}

#[tokio::test]
async fn jwks_keys_rotate_and_unknown_kids_are_refused() {
    let (url, body, fetches) = jwks_server(JWKS_1).await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.jwt.key = JwtKey::Jwks(url.parse().unwrap());
            c.jwt.jwks_min_refresh = Duration::from_millis(300);
        },
    )
    .await;
    let good = claims(json!({}));
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::RS256, Some("rsa-1"), &rsa(RSA1_KEY), &good)
        )
        .await,
        200
    );
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::ES256, Some("ec-1"), &ec(EC1_KEY), &good)
        )
        .await,
        200
    );
    // A kid's algorithm is pinned; a token without a kid names no key.
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::ES256, Some("rsa-1"), &ec(EC1_KEY), &good)
        )
        .await,
        401
    );
    assert_eq!(
        status(&app, &sign(Algorithm::RS256, None, &rsa(RSA1_KEY), &good)).await,
        401
    );
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(RSA1_PUB.as_bytes()),
        &good,
    );
    assert_eq!(status(&app, &confused).await, 401);

    // rsa-2 is not published yet, and a flood of unknown kids fetches the set at most once more.
    let before = fetches.load(Ordering::SeqCst);
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::RS256, Some("rsa-2"), &rsa(RSA2_KEY), &good)
        )
        .await,
        401
    );
    for i in 0..20 {
        let token = sign(
            Algorithm::RS256,
            Some(&format!("made-up-{i}")),
            &rsa(RSA2_KEY),
            &good,
        );
        assert_eq!(status(&app, &token).await, 401);
    }
    assert!(
        fetches.load(Ordering::SeqCst) - before <= 1,
        "{} fetches",
        fetches.load(Ordering::SeqCst) - before
    );

    // The provider rotates: rsa-2 appears and is picked up.
    *body.lock().unwrap() = JWKS_2.to_owned();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::RS256, Some("rsa-2"), &rsa(RSA2_KEY), &good)
        )
        .await,
        200
    );
    let remembered = sign(Algorithm::RS256, Some("rsa-1"), &rsa(RSA1_KEY), &good);
    assert_eq!(status(&app, &remembered).await, 200);
    assert_eq!(status(&app, &remembered).await, 200);

    // rsa-1 is withdrawn. Once a token naming an unknown kid has the set fetched again, the
    // token rsa-1 signed (verified, and remembered, before) is refused.
    let mut withdrawn: Value = serde_json::from_str(JWKS_2).unwrap();
    withdrawn["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|key| key["kid"] != "rsa-1");
    *body.lock().unwrap() = withdrawn.to_string();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = fetches.load(Ordering::SeqCst);
    let unknown = sign(Algorithm::RS256, Some("rsa-3"), &rsa(RSA2_KEY), &good);
    assert_eq!(status(&app, &unknown).await, 401);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        before + 1,
        "the set was fetched"
    );
    assert_eq!(status(&app, &remembered).await, 401);
    assert_eq!(
        status(
            &app,
            &sign(Algorithm::RS256, Some("rsa-2"), &rsa(RSA2_KEY), &good)
        )
        .await,
        200
    );
}
