//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): what we send partners and
//! what any standard verifier (`standardwebhooks`, `svix`) accepts.
//!
//! A secret is `whsec_` + base64 of its key bytes. A request carries `webhook-id` (the event id,
//! the same on every retry), `webhook-timestamp` (unix seconds of the attempt) and
//! `webhook-signature`: `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`, several
//! space-separated while a rotated secret is still valid.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
const PREFIX: &str = "whsec_";

/// How far a timestamp may be from now, either way, for [`verify`] to accept it.
pub const DEFAULT_TOLERANCE_SECS: u64 = 5 * 60;

/// A signing key, parsed from its `whsec_…` form.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret is `whsec_` followed by base64")]
    Malformed,
    #[error("a webhook secret must hold 24 to 64 bytes")]
    Length,
}

impl WebhookSecret {
    /// A new secret of 32 random bytes, in its `whsec_…` form.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        format!("{PREFIX}{}", STANDARD.encode(key))
    }

    pub fn parse(text: &str) -> Result<WebhookSecret, SecretError> {
        let key = text
            .strip_prefix(PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or(SecretError::Malformed)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(WebhookSecret(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }
}

/// The `webhook-signature` value: one `v1,…` entry per secret, space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-timestamp is not a number")]
    BadTimestamp,
    #[error("the webhook-timestamp is too far from now")]
    Stale,
    #[error("no signature matches")]
    NoMatch,
}

/// Checks a received webhook the way a partner does: the timestamp within `tolerance_secs` of
/// `now`, and any `v1` entry of the signature header matching.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if ts.abs_diff(now) > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    let expected = secret.mac(id, ts, body).finalize().into_bytes();
    let matched = signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| bool::from(given.as_slice().ct_eq(&expected[..])));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specification_test_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TS, BODY), SIGNATURE);
        assert_eq!(
            verify(&secret, ID, "1614265330", SIGNATURE, BODY, TS, 300),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampering_staleness_and_other_keys() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let other = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        assert_eq!(
            verify(&secret, ID, "1614265330", SIGNATURE, b"{}", TS, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&secret, "msg_other", "1614265330", SIGNATURE, BODY, TS, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&other, ID, "1614265330", SIGNATURE, BODY, TS, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&secret, ID, "1614265330", SIGNATURE, BODY, TS + 301, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&secret, ID, "1614265330", SIGNATURE, BODY, TS - 301, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&secret, ID, "soon", SIGNATURE, BODY, TS, 300),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn any_of_several_signatures_verifies() {
        let old = WebhookSecret::parse(SECRET).unwrap();
        let new = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let header = signature_header(&[&new, &old], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(
            verify(&old, ID, "1614265330", &header, BODY, TS, 300),
            Ok(())
        );
        assert_eq!(
            verify(&new, ID, "1614265330", &header, BODY, TS, 300),
            Ok(())
        );
    }

    #[test]
    fn secrets_have_their_shape() {
        let generated = WebhookSecret::generate();
        assert!(generated.starts_with("whsec_"));
        assert!(WebhookSecret::parse(&generated).is_ok());
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::Malformed
        );
        assert_eq!(
            WebhookSecret::parse("whsec_!!!").unwrap_err(),
            SecretError::Malformed
        );
        assert_eq!(
            WebhookSecret::parse("whsec_YWJj").unwrap_err(),
            SecretError::Length
        );
        assert_eq!(
            format!("{:?}", WebhookSecret::parse(SECRET).unwrap()),
            "WebhookSecret([REDACTED])"
        );
    }
}
