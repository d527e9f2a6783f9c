//! The idempotency table's records: an idempotency lock and the events it accepts commit in one
//! transaction (the events' items are built in [`super::events`]), so a request is either wholly
//! accepted or not at all.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use relay_core::model::event::StoredEvent;
use relay_core::model::idempotency::{Record, Status, StoredResponse};
use relay_core::ports::{EventWriter, IdempotencyStore, StoreError, WriteError};
use uuid::Uuid;

use super::events::event_item;
use super::{conditional, get_n, get_s, key, n, s, DynamoStore, OrStoreError};

/// Actions per TransactWriteItems (service limit).
const MAX_TRANSACT_ITEMS: usize = 100;
/// Bytes per TransactWriteItems we aim to stay under (the service limit is 4 MB).
const MAX_TRANSACT_BYTES: usize = 3_500_000;

impl DynamoStore {
    /// Deletes one item of the idempotency table (a record, a webhook claim).
    pub(super) async fn delete_id(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.idempotency)
            .set_key(Some(key::id(id)))
            .send()
            .await
            .or_store("dynamodb:DeleteItem")?;
        Ok(())
    }

    fn event_put(&self, e: &StoredEvent) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder().table_name(&self.tables.events).set_item(Some(event_item(e)));
        // An event written without a key can never be rewritten. A keyed write may rewrite its
        // own event (a retry of the same request), and one that deliver kept from the bus for
        // the same product and organisation: the request that published it, retried after its
        // partial publish was undone. Never another product's or organisation's event.
        let put = match &e.idempotency_key {
            None => put.condition_expression("attribute_not_exists(eventId)"),
            Some(k) => put
                .condition_expression(
                    "attribute_not_exists(eventId) OR idempotencyKey = :ik \
                     OR (attribute_exists(observed) AND sourceProduct = :sp AND organizationId = :org)",
                )
                .expression_attribute_values(":ik", s(k))
                .expression_attribute_values(":sp", s(&e.envelope.source_product))
                .expression_attribute_values(":org", s(&e.envelope.organization_id)),
        };
        Ok(TransactWriteItem::builder().put(put.build().or_store("build Put")?).build())
    }

    fn lock_put(&self, lock: &Record, now_ms: i64) -> Result<TransactWriteItem, StoreError> {
        let mut item = key::id(&lock.key);
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
            .or_store("build Put")?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs conditional puts in as few transactions as the limits allow. `first` (the lock)
    /// rides in the first transaction; `ids[i]` names the event of `actions[i]`.
    pub(super) async fn transact(&self, first: Option<TransactWriteItem>, events: &[StoredEvent]) -> Result<(), WriteError> {
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
            // A lone put (one event, or a lock with no event: `POST /v1/emails`) needs no
            // transaction, which would cost twice the write units.
            let result = if actions.len() == 1 {
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
        let result = self
            .client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match conditional(result, "dynamodb:PutItem")? {
            Some(_) => Ok(()),
            None if ids.iter().all(Option::is_none) => Err(WriteError::LockHeld),
            None => Err(WriteError::EventIdsTaken(ids.iter().flatten().copied().collect())),
        }
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
            .set_key(Some(key::id(key)))
            .consistent_read(true)
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
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
            .set_key(Some(key::id(key)))
            .update_expression("SET #s = :c, responseStatus = :rs, responseBody = :rb")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":c", s("COMPLETED"))
            .expression_attribute_values(":rs", n(i64::from(response.status)))
            .expression_attribute_values(":rb", s(&response.body))
            .send()
            .await
            .or_store("dynamodb:UpdateItem")?;
        Ok(())
    }

    async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError> {
        // Events first: if this fails half-way the lock still stands and lapses on its own,
        // and a retry rewrites the same (derived) event ids.
        self.delete_events(event_ids).await?;
        self.delete_id(key).await
    }
}
