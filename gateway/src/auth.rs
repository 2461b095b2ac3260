//! Authentication: every `/api` request carries `Authorization: Bearer <JWT>`. The token's
//! signature, algorithm, `exp` (and `nbf`, `iss`, `aud` when present or configured) are checked
//! here; `sub` becomes the user id and `roles` the roles.

use std::time::Duration;

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
use crate::config::JwtConfig;

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

/// Verifies tokens with one key pinned to one algorithm: a token naming any other algorithm
/// (`none`, or HS/RS confusion) is refused before its signature is looked at.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    pub fn new(config: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        // jsonwebtoken checks `iss`/`aud` only when the token has them: a configured issuer or
        // audience must also be required, or a token without the claim would pass.
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Authenticator {
            key: DecodingKey::from_secret(config.hs256_secret.expose_secret().as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<AuthUser, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
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
}

/// Signs a token with the HS256 secret: the `gateway token` command and the tests.
pub fn mint_token(
    config: &JwtConfig,
    sub: &str,
    roles: &[&str],
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
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
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(config.hs256_secret.expose_secret().as_bytes()),
    )
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

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        state.auth.verify(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn config() -> JwtConfig {
        JwtConfig {
            hs256_secret: SecretString::from("a-test-secret-that-is-long-enough-0123"),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(0),
        }
    }

    #[test]
    fn a_minted_token_verifies_with_its_roles() {
        let config = config();
        let token = mint_token(
            &config,
            "alice",
            &["service", "wizard"],
            Duration::from_secs(60),
        )
        .unwrap();
        let user = Authenticator::new(&config).verify(&token).unwrap();
        assert_eq!(user.user_id, "alice");
        assert_eq!(user.roles, vec![Role::Service]);
    }

    #[test]
    fn another_key_or_issuer_is_refused() {
        let config = config();
        let token = mint_token(&config, "alice", &[], Duration::from_secs(60)).unwrap();
        let mut other = config.clone();
        other.hs256_secret = SecretString::from("another-secret-that-is-long-enough-0123");
        assert_eq!(
            Authenticator::new(&other).verify(&token).unwrap_err(),
            AuthError::Invalid
        );
        let mut with_issuer = config.clone();
        with_issuer.issuer = Some("https://issuer.example".into());
        assert_eq!(
            Authenticator::new(&with_issuer).verify(&token).unwrap_err(),
            AuthError::Invalid
        );
        let issued = mint_token(&with_issuer, "alice", &[], Duration::from_secs(60)).unwrap();
        assert!(Authenticator::new(&with_issuer).verify(&issued).is_ok());
        let mut with_audience = config.clone();
        with_audience.audience = Some("payments".into());
        assert_eq!(
            Authenticator::new(&with_audience)
                .verify(&token)
                .unwrap_err(),
            AuthError::Invalid
        );
        let mut wrong_audience = with_audience.clone();
        wrong_audience.audience = Some("billing".into());
        let for_billing =
            mint_token(&wrong_audience, "alice", &[], Duration::from_secs(60)).unwrap();
        assert_eq!(
            Authenticator::new(&with_audience)
                .verify(&for_billing)
                .unwrap_err(),
            AuthError::Invalid
        );
        let for_payments =
            mint_token(&with_audience, "alice", &[], Duration::from_secs(60)).unwrap();
        assert!(
            Authenticator::new(&with_audience)
                .verify(&for_payments)
                .is_ok()
        );
    }
}
