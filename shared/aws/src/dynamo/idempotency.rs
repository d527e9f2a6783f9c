//! The idempotency table's records. A request's lock is taken first, then its events are
//! written one conditional PutItem each (their items are built in [`super::events`]); if any
//! step fails, what this request wrote is deleted again, so it is wholly accepted or not at all.
//!
//! Why not one transaction, as before issue 14: DynamoDB bills a transactional write twice, so
//! the lock and a 1 KB event cost 6 write units together and 2 apart (the lock under 1 KB, the
//! event deflated under 1 KB: [`super::packed`]). Nothing needs them to land at the same
//! instant: the lock is taken before any event is written, no event is published before every
//! write succeeded, and a crash between the writes leaves an unpublished event under an
//! in-progress lock that lapses at its expiry; the retry then rewrites the same derived ids.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use relay_core::model::event::StoredEvent;
use relay_core::model::idempotency::{Record, Status, StoredResponse};
use relay_core::ports::{EventWriter, IdempotencyStore, StoreError, WriteError};
use uuid::Uuid;

use super::events::event_item;
use super::{conditional, get_n, get_s, key, n, s, DynamoStore, OrStoreError};

/// Event writes in flight at once: a batch of 100 takes a few round trips, not a hundred,
/// and stays well inside one partition's burst.
const PARALLEL_PUTS: usize = 25;

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

    fn event_put(&self, e: &StoredEvent) -> PutItemFluentBuilder {
        let put = self.client.put_item().table_name(&self.tables.events).set_item(Some(event_item(e)));
        // An event written without a key can never be rewritten. A keyed write may rewrite its
        // own event (a retry of the same request), and one that deliver kept from the bus for
        // the same product and organisation: the request that published it, retried after its
        // partial publish was undone. Never another product's or organisation's event.
        match &e.idempotency_key {
            None => put.condition_expression("attribute_not_exists(eventId)"),
            Some(k) => put
                .condition_expression(
                    "attribute_not_exists(eventId) OR idempotencyKey = :ik \
                     OR (attribute_exists(observed) AND sourceProduct = :sp AND organizationId = :org)",
                )
                .expression_attribute_values(":ik", s(k))
                .expression_attribute_values(":sp", s(&e.envelope.source_product))
                .expression_attribute_values(":org", s(&e.envelope.organization_id)),
        }
    }

    /// Takes `lock` with a conditional PutItem: free, expired, or an in-progress lock whose
    /// holder's deadline has passed.
    async fn take_lock(&self, lock: &Record, now_ms: i64) -> Result<(), WriteError> {
        let mut item = key::id(&lock.key);
        item.insert("status".into(), s("INPROGRESS"));
        item.insert("requestHash".into(), s(&lock.request_hash));
        item.insert("inProgressExpiry".into(), n(lock.in_progress_expiry_ms));
        item.insert("expiresAt".into(), n(lock.expires_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id) OR expiresAt <= :nows OR (#s = :inprogress AND inProgressExpiry <= :nowms)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":nows", n(now_ms / 1000))
            .expression_attribute_values(":nowms", n(now_ms))
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .send()
            .await;
        match conditional(result, "dynamodb:PutItem")? {
            Some(_) => Ok(()),
            None => Err(WriteError::LockHeld),
        }
    }

    /// Writes `events`, each with its own condition, [`PARALLEL_PUTS`] at a time. On any
    /// failure the ones written are deleted again and the failure returned: a store error
    /// first (the caller answers 503), else the ids other requests hold.
    pub(super) async fn put_each(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
        let mut written: Vec<Uuid> = Vec::with_capacity(events.len());
        let mut taken: Vec<Uuid> = Vec::new();
        let mut failure: Option<StoreError> = None;
        for chunk in events.chunks(PARALLEL_PUTS) {
            let puts =
                chunk.iter().map(|e| async move { (e.envelope.event_id, conditional(self.event_put(e).send().await, "dynamodb:PutItem")) });
            for (id, outcome) in futures::future::join_all(puts).await {
                match outcome {
                    Ok(Some(_)) => written.push(id),
                    Ok(None) => taken.push(id),
                    Err(e) => failure = Some(e),
                }
            }
            if failure.is_some() || !taken.is_empty() {
                break;
            }
        }
        if failure.is_none() && taken.is_empty() {
            return Ok(());
        }
        if !written.is_empty() {
            if let Err(e) = self.delete_events(&written).await {
                tracing::error!(error = %e, "could not undo a partial event write");
            }
        }
        Err(match failure {
            Some(e) => WriteError::Store(e),
            None => WriteError::EventIdsTaken(taken),
        })
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError> {
        self.take_lock(lock, now_ms).await?;
        if events.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.put_each(events).await {
            // The key is free again for the retry (the batch route retries at once without
            // the ids others hold). If this delete fails, the lock lapses at its expiry.
            if let Err(d) = self.delete_id(&lock.key).await {
                tracing::error!(error = %d, "could not release the idempotency lock after a failed write");
            }
            return Err(e);
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
