//! Mail, one path for every product: a request (by API or as `email.requested` on the bus)
//! becomes an entry in the message log and an event on the bus; a rule feeds the mail queue;
//! the mail function renders, checks the suppression list, stays within the account's send
//! rate, and sends through SES at most once per message id; SES's bounces and complaints come
//! back through the same queue and suppress the address.
//!
//! - [`request`]: `POST /v1/emails` (idempotent, checked and rendered before anything is
//!   queued) and [`request::BusMailer`], how Relay's own functions ask for mail.
//! - [`send`]: the mail function's work per queue message.
//! - [`log`]: what the API shows of the log and the suppression list.
//!
//! At most once: a send is claimed in the log (`sending`, with a lease) before SES is called,
//! and a redelivered message finds the claim. SES has no idempotency token, so a send whose
//! outcome is unknown (the request went out, no answer came) is marked failed, never repeated;
//! only refusals that prove nothing was sent (throttling, a 5xx before sending) are retried.

pub mod log;
pub mod request;
pub mod send;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::envelope::{EventEnvelope, RELAY_SOURCE};
use crate::model::mail_log::{MailMessage, MailStatus};

/// Retention of the message log and of the addresses in it.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// How long the log keeps a message's status and history.
    pub log_secs: i64,
    /// How long it keeps the message's addresses (shorter: personal data).
    pub addresses_secs: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self { log_secs: 30 * 24 * 3600, addresses_secs: 7 * 24 * 3600 }
    }
}

/// The event that announces a message's final status (`email.sent`, `email.failed`,
/// `email.bounced`, `email.complained`), or `None` for a status nobody is told about. Its id is
/// derived from the message and the status, so announcing twice is one event to consumers.
pub fn announcement(message: &MailMessage, now: DateTime<Utc>) -> Option<EventEnvelope> {
    let event_type = match message.status {
        MailStatus::Sent => "email.sent",
        MailStatus::Failed | MailStatus::Suppressed => "email.failed",
        MailStatus::Bounced => "email.bounced",
        MailStatus::Complained => "email.complained",
        MailStatus::Queued | MailStatus::Sending => return None,
    };
    let mut payload = Map::new();
    payload.insert("messageId".into(), Value::String(message.id.to_string()));
    payload.insert("status".into(), Value::String(message.status.name().into()));
    payload.insert("sender".into(), Value::String(message.sender.name().into()));
    if let Some(t) = &message.template {
        payload.insert("template".into(), Value::String(t.clone()));
    }
    if !message.tags.is_empty() {
        payload.insert("tags".into(), json!(message.tags));
    }
    payload.insert("recipientCount".into(), json!(message.recipient_count));
    if message.suppressed_recipients > 0 {
        payload.insert("suppressedRecipients".into(), json!(message.suppressed_recipients));
    }
    if let Some(r) = message.history.last().and_then(|h| h.detail.clone()) {
        payload.insert("reason".into(), Value::String(r));
    }
    Some(EventEnvelope {
        event_id: Uuid::new_v5(&message.id, message.status.name().as_bytes()),
        event_type: event_type.into(),
        event_version: "1.0".into(),
        source_product: RELAY_SOURCE.into(),
        organization_id: message.organization_id.clone(),
        timestamp: now,
        correlation_id: None,
        payload: Some(payload),
        payload_ref: None,
    })
}
