//! The idempotency table's records. A request's lock is taken first, then its events are
//! written one conditional PutItem each (their items are built in [`super::events`]); if a
//! write fails, what this request wrote is undone (each replaced item put back, each new one
//! deleted) and the lock released, so the retry starts clean. A crash or a failed undo leaves
//! unpublished writes under an in-progress lock that lapses at its expiry; the retry then
//! rewrites the same derived ids.
//!
//! Why not one transaction, as before issue 14: DynamoDB bills a transactional write twice, so
//! the lock and a 1 KB event cost 6 write units together and 2 apart (the lock under 1 KB, the
//! event deflated under 1 KB: [`super::packed`]). Nothing needs them to land at the same
//! instant: the lock is taken before any event is written, and no event is published before
//! every write succeeded.
//!
//! What the transaction gave for free and single writes must do by hand: a transaction's SDK
//! retry carries a client token, so a retry of one that landed is harmless. A retried PutItem
//! that landed fails its own condition instead; so each failed condition returns the item that
//! stands, and one that is exactly what this request wrote (the lock carries a token unique to
//! the attempt) counts as written.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use relay_core::model::event::StoredEvent;
use relay_core::model::idempotency::{Record, Status, StoredResponse};
use relay_core::ports::{EventWriter, IdempotencyStore, StoreError, WriteError};
use uuid::Uuid;

use super::events::event_item;
use super::{get_n, get_s, key, n, s, DynamoStore, Item, OrStoreError};

/// Event writes in flight at once: a batch of 100 takes a few round trips, not a hundred,
/// and stays well inside one partition's burst.
const PARALLEL_PUTS: usize = 25;

/// Writing events failed: why, and whether what was written could be undone.
pub(super) struct Failed {
    pub error: WriteError,
    pub undone: bool,
}

/// A conditional put's outcome.
enum Put {
    /// Written; the item it replaced, if any (to put back on undo).
    Written(Option<Item>),
    /// The condition failed: another request's item stands.
    Refused,
}

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

    /// Puts `item` into `table` if `condition` holds (with its attribute `names` and `values`).
    /// A refusal whose standing item is `item` itself is this put landing on an earlier try (the
    /// SDK retried it): written.
    async fn put_if(
        &self,
        table: &str,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    ) -> Result<Put, StoreError> {
        let names: HashMap<String, String> = names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let result = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            // An item identical to this one is this put's own earlier landing (the SDK retried
            // it and the condition let the rewrite through): nothing of anyone else's replaced.
            Ok(out) => Ok(Put::Written(out.attributes.filter(|a| !a.is_empty() && *a != item))),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(c) if c.item.as_ref() == Some(&item) => Ok(Put::Written(None)),
                PutItemError::ConditionalCheckFailedException(_) => Ok(Put::Refused),
                other => Err(StoreError::new("dynamodb:PutItem", DisplayErrorContext(other))),
            },
        }
    }

    async fn put_event(&self, e: &StoredEvent) -> Result<Put, StoreError> {
        // An event written without a key can never be rewritten. A keyed write may rewrite its
        // own event (a retry of the same request), and one that deliver kept from the bus for
        // the same product and organisation: the request that published it, retried after its
        // partial publish was undone. Never another product's or organisation's event.
        let (condition, values) = match &e.idempotency_key {
            None => ("attribute_not_exists(eventId)", HashMap::new()),
            Some(k) => (
                "attribute_not_exists(eventId) OR idempotencyKey = :ik \
                 OR (attribute_exists(observed) AND sourceProduct = :sp AND organizationId = :org)",
                HashMap::from([
                    (":ik".to_string(), s(k)),
                    (":sp".to_string(), s(&e.envelope.source_product)),
                    (":org".to_string(), s(&e.envelope.organization_id)),
                ]),
            ),
        };
        self.put_if(&self.tables.events, event_item(e), condition, &[], values).await
    }

    /// Takes `lock` with a conditional PutItem (free, expired, or an in-progress lock whose
    /// holder's deadline has passed); the token it returns is this attempt's, on the lock.
    async fn take_lock(&self, lock: &Record, now_ms: i64) -> Result<String, WriteError> {
        let token = Uuid::new_v4().simple().to_string();
        let mut item = key::id(&lock.key);
        item.insert("status".into(), s("INPROGRESS"));
        item.insert("requestHash".into(), s(&lock.request_hash));
        item.insert("inProgressExpiry".into(), n(lock.in_progress_expiry_ms));
        item.insert("expiresAt".into(), n(lock.expires_at));
        item.insert("token".into(), s(&token));
        let condition = "attribute_not_exists(id) OR expiresAt <= :nows OR (#s = :inprogress AND inProgressExpiry <= :nowms)";
        let values = HashMap::from([
            (":nows".to_string(), n(now_ms / 1000)),
            (":nowms".to_string(), n(now_ms)),
            (":inprogress".to_string(), s("INPROGRESS")),
        ]);
        match self.put_if(&self.tables.idempotency, item, condition, &[("#s", "status")], values).await? {
            Put::Written(_) => Ok(token),
            Put::Refused => Err(WriteError::LockHeld),
        }
    }

    /// Gives back a lock this attempt took (and only that: another request may hold the key
    /// by now, if this one outlived its lock's expiry).
    async fn release_lock(&self, key: &str, token: &str) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.idempotency)
            .set_key(Some(key::id(key)))
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":t", s(token))
            .send()
            .await;
        if let Err(e) = super::conditional(result, "dynamodb:DeleteItem") {
            tracing::error!(error = %e, "could not release the idempotency lock after a failed write; it lapses at its expiry");
        }
    }

    /// Writes `events`, each with its own condition, [`PARALLEL_PUTS`] at a time. Every event
    /// is tried, so all the ids other requests hold are found in one pass (the batch route
    /// retries without them); a store error stops at once. On any failure what was written is
    /// undone and the failure returned: a store error first (the caller answers 503), else the
    /// ids other requests hold.
    pub(super) async fn put_each(&self, events: &[StoredEvent]) -> Result<(), Failed> {
        let mut written: Vec<(Uuid, Option<Item>)> = Vec::with_capacity(events.len());
        let mut taken: Vec<Uuid> = Vec::new();
        let mut failure: Option<StoreError> = None;
        for chunk in events.chunks(PARALLEL_PUTS) {
            let puts = chunk.iter().map(|e| async move { (e.envelope.event_id, self.put_event(e).await) });
            for (id, outcome) in futures::future::join_all(puts).await {
                match outcome {
                    Ok(Put::Written(replaced)) => written.push((id, replaced)),
                    Ok(Put::Refused) => taken.push(id),
                    Err(e) => failure = Some(e),
                }
            }
            if failure.is_some() {
                break;
            }
        }
        if failure.is_none() && taken.is_empty() {
            return Ok(());
        }
        let undone = match self.undo_puts(written).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not undo a partial event write");
                false
            }
        };
        Err(Failed {
            error: match failure {
                Some(e) => WriteError::Store(e),
                None => WriteError::EventIdsTaken(taken),
            },
            undone,
        })
    }

    /// Undoes event puts: an item that replaced another (deliver's copy from the bus, or the
    /// same key's event from before the key expired) gets the old one back; a new one goes.
    /// Every put-back is tried, then the deletes; the first failure is returned (a keyed
    /// request then keeps its lock, so the writes left stay under it until it lapses, for the
    /// retry to rewrite).
    async fn undo_puts(&self, written: Vec<(Uuid, Option<Item>)>) -> Result<(), StoreError> {
        let mut new = Vec::new();
        let mut failure = None;
        for (id, replaced) in written {
            match replaced {
                Some(old) => {
                    let put = self.client.put_item().table_name(&self.tables.events).set_item(Some(old)).send().await;
                    if let Err(e) = put.or_store("dynamodb:PutItem") {
                        failure.get_or_insert(e);
                    }
                }
                None => new.push(id),
            }
        }
        if let Err(e) = self.delete_events(&new).await {
            failure.get_or_insert(e);
        }
        failure.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError> {
        let token = self.take_lock(lock, now_ms).await?;
        if events.is_empty() {
            return Ok(());
        }
        if let Err(Failed { error, undone }) = self.put_each(events).await {
            // The key is free again for the retry (the batch route retries at once without
            // the ids others hold), unless writes could not be undone: those stay under the
            // lock until it lapses, and the retry rewrites them. That is an outage, answered
            // 503 (never "ids taken", whose retry would meet its own lock and answer 409).
            if !undone {
                return Err(match error {
                    WriteError::Store(e) => WriteError::Store(e),
                    _ => WriteError::Store(StoreError::new("undo", "events written for a refused request could not be removed")),
                });
            }
            self.release_lock(&lock.key, &token).await;
            return Err(error);
        }
        Ok(())
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
