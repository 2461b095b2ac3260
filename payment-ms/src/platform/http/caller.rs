//! Who is calling: an extractor for the `/internal` API. A request must carry the internal token
//! (only the gateway has it); the identity headers it carries are then trusted.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use shared::Problem;
use shared::internal::{
    INTERNAL_TOKEN_HEADER, Role, USER_ID_HEADER, USER_ROLES_HEADER, secrets_match,
};

use crate::AppState;
use shared::text::has_control;

/// The authenticated caller of an internal route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// `service` or `admin`: trusted backends that act for any user.
    pub fn is_trusted(&self) -> bool {
        self.has(Role::Service) || self.has(Role::Admin)
    }
}

impl FromRequestParts<AppState> for Caller {
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
        Ok(Caller { user_id, roles })
    }
}
