//! Shared rate limits, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::guard::lock;
use crate::ports::{window_start, RateLimiter, StoreError};

/// Rate slots in a map (a shared limit, as one process sees it).
#[derive(Default)]
pub struct MemoryRates {
    used: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl RateLimiter for MemoryRates {
    async fn take_rate_slots(&self, key: &str, count: u32, limit: u32, window_secs: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut used = lock(&self.used);
        let n = used.entry(format!("{key}#{}", window_start(now, window_secs))).or_default();
        if *n + count > limit {
            return Ok(false);
        }
        *n += count;
        Ok(true)
    }
}
