//! Asking for mail. `POST /v1/emails` checks the request whole before anything is kept: the
//! caller's own sender, every field, and the template rendered with the data (a missing variable
//! is a 422 naming it). Then, under the `Idempotency-Key` (IETF draft, as for events: replay,
//! 422 on reuse, 409 in progress), it writes the message log entry (`queued`) and publishes the
//! request as `email.requested`. If publishing fails the caller gets 503 and the key is freed,
//! but the entry stays (the publish may have gone through; the entry is what keeps the mail
//! function from sending twice): the retry with the same key finds it and publishes again.
//!
//! Relay's own functions ask through [`BusMailer`]: the same event, from `relay`, with the
//! system sender.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::Retention;
use crate::idempotent::{self, Idempotency, RETRY_AFTER_SECS};
use crate::metrics::{self, Metrics};
use crate::model::envelope::{EventEnvelope, RELAY_SOURCE};
use crate::model::idempotency;
use crate::model::keys::ApiKey;
use crate::model::mail::{parse_request, Content, MailRequest, RequestError, EMAIL_REQUESTED};
use crate::model::mail_log::{MailMessage, MailRecipients, MailStatus};
use crate::model::mail_template::{self, RenderError};
use crate::model::problem::{Problem, ProblemField, ProblemKind};
use crate::model::reply::Reply;
use crate::model::validation::is_identifier;
use crate::ports::{EventPublisher, IdempotencyStore, MailLog, Mailer, StoreError};

/// The largest `email.requested` entry the API puts on the bus (EventBridge takes 256 KB).
const MAX_REQUEST_EVENT_BYTES: usize = 240 * 1024;

/// Route name, part of the idempotency fingerprint.
pub const ROUTE: &str = "POST /v1/emails";

/// The `email.requested` event for a checked request.
pub fn requested_event(
    id: Uuid,
    product: &str,
    organization_id: &str,
    correlation_id: Option<String>,
    request: &MailRequest,
    now: DateTime<Utc>,
) -> EventEnvelope {
    EventEnvelope {
        event_id: id,
        event_type: EMAIL_REQUESTED.into(),
        event_version: "1.0".into(),
        source_product: product.to_string(),
        organization_id: organization_id.to_string(),
        timestamp: now,
        correlation_id,
        payload: Some(request.to_payload()),
        payload_ref: None,
    }
}

/// The [`Mailer`] of every function but mail: puts `email.requested` on the bus, from Relay.
pub struct BusMailer {
    publisher: Arc<dyn EventPublisher>,
}

impl BusMailer {
    pub fn new(publisher: Arc<dyn EventPublisher>) -> Self {
        Self { publisher }
    }
}

#[async_trait]
impl Mailer for BusMailer {
    async fn request_mail(&self, organization_id: &str, request: &MailRequest) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let event = requested_event(id, RELAY_SOURCE, organization_id, None, request, Utc::now());
        match self.publisher.publish(std::slice::from_ref(&event)).await.into_iter().next() {
            Some(Err(e)) => Err(StoreError::new("events:PutEvents", e)),
            _ => Ok(id),
        }
    }
}

/// What `POST /v1/emails` talks to.
#[derive(Clone)]
pub struct IntakePorts {
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub log: Arc<dyn MailLog>,
    pub publisher: Arc<dyn EventPublisher>,
    pub metrics: Arc<dyn Metrics>,
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub idempotency_ttl_secs: i64,
    pub default_lock_ms: i64,
    /// Keys the message ids derived from idempotency keys.
    pub id_key: Vec<u8>,
    pub retention: Retention,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self { idempotency_ttl_secs: 3 * 24 * 3600, default_lock_ms: 30_000, id_key: Vec::new(), retention: Retention::default() }
    }
}

/// `POST /v1/emails`.
pub struct MailIntake {
    ports: IntakePorts,
    config: IntakeConfig,
    idempotency: Idempotency,
}

impl MailIntake {
    pub fn new(ports: IntakePorts, config: IntakeConfig) -> Self {
        let idempotency = Idempotency {
            store: ports.idempotency.clone(),
            ttl_secs: config.idempotency_ttl_secs,
            default_lock_ms: config.default_lock_ms,
        };
        Self { ports, config, idempotency }
    }

    /// Checks, logs and queues one mail; 202 `{messageId, status}`.
    pub async fn request(
        &self,
        caller: &ApiKey,
        body: &Value,
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
        deadline_ms: Option<i64>,
    ) -> Reply {
        let reply = self.checked(caller, body, idempotency_key, now, deadline_ms).await;
        let metric = match reply.status {
            _ if reply.replayed => metrics::IDEMPOTENT_REPLAYS,
            503 => metrics::UNAVAILABLE,
            400..=499 => metrics::REQUESTS_REJECTED,
            _ => return reply,
        };
        self.ports.metrics.increment(&[], metric);
        reply
    }

    async fn checked(&self, caller: &ApiKey, body: &Value, key: Option<&str>, now: DateTime<Utc>, deadline_ms: Option<i64>) -> Reply {
        let product = match idempotent::product_of(caller, "send mail") {
            Ok(p) => p,
            Err(p) => return p.into(),
        };
        // Mail keys are their own family: the same key may name an event and a mail.
        let scoped = match idempotent::scope(&format!("{}:emails", caller.principal()), key) {
            Ok(s) => s,
            Err(p) => return p.into(),
        };
        let Some(obj) = body.as_object() else {
            return Problem::new(ProblemKind::InvalidRequest, "the body must be a JSON object").into();
        };
        let mut fields = obj.clone();
        let mut errors = Vec::new();
        let organization_id = match fields.remove("organizationId") {
            Some(Value::String(s)) if is_identifier(&s) => s,
            _ => {
                errors.push(field(
                    "organizationId",
                    "is required: the organisation the mail is sent for (1 to 128 letters, digits, '-', '_', '.' or ':')",
                ));
                String::new()
            }
        };
        let correlation_id = match fields.remove("correlationId") {
            None => None,
            Some(Value::String(s)) if (1..=256).contains(&s.chars().count()) => Some(s),
            Some(_) => {
                errors.push(field("correlationId", "a string of 1 to 256 characters"));
                None
            }
        };
        let request = match parse_request(&fields, product) {
            Ok(r) if errors.is_empty() => r,
            Ok(_) => return invalid(errors, "fix the fields named in errors"),
            Err(RequestError::Invalid(more)) => {
                errors.extend(more);
                return invalid(errors, "fix the fields named in errors");
            }
            Err(RequestError::WrongSender { own, asked }) => {
                return Problem::new(
                    ProblemKind::Forbidden,
                    format!("this key sends as {:?} and may not send as {asked:?}; a product mails only from its own address", own.name()),
                )
                .into();
            }
            Err(RequestError::NoSender(p)) => {
                return Problem::new(
                    ProblemKind::Forbidden,
                    format!("product {p:?} has no mail sender; senders are recruitiq, paylinq, nexus and system (portal)"),
                )
                .into();
            }
        };
        if let Content::Template { name, data } = &request.content {
            if let Err(e) = mail_template::render(request.sender, name, data) {
                return render_problem(request.sender.name(), name, e).into();
            }
        }

        if requested_event(Uuid::nil(), product, &organization_id, correlation_id.clone(), &request, now).to_json().len()
            > MAX_REQUEST_EVENT_BYTES
        {
            return invalid(
                vec![field("html", "the mail is too large")],
                "the mail's parts and data come to more than 240 KiB; send a shorter mail",
            );
        }
        let request_hash = idempotency::request_hash(ROUTE, body);
        let mut id = match &scoped {
            Some(k) => idempotency::derived_event_id(&self.config.id_key, k, 0),
            None => Uuid::new_v4(),
        };
        let lock = scoped.as_deref().map(|k| self.idempotency.new_lock(k, request_hash.clone(), now, deadline_ms));
        if let Some(lock) = &lock {
            match self.ports.idempotency.lock_and_store(lock, &[], now.timestamp_millis()).await {
                Ok(()) => {}
                Err(crate::ports::WriteError::Store(e)) => {
                    tracing::error!(error = %e, "taking the idempotency lock failed");
                    return Problem::unavailable("Relay could not queue the mail; retry with the same Idempotency-Key", RETRY_AFTER_SECS)
                        .into();
                }
                Err(_) => return self.idempotency.after_lost_race(lock, now).await,
            }
        }

        let retention = self.config.retention;
        let recipients = MailRecipients {
            recipients: request.recipients.clone(),
            reply_to: request.reply_to.clone(),
            expires_at: now.timestamp() + retention.addresses_secs,
        };
        // The entry is the mail function's record of the message, so once a publish has been
        // tried it is never deleted: the publish may have gone through. A retry of this very
        // request finds it (same fingerprint) and publishes again, which the mail function
        // deduplicates; a different request under a key whose record lapsed gets a new id.
        for _ in 0..2 {
            let mut message = MailMessage::queued(id, &organization_id, &request, now, now.timestamp() + retention.log_secs);
            message.request_hash = Some(request_hash.clone());
            match self.ports.log.create_message(&message, &recipients).await {
                Ok(true) => break,
                Ok(false) => match self.ports.log.get_message(id, now.timestamp()).await {
                    Ok(Some(existing)) if existing.request_hash.as_deref() == Some(request_hash.as_str()) => {
                        if existing.status.is_final() {
                            // Queued and handled before: the retry is told how it went, and nothing
                            // is sent again.
                            let reply = accepted(id, existing.status, existing.created_at);
                            self.finish(scoped.as_deref(), &reply).await;
                            return reply;
                        }
                        // The first try may have logged the entry but not its addresses.
                        if let Err(e) = self.ports.log.put_recipients(id, &recipients).await {
                            return self.unavailable(scoped.as_deref(), e).await;
                        }
                        break;
                    }
                    Ok(_) => id = Uuid::new_v4(),
                    Err(e) => return self.unavailable(scoped.as_deref(), e).await,
                },
                Err(e) => return self.unavailable(scoped.as_deref(), e).await,
            }
        }
        let event = requested_event(id, product, &organization_id, correlation_id, &request, now);
        if let Some(Err(e)) = self.ports.publisher.publish(std::slice::from_ref(&event)).await.into_iter().next() {
            tracing::error!(message_id = %id, error = %e, "queueing the mail failed; the key is released for a retry");
            self.release(scoped.as_deref()).await;
            return Problem::unavailable("Relay could not queue the mail; retry with the same Idempotency-Key", RETRY_AFTER_SECS).into();
        }
        tracing::info!(message_id = %id, sender = request.sender.name(), template = request.template_name().unwrap_or(""), recipients = request.recipients.count(), "mail queued");
        let reply = accepted(id, MailStatus::Queued, now);
        self.finish(scoped.as_deref(), &reply).await;
        reply
    }

    async fn finish(&self, key: Option<&str>, reply: &Reply) {
        if let Some(k) = key {
            self.idempotency.finish(k, reply).await;
        }
    }

    /// Frees the key after a failure, so the client's retry runs again.
    async fn release(&self, key: Option<&str>) {
        if let Some(k) = key {
            self.idempotency.release(k, &[]).await;
        }
    }

    async fn unavailable(&self, key: Option<&str>, e: StoreError) -> Reply {
        tracing::error!(error = %e, "writing the message log failed");
        self.release(key).await;
        Problem::unavailable("Relay could not queue the mail; retry with the same Idempotency-Key", RETRY_AFTER_SECS).into()
    }
}

/// The 202: the message id, and where the message stands (`queued`, unless a retry finds it
/// already handled).
fn accepted(id: Uuid, status: MailStatus, at: DateTime<Utc>) -> Reply {
    Reply::json(202, &json!({"messageId": id, "status": status, "receivedAt": at}))
}

fn field(name: &str, message: &str) -> ProblemField {
    ProblemField { field: name.into(), message: message.into() }
}

fn invalid(errors: Vec<ProblemField>, detail: &str) -> Reply {
    let mut p = Problem::new(ProblemKind::InvalidEmail, detail);
    p.errors = errors;
    p.into()
}

/// The 422 for a template that cannot be rendered with the data given.
pub fn render_problem(sender: &str, name: &str, e: RenderError) -> Problem {
    match e {
        RenderError::UnknownTemplate { available } => {
            let mut p =
                Problem::new(ProblemKind::InvalidEmail, format!("{sender} has no template {name:?}; it has {}", available.join(", ")));
            p.errors = vec![field("template", "unknown template")];
            p
        }
        RenderError::MissingVariables(missing) => {
            let mut p =
                Problem::new(ProblemKind::InvalidEmail, format!("template {name:?} needs data it was not given: {}", missing.join(", ")));
            p.errors = missing.iter().map(|m| field(&format!("data.{m}"), "is required by the template")).collect();
            p
        }
        RenderError::Invalid(msg) => {
            let mut p = Problem::new(ProblemKind::InvalidEmail, format!("template {name:?} could not be rendered with this data: {msg}"));
            p.errors = vec![field("data", "does not fit the template")];
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::memory::{MemoryBus, MemoryEvents, MemoryMailLog, RecordedMetrics};
    use crate::model::keys::KeyKind;

    fn intake(ttl_secs: i64) -> (MailIntake, Arc<MemoryMailLog>, Arc<MemoryBus>) {
        let (log, bus) = (Arc::new(MemoryMailLog::default()), Arc::new(MemoryBus::default()));
        let ports = IntakePorts {
            idempotency: Arc::new(MemoryEvents::default()),
            log: log.clone(),
            publisher: bus.clone(),
            metrics: Arc::new(RecordedMetrics::default()),
        };
        (MailIntake::new(ports, IntakeConfig { idempotency_ttl_secs: ttl_secs, ..IntakeConfig::default() }), log, bus)
    }

    fn nexus() -> ApiKey {
        ApiKey {
            kind: KeyKind::Product,
            product: Some("nexus".into()),
            organization_id: None,
            name: "n".into(),
            created_at: Utc::now(),
            disabled: false,
        }
    }

    fn mail(text: &str) -> Value {
        json!({"organizationId": "org-1", "to": "a@example.com", "subject": "s", "text": text})
    }

    fn id_of(r: &Reply) -> Uuid {
        serde_json::from_str::<Value>(&r.body).unwrap()["messageId"].as_str().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn a_publish_that_may_have_gone_through_keeps_the_entry_and_the_retry_publishes_the_same_id() {
        let (intake, log, bus) = intake(3600);
        let now = Utc::now();
        bus.fail.store(true, Ordering::SeqCst);
        let r = intake.request(&nexus(), &mail("t"), Some("k1"), now, None).await;
        assert_eq!(r.status, 503);
        bus.fail.store(false, Ordering::SeqCst);
        let r = intake.request(&nexus(), &mail("t"), Some("k1"), now, None).await;
        assert_eq!(r.status, 202);
        let id = id_of(&r);
        assert_eq!(bus.events().iter().map(|e| e.event_id).collect::<Vec<_>>(), [id]);
        assert_eq!(log.get_message(id, now.timestamp()).await.unwrap().unwrap().status, MailStatus::Queued);
    }

    #[tokio::test]
    async fn a_key_reused_after_its_record_lapsed_names_a_new_message_unless_the_request_is_the_same() {
        let (intake, log, bus) = intake(0);
        let now = Utc::now();
        let first = id_of(&intake.request(&nexus(), &mail("one"), Some("k2"), now, None).await);
        // The mail was handled: the same request again is answered with it and sends nothing.
        let mut m = log.get_message(first, now.timestamp()).await.unwrap().unwrap();
        m.status = MailStatus::Sent;
        m.version += 1;
        assert!(log.put_message(&m, m.version - 1).await.unwrap());
        let later = now + chrono::Duration::seconds(5);
        let again = intake.request(&nexus(), &mail("one"), Some("k2"), later, None).await;
        assert_eq!((again.status, id_of(&again)), (202, first));
        assert_eq!(serde_json::from_str::<Value>(&again.body).unwrap()["status"], "sent", "told how it went");
        assert_eq!(bus.count(), 1, "not queued again");
        // Another request under the lapsed key is a new message, not the old one's id.
        let other = intake.request(&nexus(), &mail("two"), Some("k2"), later, None).await;
        assert_eq!(other.status, 202);
        assert_ne!(id_of(&other), first);
        assert_eq!(bus.count(), 2);
    }
}
