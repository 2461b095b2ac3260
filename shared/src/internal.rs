//! The contract between the gateway and payment-ms: which headers carry the internal token and
//! the caller's identity. Only the gateway knows the token, so payment-ms can trust the identity
//! headers of any request that carries it.

use subtle::ConstantTimeEq;

pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";
pub const USER_ID_HEADER: &str = "x-user-id";
/// Comma-separated roles, e.g. `service,admin`.
pub const USER_ROLES_HEADER: &str = "x-user-roles";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// On an answer payment-ms replays for a repeated Idempotency-Key; the gateway passes it on.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";

/// The same headers as names for a header map, made at compile time.
pub mod names {
    use axum::http::HeaderName;

    pub const INTERNAL_TOKEN: HeaderName = HeaderName::from_static(super::INTERNAL_TOKEN_HEADER);
    pub const USER_ID: HeaderName = HeaderName::from_static(super::USER_ID_HEADER);
    pub const USER_ROLES: HeaderName = HeaderName::from_static(super::USER_ROLES_HEADER);
    pub const REQUEST_ID: HeaderName = HeaderName::from_static(super::REQUEST_ID_HEADER);
    pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static(super::IDEMPOTENCY_KEY_HEADER);
    pub const IDEMPOTENT_REPLAYED: HeaderName =
        HeaderName::from_static(super::IDEMPOTENT_REPLAYED_HEADER);
}

/// Compares two secrets in time independent of where they differ.
pub fn secrets_match(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The roles a caller may hold. Anything else in a token is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Service,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "service" => Some(Role::Service),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "ab"));
        assert!(!secrets_match("abc", ""));
    }
}
