//! Idempotency records and the event store, in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use super::guard::lock;
use crate::model::event::{EventQuery, StoredEvent};
use crate::model::idempotency::{Record, Status, StoredResponse};
use crate::ports::{EventStore, EventWriter, IdempotencyStore, StoreError, WriteError};

/// Idempotency records and the events they accept, in one double because a lock and its events
/// commit together (one transaction in DynamoDB).
#[derive(Default)]
pub struct MemoryEvents {
    records: Mutex<HashMap<String, Record>>,
    events: Mutex<HashMap<Uuid, StoredEvent>>,
    /// When set, every write fails as if the store were down.
    pub fail_writes: AtomicBool,
}

impl MemoryEvents {
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
impl IdempotencyStore for MemoryEvents {
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError> {
        self.check_up("lock_and_store")?;
        let mut records = super::guard::lock(&self.records);
        let mut stored = super::guard::lock(&self.events);
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
        Ok(lock(&self.records).get(key).cloned())
    }
    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        self.check_up("complete")?;
        let mut records = lock(&self.records);
        if let Some(r) = records.get_mut(key) {
            r.status = Status::Completed;
            r.response = Some(response.clone());
        }
        Ok(())
    }
    async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError> {
        self.check_up("release")?;
        lock(&self.records).remove(key);
        self.delete_events(event_ids).await
    }
}

#[async_trait]
impl EventStore for MemoryEvents {
    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        Ok(lock(&self.events).get(&id).cloned())
    }
    /// As the adapter's index query: the organisation's events in `[from, to]`, newest first;
    /// `limit` of them are read and then filtered by type (so a page may come back short, with
    /// a cursor); the cursor is the position the page stopped at.
    async fn list_events(&self, query: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let all = lock(&self.events);
        let mut window: Vec<&StoredEvent> = all
            .values()
            .filter(|e| e.envelope.organization_id == query.organization_id)
            .filter(|e| query.from.is_none_or(|from| e.received_at >= from) && query.to.is_none_or(|to| e.received_at <= to))
            .collect();
        window.sort_by_key(|e| std::cmp::Reverse((e.received_at, e.envelope.event_id)));
        let start = match &query.cursor {
            None => 0,
            Some(c) => {
                let after: Uuid = c.parse().map_err(|_| StoreError::new("cursor", "not a cursor this API issued"))?;
                window.iter().position(|e| e.envelope.event_id == after).map_or(window.len(), |i| i + 1)
            }
        };
        let read: Vec<&StoredEvent> = window.iter().skip(start).take(query.limit.clamp(1, 100) as usize).copied().collect();
        let next = (start + read.len() < window.len()).then(|| read.last().map(|e| e.envelope.event_id.to_string())).flatten();
        let page = read.into_iter().filter(|e| query.event_type.as_ref().is_none_or(|t| &e.envelope.event_type == t)).cloned().collect();
        Ok((page, next))
    }
}

#[async_trait]
impl EventWriter for MemoryEvents {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
        self.check_up("put_events")?;
        let mut stored = lock(&self.events);
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
        let mut stored = lock(&self.events);
        for id in ids {
            stored.remove(id);
        }
        Ok(())
    }
}
