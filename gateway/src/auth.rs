//! Authentication: every `/api` request carries `Authorization: Bearer <JWT>`. The token's
//! signature, algorithm, `exp` (and `nbf`, `iss`, `aud` when present or configured) are checked
//! here; `sub` becomes the user id and `roles` the roles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use shared::Problem;
use shared::internal::Role;
use tokio::sync::{Mutex, RwLock};

use crate::AppState;
use crate::config::{JwtConfig, JwtKey};

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
}

/// A key and the checks a token must pass with it, the one algorithm it verifies among them.
/// The checks are made once with the key: cloning them (their sets of claim names) for every request was
/// a handful of allocations on the gateway's hottest path.
struct PinnedKey {
    key: DecodingKey,
    validation: Validation,
}

impl PinnedKey {
    /// `template`: the configured checks (issuer, audience, leeway, required claims).
    fn new(key: DecodingKey, algorithm: Algorithm, template: &Validation) -> Arc<PinnedKey> {
        let mut validation = template.clone();
        validation.algorithms = vec![algorithm];
        Arc::new(PinnedKey { key, validation })
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
            JwtKey::Hs256(secret) => Keys::Static(PinnedKey::new(
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                Algorithm::HS256,
                &template,
            )),
            JwtKey::Pem { pem, algorithm } => {
                let key = match algorithm {
                    Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes())?,
                    _ => DecodingKey::from_rsa_pem(pem.as_bytes())?,
                };
                Keys::Static(PinnedKey::new(key, *algorithm, &template))
            }
            JwtKey::Jwks(url) => Keys::Jwks(Box::new(Jwks::new(
                url.clone(),
                config.jwks_min_refresh,
                config.jwks_ttl,
                template,
            )?)),
        };
        Ok(Authenticator { keys })
    }

    pub async fn verify(&self, token: &str) -> Result<AuthUser, AuthError> {
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
        let sub = data.claims.sub.trim();
        if sub.is_empty() || sub.len() > 255 {
            return Err(AuthError::Invalid);
        }
        Ok(AuthUser {
            user_id: sub.to_owned(),
            roles: data
                .claims
                .roles
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
        })
    }

    /// Fetches the JWKS now, so the first request does not wait for it. A failure is only
    /// logged: the keys are fetched again when a token needs them.
    pub async fn warm_up(&self) {
        if let Keys::Jwks(jwks) = &self.keys {
            jwks.refresh().await;
        }
    }
}

/// An identity provider's key set, cached by `kid`. It is fetched again when a token names a
/// `kid` it does not have (a rotation) or when it is older than its TTL, but never more often
/// than `min_refresh`, so a flood of made-up `kid`s cannot turn into a flood of fetches.
struct Jwks {
    url: url::Url,
    /// The checks each fetched key is pinned with.
    template: Validation,
    client: reqwest::Client,
    min_refresh: Duration,
    ttl: Duration,
    state: RwLock<JwksState>,
    refreshing: Mutex<()>,
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, Arc<PinnedKey>>,
    fetched: Option<Instant>,
    tried: Option<Instant>,
}

impl Jwks {
    fn new(
        url: url::Url,
        min_refresh: Duration,
        ttl: Duration,
        template: Validation,
    ) -> anyhow::Result<Jwks> {
        Ok(Jwks {
            url,
            template,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            min_refresh,
            ttl,
            state: RwLock::new(JwksState::default()),
            refreshing: Mutex::new(()),
        })
    }

    async fn key(&self, kid: Option<&str>) -> Result<Arc<PinnedKey>, AuthError> {
        let kid = kid.ok_or(AuthError::Invalid)?;
        {
            let state = self.state.read().await;
            let fresh = state.fetched.is_some_and(|at| at.elapsed() < self.ttl);
            if let (Some(key), true) = (state.keys.get(kid), fresh) {
                return Ok(key.clone());
            }
        }
        self.refresh().await;
        self.state
            .read()
            .await
            .keys
            .get(kid)
            .cloned()
            .ok_or(AuthError::Invalid)
    }

    async fn refresh(&self) {
        let _one_at_a_time = self.refreshing.lock().await;
        if self
            .state
            .read()
            .await
            .tried
            .is_some_and(|at| at.elapsed() < self.min_refresh)
        {
            return;
        }
        let fetched = self.fetch().await;
        let mut state = self.state.write().await;
        state.tried = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                state.keys = keys;
                state.fetched = Some(Instant::now());
            }
            // Keep the keys we have: the provider may be down for a moment.
            Err(e) => tracing::warn!(error = %e, "could not fetch the JWKS"),
        }
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, Arc<PinnedKey>>> {
        let set: JwkSet = self
            .client
            .get(self.url.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(alg), _) => Algorithm::try_from(*alg).ok(),
                (None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
                (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
                    Some(Algorithm::ES256)
                }
                _ => None,
            };
            // Only asymmetric algorithms come from a JWKS: a symmetric key there would let
            // anyone who reads the set sign tokens.
            let Some(algorithm @ (Algorithm::RS256 | Algorithm::ES256)) = algorithm else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, PinnedKey::new(key, algorithm, &self.template));
            }
        }
        Ok(keys)
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
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AuthError::Missing.into_response())?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthError::Missing.into_response())?;
        let user = state
            .auth
            .verify(token)
            .await
            .map_err(IntoResponse::into_response)?;
        state
            .limits
            .check_user(&user.user_id)
            .map_err(IntoResponse::into_response)?;
        Ok(user)
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
