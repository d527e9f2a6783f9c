//! The `Idempotency-Key` handling every keyed write route shares (`POST /v1/events`, its batch
//! form, `POST /v1/emails`): making the lock, answering a request that lost the race for it
//! (replay, 422, 409), completing it with the response to replay, and releasing it after a
//! failure so the retry starts clean. The record's rules are [`crate::model::idempotency`].

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::idempotency::{self, Decision, Record, Status, StoredResponse};
use crate::model::keys::ApiKey;
use crate::model::problem::{Problem, ProblemField, ProblemKind};
use crate::model::reply::Reply;
use crate::ports::IdempotencyStore;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The idempotency records of one route family, over the store.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn IdempotencyStore>,
    /// How long a key is remembered (days, not minutes).
    pub ttl_secs: i64,
    /// How long an in-progress lock holds when the runtime gives no deadline.
    pub default_lock_ms: i64,
}

impl Idempotency {
    /// A new `INPROGRESS` lock for `key`: it holds until the invocation's deadline.
    pub fn new_lock(&self, key: &str, request_hash: String, now: DateTime<Utc>, deadline_ms: Option<i64>) -> Record {
        let now_ms = now.timestamp_millis();
        Record {
            key: key.to_string(),
            status: Status::Inprogress,
            request_hash,
            in_progress_expiry_ms: deadline_ms.unwrap_or(now_ms + self.default_lock_ms),
            expires_at: now.timestamp() + self.ttl_secs,
            response: None,
        }
    }

    /// The conditional lock failed: someone holds or completed the key. Read and decide.
    pub async fn after_lost_race(&self, lock: &Record, now: DateTime<Utc>) -> Reply {
        match self.store.get_record(&lock.key).await {
            Ok(existing) => match idempotency::decide(existing.as_ref(), &lock.request_hash, now.timestamp_millis()) {
                Decision::Replay(stored) => Reply::replay(stored),
                Decision::Mismatch => Problem::new(
                    ProblemKind::IdempotencyKeyReused,
                    "this Idempotency-Key was already used with a different request body; use a new key for a new request",
                )
                .into(),
                Decision::InProgress | Decision::Proceed => {
                    let mut p = Problem::new(
                        ProblemKind::RequestInProgress,
                        "a request with this Idempotency-Key is still being processed; retry shortly",
                    );
                    p.retry_after = Some(1);
                    p.into()
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "reading the idempotency record failed");
                Problem::unavailable("Relay could not check the Idempotency-Key; retry", RETRY_AFTER_SECS).into()
            }
        }
    }

    /// Marks the key completed with `reply`, to replay to repeats. A failure only means the
    /// lock lapses at its in-progress expiry.
    pub async fn finish(&self, key: &str, reply: &Reply) {
        let stored = StoredResponse { status: reply.status, body: reply.body.clone() };
        if let Err(e) = self.store.complete(key, &stored).await {
            tracing::error!(error = %e, "could not mark the idempotency record completed; it lapses at its in-progress expiry");
        }
    }

    /// Deletes the lock (and the events written with it), so a retry starts clean.
    pub async fn release(&self, key: &str, event_ids: &[uuid::Uuid]) {
        if let Err(e) = self.store.release(key, event_ids).await {
            // The lock still lapses at its in-progress expiry, so the key is not stuck for good.
            tracing::error!(error = %e, "could not release after a failure");
        }
    }
}

/// The caller's key scoped to `principal` (the caller, and for routes other than events the
/// route family), or the 400 explaining why the key is unusable.
pub fn scope(principal: &str, key: Option<&str>) -> Result<Option<String>, Problem> {
    key.map(|k| idempotency::scoped_key(principal, k)).transpose().map_err(|msg| {
        let mut p = Problem::new(ProblemKind::InvalidRequest, msg.clone());
        p.errors = vec![ProblemField { field: "Idempotency-Key".into(), message: msg }];
        p
    })
}

/// The product a key publishes as, or the 403 for any other key.
pub fn product_of<'a>(caller: &'a ApiKey, what: &str) -> Result<&'a str, Problem> {
    match (caller.kind, caller.product.as_deref()) {
        (crate::model::keys::KeyKind::Product, Some(p)) => Ok(p),
        _ => Err(Problem::new(ProblemKind::Forbidden, format!("only product keys may {what}; this is an organisation or operator key"))),
    }
}
