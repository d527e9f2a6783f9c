//! What a webhook source received: one entry per call, accepted or not, so an organisation
//! debugging an integration sees what the provider sent and what Relay made of it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// What Relay made of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestOutcome {
    /// Verified and published as an event.
    Accepted,
    /// Verified, and the same delivery as an earlier call: nothing published again.
    Duplicate,
    /// Not verified or not acceptable (signature, age, size, method): nothing kept.
    Refused,
    /// A provider's handshake (a challenge answered, no event).
    Handshake,
    /// Verified but nothing to publish (a Mollie payment that is not paid).
    Ignored,
    /// Relay could not finish it (a store or the bus was unavailable); the provider retries.
    Failed,
}

impl RequestOutcome {
    /// Every outcome but an accepted call: anyone can cause them at will (a forged call, a
    /// replayed signed one, a LinkedIn handshake, an unsigned Mollie callback), so they are
    /// capped per source per minute and kept briefly, and a flood can neither run up the bill
    /// nor push the useful entries out. Accepted calls cost their sender a valid signature.
    pub fn is_noise(self) -> bool {
        self != Self::Accepted
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Refused => "refused",
            Self::Handshake => "handshake",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Accepted, Self::Duplicate, Self::Refused, Self::Handshake, Self::Ignored, Self::Failed]
            .into_iter()
            .find(|o| o.name() == name)
    }

    /// The query parameter's values.
    pub const NAMES: [&'static str; 6] = ["accepted", "duplicate", "refused", "handshake", "ignored", "failed"];
}

/// One call a source received, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRequest {
    /// `req_` and a UUIDv7: ordered by time, so the log reads newest first by id.
    pub id: String,
    #[serde(skip)]
    pub source_id: String,
    #[serde(skip)]
    pub organization_id: String,
    pub received_at: DateTime<Utc>,
    pub method: String,
    pub outcome: RequestOutcome,
    /// The HTTP status Relay answered.
    pub status: u16,
    /// Why it was refused, ignored or failed; never secret material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The body's size in bytes.
    pub size: u64,
    /// Where the raw request is archived (accepted calls only); never shown.
    #[serde(skip)]
    pub archive_key: Option<String>,
    /// When (epoch s) the entry lapses.
    #[serde(skip)]
    pub expires_at: i64,
}

/// The prefix of request ids.
pub const REQUEST_PREFIX: &str = "req_";

/// A new request id, ordered by `at`; within one process, ids of the same millisecond are
/// ordered too (UUIDv7's counter), so a log reads in the order the calls came.
pub fn new_request_id(at: DateTime<Utc>) -> String {
    static CONTEXT: std::sync::LazyLock<std::sync::Mutex<uuid::ContextV7>> =
        std::sync::LazyLock::new(|| std::sync::Mutex::new(uuid::ContextV7::new()));
    let context = CONTEXT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ts = uuid::Timestamp::from_unix(&*context, at.timestamp() as u64, at.timestamp_subsec_nanos());
    format!("{REQUEST_PREFIX}{}", Uuid::new_v7(ts).simple())
}

/// A page request over one source's log.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub source_id: String,
    pub outcome: Option<RequestOutcome>,
    pub cursor: Option<String>,
    pub limit: u32,
    /// Entries that lapsed before this (epoch s) are not shown, whether or not TTL removed them.
    pub now: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_outcomes_round_trip() {
        let t = DateTime::from_timestamp(1_800_000_000, 5_000_000).unwrap();
        let (a, b) = (new_request_id(t), new_request_id(t + chrono::Duration::milliseconds(1)));
        assert!(a.starts_with(REQUEST_PREFIX) && a < b, "{a} < {b}");
        let same: Vec<String> = (0..100).map(|_| new_request_id(t)).collect();
        assert!(same.windows(2).all(|w| w[0] < w[1]), "the same millisecond, in order");
        for name in RequestOutcome::NAMES {
            assert_eq!(RequestOutcome::parse(name).map(RequestOutcome::name), Some(name));
        }
        assert!(RequestOutcome::Refused.is_noise() && !RequestOutcome::Accepted.is_noise());
    }
}
