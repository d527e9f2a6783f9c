//! Delivering events to subscriptions: for each (event, subscription) pair, claim the attempt,
//! sign the Standard Webhooks request, send it, record the attempt, then either finish, retry
//! on the schedule, disable the endpoint (`410 Gone`) or give up into the dead-letter queue.
//!
//! Exactly-once effects: every pair is claimed with a conditional write before it is sent, so a
//! redelivered SQS message or a duplicate event never sends a delivered pair again; a crash
//! mid-send leaves a lease that lapses, and the redelivered message sends again (at least once).
//! Retries carry the envelope, so events put on the bus directly are retried too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use crate::metrics::{self, Metric, Metrics};
use crate::model::delivery::{
    body, Attempt, AttemptClaim, AttemptOutcome, ClaimResult, FollowUp, Outgoing, PairKey, PairStatus, RetryKind, RetryMessage,
    RetryPolicy, SendResult, State,
};
use crate::model::envelope::{EventEnvelope, RELAY_SOURCE};
use crate::model::event::{DeliveryMark, DeliveryMarks, StoredEvent};
use crate::model::ids::INTEGRATION_PREFIX;
use crate::model::subscription::Subscription;
use crate::ports::{
    inline_payload, modify_subscription, BlobReader, DeliveryStore, EventLedger, EventPublisher, Notifier, RateLimiter, RetryQueue,
    StoreError, SubscriptionStore, WebhookSender,
};
use crate::secrets::SecretBox;
use crate::signing::signature_header;

/// Why a subscription is disabled when its endpoint answers 410.
const GONE: &str = "the endpoint answered 410 Gone";

/// What deliver talks to, each built once per instance by the function (or in memory by a test).
#[derive(Clone)]
pub struct DeliveryPorts {
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    /// Keeps every event from the bus for the listing, and how its deliveries stand.
    pub events: Arc<dyn EventLedger>,
    /// Per-subscription rate limits, shared by every instance.
    pub rates: Arc<dyn RateLimiter>,
    pub retries: Arc<dyn RetryQueue>,
    pub sender: Arc<dyn WebhookSender>,
    /// Relay's own operational events (`delivery.exhausted`, `subscription.disabled`).
    pub publisher: Arc<dyn EventPublisher>,
    /// Tells an organisation its endpoint was disabled.
    pub notifier: Arc<dyn Notifier>,
    /// Where payloads too large for the bus wait; fetched to send them inline.
    pub blobs: Arc<dyn BlobReader>,
    pub metrics: Arc<dyn Metrics>,
}

/// How deliver behaves: read from the environment by the function, defaults for tests.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Opens the subscriptions' sealed signing secrets.
    pub secrets: SecretBox,
    pub policy: RetryPolicy,
    /// An endpoint failing without a success for this long is disabled (5 days by default).
    pub disable_after: chrono::Duration,
    /// How long a claimed attempt holds (longer than the send timeout).
    pub lease: Duration,
    /// How long an event from the bus is kept for the listing (as ingest keeps its own).
    pub retention: chrono::Duration,
}

impl DeliveryConfig {
    /// The defaults, with the key that opens the signing secrets.
    pub fn new(secrets: SecretBox) -> Self {
        Self {
            secrets,
            policy: RetryPolicy::default(),
            disable_after: chrono::Duration::days(5),
            lease: Duration::from_secs(60),
            retention: chrono::Duration::days(30),
        }
    }
}

/// The delivery workflow: fans a new event out to its subscriptions and runs each pair's retries.
pub struct Deliverer {
    ports: DeliveryPorts,
    config: DeliveryConfig,
    /// Subscriptions read during the current batch. Emptied at every batch, so every event
    /// is matched against subscriptions read after it was accepted (a subscription created
    /// before an event is never missed); within a batch, one query per organisation.
    batch_cache: tokio::sync::Mutex<HashMap<String, Vec<Subscription>>>,
}

impl Deliverer {
    pub fn new(ports: DeliveryPorts, config: DeliveryConfig) -> Self {
        Self { ports, config, batch_cache: tokio::sync::Mutex::default() }
    }

    /// Sends a message that cannot be handled (not an event, not a retry) to the DLQ for people.
    pub async fn dead_letter(&self, body: &str) -> Result<(), StoreError> {
        self.ports.retries.dead_letter(body).await
    }

    /// Starts a new batch: subscriptions are read afresh.
    pub async fn begin_batch(&self) {
        self.batch_cache.lock().await.clear();
    }

    /// A new event from the bus: every matching subscription and integration gets attempt 1.
    /// An `Err` means "retry this message"; pairs already handled are skipped on the retry.
    pub async fn on_event(&self, envelope: &EventEnvelope, now: DateTime<Utc>) -> Result<usize, StoreError> {
        // Kept first, so the organisation can list it (with whatever happens next) whatever
        // put it on the bus; an event ingest stored is left as it is.
        let observed = StoredEvent {
            envelope: envelope.clone(),
            received_at: now,
            idempotency_key: None,
            expires_at: (now + self.config.retention).timestamp(),
            deliveries: DeliveryMarks::default(),
        };
        self.ports.events.observe_event(&observed).await?;
        let mut targets = self.subscriptions_of(&envelope.organization_id).await?;
        targets.extend(self.subscriptions_of("*").await?);
        targets.retain(|s| s.wants(&envelope.event_type, &envelope.source_product, &envelope.organization_id));
        // relay.test events go only to the subscription they were sent for.
        if envelope.event_type == "relay.test" {
            let target = envelope.payload.as_ref().and_then(|p| p.get("subscriptionId")).and_then(|v| v.as_str()).map(str::to_string);
            targets = self
                .ports
                .subscriptions
                .get_subscription(target.as_deref().unwrap_or(""))
                .await?
                .into_iter()
                .filter(|s| s.organization_id == envelope.organization_id)
                .collect();
        }
        if targets.is_empty() {
            return Ok(0);
        }
        let body = self.body_of(envelope).await?;
        // The endpoints are sent to at the same time, so one slow endpoint holds up no other
        // (claims are per pair, so concurrent attempts cannot double-send).
        let outcomes = futures::future::join_all(targets.iter().map(|sub| self.attempt(envelope, &body, sub, 1, now))).await;
        match outcomes.into_iter().find_map(Result::err) {
            Some(e) => Err(e),
            None => Ok(targets.len()),
        }
    }

    /// A retry from the retry queue; re-queued while its time has not come (SQS delays stop at
    /// 15 minutes, so a 10-hour wait is a chain of delays).
    pub async fn on_retry(&self, message: &RetryMessage, now: DateTime<Utc>) -> Result<(), StoreError> {
        if message.not_before > now {
            let wait = (message.not_before - now).to_std().unwrap_or_default();
            return self.ports.retries.schedule(message, wait).await;
        }
        match self.ports.subscriptions.get_subscription(&message.subscription_id).await? {
            Some(sub) if sub.enabled => {
                let body = self.body_of(&message.envelope).await?;
                self.attempt(&message.envelope, &body, &sub, message.attempt, now).await
            }
            Some(sub) => {
                // Claimed first, so a stale copy of this retry never marks a pair that has moved on
                // (delivered, or retrying later) as failed.
                if let ClaimResult::Refused(found) = self.claim(&message.envelope, &sub, message.attempt, now).await? {
                    return self.repair(&message.envelope, &sub, message.attempt, found, now).await;
                }
                tracing::info!(subscription_id = %sub.id, "subscription disabled; retry dropped");
                let attempt = Attempt {
                    number: message.attempt,
                    at: now,
                    status_code: None,
                    duration_ms: 0,
                    response_excerpt: None,
                    error_kind: Some("disabled".into()),
                };
                self.record(&message.envelope, &sub.id, &attempt, State::Failed, message.attempt, FollowUp::None).await
            }
            None => Ok(()),
        }
    }

    /// The organisation's subscriptions, read once per batch (see `batch_cache`). The messages
    /// of a batch run concurrently, so the fill happens under an async lock.
    async fn subscriptions_of(&self, organization_id: &str) -> Result<Vec<Subscription>, StoreError> {
        let mut cache = self.batch_cache.lock().await;
        if let Some(subs) = cache.get(organization_id) {
            return Ok(subs.clone());
        }
        let subs = self.ports.subscriptions.list_subscriptions(organization_id).await?;
        cache.insert(organization_id.to_string(), subs.clone());
        Ok(subs)
    }

    /// The request body for an event, with a payload that travelled by reference fetched and
    /// checked against its digest: subscribers get the event itself, never a pointer into
    /// Relay's storage. A fetch that fails is retried with the message.
    async fn body_of(&self, envelope: &EventEnvelope) -> Result<Vec<u8>, StoreError> {
        if envelope.payload_ref.is_none() {
            return Ok(body(envelope));
        }
        Ok(body(&inline_payload(self.ports.blobs.as_ref(), envelope.clone()).await?))
    }

    /// Attempt `n` of one pair.
    async fn attempt(
        &self,
        envelope: &EventEnvelope,
        body: &[u8],
        sub: &Subscription,
        n: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(limit) = sub.rate_limit {
            // The limit holds across every instance: one shared counter per subscription-second.
            if !self.ports.rates.take_rate_slot(&sub.id, limit, 1, now).await? {
                let wait = Duration::from_millis(1000 + rand::rng().random_range(0..500));
                self.ports.metrics.increment(&[], metrics::RETRIES_SCHEDULED);
                return self.ports.retries.schedule(&RetryMessage::new(RetryKind::Retry, envelope, &sub.id, n, now), wait).await;
            }
        }
        match self.claim(envelope, sub, n, now).await? {
            ClaimResult::Claimed => {}
            ClaimResult::Refused(found) => return self.repair(envelope, sub, n, found, now).await,
        }
        let secrets = sub.signing_secrets(now, &self.config.secrets);
        let result = if secrets.is_empty() {
            // Fail closed: an unsigned webhook is never sent. Counted as a failed attempt, so it
            // is retried (and recovers once the key is fixed) and shows in the attempt log.
            tracing::error!(subscription_id = %sub.id, "no signing secret could be opened; not sending");
            SendResult { error_kind: Some("signing".into()), ..SendResult::default() }
        } else {
            let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let msg_id = format!("msg_{}", envelope.event_id.simple());
            let mut headers: Vec<(String, String)> = sub.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            headers.extend([
                ("content-type".to_string(), "application/json".to_string()),
                ("user-agent".to_string(), "Relay-Webhooks/1.0".to_string()),
                ("webhook-id".to_string(), msg_id.clone()),
                ("webhook-timestamp".to_string(), now.timestamp().to_string()),
                ("webhook-signature".to_string(), signature_header(&msg_id, now.timestamp(), body, &secret_refs)),
            ]);
            self.ports.sender.send(Outgoing { url: sub.url.clone(), headers, body: body.to_vec() }).await
        };
        let status = result.status;
        let success = status.is_some_and(|s| (200..300).contains(&s));
        let attempt = Attempt {
            number: n,
            at: now,
            status_code: status,
            duration_ms: result.duration.as_millis() as u64,
            response_excerpt: result.excerpt.clone(),
            error_kind: if success { None } else { result.error_kind.clone().or_else(|| Some("http".into())) },
        };
        tracing::info!(event_id = %envelope.event_id, subscription_id = %sub.id, attempt = n, status, "delivery attempt");
        let outcome = if success { metrics::DELIVERIES_SUCCEEDED } else { metrics::DELIVERY_ATTEMPTS_FAILED };
        self.ports.metrics.record(&[], &[Metric::count(outcome, 1), Metric::millis(metrics::DELIVERY_DURATION, result.duration)]);

        if success {
            return self.record(envelope, &sub.id, &attempt, State::Delivered, n, FollowUp::None).await;
        }
        if status == Some(410) {
            // The disable is a follow-up recorded with the state: if it fails, the redelivered
            // message finds it pending and disables again (see `repair`).
            self.record(envelope, &sub.id, &attempt, State::Failed, n, FollowUp::Disable).await?;
            self.disable(&sub.id, GONE, now).await?;
            return self.ports.deliveries.follow_up_sent(pair(envelope, &sub.id)).await;
        }
        if n < self.config.policy.attempts() {
            let delay = self.config.policy.delay_before(n + 1, result.retry_after);
            let due = now + chrono::Duration::from_std(delay).unwrap_or_default();
            // The state and its retry are one outcome: the state is written with the retry pending
            // first; if the send below fails, this message fails, and its redelivery finds the
            // retry still pending and sends it (see `repair`). Only then may the endpoint be
            // disabled for failing too long, so a disabled endpoint never strands a pair: its
            // retry finds it disabled and marks the pair failed, where recover can find it.
            self.record(envelope, &sub.id, &attempt, State::Retrying, n + 1, FollowUp::RetryAt(due.timestamp_millis())).await?;
            self.send_retry(envelope, &sub.id, n + 1, due, delay).await?;
            self.failing_too_long(sub, now).await?;
            return Ok(());
        }
        // Exhausted: failed, kept in the DLQ for inspection and replay, and announced; the
        // endpoint is judged for disabling only once the dead letter is out (as above).
        self.record(envelope, &sub.id, &attempt, State::Failed, n, FollowUp::DeadLetter).await?;
        self.exhausted(envelope, &sub.id, sub.delivered_for(&envelope.organization_id), n, status, now).await?;
        self.failing_too_long(sub, now).await?;
        Ok(())
    }

    /// Claims attempt `n` of the pair for one lease.
    async fn claim(&self, envelope: &EventEnvelope, sub: &Subscription, n: u32, now: DateTime<Utc>) -> Result<ClaimResult, StoreError> {
        let now_ms = now.timestamp_millis();
        let claim = AttemptClaim {
            event: envelope,
            subscription_id: &sub.id,
            organization_id: sub.delivered_for(&envelope.organization_id),
            attempt: n,
            lease_until_ms: now_ms + self.config.lease.as_millis() as i64,
            now_ms,
        };
        self.ports.deliveries.claim(&claim).await
    }

    /// Records an attempt and the state (and follow-up) it leaves the pair in.
    async fn record(
        &self,
        envelope: &EventEnvelope,
        subscription_id: &str,
        attempt: &Attempt,
        state: State,
        next_attempt: u32,
        follow_up: FollowUp,
    ) -> Result<(), StoreError> {
        let outcome = AttemptOutcome { attempt, state, next_attempt, follow_up };
        self.ports.deliveries.record(pair(envelope, subscription_id), &outcome).await?;
        self.mark(envelope, subscription_id, state).await
    }

    /// Notes a delivery's latest state on the event, for the listing's delivery-state filter.
    /// Only the organisation's own endpoints count (integrations are the operators' business).
    /// After the pair's record: a crash between the two is mended by the redelivered message,
    /// whose refused claim re-marks (see `repair`).
    async fn mark(&self, envelope: &EventEnvelope, subscription_id: &str, state: State) -> Result<(), StoreError> {
        let mark = match state {
            State::Delivered => DeliveryMark::Delivered,
            State::Retrying | State::Failed => DeliveryMark::Failing,
            State::Sending => return Ok(()),
        };
        if subscription_id.starts_with(INTEGRATION_PREFIX) {
            return Ok(());
        }
        self.ports.events.mark_delivery(envelope.event_id, subscription_id, mark).await
    }

    /// Sends attempt `next`'s retry message and marks it sent.
    async fn send_retry(
        &self,
        envelope: &EventEnvelope,
        subscription_id: &str,
        next: u32,
        due: DateTime<Utc>,
        delay: Duration,
    ) -> Result<(), StoreError> {
        self.ports.metrics.increment(&[], metrics::RETRIES_SCHEDULED);
        self.ports.retries.schedule(&RetryMessage::new(RetryKind::Retry, envelope, subscription_id, next, due), delay).await?;
        self.ports.deliveries.follow_up_sent(pair(envelope, subscription_id)).await
    }

    /// An exhausted pair's dead letter (marked sent once it is out), its metric and its
    /// operational event.
    async fn exhausted(
        &self,
        envelope: &EventEnvelope,
        subscription_id: &str,
        owner: &str,
        n: u32,
        status: Option<u16>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let message = RetryMessage::new(RetryKind::Exhausted, envelope, subscription_id, n, now);
        self.ports.retries.dead_letter(&serde_json::to_string(&message).unwrap_or_default()).await?;
        self.ports.deliveries.follow_up_sent(pair(envelope, subscription_id)).await?;
        self.ports.metrics.increment(&[], metrics::DELIVERIES_EXHAUSTED);
        self.announce(
            "delivery.exhausted",
            owner,
            json!({"eventId": envelope.event_id, "subscriptionId": subscription_id, "attempts": n, "lastStatusCode": status}),
            now,
        )
        .await;
        Ok(())
    }

    /// A refused claim of attempt `n`: usually a duplicate, but it may also be the redelivery of
    /// a message whose follow-up was never sent (the state was written, then the send failed or
    /// the instance died). Send that follow-up again; a second copy is harmless, since every
    /// attempt is claimed conditionally. A retry is re-sent only while it is marked pending (not
    /// yet known to be sent) and only for the attempt right after this one, so duplicates of a
    /// message that did its work do not spawn copies of the next retry.
    async fn repair(
        &self,
        envelope: &EventEnvelope,
        sub: &Subscription,
        n: u32,
        found: Option<PairStatus>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(found) = found else { return Ok(()) };
        // A crash between a final record and its mark is mended here. Only final states are
        // re-marked: a retrying pair may be recorded delivered by its next attempt meanwhile,
        // and this (stale) copy must not mark it failing after that.
        if matches!(found.state, State::Delivered | State::Failed) {
            self.mark(envelope, &sub.id, found.state).await?;
        }
        match found.state {
            State::Retrying if found.attempt_no == n + 1 && found.retry_pending => {
                let due = found.retry_at_ms.and_then(DateTime::from_timestamp_millis).unwrap_or(now);
                let wait = (due - now).to_std().unwrap_or_default();
                tracing::info!(event_id = %envelope.event_id, subscription_id = %sub.id, attempt = found.attempt_no, "re-sending a retry that may have been lost");
                self.send_retry(envelope, &sub.id, found.attempt_no, due, wait).await
            }
            State::Failed if found.dead_letter_pending => {
                tracing::info!(event_id = %envelope.event_id, subscription_id = %sub.id, "sending a dead letter that may have been lost");
                self.exhausted(envelope, &sub.id, sub.delivered_for(&envelope.organization_id), found.attempt_no, None, now).await
            }
            State::Failed if found.disable_pending => {
                // Unless the organisation changed the subscription since (re-enabled it, say): then
                // the 410 is old news and the subscription is left as they set it.
                if found.updated_at.is_none_or(|at| sub.updated_at <= at) {
                    tracing::info!(event_id = %envelope.event_id, subscription_id = %sub.id, "disabling after a 410 that may not have been applied");
                    self.disable(&sub.id, GONE, now).await?;
                }
                self.ports.deliveries.follow_up_sent(pair(envelope, &sub.id)).await
            }
            _ => Ok(()),
        }
    }

    /// Disables an endpoint that has failed without a success for longer than `disable_after`.
    /// Its pending retries then find it disabled and stop.
    async fn failing_too_long(&self, sub: &Subscription, now: DateTime<Utc>) -> Result<bool, StoreError> {
        match self.ports.deliveries.failing_since(&sub.id).await? {
            Some(since) if now - since > self.config.disable_after => {
                let reason = format!("no successful delivery since {}", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                self.disable(&sub.id, &reason, now).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Disables a subscription: a field-level change of the stored copy (re-read, conditional
    /// on its version), so a rotation or an edit made meanwhile is kept, never undone.
    async fn disable(&self, subscription_id: &str, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let changed = modify_subscription(self.ports.subscriptions.as_ref(), subscription_id, |s| {
            if !s.enabled {
                return false;
            }
            s.enabled = false;
            s.disabled_reason = Some(reason.to_string());
            s.updated_at = now;
            true
        })
        .await?;
        let Some(sub) = changed else { return Ok(()) };
        self.batch_cache.lock().await.clear();
        tracing::warn!(subscription_id = %sub.id, reason, "subscription disabled");
        self.ports.metrics.increment(&[], metrics::ENDPOINTS_DISABLED);
        self.announce(
            "subscription.disabled",
            &sub.organization_id,
            json!({"subscriptionId": sub.id, "url": sub.url, "reason": reason}),
            now,
        )
        .await;
        // The mail quotes nothing the organisation chose (no URL, no description): only Relay's
        // own words and ids, so it cannot carry someone else's text through Relay's sender.
        let mut data = serde_json::Map::new();
        data.insert("subscriptionId".into(), sub.id.clone().into());
        data.insert("reason".into(), reason.into());
        match self.ports.notifier.notify(&sub.organization_id, "endpoint-disabled", data).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(organization_id = %sub.organization_id, "no verified contact address on record; nobody was e-mailed")
            }
            Err(e) => tracing::error!(error = %e, "could not e-mail the organisation's contact"),
        }
        Ok(())
    }

    /// Publishes one of Relay's own operational events (best effort: logged if it fails).
    async fn announce(&self, event_type: &str, organization_id: &str, payload: serde_json::Value, now: DateTime<Utc>) {
        let envelope = EventEnvelope {
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            event_version: "1.0".into(),
            source_product: RELAY_SOURCE.into(),
            organization_id: organization_id.into(),
            timestamp: now,
            correlation_id: None,
            payload: payload.as_object().cloned(),
            payload_ref: None,
        };
        if let Some(Err(e)) = self.ports.publisher.publish(std::slice::from_ref(&envelope)).await.into_iter().next() {
            tracing::error!(event_type, error = %e, "could not publish an operational event");
        }
    }
}

fn pair<'a>(envelope: &EventEnvelope, subscription_id: &'a str) -> PairKey<'a> {
    PairKey { event_id: envelope.event_id, subscription_id }
}
