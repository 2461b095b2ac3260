//! Who is calling: the [`Actor`] of an `/internal` request, as an extractor. A request must
//! carry the internal token (only the gateway has it); the identity headers it carries are
//! then trusted. What the actor may do is decided by each route, with [`allow`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use shared::Problem;
use shared::internal::{
    INTERNAL_TOKEN_HEADER, Role, USER_ID_HEADER, USER_ROLES_HEADER, secrets_match,
};
use shared::text::has_control;

use crate::AppState;
use crate::platform::Actor;

impl FromRequestParts<AppState> for Actor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let token = header(INTERNAL_TOKEN_HEADER)
            .ok_or_else(|| Problem::unauthorized("The internal token is missing"))?;
        if !secrets_match(state.config.internal_token.expose_secret(), token) {
            return Err(Problem::unauthorized("The internal token is wrong"));
        }
        // The gateway sends the token's `sub` as its UTF-8 bytes.
        let user_id = parts
            .headers
            .get(USER_ID_HEADER)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.len() <= 255 && !has_control(id))
            .ok_or_else(|| Problem::unauthorized("The caller's identity is missing or malformed"))?
            .to_owned();
        let roles = header(USER_ROLES_HEADER)
            .unwrap_or("")
            .split(',')
            .filter_map(|r| Role::parse(r.trim()))
            .collect();
        Ok(Actor { user_id, roles })
    }
}

/// A route's permission check: `allowed`, or a 403 saying what it needs.
pub fn allow(allowed: bool, needs: &str) -> Result<(), Problem> {
    if allowed {
        Ok(())
    } else {
        Err(Problem::forbidden(needs))
    }
}
