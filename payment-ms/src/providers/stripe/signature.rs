//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where
//! each `v1` is HMAC-SHA256 of `"{t}.{body}"` keyed by the endpoint secret's bytes (the whole
//! `whsec_…` string, not decoded). Several `v1` appear while Stripe rolls a secret; any may match.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "stripe-signature";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signed timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value Stripe would send for `body` at `timestamp` (for tests and tools).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a `Stripe-Signature` header against `body`. `now` and the tolerance are in seconds;
/// a timestamp further than the tolerance from `now`, either way, is refused, so a captured
/// request cannot be replayed later. Tags are compared in constant time.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => tags.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            _ => {} // v0 (test mode's legacy scheme) and future schemes
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, body);
    if tags
        .iter()
        .any(|tag| expected.clone().verify_slice(tag).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signature_made_here_verifies() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(Some(&header), BODY, SECRET, 1_700_000_100, 300),
            Ok(())
        );
    }

    /// Computed independently: `printf '1700000000.{body}' | openssl dgst -sha256 -hmac whsec_test_secret`.
    #[test]
    fn matches_an_independent_computation() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            header,
            "t=1700000000,v1=22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31"
        );
    }

    #[test]
    fn refusals() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        let at = 1_700_000_000;
        assert_eq!(
            verify(None, BODY, SECRET, at, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("garbage"), BODY, SECRET, at, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some("t=1700000000"), BODY, SECRET, at, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some(&header), b"{}", SECRET, at, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, "whsec_other", at, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, SECRET, at + 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), BODY, SECRET, at - 301, 300),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_of_several_v1_tags_may_match() {
        let good = sign(SECRET, 1_700_000_000, BODY);
        let good_tag = good.split_once("v1=").map(|(_, t)| t).unwrap_or_default();
        let header = format!(
            "t=1700000000,v1={},v1={good_tag},v0=ignored",
            "00".repeat(32)
        );
        assert_eq!(
            verify(Some(&header), BODY, SECRET, 1_700_000_000, 300),
            Ok(())
        );
    }
}
