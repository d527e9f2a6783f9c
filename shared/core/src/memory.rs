//! In-memory implementations of the ports: fast unit tests of the domain and CPU benchmarks with
//! the AWS round trips taken out. They keep the adapters' semantics (conditional lock,
//! all-or-nothing writes) so a test against them means something; the end-to-end tests prove
//! the same behaviour against the real wire protocol.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use crate::envelope::EventEnvelope;
use crate::idempotency::{Record, Status, StoredResponse};
use crate::keys::ApiKey;
use crate::ports::*;

/// Idempotency records, events and keys in one place, like the DynamoDB adapter.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Record>>,
    events: Mutex<HashMap<Uuid, StoredEvent>>,
    keys: Mutex<HashMap<String, ApiKey>>,
    /// When set, every write fails as if the store were down.
    pub fail_writes: AtomicBool,
}

impl MemoryStore {
    pub fn event_count(&self) -> usize {
        self.events.lock().map(|e| e.len()).unwrap_or(0)
    }
    pub fn record(&self, key: &str) -> Option<Record> {
        self.records.lock().ok()?.get(key).cloned()
    }
    fn check_up(&self, op: &'static str) -> Result<(), StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::new(op, "injected fault"));
        }
        Ok(())
    }
    fn poisoned(op: &'static str) -> StoreError {
        StoreError::new(op, "lock poisoned")
    }
    fn taken(events: &HashMap<Uuid, StoredEvent>, new: &[StoredEvent]) -> Vec<Uuid> {
        new.iter()
            .filter(|n| {
                events
                    .get(&n.envelope.event_id)
                    .is_some_and(|old| old.idempotency_key.is_none() || old.idempotency_key != n.idempotency_key)
            })
            .map(|n| n.envelope.event_id)
            .collect()
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.keys.lock().map_err(|_| Self::poisoned("find_key"))?.get(key_hash).cloned())
    }
    async fn put_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        self.keys.lock().map_err(|_| Self::poisoned("put_key"))?.insert(key_hash.to_string(), key.clone());
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError> {
        self.check_up("lock_and_store")?;
        let mut records = self.records.lock().map_err(|_| Self::poisoned("lock_and_store"))?;
        let mut stored = self.events.lock().map_err(|_| Self::poisoned("lock_and_store"))?;
        if let Some(r) = records.get(&lock.key) {
            let live = r.expires_at * 1000 > now_ms && !(r.status == Status::Inprogress && r.in_progress_expiry_ms <= now_ms);
            if live {
                return Err(WriteError::LockHeld);
            }
        }
        let taken = Self::taken(&stored, events);
        if !taken.is_empty() {
            return Err(WriteError::EventIdsTaken(taken));
        }
        records.insert(lock.key.clone(), lock.clone());
        for e in events {
            stored.insert(e.envelope.event_id, e.clone());
        }
        Ok(())
    }
    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.records.lock().map_err(|_| Self::poisoned("get_record"))?.get(key).cloned())
    }
    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        self.check_up("complete")?;
        let mut records = self.records.lock().map_err(|_| Self::poisoned("complete"))?;
        if let Some(r) = records.get_mut(key) {
            r.status = Status::Completed;
            r.response = Some(response.clone());
        }
        Ok(())
    }
    async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError> {
        self.check_up("release")?;
        self.records.lock().map_err(|_| Self::poisoned("release"))?.remove(key);
        self.delete_events(event_ids).await
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
        self.check_up("put_events")?;
        let mut stored = self.events.lock().map_err(|_| Self::poisoned("put_events"))?;
        let taken = Self::taken(&stored, events);
        if !taken.is_empty() {
            return Err(WriteError::EventIdsTaken(taken));
        }
        for e in events {
            stored.insert(e.envelope.event_id, e.clone());
        }
        Ok(())
    }
    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let mut stored = self.events.lock().map_err(|_| Self::poisoned("delete_events"))?;
        for id in ids {
            stored.remove(id);
        }
        Ok(())
    }
    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self.events.lock().map_err(|_| Self::poisoned("get_event"))?.get(&id).cloned())
    }
    async fn list_events(&self, query: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let all = self.events.lock().map_err(|_| Self::poisoned("list_events"))?;
        let mut page: Vec<StoredEvent> = all
            .values()
            .filter(|e| e.envelope.organization_id == query.organization_id)
            .filter(|e| query.event_type.as_ref().is_none_or(|t| &e.envelope.event_type == t))
            .cloned()
            .collect();
        page.sort_by_key(|e| std::cmp::Reverse(e.received_at));
        page.truncate(query.limit as usize);
        Ok((page, None))
    }
}

/// A bus that remembers what was published; can be told to fail.
#[derive(Default)]
pub struct MemoryBus {
    pub published: Mutex<Vec<EventEnvelope>>,
    pub fail: AtomicBool,
    pub calls: AtomicUsize,
}

impl MemoryBus {
    pub fn count(&self) -> usize {
        self.published.lock().map(|p| p.len()).unwrap_or(0)
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    async fn publish(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return events.iter().map(|_| Err(PublishError("injected fault".into()))).collect();
        }
        if let Ok(mut p) = self.published.lock() {
            p.extend(events.iter().cloned());
        }
        events.iter().map(|_| Ok(())).collect()
    }
}

/// Blobs in a map.
#[derive(Default)]
pub struct MemoryBlobs {
    pub blobs: Mutex<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    fn bucket(&self) -> &str {
        "memory"
    }
    async fn put_blob(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
        self.blobs.lock().map_err(|_| StoreError::new("put_blob", "poisoned"))?.insert(key.to_string(), bytes);
        Ok(())
    }
    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.lock().map_err(|_| StoreError::new("get_blob", "poisoned"))?.get(key).cloned())
    }
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.blobs.lock().map_err(|_| StoreError::new("blob_exists", "poisoned"))?.contains_key(key))
    }
}

/// Rate slots in a map (a shared limit, as one process sees it).
#[derive(Default)]
pub struct MemoryRates {
    used: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl crate::ports::RateLimiter for MemoryRates {
    async fn take_rate_slot(&self, key: &str, limit: u32, now: chrono::DateTime<chrono::Utc>) -> Result<bool, StoreError> {
        let mut used = self.used.lock().map_err(|_| StoreError::new("take_rate_slot", "poisoned"))?;
        let n = used.entry(format!("{key}#{}", now.timestamp())).or_default();
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
}

/// Sources and delivery claims in maps.
#[derive(Default)]
pub struct MemorySources {
    sources: Mutex<HashMap<String, SealedSource>>,
    claims: Mutex<HashMap<String, (i64, i64)>>,
}

#[async_trait]
impl SourceStore for MemorySources {
    async fn put_source(&self, source: &SealedSource) -> Result<(), StoreError> {
        self.sources.lock().map_err(|_| StoreError::new("put_source", "poisoned"))?.insert(source.id.clone(), source.clone());
        Ok(())
    }
    async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError> {
        Ok(self.sources.lock().map_err(|_| StoreError::new("get_source", "poisoned"))?.get(id).cloned())
    }
    async fn list_sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, StoreError> {
        let all = self.sources.lock().map_err(|_| StoreError::new("list_sources", "poisoned"))?;
        Ok(all.values().filter(|s| s.organization_id == organization_id).cloned().collect())
    }
    async fn delete_source(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut all = self.sources.lock().map_err(|_| StoreError::new("delete_source", "poisoned"))?;
        let owned = all.get(id).is_some_and(|s| s.organization_id == organization_id);
        if owned {
            all.remove(id);
        }
        Ok(owned)
    }
}

#[async_trait]
impl DedupeStore for MemorySources {
    async fn claim(&self, key: &str, hold_until_ms: i64, expires_at: i64, now_ms: i64) -> Result<Claim, StoreError> {
        let mut claims = self.claims.lock().map_err(|_| StoreError::new("claim", "poisoned"))?;
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
        self.claims.lock().map_err(|_| StoreError::new("forget", "poisoned"))?.remove(key);
        Ok(())
    }
}

/// One reported metric with the dimensions it was reported under.
type Recorded = (Vec<(String, String)>, crate::metrics::Metric);

/// Keeps every reported metric, to assert what a workflow counted.
#[derive(Default)]
pub struct RecordedMetrics {
    recorded: Mutex<Vec<Recorded>>,
}

impl RecordedMetrics {
    /// The sum of a metric over every report, whatever its dimensions.
    pub fn total(&self, name: &str) -> f64 {
        self.sum(name, |_| true)
    }

    /// The sum of a metric over the reports carrying this dimension value.
    pub fn total_where(&self, name: &str, dimension: &str, value: &str) -> f64 {
        self.sum(name, |dims| dims.iter().any(|(k, v)| k == dimension && v == value))
    }

    fn sum(&self, name: &str, dimensions_match: impl Fn(&[(String, String)]) -> bool) -> f64 {
        self.recorded
            .lock()
            .map(|r| r.iter().filter(|(dims, m)| m.name == name && dimensions_match(dims)).map(|(_, m)| m.value).sum())
            .unwrap_or(0.0)
    }
}

impl crate::metrics::Metrics for RecordedMetrics {
    fn record(&self, dimensions: &[(&'static str, &str)], metrics: &[crate::metrics::Metric]) {
        let dims: Vec<(String, String)> = dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Ok(mut r) = self.recorded.lock() {
            r.extend(metrics.iter().map(|m| (dims.clone(), *m)));
        }
    }
}
