//! A delivery as data: each (event, subscription) pair's state and attempt log, the retry
//! schedule, the messages that carry a pair on (retries, dead letters) and the one request an
//! attempt sends. The workflow that moves a pair through these states is
//! [`crate::delivery`]; the store that keeps them is [`crate::ports::DeliveryStore`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use uuid::Uuid;

use crate::model::envelope::EventEnvelope;

/// How much of a response body an attempt keeps.
pub const EXCERPT_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Sending,
    Retrying,
    Delivered,
    Failed,
}

/// A subscription's recent activity: pairs whose state changed in a window, by how they stand
/// now, and the newest pair of all (whenever it was).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryActivity {
    pub delivered: u32,
    /// Retrying or given up.
    pub failed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<LastEvent>,
}

/// The newest event a subscription was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastEvent {
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub state: State,
}

/// One attempt, as shown in the attempt log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub number: u32,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// `timeout`, `connect`, `refused` (SSRF guard), `http` (non-2xx), ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
}

/// A pair's state and attempts, for `GET /v1/events/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub subscription_id: String,
    pub organization_id: String,
    pub state: State,
    pub attempts: Vec<Attempt>,
    pub updated_at: DateTime<Utc>,
    /// When the next attempt is due, for a pair that is retrying (the console shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Failed every attempt and listed in the dead letters (not shown to organisations).
    #[serde(skip)]
    pub dead_lettered: bool,
}

/// A pair that failed every attempt of the schedule and went to the dead-letter queue: what an
/// operator sees in `GET /v1/dead-letters`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub event_id: Uuid,
    /// Empty when the pair no longer holds its envelope.
    pub event_type: String,
    pub subscription_id: String,
    pub organization_id: String,
    pub exhausted_at: DateTime<Utc>,
    pub attempts: u32,
    /// The last attempt's status code, or its error kind when there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_kind: Option<String>,
}

/// Where a page of dead letters ends: the last pair's index key (when it was exhausted, as
/// stored, its event and its subscription), written `at~eventId~subscriptionId` with the time's
/// `+00:00` as `Z` (a `+` in a query string reads as a space). Any cursor of that shape is a
/// valid place to start (the page after it), made by Relay or not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadLetterCursor {
    pub at: String,
    pub event_id: String,
    pub subscription_id: String,
}

impl DeadLetterCursor {
    /// `None` unless `text` has the shape OpenAPI gives it.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('~');
        let (at, event_id, subscription_id) = (parts.next()?, parts.next()?, parts.next()?);
        let at_ok = (10..=40).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_digit() || b"TZ:.-".contains(&b));
        let event_ok = event_id.len() == 36 && event_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase() || b == b'-');
        let sub_ok = (1..=128).contains(&subscription_id.len())
            && subscription_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        (parts.next().is_none() && at_ok && event_ok && sub_ok).then(|| Self {
            at: at.strip_suffix('Z').map_or_else(|| at.to_string(), |t| format!("{t}+00:00")),
            event_id: event_id.to_string(),
            subscription_id: subscription_id.to_string(),
        })
    }
}

impl std::fmt::Display for DeadLetterCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.at.strip_suffix("+00:00").map_or_else(|| self.at.clone(), |t| format!("{t}Z"));
        write!(f, "{at}~{}~{}", self.event_id, self.subscription_id)
    }
}

/// A scheduled retry of one pair (the body of a retry-queue message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryMessage {
    pub kind: RetryKind,
    pub envelope: EventEnvelope,
    pub subscription_id: String,
    pub attempt: u32,
    pub not_before: DateTime<Utc>,
}

/// One outgoing request.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What happened to it.
#[derive(Debug, Clone, Default)]
pub struct SendResult {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub duration: Duration,
    pub excerpt: Option<String>,
    pub error_kind: Option<String>,
}

/// One (event, subscription) pair: the unit every delivery state is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairKey<'a> {
    pub event_id: Uuid,
    pub subscription_id: &'a str,
}

/// A claim of one attempt of a pair (see [`crate::ports::DeliveryStore::claim`]).
#[derive(Debug, Clone, Copy)]
pub struct AttemptClaim<'a> {
    /// The event; kept with the pair, so an event put on the bus directly can be replayed.
    pub event: &'a EventEnvelope,
    pub subscription_id: &'a str,
    /// Whose delivery it is (see [`crate::model::subscription::Subscription::delivered_for`]).
    pub organization_id: &'a str,
    pub attempt: u32,
    /// Until when the claim holds (epoch ms); a claim whose lease lapsed may be taken over.
    pub lease_until_ms: i64,
    pub now_ms: i64,
}

/// One attempt and the state it leaves its pair in (see [`crate::ports::DeliveryStore::record`]).
#[derive(Debug, Clone, Copy)]
pub struct AttemptOutcome<'a> {
    pub attempt: &'a Attempt,
    pub state: State,
    /// The attempt the pair waits for next (retrying) or ended with.
    pub next_attempt: u32,
    pub follow_up: FollowUp,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// This attempt is ours to send.
    Claimed,
    /// Not ours; the pair as found (`None` if it could not be read back).
    Refused(Option<PairStatus>),
}

/// A pair's state as stored, beyond its attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairStatus {
    pub state: State,
    /// The attempt the pair waits for (retrying) or ended with.
    pub attempt_no: u32,
    /// When the pending retry is due (epoch ms), for a pair that is retrying.
    pub retry_at_ms: Option<i64>,
    /// An exhausted pair whose dead letter may not have been sent yet.
    pub dead_letter_pending: bool,
    /// A pair whose endpoint answered 410 and whose subscription may not be disabled yet.
    pub disable_pending: bool,
    /// A retrying pair whose retry message may not have been sent yet.
    pub retry_pending: bool,
    /// When the pair's state was last written.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The message that carries a recorded state on, written with the state so a lost one is
/// found and sent again (see [`crate::ports::DeliveryStore::record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    None,
    /// A retry message due at this time (epoch ms).
    RetryAt(i64),
    /// A dead letter for the delivery DLQ.
    DeadLetter,
    /// Disabling the subscription (its endpoint answered 410 Gone).
    Disable,
}

/// Why a retry-queue message was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryKind {
    /// Send attempt `attempt` when it is due.
    Retry,
    /// In the dead-letter queue: every attempt failed.
    Exhausted,
}

impl RetryMessage {
    pub fn new(kind: RetryKind, envelope: &EventEnvelope, subscription_id: &str, attempt: u32, not_before: DateTime<Utc>) -> Self {
        Self { kind, envelope: envelope.clone(), subscription_id: subscription_id.to_string(), attempt, not_before }
    }
}

/// The retry schedule: delay before attempt 1, 2, ... (attempt 1 is immediate).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
    /// ± this fraction of each delay, so retries of many pairs do not arrive in lockstep.
    pub jitter: f64,
    /// The longest wait a `Retry-After` may impose.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27.5 hours in all.
    fn default() -> Self {
        let secs = [0, 5, 300, 1800, 7200, 18000, 36000, 36000];
        Self {
            delays: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: 0.1,
            max_retry_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// From `RELAY_RETRY_SCHEDULE` ("0,5,300,..." seconds; fractions allowed for tests).
    pub fn parse(spec: &str) -> Option<Self> {
        let delays: Option<Vec<Duration>> =
            spec.split(',').map(|s| s.trim().parse::<f64>().ok().filter(|v| *v >= 0.0).map(Duration::from_secs_f64)).collect();
        delays.filter(|d| !d.is_empty()).map(|delays| Self { delays, ..Self::default() })
    }

    pub fn attempts(&self) -> u32 {
        self.delays.len() as u32
    }

    /// The wait before attempt `next` (1-based), honouring `Retry-After`.
    pub fn delay_before(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        let base = self.delays.get(next as usize - 1).copied().unwrap_or_default();
        let jittered = if self.jitter > 0.0 && !base.is_zero() {
            base.mul_f64(1.0 + rand::rng().random_range(-self.jitter..=self.jitter))
        } else {
            base
        };
        match retry_after {
            Some(ra) => jittered.max(ra.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// The Standard Webhooks body: `{"type", "timestamp", "data"}`; `data` is the envelope, with
/// its payload inline (never an internal storage reference).
pub fn body(envelope: &EventEnvelope) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": envelope.event_type, "timestamp": envelope.timestamp, "data": envelope})).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_more_than_a_day_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let total: Duration = p.delays.iter().sum();
        assert!(total > Duration::from_secs(24 * 3600), "{total:?}");
        assert_eq!(p.delay_before(1, None), Duration::ZERO);
        let d = p.delay_before(2, None);
        assert!(d >= Duration::from_secs_f64(4.5) && d <= Duration::from_secs_f64(5.5), "{d:?}");
        assert!(p.delay_before(2, Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        assert!(p.delay_before(2, Some(Duration::from_secs(10 * 24 * 3600))) <= Duration::from_secs(24 * 3600));
        assert_eq!(RetryPolicy::parse("0,0.5,1").map(|p| p.attempts()), Some(3));
        assert!(RetryPolicy::parse("0,x").is_none());
    }

    #[test]
    fn a_dead_letter_cursor_reads_back_as_written_without_a_plus_and_refuses_other_shapes() {
        let c = DeadLetterCursor {
            at: "2026-11-24T11:36:37.123456+00:00".into(),
            event_id: "95c7c480-9a10-4397-b4ba-ac58eec12274".into(),
            subscription_id: "sub_gf7tpbuhjkmskmrz3jjc".into(),
        };
        let text = c.to_string();
        assert_eq!(text, "2026-11-24T11:36:37.123456Z~95c7c480-9a10-4397-b4ba-ac58eec12274~sub_gf7tpbuhjkmskmrz3jjc");
        assert_eq!(DeadLetterCursor::parse(&text), Some(c));
        for bad in ["", "x~y~z", &format!("{text}~more"), &text.replace("sub_", "sub#"), &text.replace("Z~", "+00:00~")] {
            assert_eq!(DeadLetterCursor::parse(bad), None, "{bad}");
        }
    }
}
