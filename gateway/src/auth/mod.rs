//! Authentication: every `/api` request carries `Authorization: Bearer <JWT>`. The token's
//! signature, algorithm, `exp` (and `nbf`, `iss`, `aud` when present or configured) are checked
//! here; `sub` becomes the user id and `roles` the roles.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use shared::Problem;
use shared::internal::Role;

use crate::AppState;
use crate::config::{JwtConfig, JwtKey};

mod jwks;
use jwks::Jwks;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Verifies tokens. Every key is pinned to one algorithm: a token whose header names another
/// (`none`, HS256 against an RSA key, …) is refused before its signature is looked at.
pub struct Authenticator {
    keys: Keys,
    /// Tokens verified lately, by the token itself. A client sends the same token with every
    /// request for as long as it lives, and verifying it (base64, the signature, two JSON
    /// parses) was the largest single cost of a proxied request. `None` when turned off.
    verified: Option<quick_cache::sync::Cache<Box<str>, Verified>>,
    /// `exp` tolerance, in seconds, as the checks in `PinnedKey::validation` apply it.
    leeway: u64,
}

/// A token that passed every check, and what a later request with it must still check.
#[derive(Clone)]
struct Verified {
    user: AuthUser,
    exp: u64,
    /// The key set that verified it: a JWKS's keys change with each fetch, and a token of a
    /// key no longer published must be checked again (and refused).
    key_set: u64,
    /// When that key set is due to be fetched again (a JWKS's TTL); `None` for a configured key.
    fresh_until: Option<Instant>,
}

/// A key and the checks a token must pass with it, the one algorithm it verifies among them.
/// The checks are made once with the key: cloning them (their sets of claim names) for every
/// request was a handful of allocations on the gateway's hottest path.
struct PinnedKey {
    key: DecodingKey,
    validation: Validation,
    /// The key set it came with: 0 for a configured key, a new number for each JWKS fetch.
    key_set: u64,
    /// When its key set is due to be fetched again; `None` for a configured key.
    fresh_until: Option<Instant>,
}

impl PinnedKey {
    /// `template`: the configured checks (issuer, audience, leeway, required claims).
    fn new(key: DecodingKey, algorithm: Algorithm, template: &Validation) -> PinnedKey {
        let mut validation = template.clone();
        validation.algorithms = vec![algorithm];
        PinnedKey {
            key,
            validation,
            key_set: 0,
            fresh_until: None,
        }
    }
}

enum Keys {
    Static(Arc<PinnedKey>),
    Jwks(Box<Jwks>),
}

impl Authenticator {
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        let mut template = Validation::new(Algorithm::HS256);
        template.leeway = config.leeway.as_secs();
        template.validate_nbf = true;
        // jsonwebtoken checks `iss`/`aud` only when the token has them: a configured issuer or
        // audience must also be required, or a token without the claim would pass.
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &config.issuer {
            template.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &config.audience {
            Some(audience) => {
                template.set_audience(&[audience]);
                required.push("aud");
            }
            None => template.validate_aud = false,
        }
        template.set_required_spec_claims(&required);
        let keys = match &config.key {
            JwtKey::Hs256(secret) => Keys::Static(Arc::new(PinnedKey::new(
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                Algorithm::HS256,
                &template,
            ))),
            JwtKey::Pem { pem, algorithm } => {
                let key = match algorithm {
                    Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes())?,
                    _ => DecodingKey::from_rsa_pem(pem.as_bytes())?,
                };
                Keys::Static(Arc::new(PinnedKey::new(key, *algorithm, &template)))
            }
            JwtKey::Jwks(url) => Keys::Jwks(Box::new(Jwks::new(
                url.clone(),
                config.jwks_min_refresh,
                config.jwks_ttl,
                template,
            )?)),
        };
        Ok(Authenticator {
            keys,
            verified: (config.verified_cache > 0)
                .then(|| quick_cache::sync::Cache::new(config.verified_cache)),
            leeway: config.leeway.as_secs(),
        })
    }

    /// The key set a cached token must have been verified with to count.
    fn current_key_set(&self) -> u64 {
        match &self.keys {
            Keys::Static(_) => 0,
            Keys::Jwks(jwks) => jwks.key_set.load(Ordering::Acquire),
        }
    }

    /// A token verified before, if its checks still hold: not expired, its key still the
    /// current one. An expired token is forgotten and refused here.
    fn cached(&self, token: &str) -> Option<Result<AuthUser, AuthError>> {
        let cache = self.verified.as_ref()?;
        let verified = cache.get(token)?;
        let key_still_current = verified.key_set == self.current_key_set()
            && verified
                .fresh_until
                .is_none_or(|until| Instant::now() < until);
        if !key_still_current {
            return None;
        }
        if verified.exp.saturating_add(self.leeway) < jsonwebtoken::get_current_timestamp() {
            cache.remove(token);
            return Some(Err(AuthError::Expired));
        }
        Some(Ok(verified.user))
    }

    pub async fn verify(&self, token: &str) -> Result<AuthUser, AuthError> {
        if let Some(known) = self.cached(token) {
            return known;
        }
        // A token whose header names another algorithm than its key's (`none`, HS256 against
        // an RSA key, …) fails in `decode`: the pinned checks allow the key's algorithm only.
        // The header is read first only to find a JWKS key by its `kid`.
        let pinned = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
                jwks.key(header.kid.as_deref()).await?
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &pinned.key, &pinned.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Invalid,
            },
        )?;
        // A `sub` with a control character could forge a log line or a header: such a token
        // is refused like a bad one.
        let sub = data.claims.sub.trim();
        if sub.is_empty() || sub.len() > 255 || shared::text::has_control(sub) {
            return Err(AuthError::Invalid);
        }
        let user = AuthUser {
            user_id: sub.to_owned(),
            roles: data
                .claims
                .roles
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
        };
        if let Some(cache) = &self.verified {
            let verified = Verified {
                user: user.clone(),
                exp: data.claims.exp,
                key_set: pinned.key_set,
                fresh_until: pinned.fresh_until,
            };
            cache.insert(token.into(), verified);
        }
        Ok(user)
    }

    /// Fetches the JWKS now, so the first request does not wait for it. A failure is only
    /// logged: the keys are fetched again when a token needs them.
    pub async fn warm_up(&self) {
        if let Keys::Jwks(jwks) = &self.keys {
            jwks.refresh().await;
        }
    }
}

/// Signs an HS256 token: the `gateway token` command, devstack and the tests.
pub fn mint_token(
    config: &JwtConfig,
    sub: &str,
    roles: &[&str],
    ttl: Duration,
) -> anyhow::Result<String> {
    let JwtKey::Hs256(secret) = &config.key else {
        anyhow::bail!("tokens can only be minted with an HS256 secret");
    };
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        exp: now.saturating_add(ttl.as_secs()),
        iat: Some(now),
        nbf: None,
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Expired,
    NotYetValid,
    Invalid,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let detail = match self {
            AuthError::Missing => "Send the token as Authorization: Bearer <JWT>",
            AuthError::Expired => "The token has expired",
            AuthError::NotYetValid => "The token is not valid yet",
            AuthError::Invalid => "The token is invalid",
        };
        let mut response = Problem::unauthorized(detail).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: String,
    pub roles: Vec<Role>,
}

impl AuthUser {
    /// 403 unless the user holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        Err(Problem::forbidden(format!(
            "This needs the {} role",
            names.join(" or ")
        )))
    }

    /// `service` or `admin`: a trusted backend.
    pub fn is_trusted(&self) -> bool {
        self.roles
            .iter()
            .any(|r| matches!(r, Role::Service | Role::Admin))
    }

    pub fn roles_header(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Authenticates the request, then applies the caller's rate limit.
impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let verified = match token {
            Some(token) => state.auth.verify(token).await,
            None => Err(AuthError::Missing),
        };
        // The limits first: a bad token counts against its address before it is refused.
        crate::limits::check_caller(
            state,
            &parts.headers,
            &parts.extensions,
            verified.as_ref().ok(),
        )
        .map_err(IntoResponse::into_response)?;
        verified.map_err(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn config() -> JwtConfig {
        JwtConfig {
            key: JwtKey::Hs256(SecretString::from("a-test-secret-that-is-long-enough-0123")),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(0),
            jwks_min_refresh: Duration::from_secs(30),
            jwks_ttl: Duration::from_secs(600),
            verified_cache: 100,
            generated: false,
        }
    }

    #[tokio::test]
    async fn a_minted_token_verifies_with_its_roles() {
        let config = config();
        let token = mint_token(
            &config,
            "alice",
            &["service", "wizard"],
            Duration::from_secs(60),
        )
        .unwrap();
        let user = Authenticator::new(&config)
            .unwrap()
            .verify(&token)
            .await
            .unwrap();
        assert_eq!(user.user_id, "alice");
        assert_eq!(user.roles, vec![Role::Service]);
    }

    /// A remembered token is still checked for expiry: once past its `exp` it is refused,
    /// as it was before it was remembered.
    #[tokio::test]
    async fn a_remembered_token_is_refused_once_expired() {
        let config = config();
        let auth = Authenticator::new(&config).unwrap();
        let token = mint_token(&config, "alice", &[], Duration::from_secs(1)).unwrap();
        assert_eq!(auth.verify(&token).await.unwrap().user_id, "alice");
        assert_eq!(auth.verify(&token).await.unwrap().user_id, "alice");
        assert!(auth.cached(&token).is_some(), "remembered");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(auth.verify(&token).await.unwrap_err(), AuthError::Expired);
        assert!(auth.cached(&token).is_none(), "forgotten once expired");
        assert_eq!(auth.verify(&token).await.unwrap_err(), AuthError::Expired);
    }

    #[tokio::test]
    async fn a_token_is_not_remembered_when_the_cache_is_off() {
        let mut config = config();
        config.verified_cache = 0;
        let auth = Authenticator::new(&config).unwrap();
        let token = mint_token(&config, "alice", &[], Duration::from_secs(60)).unwrap();
        assert!(auth.verify(&token).await.is_ok());
        assert!(auth.cached(&token).is_none());
    }

    #[tokio::test]
    async fn another_key_or_issuer_is_refused() {
        let config = config();
        let token = mint_token(&config, "alice", &[], Duration::from_secs(60)).unwrap();
        let mut other = config.clone();
        other.key = JwtKey::Hs256(SecretString::from(
            "another-secret-that-is-long-enough-0123",
        ));
        assert_eq!(
            Authenticator::new(&other)
                .unwrap()
                .verify(&token)
                .await
                .unwrap_err(),
            AuthError::Invalid
        );
        let mut with_issuer = config.clone();
        with_issuer.issuer = Some("https://issuer.example".into());
        assert_eq!(
            Authenticator::new(&with_issuer)
                .unwrap()
                .verify(&token)
                .await
                .unwrap_err(),
            AuthError::Invalid
        );
        let issued = mint_token(&with_issuer, "alice", &[], Duration::from_secs(60)).unwrap();
        assert!(
            Authenticator::new(&with_issuer)
                .unwrap()
                .verify(&issued)
                .await
                .is_ok()
        );
        let mut with_audience = config.clone();
        with_audience.audience = Some("payments".into());
        assert_eq!(
            Authenticator::new(&with_audience)
                .unwrap()
                .verify(&token)
                .await
                .unwrap_err(),
            AuthError::Invalid
        );
        let mut wrong_audience = with_audience.clone();
        wrong_audience.audience = Some("billing".into());
        let for_billing =
            mint_token(&wrong_audience, "alice", &[], Duration::from_secs(60)).unwrap();
        assert_eq!(
            Authenticator::new(&with_audience)
                .unwrap()
                .verify(&for_billing)
                .await
                .unwrap_err(),
            AuthError::Invalid
        );
        let for_payments =
            mint_token(&with_audience, "alice", &[], Duration::from_secs(60)).unwrap();
        assert!(
            Authenticator::new(&with_audience)
                .unwrap()
                .verify(&for_payments)
                .await
                .is_ok()
        );
    }
}
