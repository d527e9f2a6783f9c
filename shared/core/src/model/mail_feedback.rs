//! What SES tells Relay about a sent message after the fact: bounces and complaints, published
//! by the configuration set to EventBridge's default bus (`source` `aws.ses`, the documented
//! event record in `detail`). Hard bounces and complaints put the address on the suppression
//! list; soft (transient) bounces only note it, as SES's own guidance asks.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::mail::MESSAGE_ID_TAG;
use crate::model::mail_log::{MailMessage, MailStatus};

/// The EventBridge `source` of SES's events.
pub const SES_SOURCE: &str = "aws.ses";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    /// A permanent bounce: the address does not take mail. Suppress it.
    HardBounce,
    /// Transient or undetermined: the mailbox was full, the server busy. Note it only.
    SoftBounce,
    /// The recipient marked the mail as spam. Suppress it.
    Complaint,
}

/// One bounce or complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub kind: FeedbackKind,
    /// The addresses it is about (as SES wrote them).
    pub recipients: Vec<String>,
    /// Relay's message, from the tag Relay sent it with (none for mail sent another way).
    pub message_id: Option<Uuid>,
    /// SES's bounce sub-type or complaint feedback type.
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    event_type: Option<String>,
    /// Feedback notifications sent without a configuration set name the field this way.
    notification_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    mail: Option<MailPart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    bounce_sub_type: Option<String>,
    bounced_recipients: Vec<Addressee>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    complained_recipients: Vec<Addressee>,
    complaint_feedback_type: Option<String>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Addressee {
    email_address: String,
}

#[derive(Deserialize)]
struct MailPart {
    #[serde(default)]
    tags: std::collections::HashMap<String, Vec<String>>,
}

/// Reads an SES event record (EventBridge's `detail`). `Ok(None)`: a kind of event Relay does
/// not act on (a delivery, an open). `Err`: not an SES event record at all.
pub fn parse_feedback(detail: &Value, now: DateTime<Utc>) -> Result<Option<Feedback>, String> {
    let record: Record = serde_json::from_value(detail.clone()).map_err(|e| format!("not an SES event record: {e}"))?;
    let kind = record.event_type.or(record.notification_type).unwrap_or_default();
    let message_id = record.mail.as_ref().and_then(|m| m.tags.get(MESSAGE_ID_TAG)).and_then(|v| v.first()).and_then(|id| id.parse().ok());
    match kind.as_str() {
        "Bounce" => {
            let b = record.bounce.ok_or("a Bounce record without its bounce object")?;
            Ok(Some(Feedback {
                kind: if b.bounce_type == "Permanent" { FeedbackKind::HardBounce } else { FeedbackKind::SoftBounce },
                recipients: b.bounced_recipients.into_iter().map(|r| r.email_address).collect(),
                message_id,
                detail: b.bounce_sub_type.map(|s| format!("{} ({s})", b.bounce_type)).or(Some(b.bounce_type)),
                at: b.timestamp.unwrap_or(now),
            }))
        }
        "Complaint" => {
            let c = record.complaint.ok_or("a Complaint record without its complaint object")?;
            Ok(Some(Feedback {
                kind: FeedbackKind::Complaint,
                recipients: c.complained_recipients.into_iter().map(|r| r.email_address).collect(),
                message_id,
                detail: c.complaint_feedback_type,
                at: c.timestamp.unwrap_or(now),
            }))
        }
        "" => Err("an SES event record names its eventType".into()),
        _ => Ok(None),
    }
}

/// The status feedback moves a message to: a hard bounce makes it `bounced`, a complaint
/// `complained` (it stays so); a soft bounce only notes.
pub fn next_status(message: &MailMessage, f: &Feedback) -> Option<MailStatus> {
    match (f.kind, message.status) {
        (FeedbackKind::Complaint, _) => Some(MailStatus::Complained),
        (FeedbackKind::HardBounce, MailStatus::Complained) => None,
        (FeedbackKind::HardBounce, _) => Some(MailStatus::Bounced),
        (FeedbackKind::SoftBounce, _) => None,
    }
}

/// The history line for a piece of feedback: counts and SES's words, never an address.
pub fn describe(f: &Feedback, recipient_count: usize) -> String {
    let what = match f.kind {
        FeedbackKind::HardBounce => "hard bounce",
        FeedbackKind::SoftBounce => "soft bounce (not suppressed)",
        FeedbackKind::Complaint => "complaint",
    };
    format!(
        "{what} for {} of {recipient_count} recipient(s){} at {}",
        f.recipients.len(),
        f.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
        f.at.to_rfc3339()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name);
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let body: Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
        body["detail"].clone()
    }

    #[test]
    fn the_documented_bounce_record_is_a_hard_bounce_of_its_message() {
        let f = parse_feedback(&fixture("mail-ses-bounce.json"), Utc::now()).unwrap().unwrap();
        assert_eq!(f.kind, FeedbackKind::HardBounce);
        assert_eq!(f.recipients, ["bounce@simulator.amazonses.com"]);
        assert_eq!(f.message_id, Some("0192f1a4-7c2e-7b3a-9f00-5e1d2c3b4a59".parse().unwrap()));
        assert_eq!(f.detail.as_deref(), Some("Permanent (General)"));
    }

    #[test]
    fn a_transient_bounce_is_soft_and_a_delivery_is_not_feedback() {
        let mut d = fixture("mail-ses-bounce.json");
        d["bounce"]["bounceType"] = "Transient".into();
        assert_eq!(parse_feedback(&d, Utc::now()).unwrap().unwrap().kind, FeedbackKind::SoftBounce);
        d["eventType"] = "Delivery".into();
        assert_eq!(parse_feedback(&d, Utc::now()).unwrap(), None);
        assert!(parse_feedback(&serde_json::json!({"x": 1}), Utc::now()).is_err());
    }

    #[test]
    fn a_complaint_names_who_complained() {
        let d = serde_json::json!({"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "c@example.com"}],
            "complaintFeedbackType": "abuse", "timestamp": "2026-11-24T10:00:00Z"}, "mail": {"tags": {}}});
        let f = parse_feedback(&d, Utc::now()).unwrap().unwrap();
        assert_eq!((f.kind, f.recipients, f.message_id), (FeedbackKind::Complaint, vec!["c@example.com".to_string()], None));
    }
}
