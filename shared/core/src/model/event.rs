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
    /// How its deliveries to the organisation's own endpoints stand (written by deliver).
    pub deliveries: DeliveryMarks,
}

/// The subscriptions an event reached, and the ones it is failing at (not reached after a
/// failed attempt), each by its latest attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryMarks {
    pub delivered: std::collections::BTreeSet<String>,
    pub failing: std::collections::BTreeSet<String>,
}

impl DeliveryMarks {
    /// The counts, over the subscriptions `live` still knows: a deleted endpoint's failures
    /// stop counting (nothing could be replayed to it).
    pub fn summary(&self, live: impl Fn(&str) -> bool) -> DeliverySummary {
        let count = |ids: &std::collections::BTreeSet<String>| ids.iter().filter(|id| live(id)).count() as u32;
        DeliverySummary { delivered: count(&self.delivered), failing: count(&self.failing) }
    }
}

/// How many of the organisation's own endpoints an event reached, and how many it has not
/// reached yet after at least one failed attempt (retrying or given up). An endpoint is
/// counted once, by its latest attempt; platform integrations and deleted endpoints are not
/// counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliverySummary {
    pub delivered: u32,
    pub failing: u32,
}

/// The latest attempt of one delivery, as the event's summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMark {
    Delivered,
    Failing,
}

/// The listing's delivery-state filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFilter {
    /// At least one endpoint not reached after a failed attempt.
    Failed,
    /// Reached at least one endpoint and failing at none.
    Delivered,
    /// No attempt recorded yet: no endpoint wanted it, or the first attempts are under way.
    None,
}

impl DeliveryFilter {
    /// The query parameter's values.
    pub const NAMES: [&'static str; 3] = ["failed", "delivered", "none"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "failed" => Some(Self::Failed),
            "delivered" => Some(Self::Delivered),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// What a store can check from the marks alone, not knowing which endpoints still exist:
    /// true for every event `matches` accepts (and some it will not).
    pub fn may_match(self, marks: &DeliveryMarks) -> bool {
        match self {
            Self::Failed => !marks.failing.is_empty(),
            Self::Delivered => !marks.delivered.is_empty(),
            Self::None => true,
        }
    }

    pub fn matches(self, summary: DeliverySummary) -> bool {
        match self {
            Self::Failed => summary.failing > 0,
            Self::Delivered => summary.delivered > 0 && summary.failing == 0,
            Self::None => summary.delivered == 0 && summary.failing == 0,
        }
    }
}

/// The listing's cursor: where the last event of a page sits in the index (received, ms since
/// the epoch, 13 digits; and its id, 32 hex digits), so that any string of the documented
/// pattern `^[0-9]{13}_[0-9a-f]{32}$` is a cursor and continues after that position.
pub fn cursor_of(received_at: DateTime<Utc>, event_id: uuid::Uuid) -> String {
    format!("{:013}_{}", received_at.timestamp_millis().max(0), event_id.simple())
}

/// A cursor's position, or `None` for a string that is not one.
pub fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, uuid::Uuid)> {
    let (ms, id) = cursor.split_once('_')?;
    if ms.len() != 13 || !ms.bytes().all(|b| b.is_ascii_digit()) || id.len() != 32 {
        return None;
    }
    Some((DateTime::from_timestamp_millis(ms.parse().ok()?)?, uuid::Uuid::try_parse(id).ok()?))
}

/// A page request for [`crate::ports::EventStore::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub organization_id: String,
    pub event_type: Option<String>,
    /// The `sourceProduct`: a product, a provider (`stripe`) or `relay`.
    pub source: Option<String>,
    pub delivery: Option<DeliveryFilter>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: u32,
}
