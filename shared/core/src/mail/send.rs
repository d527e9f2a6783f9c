//! The mail function's work on one queue message: an `email.requested` event (from the API,
//! from a product's own `PutEvents`, or from Relay) to send, or an SES bounce or complaint to
//! act on.
//!
//! A request: logged (`queued`) if the API did not log it already; suppressed recipients taken
//! out; a slot of the account's send rate taken for every recipient, shared by all instances;
//! the message claimed (`sending`, with a lease) with a conditional write; sent; its final
//! status written; then announced (`email.sent`, `email.failed`) on the bus. Each step is
//! checked against the log first, so a redelivered message does no step twice, and never sends
//! twice: a claim found lapsed means an earlier send may have gone out, so it is marked failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{announcement, Retention};
use crate::metrics::{self, Metrics};
use crate::model::envelope::EventEnvelope;
use crate::model::mail::{
    parse_request, suppression_key, Content, MailRequest, OutgoingMail, Recipients, RenderedMail, RequestError, SendFailure, Sender,
    EMAIL_REQUESTED, MESSAGE_ID_TAG,
};
use crate::model::mail_feedback::{describe, next_status, parse_feedback, FeedbackKind, SES_SOURCE};
use crate::model::mail_log::{redact_addresses, MailMessage, MailRecipients, MailStatus, Suppression, SuppressionReason};
use crate::model::mail_template;
use crate::ports::{EventPublisher, MailLog, MailTransport, RateLimiter, StoreError, SuppressionList};

/// What the mail function talks to.
#[derive(Clone)]
pub struct MailPorts {
    pub log: Arc<dyn MailLog>,
    pub suppressions: Arc<dyn SuppressionList>,
    pub transport: Arc<dyn MailTransport>,
    pub rates: Arc<dyn RateLimiter>,
    pub publisher: Arc<dyn EventPublisher>,
    pub metrics: Arc<dyn Metrics>,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Each sender's `Name <address>`, verified in SES.
    pub from: BTreeMap<Sender, String>,
    pub retention: Retention,
    /// The account's maximum send rate (recipients per second), shared by every instance.
    pub send_rate_per_second: u32,
    /// Sends tried before a message fails for good.
    pub max_attempts: u32,
    /// Wait before the second try; doubled each try, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed send holds the message (longer than one send can take).
    pub lease: Duration,
    /// The receive after which the queue would dead-letter the message (its `maxReceiveCount`
    /// less a margin): a mail still waiting for the send rate then fails, visibly.
    pub last_receive: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: Sender::ALL.into_iter().map(|s| (s, format!("{} <noreply@{}.example.com>", s.name(), s.name()))).collect(),
            retention: Retention::default(),
            send_rate_per_second: 14,
            max_attempts: 8,
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(900),
            lease: Duration::from_secs(60),
            last_receive: 45,
        }
    }
}

/// What became of a queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Finished with (sent, failed for good, a duplicate, or nothing to do): delete it.
    Done,
    /// Try again after this long (throttled, rate-limited, an announcement to repeat).
    RetryIn(Duration),
}

/// The mail function's workflow.
pub struct Postman {
    ports: MailPorts,
    config: MailConfig,
}

impl Postman {
    pub fn new(ports: MailPorts, config: MailConfig) -> Self {
        Self { ports, config }
    }

    /// One queue message: the EventBridge event the rules delivered. A store fault is an
    /// `Err` (the queue hands the message back); anything that can never succeed is `Done`
    /// after it is logged.
    ///
    /// `receive_count` is how often the queue has handed this message out (SQS's
    /// `ApproximateReceiveCount`): near the queue's redrive limit a mail still waiting on the
    /// send rate fails visibly rather than slip into the dead-letter queue unannounced.
    pub async fn handle(&self, body: &str, now: DateTime<Utc>, receive_count: u32) -> Result<Handled, StoreError> {
        let event: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "a mail queue message is not JSON; dropped");
                return Ok(Handled::Done);
            }
        };
        if event["source"] == SES_SOURCE {
            return self.feedback(&event["detail"], now).await;
        }
        match serde_json::from_value::<EventEnvelope>(event["detail"].clone()) {
            // The EventBridge source is what IAM lets a product put (`events:source`); the
            // envelope's sourceProduct is whatever the caller wrote. A mismatch is someone
            // speaking for another product: dropped, and nothing in the log is touched.
            Ok(envelope) if event["source"].as_str() != Some(envelope.source_product.as_str()) => {
                tracing::warn!(message_id = %envelope.event_id, "a mail request whose source is not its sourceProduct; dropped");
                Ok(Handled::Done)
            }
            Ok(envelope) if envelope.event_type == EMAIL_REQUESTED => self.request(envelope, now, receive_count).await,
            Ok(envelope) => {
                tracing::warn!(event_type = %envelope.event_type, "not a mail request; dropped");
                Ok(Handled::Done)
            }
            Err(e) => {
                tracing::error!(error = %e, "a mail queue message is neither a mail request nor an SES event; dropped");
                Ok(Handled::Done)
            }
        }
    }

    async fn request(&self, envelope: EventEnvelope, now: DateTime<Utc>, receive_count: u32) -> Result<Handled, StoreError> {
        let id = envelope.event_id;
        let payload = envelope.payload.clone().unwrap_or_default();
        let checked = match parse_request(&payload, &envelope.source_product) {
            Ok(r) => match render(&r) {
                Ok(rendered) => Ok((r, rendered)),
                Err(why) => Err((r.sender, why)),
            },
            Err(RequestError::Invalid(fields)) => Err((
                Sender::of_product(&envelope.source_product).unwrap_or(Sender::System),
                format!("invalid request: {}", fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")),
            )),
            Err(RequestError::WrongSender { own, asked }) => Err((own, format!("{} may not send as {asked}", envelope.source_product))),
            Err(RequestError::NoSender(p)) => {
                // No sender, no message of its own to log or fail: nothing is touched.
                tracing::warn!(message_id = %id, product = %p, "a mail request from a product with no sender; dropped");
                return Ok(Handled::Done);
            }
        };
        let (request, rendered) = match checked {
            Ok(ok) => ok,
            // A request put on the bus unchecked: it fails, visibly, in the log.
            Err((sender, why)) => return self.refuse(&envelope, sender, why, now).await,
        };

        let fresh = self.log_if_new(id, &envelope.organization_id, &request, now).await?;
        let Some(mut message) = (match fresh {
            Some(m) => Some(m),
            None => self.ports.log.get_message(id, now.timestamp()).await?,
        }) else {
            tracing::warn!(message_id = %id, "the mail's log entry has lapsed; dropped");
            return Ok(Handled::Done);
        };
        if !same_origin(&message, &envelope, request.sender) {
            // An id of another product's or organisation's message: never theirs to send or change.
            tracing::warn!(message_id = %id, "a mail request reusing another message's id; dropped");
            return Ok(Handled::Done);
        }

        match message.status {
            s if s.is_final() => return self.announce(&mut message, now).await,
            MailStatus::Sending if message.lease_until_ms > now.timestamp_millis() => {
                // Another instance is sending it right now: this copy is a duplicate.
                return Ok(Handled::Done);
            }
            MailStatus::Sending => {
                // An earlier send was claimed and never finished: it may have gone out. Sending
                // again could mail everyone twice, so the message fails, visibly.
                let why =
                    "an earlier send of this message did not finish and may have gone out; it is not sent again, so no one gets it twice";
                return self.fail(&mut message, why.into(), now).await;
            }
            _ => {}
        }
        if let Some(due) = message.next_attempt_at.filter(|t| *t > now) {
            return Ok(Handled::RetryIn((due - now).to_std().unwrap_or_default()));
        }

        // Suppressed addresses are left out; if nobody is left, nothing is sent.
        let keys: Vec<String> = request.recipients.all().map(|a| suppression_key(a)).collect();
        let suppressed = self.ports.suppressions.suppressed(&keys).await?;
        let recipients = request.recipients.without(&suppressed);
        message.suppressed_recipients = request.recipients.count() - recipients.count();
        if recipients.to.is_empty() && recipients.cc.is_empty() && recipients.bcc.is_empty() {
            let why = format!("every recipient is on the suppression list ({})", suppressed.len());
            self.ports.metrics.increment(&[("Sender", message.sender.name())], metrics::EMAILS_SUPPRESSED);
            return self.finish(&mut message, MailStatus::Suppressed, Some(why), now).await;
        }

        // SES counts recipients against the send rate, so one slot per recipient.
        let slots = (recipients.count() as u32).min(self.config.send_rate_per_second.max(1));
        if !self.ports.rates.take_rate_slots("ses:send", slots, self.config.send_rate_per_second.max(1), 1, now).await? {
            if receive_count >= self.config.last_receive {
                let why = format!("no room in the account's send rate after {receive_count} waits; not sent");
                return self.fail(&mut message, why, now).await;
            }
            return Ok(Handled::RetryIn(rate_wait(receive_count)));
        }

        // The claim: from here on a copy of this message finds it `sending`.
        let expected = message.version;
        message.status = MailStatus::Sending;
        message.attempts += 1;
        message.lease_until_ms = now.timestamp_millis() + self.config.lease.as_millis() as i64;
        message.next_attempt_at = None;
        message.updated_at = now;
        message.version += 1;
        if !self.ports.log.put_message(&message, expected).await? {
            return Ok(Handled::Done);
        }

        let Some(from) = self.config.from.get(&request.sender).cloned() else {
            return self
                .finish(&mut message, MailStatus::Failed, Some(format!("no from-address is configured for {}", request.sender.name())), now)
                .await;
        };
        let mut tags = request.tags.clone();
        tags.insert(MESSAGE_ID_TAG.into(), id.to_string());
        tags.insert("relay-sender".into(), request.sender.name().into());
        let outgoing = OutgoingMail { message_id: id, from, recipients, reply_to: request.reply_to.clone(), rendered, tags };
        match self.ports.transport.send(&outgoing).await {
            Ok(provider_id) => {
                message.provider_message_id = Some(provider_id);
                self.ports.metrics.increment(&[("Sender", message.sender.name())], metrics::EMAILS_SENT);
                let detail = (message.suppressed_recipients > 0)
                    .then(|| format!("{} suppressed recipient(s) left out", message.suppressed_recipients));
                tracing::info!(message_id = %id, attempts = message.attempts, "mail sent");
                self.finish(&mut message, MailStatus::Sent, detail, now).await
            }
            Err(SendFailure::Retryable(why)) if message.attempts < self.config.max_attempts => {
                let wait = self.backoff(message.attempts);
                tracing::warn!(message_id = %id, attempts = message.attempts, error = %why, wait_secs = wait.as_secs(), "send refused for now; retrying");
                self.ports.metrics.increment(&[], metrics::EMAIL_RETRIES);
                let expected = message.version;
                message.status = MailStatus::Queued;
                message.lease_until_ms = 0;
                message.next_attempt_at = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
                message.updated_at = now;
                message.history.push(crate::model::mail_log::StatusChange {
                    status: MailStatus::Queued,
                    at: now,
                    detail: Some(format!("try {} refused: {why}", message.attempts)),
                });
                message.version += 1;
                self.ports.log.put_message(&message, expected).await?;
                Ok(Handled::RetryIn(wait))
            }
            Err(SendFailure::Retryable(why)) => {
                let why = format!("SES refused every one of {} tries; the last: {why}", message.attempts);
                self.fail(&mut message, why, now).await
            }
            Err(SendFailure::Rejected(why)) => self.fail(&mut message, format!("SES refused the mail: {why}"), now).await,
            Err(SendFailure::Unknown(why)) => {
                let why = format!("the send's outcome is unknown ({why}); it is not sent again, so no one gets it twice");
                self.fail(&mut message, why, now).await
            }
        }
    }

    /// Writes the log entry of a request the API did not log (one from the bus). `Some`: it is
    /// new, and this is it.
    async fn log_if_new(
        &self,
        id: Uuid,
        organization_id: &str,
        request: &MailRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<MailMessage>, StoreError> {
        let r = self.config.retention;
        let message = MailMessage::queued(id, organization_id, request, now, now.timestamp() + r.log_secs);
        let recipients = MailRecipients {
            recipients: request.recipients.clone(),
            reply_to: request.reply_to.clone(),
            expires_at: now.timestamp() + r.addresses_secs,
        };
        Ok(self.ports.log.create_message(&message, &recipients).await?.then_some(message))
    }

    /// A request that can never be sent: logged as failed (unless it is logged already).
    async fn refuse(&self, envelope: &EventEnvelope, sender: Sender, why: String, now: DateTime<Utc>) -> Result<Handled, StoreError> {
        tracing::warn!(message_id = %envelope.event_id, reason = %why, "mail request refused");
        let request = MailRequest {
            sender,
            recipients: Recipients::default(),
            reply_to: Vec::new(),
            tags: BTreeMap::new(),
            content: Content::Direct { subject: String::new(), html: None, text: None },
        };
        let message = match self.log_if_new(envelope.event_id, &envelope.organization_id, &request, now).await? {
            Some(m) => Some(m),
            None => self.ports.log.get_message(envelope.event_id, now.timestamp()).await?,
        };
        let Some(mut message) = message else { return Ok(Handled::Done) };
        if !same_origin(&message, envelope, sender) {
            return Ok(Handled::Done);
        }
        if message.status.is_final() {
            return self.announce(&mut message, now).await;
        }
        self.fail(&mut message, why, now).await
    }

    async fn fail(&self, message: &mut MailMessage, why: String, now: DateTime<Utc>) -> Result<Handled, StoreError> {
        // SES's refusals can quote an address; the log, the events and tracing never hold one.
        let why = redact_addresses(&why);
        tracing::warn!(message_id = %message.id, reason = %why, "mail failed");
        self.ports.metrics.increment(&[("Sender", message.sender.name())], metrics::EMAILS_FAILED);
        self.finish(message, MailStatus::Failed, Some(why), now).await
    }

    /// Writes a final status, then announces it.
    async fn finish(
        &self,
        message: &mut MailMessage,
        status: MailStatus,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        let expected = message.version;
        message.set(status, now, detail);
        message.version += 1;
        // After a send this write is all that says it went out: a passing store fault gets a few
        // tries here, well inside the claim's lease, before the error hands the message back.
        let mut tries = 0u64;
        let written = loop {
            match self.ports.log.put_message(message, expected).await {
                Ok(w) => break w,
                Err(e) if tries < 3 => {
                    tries += 1;
                    tracing::warn!(message_id = %message.id, error = %e, "writing the final status failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if !written {
            // Someone else moved it on; their copy announces.
            return Ok(Handled::Done);
        }
        self.announce(message, now).await
    }

    /// Puts the event for the message's final status on the bus, once: the `announced` flag is
    /// written after, and a failed publish is retried from the queue.
    async fn announce(&self, message: &mut MailMessage, now: DateTime<Utc>) -> Result<Handled, StoreError> {
        if message.announced {
            return Ok(Handled::Done);
        }
        let Some(event) = announcement(message, now) else { return Ok(Handled::Done) };
        if let Some(Err(e)) = self.ports.publisher.publish(std::slice::from_ref(&event)).await.into_iter().next() {
            tracing::error!(message_id = %message.id, error = %e, "could not announce the mail's status; retrying");
            return Ok(Handled::RetryIn(Duration::from_secs(5)));
        }
        let expected = message.version;
        message.announced = true;
        message.version += 1;
        // A lost race here only means a second, identical (same event id) announcement.
        self.ports.log.put_message(message, expected).await?;
        Ok(Handled::Done)
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self.config.first_backoff.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
        doubled.min(self.config.max_backoff)
    }

    /// An SES bounce or complaint: suppress the addresses it is about (hard bounces and
    /// complaints only), and note it on the message it answers.
    async fn feedback(&self, detail: &Value, now: DateTime<Utc>) -> Result<Handled, StoreError> {
        let feedback = match parse_feedback(detail, now) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Handled::Done),
            Err(e) => {
                tracing::error!(error = %e, "an SES event Relay cannot read; dropped");
                return Ok(Handled::Done);
            }
        };
        let reason = match feedback.kind {
            FeedbackKind::HardBounce => Some(SuppressionReason::Bounce),
            FeedbackKind::Complaint => Some(SuppressionReason::Complaint),
            FeedbackKind::SoftBounce => None,
        };
        if let Some(reason) = reason {
            for address in &feedback.recipients {
                let entry = Suppression {
                    address: suppression_key(address),
                    reason,
                    suppressed_at: feedback.at,
                    message_id: feedback.message_id,
                    detail: feedback.detail.clone(),
                };
                self.ports.suppressions.suppress(&entry).await?;
            }
            let metric = if reason == SuppressionReason::Bounce { metrics::EMAILS_BOUNCED } else { metrics::EMAILS_COMPLAINED };
            self.ports.metrics.increment(&[], metric);
            tracing::info!(message_id = ?feedback.message_id, addresses = feedback.recipients.len(), ?reason, "addresses suppressed");
        }
        let Some(id) = feedback.message_id else { return Ok(Handled::Done) };
        for _ in 0..5 {
            let Some(mut message) = self.ports.log.get_message(id, now.timestamp()).await? else { return Ok(Handled::Done) };
            let status = next_status(&message, &feedback);
            let detail = describe(&feedback, message.recipient_count);
            if message.history.iter().any(|h| h.detail.as_deref() == Some(detail.as_str())) {
                // This very feedback was noted before (a redelivered event).
                return self.announce(&mut message, now).await;
            }
            let expected = message.version;
            match status {
                Some(s) => message.set(s, now, Some(detail)),
                None => {
                    message.history.push(crate::model::mail_log::StatusChange { status: message.status, at: now, detail: Some(detail) });
                    message.updated_at = now;
                }
            }
            message.version += 1;
            if self.ports.log.put_message(&message, expected).await? {
                return self.announce(&mut message, now).await;
            }
        }
        Err(StoreError::new("mail log", format!("message {id} kept changing while its feedback was noted; retry")))
    }
}

/// How long a mail waits for room in the send rate: a second at first, longer the more often it
/// has waited (up to a minute), with jitter, so a backlog does not poll the counter in lockstep.
fn rate_wait(receive_count: u32) -> Duration {
    let base = 1u64 << receive_count.saturating_sub(1).min(6);
    let jitter = rand::random::<u64>() % (base * 500 + 1);
    Duration::from_millis((base * 1000 + jitter).min(60_000))
}

/// Is this logged message the one this request speaks of: the same sender and organisation?
/// (A refused request whose sender is unknown speaks for no logged message.)
fn same_origin(message: &MailMessage, envelope: &EventEnvelope, sender: Sender) -> bool {
    message.sender == sender && message.organization_id == envelope.organization_id
}

/// The mail's subject and parts: the template rendered, or what was given.
fn render(request: &MailRequest) -> Result<RenderedMail, String> {
    match &request.content {
        Content::Template { name, data } => mail_template::render(request.sender, name, data)
            .map_err(|e| super::request::render_problem(request.sender.name(), name, e).detail),
        Content::Direct { subject, html, text } => Ok(RenderedMail { subject: subject.clone(), html: html.clone(), text: text.clone() }),
    }
}
