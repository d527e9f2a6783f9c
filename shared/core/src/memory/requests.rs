//! The incoming-request log, in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::request::{RequestQuery, SourceRequest};
use crate::ports::{RequestLog, RequestRecorder, StoreError};

/// Entries by (source, request id), as the requests table keys them.
#[derive(Default)]
pub struct MemoryRequests {
    entries: Mutex<BTreeMap<(String, String), SourceRequest>>,
}

impl MemoryRequests {
    /// Every entry of `source_id`, lapsed or not, newest first.
    pub fn all(&self, source_id: &str) -> Vec<SourceRequest> {
        lock(&self.entries).values().rev().filter(|e| e.source_id == source_id).cloned().collect()
    }
}

#[async_trait]
impl RequestRecorder for MemoryRequests {
    async fn record_request(&self, entry: &SourceRequest) -> Result<(), StoreError> {
        lock(&self.entries).insert((entry.source_id.clone(), entry.id.clone()), entry.clone());
        Ok(())
    }
}

#[async_trait]
impl RequestLog for MemoryRequests {
    /// As the adapter's query: `limit` entries read newest first, then filtered (so a page may
    /// come back short), and a cursor (the last id read) whenever `limit` were read.
    async fn list_requests(&self, q: &RequestQuery) -> Result<(Vec<SourceRequest>, Option<String>), StoreError> {
        if q.cursor.as_ref().is_some_and(|c| !c.starts_with(crate::model::request::REQUEST_PREFIX)) {
            return Err(StoreError::new("cursor", "not a cursor this API issued"));
        }
        let all = lock(&self.entries);
        let read: Vec<&SourceRequest> = all
            .values()
            .rev()
            .filter(|e| e.source_id == q.source_id && q.cursor.as_ref().is_none_or(|c| &e.id < c))
            .take(q.limit.clamp(1, 100) as usize)
            .collect();
        let next = (read.len() == q.limit.clamp(1, 100) as usize).then(|| read.last().map(|e| e.id.clone())).flatten();
        let page = read.into_iter().filter(|e| e.expires_at > q.now && q.outcome.is_none_or(|o| e.outcome == o)).cloned().collect();
        Ok((page, next))
    }

    async fn get_request(&self, source_id: &str, id: &str, now: i64) -> Result<Option<SourceRequest>, StoreError> {
        Ok(lock(&self.entries).get(&(source_id.to_string(), id.to_string())).filter(|e| e.expires_at > now).cloned())
    }
}
