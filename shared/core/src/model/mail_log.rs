//! The message log's types: where a mail stands, what happened to it and when, the addresses
//! it went to (kept apart, for a shorter time), and the suppression list's entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::mail::{MailRequest, Recipients, Sender};

/// Where a message stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailStatus {
    Queued,
    Sending,
    Sent,
    Suppressed,
    Bounced,
    Complained,
    Failed,
}

impl MailStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Suppressed => "suppressed",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
            Self::Failed => "failed",
        }
    }

    /// Nothing more will be sent for a message in this state.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sending)
    }
}

/// One step in a message's life, for the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: MailStatus,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A message in the log. Holds no body and no address: the addresses live apart, for a shorter
/// time (see [`MailRecipients`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailMessage {
    pub id: Uuid,
    pub organization_id: String,
    pub sender: Sender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub recipient_count: usize,
    pub status: MailStatus,
    /// Sends tried so far.
    pub attempts: u32,
    /// While `sending`: until when (epoch ms) this attempt holds the message.
    #[serde(default)]
    pub lease_until_ms: i64,
    /// While `queued` after a failed try: not before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// SES's id for the sent message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// Recipients left out because they are on the suppression list.
    #[serde(default)]
    pub suppressed_recipients: usize,
    pub history: Vec<StatusChange>,
    /// The event announcing the latest final status is on the bus.
    #[serde(default)]
    pub announced: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When (epoch s) the log forgets the message.
    pub expires_at: i64,
    /// The fingerprint of the API request that made it (route and body), so a retry of that
    /// request finds it and a different request under a lapsed key does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    /// Bumped by every write; writes are conditional on it.
    #[serde(default)]
    pub version: u64,
}

impl MailMessage {
    pub fn queued(id: Uuid, organization_id: &str, request: &MailRequest, now: DateTime<Utc>, expires_at: i64) -> Self {
        Self {
            id,
            organization_id: organization_id.to_string(),
            sender: request.sender,
            template: request.template_name().map(str::to_string),
            tags: request.tags.clone(),
            recipient_count: request.recipients.count(),
            status: MailStatus::Queued,
            attempts: 0,
            lease_until_ms: 0,
            next_attempt_at: None,
            reason: None,
            provider_message_id: None,
            suppressed_recipients: 0,
            history: vec![StatusChange { status: MailStatus::Queued, at: now, detail: None }],
            announced: false,
            created_at: now,
            updated_at: now,
            expires_at,
            request_hash: None,
            version: 0,
        }
    }

    /// Moves to `status`, noting when and why.
    pub fn set(&mut self, status: MailStatus, now: DateTime<Utc>, detail: Option<String>) {
        self.status = status;
        self.updated_at = now;
        if status.is_final() {
            self.announced = false;
            self.lease_until_ms = 0;
            self.next_attempt_at = None;
            if status == MailStatus::Failed || status == MailStatus::Suppressed {
                self.reason = detail.clone();
            }
        }
        self.history.push(StatusChange { status, at: now, detail });
    }
}

/// A message's addresses, kept apart from the log entry and for a shorter time (a retention
/// setting): the log says what happened long after it stops saying to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailRecipients {
    #[serde(flatten)]
    pub recipients: Recipients,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<String>,
    /// When (epoch s) the addresses are forgotten.
    pub expires_at: i64,
}

/// Why an address is on the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuppressionReason {
    Bounce,
    Complaint,
}

/// An address Relay no longer mails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    /// Lower case (see [`suppression_key`]).
    pub address: String,
    pub reason: SuppressionReason,
    pub suppressed_at: DateTime<Utc>,
    /// The message whose bounce or complaint put it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    /// SES's bounce sub-type or complaint feedback type, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The log, the events and tracing never hold an address: a provider's words that quote one
/// (SES's refusals do) are kept without it.
/// `text` with every e-mail address replaced by `<address>`.
pub fn redact_addresses(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c))
        .map(|word| {
            let end =
                word.len() - word.chars().last().filter(|c| c.is_whitespace() || "<>()[],;:\"'".contains(*c)).map_or(0, char::len_utf8);
            let (core, tail) = word.split_at(end);
            if core.contains('@') && core.split('@').all(|p| !p.is_empty()) {
                format!("<address>{tail}")
            } else {
                word.to_string()
            }
        })
        .collect()
}
