//! Keys, idempotency records and the event store on DynamoDB.
//!
//! Tables (template.yaml): the idempotency table (`id`), the events table (`eventId`, with a
//! by-organisation index) and the config table (`pk`/`sk`, single-table: keys now, subscriptions
//! and sources later). `expiresAt` is each table's TTL attribute; expiry is always decided from
//! the timestamps, since TTL deletes late (and never, in the emulator).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, Put, TransactWriteItem, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use relay_core::delivery::{Attempt, ClaimResult, DeliveryRecord, FollowUp, PairStatus, State};
use relay_core::envelope::EventEnvelope;
use relay_core::idempotency::{Record, Status, StoredResponse};
use relay_core::keys::{ApiKey, KeyKind};
use relay_core::organization::Profile;
use relay_core::ports::{
    Claim, DedupeStore, EventStore, IdempotencyStore, KeyStore, SealedSource, SourceStore, StoreError, StoredEvent, WriteError,
};
use relay_core::ports::{DeliveryStore, EventQuery, OrganizationStore, RateLimiter, SubscriptionStore};
use relay_core::subscriptions::Subscription;
use uuid::Uuid;

/// Actions per TransactWriteItems (service limit).
const MAX_TRANSACT_ITEMS: usize = 100;
/// Bytes per TransactWriteItems we aim to stay under (the service limit is 4 MB).
const MAX_TRANSACT_BYTES: usize = 3_500_000;
/// Items per BatchWriteItem (service limit).
const MAX_BATCH_WRITE: usize = 25;

type Item = HashMap<String, AttributeValue>;

/// The table names, from the function's environment.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub idempotency: String,
    pub events: String,
    pub config: String,
    pub deliveries: String,
}

impl Tables {
    /// The names template.yaml hands every function.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config::required;
        Ok(Self {
            idempotency: required("RELAY_IDEMPOTENCY_TABLE")?,
            events: required("RELAY_EVENTS_TABLE")?,
            config: required("RELAY_CONFIG_TABLE")?,
            deliveries: required("RELAY_DELIVERIES_TABLE")?,
        })
    }
}

/// One client for the three tables; implements [`KeyStore`], [`IdempotencyStore`] and
/// [`EventStore`] so a lock and its events can share one transaction.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

impl DynamoStore {
    pub fn new(config: &aws_config::SdkConfig, tables: Tables) -> Self {
        Self { client: Client::new(config), tables }
    }

    fn event_put(&self, e: &StoredEvent) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.tables.events)
            .set_item(Some(event_item(e)))
            .condition_expression("attribute_not_exists(eventId) OR idempotencyKey = :ik");
        // A record written without a key can never be rewritten: compare with a value no key has.
        put = put.expression_attribute_values(":ik", s(e.idempotency_key.as_deref().unwrap_or("\u{0}")));
        Ok(TransactWriteItem::builder().put(put.build().map_err(|e| StoreError::new("build Put", e))?).build())
    }

    fn lock_put(&self, lock: &Record, now_ms: i64) -> Result<TransactWriteItem, StoreError> {
        let mut item = Item::new();
        item.insert("id".into(), s(&lock.key));
        item.insert("status".into(), s("INPROGRESS"));
        item.insert("requestHash".into(), s(&lock.request_hash));
        item.insert("inProgressExpiry".into(), n(lock.in_progress_expiry_ms));
        item.insert("expiresAt".into(), n(lock.expires_at));
        let put = Put::builder()
            .table_name(&self.tables.idempotency)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id) OR expiresAt <= :nows OR (#s = :inprogress AND inProgressExpiry <= :nowms)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":nows", n(now_ms / 1000))
            .expression_attribute_values(":nowms", n(now_ms))
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .build()
            .map_err(|e| StoreError::new("build Put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs conditional puts in as few transactions as the limits allow. `first` (the lock)
    /// rides in the first transaction; `ids[i]` names the event of `actions[i]`.
    async fn transact(&self, first: Option<TransactWriteItem>, events: &[StoredEvent]) -> Result<(), WriteError> {
        let mut chunks: Vec<(Vec<TransactWriteItem>, Vec<Option<Uuid>>)> = vec![(Vec::new(), Vec::new())];
        let mut bytes = 0usize;
        if let Some(lock) = first {
            chunks[0].0.push(lock);
            chunks[0].1.push(None);
        }
        for e in events {
            let size = e.envelope.to_json().len() + 256;
            let last = chunks.last_mut().map(|c| c.0.len()).unwrap_or(0);
            if last == MAX_TRANSACT_ITEMS || (last > 0 && bytes + size > MAX_TRANSACT_BYTES) {
                chunks.push((Vec::new(), Vec::new()));
                bytes = 0;
            }
            bytes += size;
            if let Some(c) = chunks.last_mut() {
                c.0.push(self.event_put(e)?);
                c.1.push(Some(e.envelope.event_id));
            }
        }
        let mut written: Vec<Uuid> = Vec::new();
        for (actions, ids) in chunks.into_iter().filter(|c| !c.0.is_empty()) {
            let result = if actions.len() == 1 && ids[0].is_some() {
                self.single_put(actions, &ids).await
            } else {
                self.client.transact_write_items().set_transact_items(Some(actions)).send().await.map(|_| ()).map_err(|e| {
                    match e.into_service_error() {
                        TransactWriteItemsError::TransactionCanceledException(c) => {
                            let failed: Vec<Option<Uuid>> = c
                                .cancellation_reasons()
                                .iter()
                                .zip(&ids)
                                .filter(|(r, _)| r.code() == Some("ConditionalCheckFailed"))
                                .map(|(_, id)| *id)
                                .collect();
                            if failed.iter().any(Option::is_none) {
                                WriteError::LockHeld
                            } else if failed.is_empty() {
                                WriteError::Store(StoreError::new("dynamodb:TransactWriteItems", format!("cancelled: {c}")))
                            } else {
                                WriteError::EventIdsTaken(failed.into_iter().flatten().collect())
                            }
                        }
                        other => WriteError::Store(StoreError::new("dynamodb:TransactWriteItems", DisplayErrorContext(other))),
                    }
                })
            };
            if let Err(err) = result {
                // Later chunks never ran; undo the earlier ones so nothing is half-written.
                if !written.is_empty() {
                    if let Err(e) = self.delete_events(&written).await {
                        tracing::error!(error = %e, "could not undo a partial event write");
                    }
                }
                return Err(err);
            }
            written.extend(ids.into_iter().flatten());
        }
        Ok(())
    }

    /// One event without a lock: a plain conditional PutItem is cheaper than a transaction.
    async fn single_put(&self, mut actions: Vec<TransactWriteItem>, ids: &[Option<Uuid>]) -> Result<(), WriteError> {
        let Some(put) = actions.pop().and_then(|a| a.put) else {
            return Ok(());
        };
        self.client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.into_service_error() {
                err if err.is_conditional_check_failed_exception() => WriteError::EventIdsTaken(ids.iter().flatten().copied().collect()),
                other => WriteError::Store(StoreError::new("dynamodb:PutItem", DisplayErrorContext(other))),
            })
    }

    /// Writes a config item and its organisation index item (`ORG#<org>` / ...) in one
    /// transaction, so a listing never shows what a lookup cannot find, or the reverse.
    async fn put_config_pair(&self, item: Item, index: Item) -> Result<(), StoreError> {
        let put = |i: Item| {
            Put::builder().table_name(&self.tables.config).set_item(Some(i)).build().map(|p| TransactWriteItem::builder().put(p).build())
        };
        let puts = vec![put(item).map_err(|e| StoreError::new("build Put", e))?, put(index).map_err(|e| StoreError::new("build Put", e))?];
        self.client
            .transact_write_items()
            .set_transact_items(Some(puts))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:TransactWriteItems", DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Runs `items` as one transaction. `Ok(false)`: a condition failed and nothing was written.
    /// A transaction cancelled for another reason (a conflict with a concurrent one, throttling)
    /// is an error the caller retries, not a failed condition.
    async fn conditional_transaction(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Ok(false)
                }
                _ => Err(StoreError::new("dynamodb:TransactWriteItems", DisplayErrorContext(e))),
            },
        }
    }

    async fn batch_delete(&self, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(MAX_BATCH_WRITE) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder().set_key(Some(k.clone())).build().map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::new("build DeleteRequest", e))?;
            for _ in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|e| StoreError::new("dynamodb:BatchWriteItem", DisplayErrorContext(e)))?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError::new("dynamodb:BatchWriteItem", "items left unprocessed"));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.config)
            .key("pk", s(&format!("KEY#{key_hash}")))
            .key("sk", s("KEY"))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let kind = match get_s(&item, "kind") {
            Some("product") => KeyKind::Product,
            Some("organization") => KeyKind::Organization,
            Some("admin") => KeyKind::Admin,
            _ => return Ok(None),
        };
        Ok(Some(ApiKey {
            kind,
            product: get_s(&item, "product").map(str::to_string),
            organization_id: get_s(&item, "organizationId").map(str::to_string),
            name: get_s(&item, "name").unwrap_or_default().to_string(),
            created_at: get_s(&item, "createdAt").and_then(|t| t.parse().ok()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            disabled: matches!(item.get("disabled"), Some(AttributeValue::Bool(true))),
        }))
    }

    async fn put_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        let kind = match key.kind {
            KeyKind::Product => "product",
            KeyKind::Organization => "organization",
            KeyKind::Admin => "admin",
        };
        let mut req = self
            .client
            .put_item()
            .table_name(&self.tables.config)
            .item("pk", s(&format!("KEY#{key_hash}")))
            .item("sk", s("KEY"))
            .item("kind", s(kind))
            .item("name", s(&key.name))
            .item("createdAt", s(&key.created_at.to_rfc3339()))
            .item("disabled", AttributeValue::Bool(key.disabled));
        if let Some(p) = &key.product {
            req = req.item("product", s(p));
        }
        if let Some(o) = &key.organization_id {
            req = req.item("organizationId", s(o));
        }
        req.send().await.map_err(|e| StoreError::new("dynamodb:PutItem", DisplayErrorContext(e)))?;
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError> {
        let lock_put = self.lock_put(lock, now_ms)?;
        self.transact(Some(lock_put), events).await
    }

    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.idempotency)
            .key("id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let status = if get_s(&item, "status") == Some("COMPLETED") { Status::Completed } else { Status::Inprogress };
        let response = match (get_n(&item, "responseStatus"), get_s(&item, "responseBody")) {
            (Some(code), Some(body)) => Some(StoredResponse { status: code as u16, body: body.to_string() }),
            _ => None,
        };
        Ok(Some(Record {
            key: key.to_string(),
            status,
            request_hash: get_s(&item, "requestHash").unwrap_or_default().to_string(),
            in_progress_expiry_ms: get_n(&item, "inProgressExpiry").unwrap_or(0),
            expires_at: get_n(&item, "expiresAt").unwrap_or(0),
            response,
        }))
    }

    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.idempotency)
            .key("id", s(key))
            .update_expression("SET #s = :c, responseStatus = :rs, responseBody = :rb")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":c", s("COMPLETED"))
            .expression_attribute_values(":rs", n(i64::from(response.status)))
            .expression_attribute_values(":rb", s(&response.body))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:UpdateItem", DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError> {
        // Events first: if this fails half-way the lock still stands and lapses on its own,
        // and a retry rewrites the same (derived) event ids.
        self.delete_events(event_ids).await?;
        self.client
            .delete_item()
            .table_name(&self.tables.idempotency)
            .key("id", s(key))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:DeleteItem", DisplayErrorContext(e)))?;
        Ok(())
    }
}

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
        if let Some(t) = &q.event_type {
            req = req.filter_expression("eventType = :t").expression_attribute_values(":t", s(t));
        }
        if let Some(cursor) = &q.cursor {
            // The cursor is the index position a page stopped at (eventId#receivedAt), base64url.
            let bad = || StoreError::new("cursor", "not a cursor this API issued");
            let text = String::from_utf8(base64_url_decode(cursor).ok_or_else(bad)?).map_err(|_| bad())?;
            let (id, received) = text.split_once('#').ok_or_else(bad)?;
            req = req
                .exclusive_start_key("eventId", s(id))
                .exclusive_start_key("organizationId", s(&q.organization_id))
                .exclusive_start_key("orgReceived", s(&format!("{received}#{id}")));
        }
        let out = req.send().await.map_err(|e| StoreError::new("dynamodb:Query", DisplayErrorContext(e)))?;
        let mut events = Vec::new();
        for item in out.items() {
            if let Some(e) = get_s(item, "envelope").and_then(|e| serde_json::from_str::<EventEnvelope>(e).ok()) {
                events.push(StoredEvent {
                    envelope: e,
                    received_at: get_s(item, "receivedAt").and_then(|t| t.parse().ok()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                    idempotency_key: None,
                    expires_at: get_n(item, "expiresAt").unwrap_or(0),
                });
            }
        }
        let next = out.last_evaluated_key.as_ref().and_then(|k| {
            let id = get_s(k, "eventId")?;
            let received = get_s(k, "orgReceived")?.rsplit_once('#')?.0;
            Some(base64_url_encode(format!("{id}#{received}").as_bytes()))
        });
        Ok((events, next))
    }

    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
        self.transact(None, events).await
    }

    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let keys = ids.iter().map(|id| Item::from([("eventId".to_string(), s(&id.to_string()))])).collect();
        self.batch_delete(&self.tables.events, keys).await
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.events)
            .key("eventId", s(&id.to_string()))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let envelope: EventEnvelope =
            serde_json::from_str(get_s(&item, "envelope").unwrap_or_default()).map_err(|e| StoreError::new("decode stored event", e))?;
        Ok(Some(StoredEvent {
            envelope,
            received_at: get_s(&item, "receivedAt").and_then(|t| t.parse().ok()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            idempotency_key: get_s(&item, "idempotencyKey").map(str::to_string),
            expires_at: get_n(&item, "expiresAt").unwrap_or(0),
        }))
    }
}

/// Sources live in the config table twice: `SOURCE#<id>` (looked up by webhook-receive) and an
/// index item `ORG#<org>` / `SOURCE#<id>` (listed by the management API), written together.
#[async_trait]
impl SourceStore for DynamoStore {
    async fn put_source(&self, src: &SealedSource) -> Result<(), StoreError> {
        let mut item = source_item(src);
        item.insert("pk".into(), s(&format!("SOURCE#{}", src.id)));
        item.insert("sk".into(), s("SOURCE"));
        let mut index = source_item(src);
        index.insert("pk".into(), s(&format!("ORG#{}", src.organization_id)));
        index.insert("sk".into(), s(&format!("SOURCE#{}", src.id)));
        self.put_config_pair(item, index).await
    }

    async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.config)
            .key("pk", s(&format!("SOURCE#{id}")))
            .key("sk", s("SOURCE"))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        Ok(out.item.as_ref().and_then(read_source))
    }

    async fn list_sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.config)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&format!("ORG#{organization_id}")))
                .expression_attribute_values(":prefix", s("SOURCE#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::new("dynamodb:Query", DisplayErrorContext(e)))?;
            out.extend(page.items().iter().filter_map(read_source));
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn delete_source(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let main = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.config)
            .key("pk", s(&format!("SOURCE#{id}")))
            .key("sk", s("SOURCE"))
            .condition_expression("organizationId = :org")
            .expression_attribute_values(":org", s(organization_id))
            .build()
            .map_err(|e| StoreError::new("build Delete", e))?;
        let index = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.config)
            .key("pk", s(&format!("ORG#{organization_id}")))
            .key("sk", s(&format!("SOURCE#{id}")))
            .build()
            .map_err(|e| StoreError::new("build Delete", e))?;
        // `false`: the condition failed, no such source in this organisation; nothing was deleted.
        self.conditional_transaction(vec![
            TransactWriteItem::builder().delete(main).build(),
            TransactWriteItem::builder().delete(index).build(),
        ])
        .await
    }
}

/// A subscription document; its version is the item's (older items have none: version 0).
fn read_subscription(item: &Item) -> Option<Subscription> {
    let mut sub: Subscription = serde_json::from_str(get_s(item, "doc")?).ok()?;
    sub.version = get_n(item, "version").unwrap_or(0) as u64;
    Some(sub)
}

fn source_item(src: &SealedSource) -> Item {
    let mut item = Item::new();
    item.insert("id".into(), s(&src.id));
    item.insert("organizationId".into(), s(&src.organization_id));
    item.insert("provider".into(), s(&src.provider));
    item.insert("sealedSecret".into(), s(&src.sealed_secret));
    item.insert("options".into(), s(&src.options));
    item.insert("createdAt".into(), s(&src.created_at.to_rfc3339()));
    if let Some(d) = &src.description {
        item.insert("description".into(), s(d));
    }
    item
}

fn read_source(item: &Item) -> Option<SealedSource> {
    Some(SealedSource {
        id: get_s(item, "id")?.to_string(),
        organization_id: get_s(item, "organizationId")?.to_string(),
        provider: get_s(item, "provider")?.to_string(),
        sealed_secret: get_s(item, "sealedSecret")?.to_string(),
        options: get_s(item, "options").unwrap_or("{}").to_string(),
        description: get_s(item, "description").map(str::to_string),
        created_at: get_s(item, "createdAt").and_then(|t| t.parse().ok()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
    })
}

/// Subscriptions in the config table, as JSON documents (secrets sealed): `SUB#<id>` for lookup
/// and `ORG#<org>` / `SUB#<id>` for listing, written together. Integrations are organisation `*`.
#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn put_subscription(&self, sub: &Subscription, expected: Option<u64>) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(sub).map_err(|e| StoreError::new("encode subscription", e))?;
        let item = |pk: String, sk: String| {
            Item::from([
                ("pk".to_string(), s(&pk)),
                ("sk".to_string(), s(&sk)),
                ("doc".to_string(), s(&doc)),
                ("version".to_string(), n(sub.version as i64)),
            ])
        };
        // The lookup item carries the version; the write goes through only over the version the
        // caller read (or, for a new one, only if none exists), so no change is lost and a deleted
        // subscription is never written back. The listing item moves with it.
        let main = Put::builder().table_name(&self.tables.config).set_item(Some(item(format!("SUB#{}", sub.id), "SUB".into())));
        let main = match expected {
            None => main.condition_expression("attribute_not_exists(pk)"),
            // Items written before versions existed have none: version 0 means "still without one".
            Some(0) => main.condition_expression("attribute_exists(pk) AND attribute_not_exists(version)"),
            Some(v) => main.condition_expression("version = :v").expression_attribute_values(":v", n(v as i64)),
        }
        .build()
        .map_err(|e| StoreError::new("build Put", e))?;
        let index = Put::builder()
            .table_name(&self.tables.config)
            .set_item(Some(item(format!("ORG#{}", sub.organization_id), format!("SUB#{}", sub.id))))
            .build()
            .map_err(|e| StoreError::new("build Put", e))?;
        self.conditional_transaction(vec![TransactWriteItem::builder().put(main).build(), TransactWriteItem::builder().put(index).build()])
            .await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.config)
            .key("pk", s(&format!("SUB#{id}")))
            .key("sk", s("SUB"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        Ok(out.item.as_ref().and_then(read_subscription))
    }

    async fn list_subscriptions(&self, organization_id: &str) -> Result<Vec<Subscription>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.config)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&format!("ORG#{organization_id}")))
                .expression_attribute_values(":prefix", s("SUB#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::new("dynamodb:Query", DisplayErrorContext(e)))?;
            out.extend(page.items().iter().filter_map(read_subscription));
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(existing) = self.get_subscription(id).await? else { return Ok(false) };
        if existing.organization_id != organization_id {
            return Ok(false);
        }
        let delete = |pk: String, sk: String| {
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.tables.config)
                .key("pk", s(&pk))
                .key("sk", s(&sk))
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
        };
        let items = vec![
            delete(format!("SUB#{id}"), "SUB".into()).map_err(|e| StoreError::new("build Delete", e))?,
            delete(format!("ORG#{organization_id}"), format!("SUB#{id}")).map_err(|e| StoreError::new("build Delete", e))?,
        ];
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:TransactWriteItems", DisplayErrorContext(e)))?;
        Ok(true)
    }
}

/// Delivery state in the deliveries table: `SUB#<subscription>` per pair (state, lease, the
/// envelope for replays) and `ATTEMPT#<subscription>#<nnnn>` per attempt, under the event id.
#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn failed_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(EventEnvelope, u32)>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.deliveries)
                .index_name("bySubscription")
                .key_condition_expression("subscriptionId = :sub AND updatedAt >= :since")
                .filter_expression("#st = :failed")
                .expression_attribute_names("#st", "state")
                .expression_attribute_values(":sub", s(subscription_id))
                .expression_attribute_values(":since", s(&since.to_rfc3339()))
                .expression_attribute_values(":failed", s("failed"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::new("dynamodb:Query", DisplayErrorContext(e)))?;
            for item in page.items() {
                if let Some(e) = get_s(item, "envelope").and_then(|e| serde_json::from_str(e).ok()) {
                    out.push((e, get_n(item, "attemptNo").unwrap_or(1) as u32));
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn failing_since(&self, subscription_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.deliveries)
            .key("eventId", s(&format!("health:{subscription_id}")))
            .key("sk", s("HEALTH"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        Ok(out.item.as_ref().and_then(|i| get_s(i, "failingSince")).and_then(|t| t.parse().ok()))
    }

    async fn take_rate_slot(&self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        RateLimiter::take_rate_slot(self, key, limit, now).await
    }

    async fn claim(
        &self,
        event: &EventEnvelope,
        subscription_id: &str,
        organization_id: &str,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<ClaimResult, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .key("eventId", s(&event.event_id.to_string()))
            .key("sk", s(&format!("SUB#{subscription_id}")))
            .update_expression("SET #st = :sending, leaseUntil = :lease, attemptNo = :n, organizationId = :org, subscriptionId = :sub, updatedAt = :now, envelope = if_not_exists(envelope, :env)")
            .condition_expression("attribute_not_exists(sk) OR (#st = :retrying AND attemptNo = :n) OR (#st = :sending AND leaseUntil <= :nowms)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":retrying", s("retrying"))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":n", n(i64::from(attempt)))
            .expression_attribute_values(":org", s(organization_id))
            .expression_attribute_values(":sub", s(subscription_id))
            .expression_attribute_values(":now", s(&Utc::now().to_rfc3339()))
            .expression_attribute_values(":nowms", n(now_ms))
            .expression_attribute_values(":env", s(&event.to_json()))
            .return_values_on_condition_check_failure(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimResult::Claimed),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => Ok(ClaimResult::Refused(c.item.as_ref().and_then(pair_status))),
                other => Err(StoreError::new("dynamodb:UpdateItem", DisplayErrorContext(other))),
            },
        }
    }

    async fn follow_up_sent(&self, event_id: Uuid, subscription_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.deliveries)
            .key("eventId", s(&event_id.to_string()))
            .key("sk", s(&format!("SUB#{subscription_id}")))
            .update_expression("REMOVE deadLetter, disablePending, retryPending")
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:UpdateItem", DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn record(
        &self,
        event_id: Uuid,
        subscription_id: &str,
        attempt: &Attempt,
        state: State,
        next_attempt: u32,
        follow_up: FollowUp,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(attempt).map_err(|e| StoreError::new("encode attempt", e))?;
        let put = Put::builder()
            .table_name(&self.tables.deliveries)
            .item("eventId", s(&event_id.to_string()))
            .item("sk", s(&format!("ATTEMPT#{subscription_id}#{:04}", attempt.number)))
            .item("doc", s(&doc))
            .build()
            .map_err(|e| StoreError::new("build Put", e))?;
        let state_text = serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.tables.deliveries)
            .key("eventId", s(&event_id.to_string()))
            .key("sk", s(&format!("SUB#{subscription_id}")))
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":state", s(&state_text))
            .expression_attribute_values(":next", n(i64::from(next_attempt)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(&attempt.at.to_rfc3339()));
        // The follow-up rides with the state (see DeliveryStore::record).
        let update = match follow_up {
            FollowUp::None => update
                .update_expression("SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now REMOVE retryAt, deadLetter, disablePending, retryPending"),
            FollowUp::RetryAt(at) => update
                .update_expression(
                    "SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now, retryAt = :at, retryPending = :pending REMOVE deadLetter, disablePending",
                )
                .expression_attribute_values(":at", n(at))
                .expression_attribute_values(":pending", s("pending")),
            FollowUp::DeadLetter => update
                .update_expression(
                    "SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now, deadLetter = :pending REMOVE retryAt, disablePending, retryPending",
                )
                .expression_attribute_values(":pending", s("pending")),
            FollowUp::Disable => update
                .update_expression("SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now, disablePending = :pending REMOVE retryAt, deadLetter, retryPending")
                .expression_attribute_values(":pending", s("pending")),
        }
        .build()
        .map_err(|e| StoreError::new("build Update", e))?;
        // The subscription's health rides in the same transaction: a success clears the
        // failing-since mark, a failure sets it if it is not set yet.
        let health = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.tables.deliveries)
            .key("eventId", s(&format!("health:{subscription_id}")))
            .key("sk", s("HEALTH"));
        let health = if state == State::Delivered {
            health.update_expression("REMOVE failingSince")
        } else {
            health
                .update_expression("SET failingSince = if_not_exists(failingSince, :now)")
                .expression_attribute_values(":now", s(&attempt.at.to_rfc3339()))
        }
        .build()
        .map_err(|e| StoreError::new("build Update", e))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().update(health).build())
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:TransactWriteItems", DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn deliveries(&self, event_id: Uuid) -> Result<Vec<DeliveryRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .key_condition_expression("eventId = :id")
            .expression_attribute_values(":id", s(&event_id.to_string()))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:Query", DisplayErrorContext(e)))?;
        let mut records: Vec<DeliveryRecord> = Vec::new();
        let mut attempts: Vec<(String, Attempt)> = Vec::new();
        for item in out.items() {
            let sk = get_s(item, "sk").unwrap_or_default();
            if let Some(sub) = sk.strip_prefix("SUB#") {
                let state = get_s(item, "state")
                    .and_then(|v| serde_json::from_value(serde_json::Value::String(v.to_string())).ok())
                    .unwrap_or(State::Sending);
                records.push(DeliveryRecord {
                    subscription_id: sub.to_string(),
                    organization_id: get_s(item, "organizationId").unwrap_or_default().to_string(),
                    state,
                    attempts: Vec::new(),
                    updated_at: get_s(item, "updatedAt").and_then(|t| t.parse().ok()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                });
            } else if let Some(rest) = sk.strip_prefix("ATTEMPT#") {
                let sub = rest.rsplit_once('#').map(|(s, _)| s.to_string()).unwrap_or_default();
                if let Some(a) = get_s(item, "doc").and_then(|d| serde_json::from_str(d).ok()) {
                    attempts.push((sub, a));
                }
            }
        }
        for (sub, a) in attempts {
            if let Some(r) = records.iter_mut().find(|r| r.subscription_id == sub) {
                r.attempts.push(a);
            }
        }
        Ok(records)
    }

    /// The envelope a delivery was made from (events put on the bus directly are not in the
    /// event store, but every delivered pair keeps its envelope).
    async fn delivered_envelope(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .key_condition_expression("eventId = :id AND begins_with(sk, :p)")
            .expression_attribute_values(":id", s(&event_id.to_string()))
            .expression_attribute_values(":p", s("SUB#"))
            .limit(1)
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:Query", DisplayErrorContext(e)))?;
        Ok(out.items().first().and_then(|i| get_s(i, "envelope")).and_then(|e| serde_json::from_str(e).ok()))
    }

    async fn reopen(
        &self,
        event_id: Uuid,
        subscription_id: &str,
        organization_id: &str,
        attempt: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .key("eventId", s(&event_id.to_string()))
            .key("sk", s(&format!("SUB#{subscription_id}")))
            .update_expression(
                "SET #st = :retrying, attemptNo = :n, leaseUntil = :zero, organizationId = :org, subscriptionId = :sub, updatedAt = :now, retryAt = :nowms REMOVE deadLetter, disablePending, retryPending",
            )
            .condition_expression("attribute_not_exists(sk) OR NOT (#st = :sending AND leaseUntil > :nowms)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":retrying", s("retrying"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":n", n(i64::from(attempt)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":org", s(organization_id))
            .expression_attribute_values(":sub", s(subscription_id))
            .expression_attribute_values(":now", s(&Utc::now().to_rfc3339()))
            .expression_attribute_values(":nowms", n(now_ms))
            .send()
            .await;
        conditional_update(result)
    }
}

/// Rate slots: `rate:<key>#<second>` counters in the idempotency table (they expire in minutes).
#[async_trait]
impl RateLimiter for DynamoStore {
    async fn take_rate_slot(&self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.idempotency)
            .key("id", s(&format!("rate:{key}#{}", now.timestamp())))
            .update_expression("ADD used :one SET expiresAt = :exp")
            .condition_expression("attribute_not_exists(used) OR used < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":exp", n(now.timestamp() + 120))
            .send()
            .await;
        conditional_update(result)
    }
}

/// The organisation profile: `ORG#<org>` / `PROFILE` in the config table; the verified
/// `contactEmail` as an attribute, a pending address (with its code's digest) as JSON.
#[async_trait]
impl OrganizationStore for DynamoStore {
    async fn profile(&self, organization_id: &str) -> Result<Profile, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.config)
            .key("pk", s(&format!("ORG#{organization_id}")))
            .key("sk", s("PROFILE"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:GetItem", DisplayErrorContext(e)))?;
        let Some(item) = out.item else { return Ok(Profile::default()) };
        Ok(Profile {
            // Only `verifiedContact`: a `contactEmail` written before verification existed was
            // never verified, so it is not used.
            contact_email: get_s(&item, "verifiedContact").map(str::to_string),
            pending: get_s(&item, "pending").and_then(|p| serde_json::from_str(p).ok()),
        })
    }

    async fn put_profile(&self, organization_id: &str, profile: &Profile) -> Result<(), StoreError> {
        let mut item = Item::from([("pk".to_string(), s(&format!("ORG#{organization_id}"))), ("sk".to_string(), s("PROFILE"))]);
        if let Some(c) = &profile.contact_email {
            item.insert("verifiedContact".into(), s(c));
        }
        if let Some(p) = &profile.pending {
            item.insert("pending".into(), s(&serde_json::to_string(p).map_err(|e| StoreError::new("encode profile", e))?));
        }
        self.client
            .put_item()
            .table_name(&self.tables.config)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:PutItem", DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// Delivery claims share the idempotency table (`id` = `webhook:<source>#<delivery>`).
#[async_trait]
impl DedupeStore for DynamoStore {
    async fn claim(&self, key: &str, hold_until_ms: i64, expires_at: i64, now_ms: i64) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .item("id", s(key))
            .item("holdUntil", n(hold_until_ms))
            .item("expiresAt", n(expires_at))
            .condition_expression("attribute_not_exists(id) OR expiresAt <= :nows OR holdUntil <= :nowms")
            .expression_attribute_values(":nows", n(now_ms / 1000))
            .expression_attribute_values(":nowms", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            // An old item that still counted means an earlier attempt's hold lapsed.
            Ok(out) => Ok(match out.attributes {
                Some(old) if get_n(&old, "expiresAt").is_some_and(|e| e * 1000 > now_ms) => Claim::Reclaimed,
                _ => Claim::Fresh,
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(Claim::Held),
            Err(e) => Err(StoreError::new("dynamodb:PutItem", DisplayErrorContext(e))),
        }
    }

    async fn forget(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.idempotency)
            .key("id", s(key))
            .send()
            .await
            .map_err(|e| StoreError::new("dynamodb:DeleteItem", DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// A conditional UpdateItem's outcome: `false` when its condition failed (nothing written).
fn conditional_update(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(StoreError::new("dynamodb:UpdateItem", DisplayErrorContext(e))),
    }
}

/// A pair item's state, as a refused claim returns it.
fn pair_status(item: &Item) -> Option<PairStatus> {
    Some(PairStatus {
        state: serde_json::from_value(serde_json::Value::String(get_s(item, "state")?.to_string())).ok()?,
        attempt_no: get_n(item, "attemptNo").unwrap_or(1) as u32,
        retry_at_ms: get_n(item, "retryAt"),
        dead_letter_pending: get_s(item, "deadLetter") == Some("pending"),
        disable_pending: get_s(item, "disablePending") == Some("pending"),
        retry_pending: get_s(item, "retryPending") == Some("pending"),
        updated_at: get_s(item, "updatedAt").and_then(|t| t.parse().ok()),
    })
}

/// The events-table item: the envelope verbatim plus the attributes its indexes use.
fn event_item(e: &StoredEvent) -> Item {
    let env = &e.envelope;
    let received = e.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut item = Item::new();
    item.insert("eventId".into(), s(&env.event_id.to_string()));
    item.insert("organizationId".into(), s(&env.organization_id));
    item.insert("eventType".into(), s(&env.event_type));
    item.insert("sourceProduct".into(), s(&env.source_product));
    item.insert("receivedAt".into(), s(&received));
    item.insert("orgReceived".into(), s(&format!("{received}#{}", env.event_id)));
    item.insert("envelope".into(), s(&env.to_json()));
    item.insert("expiresAt".into(), n(e.expires_at));
    if let Some(k) = &e.idempotency_key {
        item.insert("idempotencyKey".into(), s(k));
    }
    item
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64_url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}
