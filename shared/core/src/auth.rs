//! Authenticating a request's bearer key, with a small per-instance cache: a warm Lambda
//! instance answers repeat callers without a DynamoDB read, which keeps ingest at its AWS
//! request budget. Revoking a key takes effect within the cache's lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::keys::{self, ApiKey};
use crate::model::problem::{Problem, ProblemKind};
use crate::ports::KeyStore;

pub struct Authenticator {
    store: Arc<dyn KeyStore>,
    ttl: Duration,
    negative_ttl: Duration,
    cache: Mutex<HashMap<String, (Option<ApiKey>, Instant)>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn KeyStore>, ttl: Duration) -> Self {
        Self { store, ttl, negative_ttl: Duration::from_secs(5), cache: Mutex::default() }
    }

    /// The key behind an `Authorization` header value, or the 401/503 to answer with.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<ApiKey, Problem> {
        let Some(key) = authorization.and_then(keys::bearer) else {
            return Err(Problem::new(ProblemKind::Unauthenticated, "send your API key as 'Authorization: Bearer <key>'"));
        };
        let hash = keys::hash(key);
        let cached = self.cache.lock().ok().and_then(|c| c.get(&hash).cloned());
        let found = match cached {
            Some((found, at)) if at.elapsed() < if found.is_some() { self.ttl } else { self.negative_ttl } => found,
            _ => {
                let found = self.store.find_key(&hash).await.map_err(|e| {
                    tracing::error!(error = %e, "key lookup failed");
                    Problem::unavailable("Relay could not check the API key; retry", 2)
                })?;
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(hash, (found.clone(), Instant::now()));
                }
                found
            }
        };
        match found {
            Some(k) if !k.disabled => Ok(k),
            _ => Err(Problem::new(ProblemKind::Unauthenticated, "the API key is unknown or revoked")),
        }
    }
}
