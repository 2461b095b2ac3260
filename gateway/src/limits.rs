//! Rate limits: per user (the token's `sub`) and per client address, so one caller cannot starve
//! the others; trusted backends (role `service` or `admin`) have a limit of their own, per `sub`,
//! instead of both (a shop's backend creates every order from one account and one address). A
//! caller over its limit gets 429 with `Retry-After`; nothing reaches payment-ms.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use shared::Problem;

use crate::AppState;

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Option<Quota> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Some(Quota::per_second(per_second).allow_burst(burst))
    }
}

pub struct RateLimits {
    users: Option<DefaultKeyedRateLimiter<String>>,
    addresses: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

/// A refusal: how long until the caller may try again.
#[derive(Debug, Clone, Copy)]
pub struct TooManyRequests(pub Duration);

impl IntoResponse for TooManyRequests {
    fn into_response(self) -> Response {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("Slow down; retry in {secs} s"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl RateLimits {
    /// A rate of 0 per second turns that limit off.
    pub fn new(per_user: Rate, per_address: Rate, per_trusted: Rate) -> Self {
        RateLimits {
            users: per_user.quota().map(DefaultKeyedRateLimiter::keyed),
            addresses: per_address.quota().map(DefaultKeyedRateLimiter::keyed),
            trusted: per_trusted.quota().map(DefaultKeyedRateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    pub fn check_user(&self, user_id: &str) -> Result<(), TooManyRequests> {
        self.check(&self.users, user_id)
    }

    /// A `service` or `admin` caller, by its `sub`.
    pub fn check_trusted(&self, user_id: &str) -> Result<(), TooManyRequests> {
        self.check(&self.trusted, user_id)
    }

    fn check(
        &self,
        limiter: &Option<DefaultKeyedRateLimiter<String>>,
        key: &str,
    ) -> Result<(), TooManyRequests> {
        match limiter {
            Some(limiter) => limiter
                .check_key(&key.to_owned())
                .map_err(|not_until| TooManyRequests(not_until.wait_time_from(self.clock.now()))),
            None => Ok(()),
        }
    }

    pub fn check_address(&self, ip: IpAddr) -> Result<(), TooManyRequests> {
        match &self.addresses {
            Some(limiter) => limiter
                .check_key(&ip)
                .map_err(|not_until| TooManyRequests(not_until.wait_time_from(self.clock.now()))),
            None => Ok(()),
        }
    }

    /// Forgets callers whose state is back to full: the maps stay as large as the recent
    /// callers, not every caller ever seen.
    pub fn forget_idle(&self) {
        for l in [&self.users, &self.trusted].into_iter().flatten() {
            l.retain_recent();
        }
        if let Some(l) = &self.addresses {
            l.retain_recent();
        }
    }
}

/// The client's address: the connection's peer, or with `TRUST_X_FORWARDED_FOR` the last
/// address in `X-Forwarded-For` (the one the trusted proxy in front of us added).
pub fn client_ip(
    headers: &HeaderMap,
    extensions: &Extensions,
    trust_forwarded: bool,
) -> Option<IpAddr> {
    if trust_forwarded {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The limits of an API request, once its token is known: a trusted backend's own limit, or
/// the per-address and per-user ones. A request whose token is missing or bad counts against
/// its address (token guessing is bounded) before it is refused.
pub fn check_caller(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
    caller: Option<&crate::auth::AuthUser>,
) -> Result<(), TooManyRequests> {
    let limits = &state.limits;
    if let Some(user) = caller.filter(|u| u.is_trusted()) {
        return limits.check_trusted(&user.user_id);
    }
    if let Some(ip) = client_ip(headers, extensions, state.config.trust_forwarded_for) {
        limits.check_address(ip)?;
    }
    match caller {
        Some(user) => limits.check_user(&user.user_id),
        None => Ok(()),
    }
}

/// What a request must meet before anything else (run by the common middleware): headers that
/// add up to more than `HEADER_LIMIT_BYTES` get 431; then the per-address rate limit, on every
/// route but the health checks and the API (whose limits depend on the caller: see
/// [`check_caller`]).
pub fn admit(state: &AppState, request: &Request) -> Option<Response> {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > state.config.header_limit {
        return Some(
            Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "Request headers too large",
                format!(
                    "The request's headers exceed {} bytes",
                    state.config.header_limit
                ),
            )
            .into_response(),
        );
    }
    let path = request.uri().path();
    if path != "/healthz"
        && path != "/readyz"
        && !path.starts_with("/api/")
        && let Some(ip) = client_ip(
            request.headers(),
            request.extensions(),
            state.config.trust_forwarded_for,
        )
        && let Err(refused) = state.limits.check_address(ip)
    {
        return Some(refused.into_response());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_limit_is_refused_per_key() {
        let limits = RateLimits::new(
            Rate {
                per_second: 1,
                burst: 3,
            },
            Rate {
                per_second: 0,
                burst: 0,
            },
            Rate {
                per_second: 0,
                burst: 0,
            },
        );
        for _ in 0..3 {
            assert!(limits.check_user("alice").is_ok());
        }
        let refused = limits.check_user("alice").unwrap_err();
        assert!(refused.0 <= Duration::from_secs(1));
        assert!(limits.check_user("bob").is_ok(), "others are unaffected");
        assert!(
            limits.check_address("127.0.0.1".parse().unwrap()).is_ok(),
            "a rate of 0 is off"
        );
    }
}
