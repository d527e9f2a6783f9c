//! Incoming webhooks: proving a third party's call is genuine, recognising duplicates, and
//! turning the provider's event into an internal envelope.
//!
//! - [`verify`]: one verifier per provider scheme, over the exact raw bytes received.
//! - [`mapping`]: provider event types to internal event types.
//! - [`receive`]: the workflow (source lookup, verify, dedupe, publish, archive) over ports.

pub mod mapping;
pub mod receive;
pub mod sources;
pub mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The provider schemes Relay verifies. The URL path names one: `/webhooks/{provider}/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Stripe,
    StandardWebhooks,
    Svix,
    Github,
    Checkr,
    Linkedin,
    Mollie,
    Hmac,
}

impl Provider {
    pub const ALL: &'static [Provider] =
        &[Self::Stripe, Self::StandardWebhooks, Self::Svix, Self::Github, Self::Checkr, Self::Linkedin, Self::Mollie, Self::Hmac];

    pub fn slug(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Svix => "svix",
            Self::Github => "github",
            Self::Checkr => "checkr",
            Self::Linkedin => "linkedin",
            Self::Mollie => "mollie",
            Self::Hmac => "hmac",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.slug() == s)
    }
}

/// Per-source options; every field has a sensible default for its provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceOptions {
    /// `hmac`: the signature header (default `X-Webhook-Signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,
    /// `hmac`: `hex` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `hmac`: a prefix before the signature, such as `sha256=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_prefix: Option<String>,
    /// `hmac`: a header carrying a Unix timestamp; when set, the signed content is
    /// `{timestamp}.{body}` and the timestamp must be within the tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// `hmac`: a header carrying the sender's delivery id (for duplicate detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// Timestamp tolerance in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::model::validation::whole_number")]
    pub tolerance_seconds: Option<i64>,
    /// `mollie`: the next-generation webhook signing secret (encrypted at rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// A registered source, with its secret in the clear (only ever in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub organization_id: String,
    pub provider: Provider,
    /// The verification secret; for `mollie`, the organisation's Mollie API key.
    pub secret: String,
    pub options: SourceOptions,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The parts of an HTTP request a verifier may look at. Header names are lower case.
#[derive(Debug, Clone, Default)]
pub struct InboundRequest {
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    /// The exact bytes received (after API Gateway's base64, if any, is undone).
    pub body: Vec<u8>,
}

impl InboundRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// What a verified request says.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The provider's id for this event (Stripe `id`, `webhook-id`, `X-GitHub-Delivery`, ...).
    pub provider_event_id: String,
    /// The provider's event type (`payment_intent.succeeded`, `push`, `report.completed`, ...).
    pub provider_type: String,
    /// The event's data, as the internal payload.
    pub data: serde_json::Value,
    /// What duplicates are recognised by: always taken from what the signature covers (a signed
    /// id, or a digest of the signed content), never from an unsigned header, so a captured
    /// request replayed with new headers is still the same delivery.
    pub dedupe_id: String,
    /// A time inside the signed content (Unix seconds), where the scheme has one: a request
    /// older than the duplicate window is refused, since it could no longer be told from a replay.
    pub signed_at: Option<i64>,
}
