//! Idempotency records and the event store, in memory.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use super::guard::lock;
use crate::model::event::{cursor_of, parse_cursor, DeliveryMark, DeliveryMarks, EventQuery, StoredEvent};
use crate::model::idempotency::{Record, Status, StoredResponse};
use crate::ports::{EventLedger, EventStore, EventWriter, IdempotencyStore, StoreError, WriteError};

/// Idempotency records and the events they accept, in one double because a lock and its events
/// are written and undone together (the DynamoDB adapter writes the lock first, then each event,
/// and undoes what it wrote on failure; here it is one step).
#[derive(Default)]
pub struct MemoryEvents {
    records: Mutex<HashMap<String, Record>>,
    events: Mutex<HashMap<Uuid, StoredEvent>>,
    /// Events deliver kept from the bus (an idempotent API retry may replace them).
    observed: Mutex<HashSet<Uuid>>,
    /// Per event, the latest mark of each delivery.
    marks: Mutex<HashMap<Uuid, HashMap<String, DeliveryMark>>>,
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
    /// The ids of `new` held by another writer. One deliver kept from the bus may be replaced by
    /// a keyed write of the same product and organisation (the request that published it,
    /// retried after a partial publish).
    fn taken(&self, events: &HashMap<Uuid, StoredEvent>, new: &[StoredEvent]) -> Vec<Uuid> {
        let observed = lock(&self.observed);
        new.iter()
            .filter(|n| {
                let id = n.envelope.event_id;
                events.get(&id).is_some_and(|old| {
                    let replaceable = n.idempotency_key.is_some()
                        && observed.contains(&id)
                        && old.envelope.source_product == n.envelope.source_product
                        && old.envelope.organization_id == n.envelope.organization_id;
                    !replaceable && (old.idempotency_key.is_none() || old.idempotency_key != n.idempotency_key)
                })
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
        let taken = self.taken(&stored, events);
        if !taken.is_empty() {
            return Err(WriteError::EventIdsTaken(taken));
        }
        records.insert(lock.key.clone(), lock.clone());
        for e in events {
            stored.insert(e.envelope.event_id, e.clone());
            super::guard::lock(&self.observed).remove(&e.envelope.event_id);
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
        Ok(lock(&self.events).get(&id).map(|e| self.summarised(e.clone())))
    }
    /// As the adapter's `byOrganization` index query: positions are `"<received, ms>#<id>"`
    /// strings, newest first, bounded by `from`/`to` at millisecond precision; `limit` items
    /// are read and then filtered by type (so a page may come back short); a cursor comes back
    /// whenever `limit` items were read, and names the position to continue after, whether or
    /// not that event still exists. Type, source and delivery state filter as the type does.
    async fn list_events(&self, query: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let millis = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let position = |e: &StoredEvent| format!("{}#{}", millis(e.received_at), e.envelope.event_id);
        let from = query.from.map(millis).unwrap_or_else(|| "0".into());
        let to = query.to.map(|t| format!("{}~", millis(t))).unwrap_or_else(|| "~".into());
        let after = match &query.cursor {
            None => None,
            Some(c) => {
                let (received, id) = parse_cursor(c).ok_or_else(|| StoreError::new("cursor", "not a cursor this API issued"))?;
                Some(format!("{}#{id}", millis(received)))
            }
        };
        let all = lock(&self.events);
        let mut window: Vec<(String, &StoredEvent)> = all
            .values()
            .filter(|e| e.envelope.organization_id == query.organization_id)
            .map(|e| (position(e), e))
            .filter(|(p, _)| *p >= from && *p <= to && after.as_ref().is_none_or(|a| p < a))
            .collect();
        window.sort_by(|a, b| b.0.cmp(&a.0));
        let limit = query.limit.clamp(1, 100) as usize;
        let read: Vec<&StoredEvent> = window.iter().take(limit).map(|(_, e)| *e).collect();
        let next = (read.len() == limit).then(|| read.last().map(|e| cursor_of(e.received_at, e.envelope.event_id))).flatten();
        let page = read
            .into_iter()
            .filter(|e| query.event_type.as_ref().is_none_or(|t| &e.envelope.event_type == t))
            .filter(|e| query.source.as_ref().is_none_or(|s| &e.envelope.source_product == s))
            .map(|e| self.summarised(StoredEvent { idempotency_key: None, ..e.clone() }))
            .filter(|e| query.delivery.is_none_or(|d| d.may_match(&e.deliveries)))
            .collect();
        Ok((page, next))
    }
}

impl MemoryEvents {
    fn summarised(&self, mut event: StoredEvent) -> StoredEvent {
        let marks = lock(&self.marks);
        let of = |m| {
            marks.get(&event.envelope.event_id).map_or_else(Default::default, |all| {
                all.iter().filter(|(_, v)| **v == m).map(|(id, _)| id.clone()).collect::<std::collections::BTreeSet<String>>()
            })
        };
        event.deliveries = DeliveryMarks { delivered: of(DeliveryMark::Delivered), failing: of(DeliveryMark::Failing) };
        event
    }
}

#[async_trait]
impl EventLedger for MemoryEvents {
    async fn observe_event(&self, event: &StoredEvent) -> Result<(), StoreError> {
        self.check_up("observe_event")?;
        let mut stored = lock(&self.events);
        if let std::collections::hash_map::Entry::Vacant(slot) = stored.entry(event.envelope.event_id) {
            slot.insert(event.clone());
            lock(&self.observed).insert(event.envelope.event_id);
        }
        Ok(())
    }

    async fn mark_delivery(&self, event_id: Uuid, subscription_id: &str, mark: DeliveryMark) -> Result<(), StoreError> {
        self.check_up("mark_delivery")?;
        if lock(&self.events).contains_key(&event_id) {
            lock(&self.marks).entry(event_id).or_default().insert(subscription_id.to_string(), mark);
        }
        Ok(())
    }
}

#[async_trait]
impl EventWriter for MemoryEvents {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
        self.check_up("put_events")?;
        let mut stored = lock(&self.events);
        let taken = self.taken(&stored, events);
        if !taken.is_empty() {
            return Err(WriteError::EventIdsTaken(taken));
        }
        for e in events {
            stored.insert(e.envelope.event_id, e.clone());
            lock(&self.observed).remove(&e.envelope.event_id);
        }
        Ok(())
    }

    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let mut stored = lock(&self.events);
        for id in ids {
            stored.remove(id);
            lock(&self.marks).remove(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::envelope::EventEnvelope;

    fn event(minute: i64, event_type: &str) -> StoredEvent {
        let at = chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap();
        StoredEvent {
            envelope: EventEnvelope {
                event_id: Uuid::new_v4(),
                event_type: event_type.into(),
                event_version: "1.0".into(),
                source_product: "recruitiq".into(),
                organization_id: "org-1".into(),
                timestamp: at,
                correlation_id: None,
                payload: None,
                payload_ref: None,
            },
            received_at: at,
            idempotency_key: Some("k".into()),
            expires_at: i64::MAX,
            deliveries: DeliveryMarks::default(),
        }
    }

    #[tokio::test]
    async fn a_kept_bus_event_is_replaced_only_by_a_keyed_write_of_its_own_product_and_organisation() {
        let store = MemoryEvents::default();
        let mut kept = event(0, "employee.created");
        kept.envelope.source_product = "nexus".into();
        kept.idempotency_key = None;
        store.observe_event(&kept).await.unwrap();
        let mut other = event(1, "job.closed");
        other.envelope.event_id = kept.envelope.event_id;
        assert!(matches!(store.put_events(&[other.clone()]).await, Err(WriteError::EventIdsTaken(_))), "recruitiq's write");
        other.envelope.source_product = "nexus".into();
        other.envelope.organization_id = "org-2".into();
        assert!(matches!(store.put_events(&[other.clone()]).await, Err(WriteError::EventIdsTaken(_))), "another organisation's");
        other.envelope.organization_id = "org-1".into();
        other.idempotency_key = None;
        assert!(matches!(store.put_events(&[other.clone()]).await, Err(WriteError::EventIdsTaken(_))), "a write without a key");
        other.idempotency_key = Some("k".into());
        store.put_events(&[other]).await.expect("the same product and organisation, retrying under its key");
    }

    #[tokio::test]
    async fn the_listing_pages_as_the_index_query_does() {
        let store = MemoryEvents::default();
        let events: Vec<StoredEvent> = (0..5).map(|m| event(m, if m % 2 == 0 { "a.even" } else { "a.odd" })).collect();
        store.put_events(&events).await.unwrap();
        let query = |limit, cursor: Option<String>, event_type: Option<&str>| EventQuery {
            organization_id: "org-1".into(),
            event_type: event_type.map(str::to_string),
            limit,
            cursor,
            ..EventQuery::default()
        };
        let minutes = |page: &[StoredEvent]| page.iter().map(|e| (e.received_at.timestamp() - 1_800_000_000) / 60).collect::<Vec<_>>();

        let (page, next) = store.list_events(&query(2, None, None)).await.unwrap();
        assert_eq!(minutes(&page), [4, 3], "newest first");
        assert!(page[0].idempotency_key.is_none(), "the listing does not carry the key");
        // The cursor continues after its position even when that event is gone.
        store.delete_events(&[page[1].envelope.event_id]).await.unwrap();
        let (page, next) = store.list_events(&query(2, next, None)).await.unwrap();
        assert_eq!(minutes(&page), [2, 1]);
        let (page, next) = store.list_events(&query(2, next, None)).await.unwrap();
        assert_eq!((minutes(&page), next.is_none()), (vec![0], true), "a short read is the end");

        let (page, next) = store.list_events(&query(2, None, Some("a.odd"))).await.unwrap();
        assert_eq!((minutes(&page), next.is_some()), (vec![], true), "two read (4, 2), none of the type: an empty page, and a cursor");
        let from = chrono::DateTime::from_timestamp(1_800_000_000 + 60, 500_000).unwrap();
        let (page, _) = store.list_events(&EventQuery { from: Some(from), ..query(10, None, None) }).await.unwrap();
        assert_eq!(minutes(&page), [4, 2, 1], "bounds at millisecond precision: minute 1 + 0.5 ms is minute 1");
        let err = store.list_events(&query(2, Some("not-a-cursor!".into()), None)).await.unwrap_err();
        assert_eq!(err.operation, "cursor");
    }
}
