//! Exactly-once ingest: validate, lock the idempotency key, store the event record, publish,
//! complete. Written against the ports only, so the same code runs in Lambda, in the
//! local stack and in microsecond unit tests.
//!
//! AWS requests for one event with an `Idempotency-Key`: the lock's conditional write, the event
//! record's, one PutEvents, one completion write (issue 14: two single writes cost a third of the
//! transaction they replaced). A batch shares the lock and the completion, writes each record
//! with its own condition (25 at a time) and packs bus entries ten to a PutEvents.
//!
//! Failure rules: if storing or publishing fails, everything written for the request is
//! deleted again and the caller gets 503 with `Retry-After`, so a retry with the same key starts
//! clean and publishes once. (If even the deletion fails, what is left stays unpublished under
//! the request's lock until the lock lapses, and is rewritten by the retry after it.) If only the final completion write fails, the event is already on
//! the bus, so the caller still gets its 202; the lock then lapses at its in-progress expiry.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::idempotent::{Idempotency, RETRY_AFTER_SECS};
use crate::metrics::{self, Metric, Metrics};
use crate::model::envelope::EventEnvelope;
use crate::model::event::{DeliveryMarks, StoredEvent};
use crate::model::idempotency::{self, Record};
use crate::model::keys::ApiKey;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::reply::Reply;
use crate::model::validation::{validate_event, Defaults};
use crate::ports::{BlobWriter, EventPublisher, EventWriter, IdempotencyStore, WriteError};

/// Route names, part of the idempotency fingerprint.
pub const ROUTE_SINGLE: &str = "POST /v1/events";
pub const ROUTE_BATCH: &str = "POST /v1/events/batch";

#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// How long an idempotency key is remembered (days, not minutes).
    pub idempotency_ttl_secs: i64,
    /// How long the event store keeps events.
    pub retention_secs: i64,
    /// Serialized payloads larger than this travel through the blob store by reference.
    pub inline_payload_limit: usize,
    /// The most events one batch request may carry.
    pub max_batch: usize,
    /// How long an in-progress lock holds when the runtime gives no deadline.
    pub default_lock_ms: i64,
    /// Keys the event ids derived from idempotency keys (see [`idempotency::derived_event_id`]).
    pub event_id_key: Vec<u8>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            idempotency_ttl_secs: 3 * 24 * 3600,
            retention_secs: 30 * 24 * 3600,
            inline_payload_limit: crate::model::envelope::DEFAULT_INLINE_PAYLOAD_LIMIT,
            max_batch: 100,
            default_lock_ms: 30_000,
            event_id_key: Vec::new(),
        }
    }
}

/// One request's context from the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub idempotency_key: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// The invocation deadline (epoch ms), if the runtime gave one: the in-progress lock expires then.
    pub deadline_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    event_id: Uuid,
    event_type: &'a str,
    received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemResult {
    index: usize,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<Problem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchAccepted {
    accepted: usize,
    rejected: usize,
    received_at: DateTime<Utc>,
    results: Vec<ItemResult>,
}

/// What ingest talks to, each built once per instance by the function (or in memory by a test).
#[derive(Clone)]
pub struct IngestPorts {
    /// Takes the idempotency lock and writes its events, undoing both on failure, so it must be
    /// the same store as `events` (one DynamoDB client serves both; one double in tests).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Events accepted without an idempotency key, and the undo of a failed request.
    pub events: Arc<dyn EventWriter>,
    pub publisher: Arc<dyn EventPublisher>,
    /// Payloads too large for the bus.
    pub blobs: Arc<dyn BlobWriter>,
    pub metrics: Arc<dyn Metrics>,
}

/// The ingest workflow over its ports.
pub struct Ingest {
    ports: IngestPorts,
    config: IngestConfig,
    idempotency: Idempotency,
}

impl Ingest {
    pub fn new(ports: IngestPorts, config: IngestConfig) -> Self {
        let idempotency = Idempotency {
            store: ports.idempotency.clone(),
            ttl_secs: config.idempotency_ttl_secs,
            default_lock_ms: config.default_lock_ms,
        };
        Self { ports, config, idempotency }
    }

    /// Counts what a request to either route came to. The HTTP edge calls it once per request,
    /// so refusals made before the workflow runs (auth, size, media type) count too. Accepted
    /// batch items are counted where the batch result is made.
    pub fn measure(&self, reply: &Reply, batch: bool) {
        let metric = match reply.status {
            _ if reply.replayed => metrics::IDEMPOTENT_REPLAYS,
            202 if !batch => metrics::EVENTS_ACCEPTED,
            503 => metrics::UNAVAILABLE,
            400..=499 => metrics::REQUESTS_REJECTED,
            _ => return,
        };
        self.ports.metrics.increment(&[], metric);
    }

    /// `POST /v1/events`: one event.
    pub async fn ingest_one(&self, caller: &ApiKey, body: &Value, ctx: RequestContext<'_>) -> Reply {
        let product = match publisher_product(caller) {
            Ok(p) => p,
            Err(p) => return p.into(),
        };
        let scoped = match scope(caller, ctx.idempotency_key) {
            Ok(s) => s,
            Err(p) => return p.into(),
        };
        let event_id = scoped.as_deref().map_or_else(Uuid::new_v4, |k| idempotency::derived_event_id(&self.config.event_id_key, k, 0));
        let defaults = Defaults { event_id, source_product: product, now: ctx.now };
        let envelope = match validate_event(body, &defaults) {
            Ok(e) => e,
            Err(errors) => return Problem::invalid_event(errors).into(),
        };
        if envelope.source_product != product {
            return wrong_product(product, &envelope.source_product).into();
        }
        if let Some(p) = not_owned(product, &envelope.event_type) {
            return p.into();
        }

        // The conditional lock write is the idempotency check: no read on the happy path.
        let lock = scoped.as_deref().map(|key| self.new_lock(key, idempotency::request_hash(ROUTE_SINGLE, body), ctx));

        let (envelope, blob) = self.offload_if_large(envelope);
        let stored = vec![self.stored(envelope, &scoped, ctx.now)];
        match self.write(lock.as_ref(), &stored, ctx).await {
            Ok(()) => {}
            Err(WriteError::EventIdsTaken(_)) => {
                return Problem::new(
                    ProblemKind::EventIdConflict,
                    format!(
                        "eventId {event} is already used by another request; omit eventId to have Relay assign one",
                        event = stored[0].envelope.event_id
                    ),
                )
                .into();
            }
            Err(WriteError::LockHeld) => return self.after_lost_race(lock.as_ref(), ctx).await,
            Err(WriteError::Store(e)) => {
                tracing::error!(error = %e, "storing the event failed");
                return Problem::unavailable("Relay could not store the event; retry with the same Idempotency-Key", RETRY_AFTER_SECS)
                    .into();
            }
        }

        let envelope = &stored[0].envelope;
        let published = match blob {
            Some((key, bytes)) => match self.ports.blobs.put_blob(&key, bytes, "application/json").await {
                Ok(()) => self.ports.publisher.publish(std::slice::from_ref(envelope)).await,
                Err(e) => vec![Err(crate::ports::PublishError(e.to_string()))],
            },
            None => self.ports.publisher.publish(std::slice::from_ref(envelope)).await,
        };
        if let Some(Err(e)) = published.into_iter().next() {
            tracing::error!(event_id = %envelope.event_id, error = %e, "publishing failed; releasing");
            self.undo(scoped.as_deref(), &[envelope.event_id]).await;
            return Problem::unavailable(
                "Relay could not publish the event; nothing was kept, retry with the same Idempotency-Key",
                RETRY_AFTER_SECS,
            )
            .into();
        }
        tracing::info!(event_id = %envelope.event_id, event_type = %envelope.event_type, correlation_id = envelope.correlation_id.as_deref().unwrap_or(""), "event accepted");

        let reply = Reply::json(202, &Accepted { event_id: envelope.event_id, event_type: &envelope.event_type, received_at: ctx.now });
        self.finish(scoped.as_deref(), &reply).await;
        reply
    }

    /// `POST /v1/events/batch`: `{"events": [...]}`, up to `max_batch`, a result per item.
    pub async fn ingest_batch(&self, caller: &ApiKey, body: &Value, ctx: RequestContext<'_>) -> Reply {
        let product = match publisher_product(caller) {
            Ok(p) => p,
            Err(p) => return p.into(),
        };
        let scoped = match scope(caller, ctx.idempotency_key) {
            Ok(s) => s,
            Err(p) => return p.into(),
        };
        // `{"events": [...]}` and nothing else: a field Relay would ignore is refused, never dropped.
        let events = body.as_object().filter(|o| o.keys().all(|k| k == "events")).and_then(|o| o.get("events"));
        let items = match events.and_then(Value::as_array) {
            Some(items) if !items.is_empty() && items.len() <= self.config.max_batch => items,
            Some(items) if items.len() > self.config.max_batch => {
                return Problem::new(
                    ProblemKind::InvalidRequest,
                    format!("a batch holds at most {} events; this one has {}", self.config.max_batch, items.len()),
                )
                .into();
            }
            _ => {
                return Problem::new(
                    ProblemKind::InvalidRequest,
                    format!("the body must be {{\"events\": [...]}} with 1 to {} events, and no other field", self.config.max_batch),
                )
                .into();
            }
        };

        let mut results: Vec<ItemResult> = Vec::with_capacity(items.len());
        let mut accepted: Vec<(usize, EventEnvelope)> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let event_id =
                scoped.as_deref().map_or_else(Uuid::new_v4, |k| idempotency::derived_event_id(&self.config.event_id_key, k, index));
            let defaults = Defaults { event_id, source_product: product, now: ctx.now };
            let outcome = match validate_event(item, &defaults) {
                Err(errors) => Err(Problem::invalid_event(errors)),
                Ok(e) if e.source_product != product => Err(wrong_product(product, &e.source_product)),
                Ok(e) => match not_owned(product, &e.event_type) {
                    Some(p) => Err(p),
                    None if accepted.iter().any(|(_, a)| a.event_id == e.event_id) => {
                        Err(Problem::new(ProblemKind::EventIdConflict, "this eventId appears twice in the batch"))
                    }
                    None => Ok(e),
                },
            };
            match outcome {
                Ok(e) => {
                    results.push(ItemResult {
                        index,
                        status: 202,
                        event_id: Some(e.event_id),
                        event_type: Some(e.event_type.clone()),
                        problem: None,
                    });
                    accepted.push((index, e));
                }
                Err(p) => results.push(ItemResult { index, status: p.status, event_id: None, event_type: None, problem: Some(p) }),
            }
        }

        // The conditional lock write is the idempotency check: no read on the happy path.
        let lock = scoped.as_deref().map(|key| self.new_lock(key, idempotency::request_hash(ROUTE_BATCH, body), ctx));

        let mut blobs = Vec::new();
        let mut stored = Vec::with_capacity(accepted.len());
        for (_, e) in accepted {
            let (e, blob) = self.offload_if_large(e);
            blobs.extend(blob);
            stored.push(self.stored(e, &scoped, ctx.now));
        }

        // Events whose ids belong to other requests are refused one by one; the rest go ahead.
        let mut written = false;
        for _attempt in 0..3 {
            match self.write(lock.as_ref(), &stored, ctx).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(WriteError::EventIdsTaken(taken)) => {
                    for r in results.iter_mut().filter(|r| r.event_id.is_some_and(|id| taken.contains(&id))) {
                        let p = Problem::new(ProblemKind::EventIdConflict, "this eventId is already used by another request");
                        *r = ItemResult { index: r.index, status: p.status, event_id: None, event_type: None, problem: Some(p) };
                    }
                    stored.retain(|s| !taken.contains(&s.envelope.event_id));
                }
                Err(WriteError::LockHeld) => return self.after_lost_race(lock.as_ref(), ctx).await,
                Err(WriteError::Store(e)) => {
                    tracing::error!(error = %e, "storing the batch failed");
                    return Problem::unavailable("Relay could not store the events; retry with the same Idempotency-Key", RETRY_AFTER_SECS)
                        .into();
                }
            }
        }

        if !written {
            return Problem::unavailable(
                "Relay could not store the events (event ids kept conflicting); retry with the same Idempotency-Key",
                RETRY_AFTER_SECS,
            )
            .into();
        }

        for (key, bytes) in blobs {
            if let Err(e) = self.ports.blobs.put_blob(&key, bytes, "application/json").await {
                tracing::error!(error = %e, "storing a large payload failed; releasing");
                let ids: Vec<Uuid> = stored.iter().map(|s| s.envelope.event_id).collect();
                self.undo(scoped.as_deref(), &ids).await;
                return Problem::unavailable(
                    "Relay could not store a large payload; nothing was kept, retry with the same Idempotency-Key",
                    RETRY_AFTER_SECS,
                )
                .into();
            }
        }

        let envelopes: Vec<EventEnvelope> = stored.iter().map(|s| s.envelope.clone()).collect();
        let outcomes = if envelopes.is_empty() { Vec::new() } else { self.ports.publisher.publish(&envelopes).await };
        let failed: Vec<Uuid> = envelopes.iter().zip(&outcomes).filter(|(_, o)| o.is_err()).map(|(e, _)| e.event_id).collect();
        if !envelopes.is_empty() && failed.len() == envelopes.len() {
            tracing::error!(count = failed.len(), "publishing the batch failed; releasing");
            self.undo(scoped.as_deref(), &failed).await;
            return Problem::unavailable(
                "Relay could not publish the events; nothing was kept, retry with the same Idempotency-Key",
                RETRY_AFTER_SECS,
            )
            .into();
        }
        if !failed.is_empty() {
            // Some entries made it to the bus and cannot be taken back: keep those, report the
            // rest as 503 so the client resubmits just them (under a new key).
            if let Err(e) = self.delete_events(&failed).await {
                tracing::error!(error = %e, "could not delete unpublished events");
            }
            for r in results.iter_mut().filter(|r| r.event_id.is_some_and(|id| failed.contains(&id))) {
                let p = Problem::unavailable("this event could not be published; resubmit it", RETRY_AFTER_SECS);
                *r = ItemResult { index: r.index, status: 503, event_id: None, event_type: None, problem: Some(p) };
            }
        }

        let accepted_count = results.iter().filter(|r| r.status == 202).count();
        let status = if accepted_count == results.len() { 202 } else { 207 };
        let batch = BatchAccepted { accepted: accepted_count, rejected: results.len() - accepted_count, received_at: ctx.now, results };
        tracing::info!(accepted = batch.accepted, rejected = batch.rejected, "batch ingested");
        self.ports.metrics.record(
            &[],
            &[Metric::count(metrics::EVENTS_ACCEPTED, batch.accepted), Metric::count(metrics::EVENTS_REJECTED, batch.rejected)],
        );
        let reply = Reply::json(status, &batch);
        match (&lock, accepted_count) {
            // Nothing was written under the lock: remove it so the key is free again.
            (Some(_), 0) => self.undo(scoped.as_deref(), &[]).await,
            _ => self.finish(scoped.as_deref(), &reply).await,
        }
        reply
    }

    fn new_lock(&self, key: &str, request_hash: String, ctx: RequestContext<'_>) -> Record {
        self.idempotency.new_lock(key, request_hash, ctx.now, ctx.deadline_ms)
    }

    async fn after_lost_race(&self, lock: Option<&Record>, ctx: RequestContext<'_>) -> Reply {
        match lock {
            Some(lock) => self.idempotency.after_lost_race(lock, ctx.now).await,
            None => Problem::new(ProblemKind::Internal, "lock conflict without a key").into(),
        }
    }

    fn stored(&self, envelope: EventEnvelope, scoped: &Option<String>, now: DateTime<Utc>) -> StoredEvent {
        StoredEvent {
            envelope,
            received_at: now,
            idempotency_key: scoped.clone(),
            expires_at: now.timestamp() + self.config.retention_secs,
            deliveries: DeliveryMarks::default(),
        }
    }

    /// Moves a payload over the inline limit to the blob store, leaving a reference behind.
    fn offload_if_large(&self, e: EventEnvelope) -> (EventEnvelope, Option<(String, Vec<u8>)>) {
        e.offload_if_large(self.config.inline_payload_limit, self.ports.blobs.bucket())
    }

    async fn write(&self, lock: Option<&Record>, events: &[StoredEvent], ctx: RequestContext<'_>) -> Result<(), WriteError> {
        match lock {
            Some(lock) => self.ports.idempotency.lock_and_store(lock, events, ctx.now.timestamp_millis()).await,
            None if events.is_empty() => Ok(()),
            None => self.ports.events.put_events(events).await,
        }
    }

    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), crate::ports::StoreError> {
        self.ports.events.delete_events(ids).await
    }

    /// Removes what a failed request wrote, so its retry starts clean.
    async fn undo(&self, key: Option<&str>, ids: &[Uuid]) {
        match key {
            Some(key) => self.idempotency.release(key, ids).await,
            None => {
                if let Err(e) = self.ports.events.delete_events(ids).await {
                    tracing::error!(error = %e, "could not release after a failure");
                }
            }
        }
    }

    async fn finish(&self, key: Option<&str>, reply: &Reply) {
        if let Some(key) = key {
            self.idempotency.finish(key, reply).await;
        }
    }
}

fn publisher_product(caller: &ApiKey) -> Result<&str, Problem> {
    crate::idempotent::product_of(caller, "publish events")
}

fn scope(caller: &ApiKey, key: Option<&str>) -> Result<Option<String>, Problem> {
    crate::idempotent::scope(&caller.principal(), key)
}

/// A catalogued event type is published by the product that owns it and by no other, so no
/// product can speak for another (nexus cannot announce a hire). Mail's events are not events
/// to publish: a request goes through `POST /v1/emails` (checked, logged, never stored with the
/// events), and what became of a mail is Relay's to announce.
fn not_owned(product: &str, event_type: &str) -> Option<Problem> {
    if event_type == crate::model::mail::EMAIL_REQUESTED {
        return Some(Problem::new(
            ProblemKind::Forbidden,
            "mail is sent with POST /v1/emails, which checks and logs it; not published as an event",
        ));
    }
    if event_type.starts_with("email.") {
        return Some(Problem::new(ProblemKind::Forbidden, format!("{event_type} is announced by Relay's mail path alone")));
    }
    crate::model::catalogue::lookup(event_type).filter(|entry| entry.product != product).map(|entry| {
        Problem::new(
            ProblemKind::Forbidden,
            format!("{event_type} is published by {} alone; this key publishes as {product:?}", entry.product),
        )
    })
}

fn wrong_product(key_product: &str, event_product: &str) -> Problem {
    Problem::new(
        ProblemKind::Forbidden,
        format!("this key publishes as {key_product:?} and may not publish events with sourceProduct {event_product:?}"),
    )
}
