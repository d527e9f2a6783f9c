//! The narrow traits the domain needs from the outside world: the middle layer, between the
//! [`crate::model`] types they speak in and the workflows that use them. The AWS adapters
//! (`relay-aws`) implement them with the SDK; [`crate::memory`] implements each in memory for
//! unit tests and benchmarks. One trait per capability, so a workflow asks only for what it
//! uses; workflows hold them as `Arc<dyn Port>`, built once per instance by the function.
//!
//! Where functions need only part of a store, the parts are separate ports (`EventWriter` /
//! `EventStore`, `BlobWriter` / `BlobReader` / `BlobArchive`, `KeyStore` / `KeyWriter`,
//! `SourceLookup` / `SourceStore`): a `dyn` port's vtable names every method, so a port wider
//! than its user links SDK operations it never calls (ingest was 0.3 MiB larger with the wide
//! ones). A wider port extends the narrower one, so its user keeps every method.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::delivery::{
    AttemptClaim, AttemptOutcome, ClaimResult, DeadLetter, DeadLetterCursor, DeliveryActivity, DeliveryRecord, Outgoing, PairKey,
    RetryMessage, SendResult, State,
};
use crate::model::envelope::EventEnvelope;
use crate::model::event::{DeliveryMark, EventQuery, StoredEvent};
use crate::model::idempotency::{Record, StoredResponse};
use crate::model::keys::ApiKey;
use crate::model::mail::{MailRequest, OutgoingMail, SendFailure};
use crate::model::mail_log::{MailMessage, MailRecipients, Suppression};
use crate::model::organization::Profile;
use crate::model::request::{RequestQuery, SourceRequest};
use crate::model::source::SealedSource;
use crate::model::subscription::Subscription;
use crate::payroll::job::{ChunkMessage, RunRecord, Totals};
use crate::payroll::schedule::{PayrollSchedule, ScheduleState, TickOutcome};

/// The provision function's ports: tenants, the fleet, the hosting provider, deploy agents.
pub mod provision;

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

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// These event ids already belong to other requests; what the request wrote was undone.
    #[error("event ids already taken: {0:?}")]
    EventIdsTaken(Vec<Uuid>),
    /// The idempotency lock is held or completed by an earlier request; nothing was written.
    #[error("idempotency key already locked")]
    LockHeld,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Looks up API keys by hash (every authenticated function).
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
}

/// Stores new API keys (the operator tools; no function writes keys).
#[async_trait]
pub trait KeyWriter: Send + Sync {
    async fn put_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError>;
}

/// Idempotency records, and the events they accept.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes the `INPROGRESS` lock `lock` and stores `events`: the lock only if no live record
    /// holds the key (absent, expired, or an expired in-progress lock). On an error, what it
    /// wrote is undone and the lock given back; a crash or a failed undo leaves writes that are
    /// not yet published under a lock that lapses at its expiry, for the retry to rewrite.
    async fn lock_and_store(&self, lock: &Record, events: &[StoredEvent], now_ms: i64) -> Result<(), WriteError>;
    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError>;
    /// Marks the record `COMPLETED` with the response to replay.
    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Undoes `lock_and_store` after a failure: deletes the lock and the events, so a retry
    /// starts clean.
    async fn release(&self, key: &str, event_ids: &[Uuid]) -> Result<(), StoreError>;
}

/// Writes the event store (ingest), which keeps events for inspection and replay.
#[async_trait]
pub trait EventWriter: Send + Sync {
    /// Stores events that came without an idempotency key; refuses ids that are taken.
    async fn put_events(&self, events: &[StoredEvent]) -> Result<(), WriteError>;
    async fn delete_events(&self, ids: &[Uuid]) -> Result<(), StoreError>;
}

/// The event store, read: one event, and the API's listing.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError>;
    /// The organisation's events, newest first, received in `[from, to]`, optionally of one type;
    /// `cursor` continues an earlier page. Returns the page and the next cursor.
    async fn list_events(&self, query: &EventQuery) -> Result<(Vec<StoredEvent>, Option<String>), StoreError>;
}

/// What deliver writes on the event store, so the listing shows every event of an organisation
/// whatever its origin (published through the API, put on the bus by a product, produced by an
/// incoming webhook, announced by Relay) and can filter by how its deliveries stand.
#[async_trait]
pub trait EventLedger: Send + Sync {
    /// Keeps an event from the bus unless the store has it already (ingest wrote it first).
    async fn observe_event(&self, event: &StoredEvent) -> Result<(), StoreError>;
    /// Notes the latest attempt of one of the organisation's own deliveries of the event.
    /// Idempotent; an event no longer kept is left alone.
    async fn mark_delivery(&self, event_id: Uuid, subscription_id: &str, mark: DeliveryMark) -> Result<(), StoreError>;
}

/// The incoming-request log, as webhook-receive writes it.
#[async_trait]
pub trait RequestRecorder: Send + Sync {
    async fn record_request(&self, entry: &SourceRequest) -> Result<(), StoreError>;
}

/// The incoming-request log, as the API reads it: newest first, lapsed entries left out.
#[async_trait]
pub trait RequestLog: Send + Sync {
    async fn list_requests(&self, query: &RequestQuery) -> Result<(Vec<SourceRequest>, Option<String>), StoreError>;
    async fn get_request(&self, source_id: &str, id: &str, now: i64) -> Result<Option<SourceRequest>, StoreError>;
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

/// Writes large objects: payloads too big to travel inline, raw webhooks, payslips. Reading
/// is a port of its own, so a function that only writes links no read operation.
#[async_trait]
pub trait BlobWriter: Send + Sync {
    /// The bucket this store writes to (named in payload references).
    fn bucket(&self) -> &str;
    async fn put_blob(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError>;
}

/// Reads large objects back (payloads sent by reference).
#[async_trait]
pub trait BlobReader: Send + Sync {
    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Whether a key was written, without reading it.
#[async_trait]
pub trait BlobExists: Send + Sync {
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError>;
}

/// The webhook archive: written like any blob store, and asked whether a key was written (the
/// archive is written last, so it marks a finished webhook).
pub trait BlobArchive: BlobWriter + BlobExists {}
impl<T: BlobWriter + BlobExists> BlobArchive for T {}

/// A webhook source by id (webhook-receive, on every call).
#[async_trait]
pub trait SourceLookup: Send + Sync {
    async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError>;
}

/// Webhook sources, managed: registered, listed by organisation, deleted.
#[async_trait]
pub trait SourceStore: SourceLookup {
    async fn put_source(&self, source: &SealedSource) -> Result<(), StoreError>;
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
    async fn put_subscription(&self, sub: &Subscription, expected: Option<u64>) -> Result<bool, StoreError>;
    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError>;
    async fn list_subscriptions(&self, organization_id: &str) -> Result<Vec<Subscription>, StoreError>;
    async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<bool, StoreError>;
}

/// Delivery state per (event, subscription) pair, and its attempt log.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Claims one attempt of a pair until its lease ends. Refused: not ours to send (already
    /// delivered or failed, another attempt holds it, or a stale retry), with the pair's state as
    /// found, so a follow-up that was lost can be sent again.
    async fn claim(&self, claim: &AttemptClaim<'_>) -> Result<ClaimResult, StoreError>;
    /// Records one attempt and the pair's new state, with the follow-up the caller sends next
    /// (a retry due at a time, or a dead letter): written before it is sent, so a crash or a
    /// failed send in between is found and repaired by the next claim of the pair.
    async fn record(&self, pair: PairKey<'_>, outcome: &AttemptOutcome<'_>) -> Result<(), StoreError>;
    /// The follow-up recorded with the pair's state (a dead letter, a disable) is done.
    async fn follow_up_sent(&self, pair: PairKey<'_>) -> Result<(), StoreError>;
    /// Every pair of an event, with its attempts.
    async fn deliveries(&self, event_id: Uuid) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// The envelope a delivery was made from (events put on the bus directly are only here).
    async fn delivered_envelope(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError>;
    /// Pairs of a subscription that ended `failed` since `since`: their envelopes and attempt counts.
    async fn failed_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(EventEnvelope, u32)>, StoreError>;
    /// The subscription's pairs changed since `since`, counted by state, and its newest pair.
    async fn activity(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<DeliveryActivity, StoreError>;
    /// Exhausted pairs of every organisation, newest first, a page at a time: those after
    /// `after` (the previous page's last), and where this page ends if more may follow.
    async fn dead_letters(
        &self,
        after: Option<&DeadLetterCursor>,
        limit: u32,
    ) -> Result<(Vec<DeadLetter>, Option<DeadLetterCursor>), StoreError>;
    /// Takes an exhausted pair off the dead letters, leaving it failed; false if it was not on them.
    async fn dismiss_dead_letter(&self, pair: PairKey<'_>) -> Result<bool, StoreError>;
    /// When each of the subscription's pairs last changed at or after `since`, and how it stands
    /// now: the deliveries-per-hour chart of `GET /v1/stats/deliveries`.
    async fn outcomes_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, State)>, StoreError>;
    /// Since when the subscription has failed without a success (`None`: its last attempt succeeded).
    async fn failing_since(&self, subscription_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Reopens a pair for attempt `attempt` (replay): returns `false` if a send is in flight.
    async fn reopen(&self, pair: PairKey<'_>, organization_id: &str, attempt: u32, now_ms: i64) -> Result<bool, StoreError>;
}

/// A limit shared by every instance: at most `limit` uses of `key` per window.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes `count` of `limit` slots of the current window of `window_secs` seconds for `key`,
    /// all or none; `false` when too few are left.
    async fn take_rate_slots(&self, key: &str, count: u32, limit: u32, window_secs: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Takes one slot.
    async fn take_rate_slot(&self, key: &str, limit: u32, window_secs: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.take_rate_slots(key, 1, limit, window_secs, now).await
    }
}

/// The first second (epoch s) of the rate window `now` falls in.
pub fn window_start(now: DateTime<Utc>, window_secs: i64) -> i64 {
    let w = window_secs.max(1);
    now.timestamp().div_euclid(w) * w
}

/// Delayed retries beyond SQS's 15-minute cap, and the dead-letter queue.
#[async_trait]
pub trait RetryQueue: Send + Sync {
    async fn schedule(&self, message: &RetryMessage, delay: std::time::Duration) -> Result<(), StoreError>;
    async fn dead_letter(&self, body: &str) -> Result<(), StoreError>;
}

/// Tells an organisation's contact about something it must act on (a system mail).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Mails the system template `template` with `data` to the organisation's contact;
    /// `Ok(false)` when it has none on record.
    async fn notify(&self, organization_id: &str, template: &str, data: serde_json::Map<String, Value>) -> Result<bool, StoreError>;
}

/// Organisation profile: the contact address operational e-mails go to (see
/// [`crate::model::organization`]).
#[async_trait]
pub trait OrganizationStore: Send + Sync {
    async fn profile(&self, organization_id: &str) -> Result<Profile, StoreError>;
    async fn put_profile(&self, organization_id: &str, profile: &Profile) -> Result<(), StoreError>;
    /// The verified contact address; a pending one is never used.
    async fn contact(&self, organization_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.profile(organization_id).await?.contact_email)
    }
}

/// Hands a mail to the mail path (the mail function sends it): how every function but mail
/// itself sends mail.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Queues `request` for `organization_id`; returns its message id.
    async fn request_mail(&self, organization_id: &str, request: &MailRequest) -> Result<Uuid, StoreError>;
}

/// The message log: what became of each mail, without bodies, and its addresses kept apart
/// for a shorter time.
#[async_trait]
pub trait MailLog: Send + Sync {
    /// Writes a new message and its addresses unless the message is there already (`false`).
    async fn create_message(&self, message: &MailMessage, recipients: &MailRecipients) -> Result<bool, StoreError>;
    /// The message, read strongly consistent; `None` once it has lapsed (checked from `now`).
    async fn get_message(&self, id: Uuid, now: i64) -> Result<Option<MailMessage>, StoreError>;
    /// The message's addresses, `None` once their retention has passed.
    async fn get_recipients(&self, id: Uuid, now: i64) -> Result<Option<MailRecipients>, StoreError>;
    /// Writes `message` (its `version` already the new one) only if the stored copy is still
    /// at `expected`. `false`: another writer came first; nothing was written.
    async fn put_message(&self, message: &MailMessage, expected: u64) -> Result<bool, StoreError>;
    /// Writes a message's addresses again (a retried request whose first try logged the entry
    /// but not the addresses).
    async fn put_recipients(&self, id: Uuid, recipients: &MailRecipients) -> Result<(), StoreError>;
    /// Removes a message and its addresses (a request that could not be queued).
    async fn delete_message(&self, id: Uuid) -> Result<(), StoreError>;
}

/// Addresses Relay no longer mails (hard bounces, complaints), and the operator's view of them.
#[async_trait]
pub trait SuppressionList: Send + Sync {
    /// Which of `addresses` (suppression keys) are suppressed.
    async fn suppressed(&self, addresses: &[String]) -> Result<Vec<String>, StoreError>;
    async fn suppress(&self, entry: &Suppression) -> Result<(), StoreError>;
    /// Entries in address order after `cursor` (an address); the page and the next cursor.
    async fn list_suppressions(&self, cursor: Option<&str>, limit: usize) -> Result<(Vec<Suppression>, Option<String>), StoreError>;
    /// Removes an address; `false` if it was not listed.
    async fn remove_suppression(&self, address: &str) -> Result<bool, StoreError>;
}

/// Sends one mail (SES). The error says whether trying again could send it twice.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// The provider's id for the sent message.
    async fn send(&self, mail: &OutgoingMail) -> Result<String, SendFailure>;
}

/// Sends one webhook request (with the SSRF guard, a timeout and no redirects).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: Outgoing) -> SendResult;
}

/// Confirms a Mollie payment by fetching it from Mollie's API (an HTTP port, not AWS).
#[async_trait]
pub trait PaymentLookup: Send + Sync {
    /// The payment object, `None` if Mollie does not know it, `Err` if Mollie could not answer.
    async fn payment(&self, base_url: &str, api_key: &str, payment_id: &str) -> Result<Option<Value>, String>;
}

/// Read-modify-write of one subscription that loses no concurrent change: `change` is applied to
/// the stored copy and written only if nobody wrote in between; otherwise it is applied again to
/// the newer copy. `change` returns `false` to write nothing. `Ok(None)`: no such subscription
/// (or nothing to change). A deleted subscription is never written back. Every writer of a
/// subscription (the management API, deliver disabling an endpoint) goes through here.
pub async fn modify_subscription(
    store: &dyn SubscriptionStore,
    id: &str,
    mut change: impl FnMut(&mut Subscription) -> bool,
) -> Result<Option<Subscription>, StoreError> {
    for _ in 0..MAX_WRITE_TRIES {
        let Some(mut sub) = store.get_subscription(id).await? else { return Ok(None) };
        let read = sub.version;
        if !change(&mut sub) {
            return Ok(None);
        }
        sub.version = read + 1;
        if store.put_subscription(&sub, Some(read)).await? {
            return Ok(Some(sub));
        }
    }
    Err(StoreError::new("subscription write", format!("{id} changed {MAX_WRITE_TRIES} times while being written; retry")))
}

/// How often [`modify_subscription`] tries before giving up under contention.
const MAX_WRITE_TRIES: usize = 10;

/// The envelope with a payload that travelled by reference fetched and put back in place,
/// checked against its size and digest: what a subscriber or the API is shown is the event
/// itself, never a pointer into Relay's storage. Missing or altered is an error (retryable:
/// storage may be catching up), never a silently empty payload.
pub async fn inline_payload(blobs: &dyn BlobReader, mut envelope: EventEnvelope) -> Result<EventEnvelope, StoreError> {
    let Some(r) = envelope.payload_ref.take() else { return Ok(envelope) };
    let missing = || StoreError::new("payload", format!("the payload of event {} is missing from storage", envelope.event_id));
    let bytes = blobs.get_blob(&r.key).await?.ok_or_else(missing)?;
    if !r.matches(&bytes) {
        return Err(StoreError::new("payload", format!("the stored payload of event {} does not match its digest", envelope.event_id)));
    }
    envelope.payload = Some(serde_json::from_slice(&bytes).map_err(|e| StoreError::new("payload", e))?);
    Ok(envelope)
}

/// Payroll runs and their progress (the payroll table).
#[async_trait]
pub trait PayrollRuns: Send + Sync {
    /// Records a new run; false if a run with its id exists already (it is left as it is).
    async fn create_run(&self, run: &RunRecord) -> Result<bool, StoreError>;
    async fn get_run(&self, organization_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Counts a chunk once: the chunk's mark and the run's progress are one conditional write.
    /// Answers whether this call counted it, and the run as it stands afterwards.
    async fn count_chunk(&self, organization_id: &str, run_id: &str, chunk: u32, employees: u32) -> Result<(bool, RunRecord), StoreError>;
    /// Marks a running run completed with its totals; false if it was not running.
    async fn complete_run(&self, organization_id: &str, run_id: &str, totals: &Totals, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Notes that `payroll.completed` went out, so a redelivery does not announce it again.
    async fn mark_announced(&self, organization_id: &str, run_id: &str) -> Result<(), StoreError>;
    /// Runs newest first, of one organisation or of all, `limit` at most, after `cursor` (the
    /// previous page's); with the cursor of the next page, if there is one.
    async fn list_runs(
        &self,
        organization_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<RunRecord>, Option<String>), StoreError>;
}

/// The organisations' monthly payroll schedules (the payroll table).
#[async_trait]
pub trait PayrollSchedules: Send + Sync {
    /// Creates or replaces an organisation's schedule (its last tick is kept).
    async fn put_schedule(&self, schedule: &PayrollSchedule) -> Result<(), StoreError>;
    /// False if the organisation had none.
    async fn delete_schedule(&self, organization_id: &str) -> Result<bool, StoreError>;
    /// Every schedule with what its ticks did, by organisation.
    async fn list_schedules(&self) -> Result<Vec<ScheduleState>, StoreError>;
    /// Notes what a tick did with a schedule, and the month as settled if the tick
    /// [settled](TickOutcome::settles) it (nothing if the schedule was deleted meanwhile).
    async fn note_tick(&self, organization_id: &str, tick: &TickOutcome) -> Result<(), StoreError>;
}

/// Hands a run's chunks to the chunk workers (the payroll chunk queue).
#[async_trait]
pub trait ChunkQueue: Send + Sync {
    async fn send_chunks(&self, chunks: &[ChunkMessage]) -> Result<(), StoreError>;
}

/// Time-limited links to private objects (an employee's payslip, a run's bank file), which a
/// browser can fetch without Relay's credentials.
#[async_trait]
pub trait LinkSigner: Send + Sync {
    async fn link(&self, key: &str, valid_for: std::time::Duration) -> Result<String, StoreError>;
}
