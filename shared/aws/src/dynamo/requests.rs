//! The requests table: what each webhook source received, one item per call, keyed by source
//! and by a time-ordered request id, so a source's log reads newest first with one query.

use std::collections::HashMap;

use async_trait::async_trait;
use relay_core::model::request::{RequestOutcome, RequestQuery, SourceRequest};
use relay_core::ports::{RequestLog, RequestRecorder, StoreError};

use super::{get_n, get_s, get_time, n, s, DynamoStore, Item, OrStoreError};

fn key(source_id: &str, request_id: &str) -> Item {
    HashMap::from([("sourceId".to_string(), s(source_id)), ("requestId".to_string(), s(request_id))])
}

#[async_trait]
impl RequestRecorder for DynamoStore {
    async fn record_request(&self, e: &SourceRequest) -> Result<(), StoreError> {
        let mut item = key(&e.source_id, &e.id);
        item.insert("organizationId".into(), s(&e.organization_id));
        item.insert("receivedAt".into(), s(&e.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        item.insert("method".into(), s(&e.method));
        item.insert("outcome".into(), s(e.outcome.name()));
        item.insert("status".into(), n(i64::from(e.status)));
        item.insert("size".into(), n(e.size as i64));
        item.insert("expiresAt".into(), n(e.expires_at));
        for (name, value) in [("reason", &e.reason), ("eventType", &e.event_type), ("archiveKey", &e.archive_key)] {
            if let Some(v) = value {
                item.insert(name.into(), s(v));
            }
        }
        if let Some(id) = e.event_id {
            item.insert("eventId".into(), s(&id.to_string()));
        }
        self.client.put_item().table_name(&self.tables.requests).set_item(Some(item)).send().await.or_store("dynamodb:PutItem")?;
        Ok(())
    }
}

#[async_trait]
impl RequestLog for DynamoStore {
    async fn list_requests(&self, q: &RequestQuery) -> Result<(Vec<SourceRequest>, Option<String>), StoreError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.tables.requests)
            .key_condition_expression("sourceId = :src")
            .expression_attribute_values(":src", s(&q.source_id))
            .expression_attribute_values(":now", n(q.now))
            .scan_index_forward(false)
            .limit(q.limit.clamp(1, 100) as i32);
        // Lapsed entries are hidden whether or not TTL has removed them yet.
        let mut filter = "expiresAt > :now".to_string();
        if let Some(outcome) = q.outcome {
            filter.push_str(" AND outcome = :outcome");
            req = req.expression_attribute_values(":outcome", s(outcome.name()));
        }
        req = req.filter_expression(filter);
        if let Some(cursor) = &q.cursor {
            // The cursor is the last request id of the previous page: ids are public and ordered.
            if !cursor.starts_with(relay_core::model::request::REQUEST_PREFIX) {
                return Err(StoreError::new("cursor", "not a cursor this API issued"));
            }
            req = req.set_exclusive_start_key(Some(key(&q.source_id, cursor)));
        }
        let out = req.send().await.or_store("dynamodb:Query")?;
        let entries = out.items().iter().filter_map(entry).collect();
        let next = out.last_evaluated_key.as_ref().and_then(|k| get_s(k, "requestId").map(str::to_string));
        Ok((entries, next))
    }

    async fn get_request(&self, source_id: &str, id: &str, now: i64) -> Result<Option<SourceRequest>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.requests)
            .set_key(Some(key(source_id, id)))
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        Ok(out.item.as_ref().and_then(entry).filter(|e| e.expires_at > now))
    }
}

fn entry(item: &Item) -> Option<SourceRequest> {
    let text = |name: &str| get_s(item, name).map(str::to_string);
    Some(SourceRequest {
        id: text("requestId")?,
        source_id: text("sourceId")?,
        organization_id: text("organizationId").unwrap_or_default(),
        received_at: get_time(item, "receivedAt"),
        method: text("method").unwrap_or_default(),
        outcome: RequestOutcome::parse(get_s(item, "outcome")?)?,
        status: get_n(item, "status").unwrap_or(0) as u16,
        reason: text("reason"),
        event_id: get_s(item, "eventId").and_then(|v| v.parse().ok()),
        event_type: text("eventType"),
        size: get_n(item, "size").unwrap_or(0) as u64,
        archive_key: text("archiveKey"),
        expires_at: get_n(item, "expiresAt").unwrap_or(0),
    })
}
