//! The key schema of every table, written once: each function builds one item's key.

use super::{s, Item};

/// Idempotency table: an idempotency record, a webhook claim or a rate counter.
pub fn id(id: &str) -> Item {
    Item::from([("id".to_string(), s(id))])
}

/// Events table.
pub fn event(event_id: &str) -> Item {
    Item::from([("eventId".to_string(), s(event_id))])
}

/// Config table.
pub fn config(pk: &str, sk: &str) -> Item {
    Item::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// Deliveries table.
pub fn delivery(event_id: &str, sk: &str) -> Item {
    Item::from([("eventId".to_string(), s(event_id)), ("sk".to_string(), s(sk))])
}
