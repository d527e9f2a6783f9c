//! The narrow traits the domain needs from the outside world. The AWS adapters (`relay-aws`)
//! implement them with the SDK; [`crate::memory`] implements them in memory for unit tests and
//! benchmarks. One trait per capability, so a handler asks only for what it uses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::envelope::EventEnvelope;
use crate::idempotency::{Record, StoredResponse};
use crate::keys::ApiKey;

/// A failure of the store itself (network, throttling, emulator down): retryable by the caller.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub message: String,
}

impl StoreError {
    pub fn new(operation: &'static str, err: impl std::fmt::Display) -> Self {
        Self { operation, message: err.to_string() }
    }
}

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

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// These event ids already belong to other requests; nothing was written.
    #[error("event ids already taken: {0:?}")]
    EventIdsTaken(Vec<Uuid>),
    /// The idempotency lock is held or completed by an earlier request; nothing was written.
    #[error("idempotency key already locked")]
    LockHeld,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Looks up API keys by hash and stores new ones.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn put_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError>;
}

/// Idempotency records, written together with the events they accept.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes the `INPROGRESS` lock `lock` and stores `events`, all or nothing: the put succeeds
    /// only if no live record holds the key (absent, expired, or an expired in-progress lock).
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError>;
    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError>;
    /// Marks the record `COMPLETED` with the response to replay.
    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Undoes `lock_and_store` after a failure: deletes the lock and the events, so a retry
    /// starts clean.
    async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError>;
}

/// The event store (retained for inspection and replay).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores events that came without an idempotency key; refuses ids that are taken.
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError>;
    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError>;
    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError>;
    /// The organisation's events, newest first, received in `[from, to]`, optionally of one type;
    /// `cursor` continues an earlier page. Returns the page and the next cursor.
    async fn list_events(&self, query: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError>;
}

/// A page request for [`EventStore::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub organization_id: String,
    pub event_type: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: u32,
}

/// Why one event was not published.
#[derive(Debug, Clone, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(pub String);

/// Puts events on the bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes every event, retrying partial failures itself; one outcome per event, in order.
    async fn publish(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>>;
}

/// Large objects: payloads too big to travel inline, raw webhooks, payslips.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// The bucket this store writes to (named in payload references).
    fn bucket(&self) -> &str;
    async fn put_blob(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError>;
    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError>;
}

/// A registered webhook source as stored: its secrets sealed (see [`crate::secrets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSource {
    pub id: String,
    pub organization_id: String,
    pub provider: String,
    pub sealed_secret: String,
    /// The options as JSON, with any signing secret sealed.
    pub options: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Webhook sources, by id and by organisation.
#[async_trait]
pub trait SourceStore: Send + Sync {
    async fn put_source(&self, source: &SealedSource) -> Result<(), StoreError>;
    async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError>;
    async fn list_sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, StoreError>;
    /// Deletes the organisation's source; `false` if it had none with that id.
    async fn delete_source(&self, organization_id: &str, id: &str) -> Result<bool, StoreError>;
}

/// The answer to a duplicate-detection claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Never seen (or seen so long ago it no longer counts): go ahead.
    Fresh,
    /// Seen, but that attempt's hold lapsed: it may have finished or died; check, then go ahead.
    Reclaimed,
    /// Another attempt holds it right now.
    Held,
}

/// Duplicate detection for incoming webhooks: one conditional write per delivery.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Claims `key` until `hold_until_ms`; the record counts until `expires_at` (epoch s).
    async fn claim(&self, key: &str, hold_until_ms: i64, expires_at: i64, now_ms: i64) -> Result<Claim, StoreError>;
    /// Drops a claim after a failure, so the provider's retry is processed.
    async fn forget(&self, key: &str) -> Result<(), StoreError>;
}

/// Subscriptions (and platform integrations, stored as subscriptions of organisation `*`).
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Writes `sub` (whose `version` is already the new one) only if the stored copy is still
    /// at `expected` (`None`: only if there is none yet). `Ok(false)`: someone else wrote or
    /// deleted it in between; nothing was written. Reads are strongly consistent, so a write
    /// that returned is seen by every later read.
    async fn put_subscription(&self, sub: &crate::subscriptions::Subscription, expected: Option<u64>) -> Result<bool, StoreError>;
    async fn get_subscription(&self, id: &str) -> Result<Option<crate::subscriptions::Subscription>, StoreError>;
    async fn list_subscriptions(&self, organization_id: &str) -> Result<Vec<crate::subscriptions::Subscription>, StoreError>;
    async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<bool, StoreError>;
}

/// Delivery state per (event, subscription) pair, and its attempt log.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Claims attempt `attempt` of the pair until `lease_until_ms`. Refused: not ours to send
    /// (already delivered or failed, another attempt holds it, or a stale retry), with the
    /// pair's state as found, so a follow-up that was lost can be sent again.
    async fn claim(
        &self,
        event: &EventEnvelope,
        subscription_id: &str,
        organization_id: &str,
        attempt: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<crate::delivery::ClaimResult, StoreError>;
    /// Records one attempt and the pair's new state, with the follow-up the caller sends next
    /// (a retry due at a time, or a dead letter): written before it is sent, so a crash or a
    /// failed send in between is found and repaired by the next claim of the pair.
    async fn record(
        &self,
        event_id: Uuid,
        subscription_id: &str,
        attempt: &crate::delivery::Attempt,
        state: crate::delivery::State,
        next_attempt: u32,
        follow_up: crate::delivery::FollowUp,
    ) -> Result<(), StoreError>;
    /// The follow-up recorded with the pair's state (a dead letter, a disable) is done.
    async fn follow_up_sent(&self, event_id: Uuid, subscription_id: &str) -> Result<(), StoreError>;
    /// Every pair of an event, with its attempts.
    async fn deliveries(&self, event_id: Uuid) -> Result<Vec<crate::delivery::DeliveryRecord>, StoreError>;
    /// The envelope a delivery was made from (events put on the bus directly are only here).
    async fn delivered_envelope(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError>;
    /// Pairs of a subscription that ended `failed` since `since`: their envelopes and attempt counts.
    async fn failed_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(EventEnvelope, u32)>, StoreError>;
    /// Since when the subscription has failed without a success (`None`: its last attempt succeeded).
    async fn failing_since(&self, subscription_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Takes one of `limit` slots of the current second for `key`, across every instance.
    async fn take_rate_slot(&self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Reopens a pair for attempt `attempt` (replay): returns `false` if a send is in flight.
    async fn reopen(
        &self,
        event_id: Uuid,
        subscription_id: &str,
        organization_id: &str,
        attempt: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// A limit shared by every instance: at most `limit` uses of `key` per second.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one of `limit` slots of the current second for `key`; `false` when none is left.
    async fn take_rate_slot(&self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// Delayed retries beyond SQS's 15-minute cap, and the dead-letter queue.
#[async_trait]
pub trait RetryQueue: Send + Sync {
    async fn schedule(&self, message: &crate::delivery::RetryMessage, delay: std::time::Duration) -> Result<(), StoreError>;
    async fn dead_letter(&self, body: &str) -> Result<(), StoreError>;
}

/// Tells an organisation's contact about something it must act on (an e-mail, via SES).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends to the organisation's contact; `Ok(false)` when it has none on record.
    async fn notify(&self, organization_id: &str, subject: &str, body: &str) -> Result<bool, StoreError>;
}

/// Organisation profile: the contact address operational e-mails go to (see
/// [`crate::organization`]).
#[async_trait]
pub trait OrganizationStore: Send + Sync {
    async fn profile(&self, organization_id: &str) -> Result<crate::organization::Profile, StoreError>;
    async fn put_profile(&self, organization_id: &str, profile: &crate::organization::Profile) -> Result<(), StoreError>;
    /// The verified contact address; a pending one is never used.
    async fn contact(&self, organization_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.profile(organization_id).await?.contact_email)
    }
}

/// Sends one plain-text e-mail from Relay's notification sender.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), StoreError>;
}

/// Sends one webhook request (with the SSRF guard, a timeout and no redirects).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: crate::delivery::Outgoing) -> crate::delivery::SendResult;
}

// Shared handles: a function builds its adapters once and hands `Arc`s to the parts that use
// them, so every port is also implemented for `Arc<T>`.
mod arc_impls {
    use super::*;
    use std::sync::Arc;

    #[async_trait]
    impl<T: KeyStore + ?Sized> KeyStore for Arc<T> {
        async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
            (**self).find_key(key_hash).await
        }
        async fn put_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError> {
            (**self).put_key(key_hash, key).await
        }
    }

    #[async_trait]
    impl<T: IdempotencyStore + ?Sized> IdempotencyStore for Arc<T> {
        async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError> {
            (**self).lock_and_store(lock, events, now_ms).await
        }
        async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
            (**self).get_record(key).await
        }
        async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
            (**self).complete(key, response).await
        }
        async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError> {
            (**self).release(key, event_ids).await
        }
    }

    #[async_trait]
    impl<T: EventStore + ?Sized> EventStore for Arc<T> {
        async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError> {
            (**self).put_events(events).await
        }
        async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError> {
            (**self).delete_events(ids).await
        }
        async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
            (**self).get_event(id).await
        }
        async fn list_events(&self, query: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
            (**self).list_events(query).await
        }
    }

    #[async_trait]
    impl<T: EventPublisher + ?Sized> EventPublisher for Arc<T> {
        async fn publish(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>> {
            (**self).publish(events).await
        }
    }

    #[async_trait]
    impl<T: BlobStore + ?Sized> BlobStore for Arc<T> {
        fn bucket(&self) -> &str {
            (**self).bucket()
        }
        async fn put_blob(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
            (**self).put_blob(key, bytes, content_type).await
        }
        async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            (**self).get_blob(key).await
        }
        async fn blob_exists(&self, key: &str) -> Result<bool, StoreError> {
            (**self).blob_exists(key).await
        }
    }

    #[async_trait]
    impl<T: SubscriptionStore + ?Sized> SubscriptionStore for Arc<T> {
        async fn put_subscription(&self, sub: &crate::subscriptions::Subscription, expected: Option<u64>) -> Result<bool, StoreError> {
            (**self).put_subscription(sub, expected).await
        }
        async fn get_subscription(&self, id: &str) -> Result<Option<crate::subscriptions::Subscription>, StoreError> {
            (**self).get_subscription(id).await
        }
        async fn list_subscriptions(&self, organization_id: &str) -> Result<Vec<crate::subscriptions::Subscription>, StoreError> {
            (**self).list_subscriptions(organization_id).await
        }
        async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
            (**self).delete_subscription(organization_id, id).await
        }
    }

    #[async_trait]
    impl<T: DeliveryStore + ?Sized> DeliveryStore for Arc<T> {
        async fn claim(
            &self,
            event: &EventEnvelope,
            subscription_id: &str,
            organization_id: &str,
            attempt: u32,
            lease_until_ms: i64,
            now_ms: i64,
        ) -> Result<crate::delivery::ClaimResult, StoreError> {
            (**self).claim(event, subscription_id, organization_id, attempt, lease_until_ms, now_ms).await
        }
        async fn record(
            &self,
            event_id: Uuid,
            subscription_id: &str,
            attempt: &crate::delivery::Attempt,
            state: crate::delivery::State,
            next_attempt: u32,
            follow_up: crate::delivery::FollowUp,
        ) -> Result<(), StoreError> {
            (**self).record(event_id, subscription_id, attempt, state, next_attempt, follow_up).await
        }
        async fn follow_up_sent(&self, event_id: Uuid, subscription_id: &str) -> Result<(), StoreError> {
            (**self).follow_up_sent(event_id, subscription_id).await
        }
        async fn deliveries(&self, event_id: Uuid) -> Result<Vec<crate::delivery::DeliveryRecord>, StoreError> {
            (**self).deliveries(event_id).await
        }
        async fn delivered_envelope(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError> {
            (**self).delivered_envelope(event_id).await
        }
        async fn failed_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(EventEnvelope, u32)>, StoreError> {
            (**self).failed_since(subscription_id, since).await
        }
        async fn take_rate_slot(&self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
            (**self).take_rate_slot(key, limit, now).await
        }
        async fn failing_since(&self, subscription_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
            (**self).failing_since(subscription_id).await
        }
        async fn reopen(
            &self,
            event_id: Uuid,
            subscription_id: &str,
            organization_id: &str,
            attempt: u32,
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            (**self).reopen(event_id, subscription_id, organization_id, attempt, now_ms).await
        }
    }

    #[async_trait]
    impl<T: RetryQueue + ?Sized> RetryQueue for Arc<T> {
        async fn schedule(&self, message: &crate::delivery::RetryMessage, delay: std::time::Duration) -> Result<(), StoreError> {
            (**self).schedule(message, delay).await
        }
        async fn dead_letter(&self, body: &str) -> Result<(), StoreError> {
            (**self).dead_letter(body).await
        }
    }

    #[async_trait]
    impl<T: Notifier + ?Sized> Notifier for Arc<T> {
        async fn notify(&self, organization_id: &str, subject: &str, body: &str) -> Result<bool, StoreError> {
            (**self).notify(organization_id, subject, body).await
        }
    }

    #[async_trait]
    impl<T: OrganizationStore + ?Sized> OrganizationStore for Arc<T> {
        async fn profile(&self, organization_id: &str) -> Result<crate::organization::Profile, StoreError> {
            (**self).profile(organization_id).await
        }
        async fn put_profile(&self, organization_id: &str, profile: &crate::organization::Profile) -> Result<(), StoreError> {
            (**self).put_profile(organization_id, profile).await
        }
    }

    #[async_trait]
    impl<T: WebhookSender + ?Sized> WebhookSender for Arc<T> {
        async fn send(&self, request: crate::delivery::Outgoing) -> crate::delivery::SendResult {
            (**self).send(request).await
        }
    }

    #[async_trait]
    impl<T: SourceStore + ?Sized> SourceStore for Arc<T> {
        async fn put_source(&self, source: &SealedSource) -> Result<(), StoreError> {
            (**self).put_source(source).await
        }
        async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError> {
            (**self).get_source(id).await
        }
        async fn list_sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, StoreError> {
            (**self).list_sources(organization_id).await
        }
        async fn delete_source(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
            (**self).delete_source(organization_id, id).await
        }
    }

    #[async_trait]
    impl<T: DedupeStore + ?Sized> DedupeStore for Arc<T> {
        async fn claim(&self, key: &str, hold_until_ms: i64, expires_at: i64, now_ms: i64) -> Result<Claim, StoreError> {
            (**self).claim(key, hold_until_ms, expires_at, now_ms).await
        }
        async fn forget(&self, key: &str) -> Result<(), StoreError> {
            (**self).forget(key).await
        }
    }
}
