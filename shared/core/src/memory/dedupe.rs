//! Duplicate detection for incoming webhooks, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::ports::{Claim, DedupeStore, StoreError};

/// Claims by key: (held until, ms; counts until, epoch s).
#[derive(Default)]
pub struct MemoryDedupe {
    claims: Mutex<HashMap<String, (i64, i64)>>,
}

#[async_trait]
impl DedupeStore for MemoryDedupe {
    async fn claim(&self, key: &str, hold_until_ms: i64, expires_at: i64, now_ms: i64) -> Result<Claim, StoreError> {
        let mut claims = lock(&self.claims);
        let answer = match claims.get(key) {
            None => Claim::Fresh,
            Some((_, exp)) if exp * 1000 <= now_ms => Claim::Fresh,
            Some((hold, _)) if *hold <= now_ms => Claim::Reclaimed,
            Some(_) => return Ok(Claim::Held),
        };
        claims.insert(key.to_string(), (hold_until_ms, expires_at));
        Ok(answer)
    }
    async fn forget(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.claims).remove(key);
        Ok(())
    }
}
