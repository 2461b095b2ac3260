//! Keys from an identity provider's JWKS endpoint, refreshed on rotation and bounded in how often.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};

use super::{AuthError, PinnedKey};

/// An identity provider's key set, cached by `kid`. It is fetched again when a token names a
/// `kid` it does not have (a rotation) or when it is older than its TTL, but never more often
/// than `min_refresh`, so a flood of made-up `kid`s cannot turn into a flood of fetches.
pub(super) struct Jwks {
    url: url::Url,
    /// The checks each fetched key is pinned with.
    template: Validation,
    client: reqwest::Client,
    min_refresh: Duration,
    ttl: Duration,
    state: RwLock<JwksState>,
    refreshing: Mutex<()>,
    /// The number of the key set in use, one more with each successful fetch.
    pub(super) key_set: AtomicU64,
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, Arc<PinnedKey>>,
    fetched: Option<Instant>,
    tried: Option<Instant>,
}

impl Jwks {
    pub(super) fn new(
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
            key_set: AtomicU64::new(0),
        })
    }

    pub(super) async fn key(&self, kid: Option<&str>) -> Result<Arc<PinnedKey>, AuthError> {
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

    pub(super) async fn refresh(&self) {
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
        // Refreshes take turns (the lock above), so the next number is this one plus one.
        let next_set = self.key_set.load(Ordering::Acquire) + 1;
        let fetched = self.fetch(next_set).await;
        let mut state = self.state.write().await;
        state.tried = Some(Instant::now());
        match fetched {
            Ok((keys, fetched_at)) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                state.keys = keys;
                state.fetched = Some(fetched_at);
                // Tokens verified with the previous set are checked again from now on.
                self.key_set.store(next_set, Ordering::Release);
            }
            // Keep the keys we have: the provider may be down for a moment.
            Err(e) => tracing::warn!(error = %e, "could not fetch the JWKS"),
        }
    }

    /// The published keys, each stamped with `key_set` (the number this set will have) and
    /// when the set is due to be fetched again; and when they were fetched.
    async fn fetch(
        &self,
        key_set: u64,
    ) -> anyhow::Result<(HashMap<String, Arc<PinnedKey>>, Instant)> {
        let set: JwkSet = self
            .client
            .get(self.url.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let fetched_at = Instant::now();
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
                let mut pinned = PinnedKey::new(key, algorithm, &self.template);
                pinned.key_set = key_set;
                pinned.fresh_until = Some(fetched_at + self.ttl);
                keys.insert(kid, Arc::new(pinned));
            }
        }
        Ok((keys, fetched_at))
    }
}
