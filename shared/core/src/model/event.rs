//! An accepted event as the event store keeps it, and a page request over the store.

use chrono::{DateTime, Utc};

use crate::model::envelope::EventEnvelope;

/// An accepted event as the event store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub envelope: EventEnvelope,
    pub received_at: DateTime<Utc>,
    /// The caller-scoped idempotency key that wrote it, if any: a retry of that same request may
    /// rewrite the record; anyone else reusing the `eventId` is refused.
    pub idempotency_key: Option<String>,
    /// When (epoch s) retention ends (DynamoDB TTL attribute).
    pub expires_at: i64,
}

/// A page request for [`crate::ports::EventStore::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub organization_id: String,
    pub event_type: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: u32,
}
