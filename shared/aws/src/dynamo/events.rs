//! The events table: every event of an organisation, whatever put it on the bus. Ingest writes
//! the events it accepts (with their idempotency lock, in [`super::idempotency`]); deliver keeps
//! every other event it is handed, and notes on each event how its deliveries stand, as two
//! string sets of subscription ids (`delivered`, `failing`). Adding to and taking from a set
//! is idempotent, so a redelivered message can note the same state again harmlessly.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use relay_core::model::event::{cursor_of, parse_cursor, DeliveryFilter, DeliveryMark, DeliveryMarks, EventQuery, StoredEvent};
use relay_core::ports::{EventLedger, EventStore, EventWriter, StoreError, WriteError};
use uuid::Uuid;

use super::{conditional, get_n, get_s, get_time, key, n, packed, s, DynamoStore, Item, OrStoreError};

#[async_trait]
impl EventStore for DynamoStore {
    async fn list_events(&self, q: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let from = q.from.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_else(|| "0".into());
        let to = q.to.map(|t| format!("{}~", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))).unwrap_or_else(|| "~".into());
        let mut req = self
            .client
            .query()
            .table_name(&self.tables.events)
            .index_name("byOrganization")
            .key_condition_expression("organizationId = :org AND orgReceived BETWEEN :from AND :to")
            .expression_attribute_values(":org", s(&q.organization_id))
            .expression_attribute_values(":from", s(&from))
            .expression_attribute_values(":to", s(&to))
            .scan_index_forward(false)
            .limit(q.limit.clamp(1, 100) as i32);
        // Filters apply after the page is read (as DynamoDB does), so a page may come back short.
        // The delivery state is pre-filtered loosely (`DeliveryFilter::may_match`): which
        // endpoints still exist is the caller's to check.
        let mut filters = Vec::new();
        if let Some(t) = &q.event_type {
            filters.push("eventType = :t");
            req = req.expression_attribute_values(":t", s(t));
        }
        if let Some(source) = &q.source {
            filters.push("sourceProduct = :src");
            req = req.expression_attribute_values(":src", s(source));
        }
        match q.delivery {
            Some(DeliveryFilter::Failed) => filters.push("attribute_exists(failing)"),
            Some(DeliveryFilter::Delivered) => filters.push("attribute_exists(delivered)"),
            Some(DeliveryFilter::None) | None => {}
        }
        if !filters.is_empty() {
            req = req.filter_expression(filters.join(" AND "));
        }
        if let Some(cursor) = &q.cursor {
            // The index position a page stopped at; see `cursor_of`.
            let (received, id) = parse_cursor(cursor).ok_or_else(|| StoreError::new("cursor", "not a cursor this API issued"))?;
            let received = received.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            req = req
                .exclusive_start_key("eventId", s(&id.to_string()))
                .exclusive_start_key("organizationId", s(&q.organization_id))
                .exclusive_start_key("orgReceived", s(&format!("{received}#{id}")));
        }
        // One page at a time (the caller pages with the cursor), so not `query_all`.
        let out = req.send().await.or_store("dynamodb:Query")?;
        let events = out.items().iter().filter_map(|item| stored_event(item, false)).collect();
        let next = out.last_evaluated_key.as_ref().and_then(|k| {
            let id = get_s(k, "eventId")?.parse().ok()?;
            let received = chrono::DateTime::parse_from_rfc3339(get_s(k, "orgReceived")?.rsplit_once('#')?.0).ok()?;
            Some(cursor_of(received.with_timezone(&chrono::Utc), id))
        });
        Ok((events, next))
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.events)
            .set_key(Some(key::event(&id.to_string())))
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        match out.item {
            None => Ok(None),
            Some(item) => stored_event(&item, true).map(Some).ok_or_else(|| StoreError::new("decode stored event", id)),
        }
    }
}

#[async_trait]
impl EventWriter for DynamoStore {
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
        self.put_each(events).await.map_err(|f| f.error)
    }

    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let keys = ids.iter().map(|id| key::event(&id.to_string())).collect();
        self.batch_delete(&self.tables.events, keys).await
    }
}

#[async_trait]
impl EventLedger for DynamoStore {
    async fn observe_event(&self, event: &StoredEvent) -> Result<(), StoreError> {
        // Most events were stored by ingest before they reached the bus. A strongly consistent
        // read of one costs a read unit; the conditional put it saves costs a write unit per
        // started KB of the event even when its condition fails (issue 14: 2 WRU of a 1 KB
        // event, $1.25 per million, for $0.125). Strongly consistent, so it sees exactly what
        // the put's condition would (an item ingest wrote, or one its undo deleted).
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.events)
            .set_key(Some(key::event(&event.envelope.event_id.to_string())))
            .projection_expression("eventId")
            .consistent_read(true)
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        if found.item.is_some_and(|i| !i.is_empty()) {
            return Ok(());
        }
        let mut item = event_item(event);
        item.insert("observed".into(), AttributeValue::Bool(true));
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.events)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(eventId)")
            .send()
            .await;
        // Already there (ingest wrote it, or an earlier copy of this message): nothing to do.
        conditional(result, "dynamodb:PutItem")?;
        Ok(())
    }

    async fn mark_delivery(&self, event_id: Uuid, subscription_id: &str, mark: DeliveryMark) -> Result<(), StoreError> {
        let (add, remove) = match mark {
            DeliveryMark::Delivered => ("delivered", "failing"),
            DeliveryMark::Failing => ("failing", "delivered"),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.events)
            .set_key(Some(key::event(&event_id.to_string())))
            .update_expression(format!("ADD {add} :sub DELETE {remove} :sub"))
            // An event past its retention is not brought back as a bare item.
            .condition_expression("attribute_exists(eventId)")
            .expression_attribute_values(":sub", AttributeValue::Ss(vec![subscription_id.to_string()]))
            .send()
            .await;
        conditional(result, "dynamodb:UpdateItem")?;
        Ok(())
    }
}

/// The events-table item: the envelope verbatim plus the attributes its indexes use.
pub(super) fn event_item(e: &StoredEvent) -> Item {
    let env = &e.envelope;
    let received = e.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut item = key::event(&env.event_id.to_string());
    item.insert("organizationId".into(), s(&env.organization_id));
    item.insert("eventType".into(), s(&env.event_type));
    item.insert("sourceProduct".into(), s(&env.source_product));
    item.insert("receivedAt".into(), s(&received));
    item.insert("orgReceived".into(), s(&format!("{received}#{}", env.event_id)));
    item.insert("envelope".into(), packed::pack(&env.to_json()));
    item.insert("expiresAt".into(), n(e.expires_at));
    if let Some(k) = &e.idempotency_key {
        item.insert("idempotencyKey".into(), s(k));
    }
    item
}

/// An events-table item as the port's type; `None` for an item without an envelope. The
/// idempotency key is read only where the caller needs it (a listing never shows it).
fn stored_event(item: &Item, with_key: bool) -> Option<StoredEvent> {
    let envelope = packed::envelope(item, "envelope")?;
    let ids = |name: &str| item.get(name).and_then(|v| v.as_ss().ok()).map(|set| set.iter().cloned().collect()).unwrap_or_default();
    Some(StoredEvent {
        envelope,
        received_at: get_time(item, "receivedAt"),
        idempotency_key: if with_key { get_s(item, "idempotencyKey").map(str::to_string) } else { None },
        expires_at: get_n(item, "expiresAt").unwrap_or(0),
        deliveries: DeliveryMarks { delivered: ids("delivered"), failing: ids("failing") },
    })
}
