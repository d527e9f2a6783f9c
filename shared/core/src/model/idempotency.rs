//! The `Idempotency-Key` state machine (IETF draft, DESIGN.md §3), after the Powertools design:
//! a conditional put of an `INPROGRESS` lock whose in-progress expiry is the Lambda deadline, a
//! `COMPLETED` record holding the response, deletion on failure, and expiry decided from
//! timestamps (DynamoDB TTL only cleans up, late).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The longest `Idempotency-Key` Relay accepts.
pub const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Inprogress,
    Completed,
}

/// The response a completed request gave, replayed verbatim to repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// One idempotency record, keyed by the caller-scoped key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `<principal>#<Idempotency-Key>`: a key is scoped to its caller.
    pub key: String,
    pub status: Status,
    /// SHA-256 of the route and the canonical request body.
    pub request_hash: String,
    /// Until when (epoch ms) an `INPROGRESS` lock holds; after it another attempt may take over.
    pub in_progress_expiry_ms: i64,
    /// When (epoch s) the record stops counting, whatever TTL does.
    pub expires_at: i64,
    pub response: Option<StoredResponse>,
}

/// What to do with a request, given the record already stored under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No live record: take the lock and run.
    Proceed,
    /// Completed with the same request: replay its response.
    Replay(StoredResponse),
    /// The first request with this key is still running: 409.
    InProgress,
    /// The key was used for a different request: 422.
    Mismatch,
}

/// Decides from an existing record, checking expiry from timestamps.
pub fn decide(existing: Option<&Record>, request_hash: &str, now_ms: i64) -> Decision {
    let Some(r) = existing else {
        return Decision::Proceed;
    };
    if r.expires_at * 1000 <= now_ms {
        return Decision::Proceed;
    }
    if r.status == Status::Inprogress && r.in_progress_expiry_ms <= now_ms {
        return Decision::Proceed;
    }
    if r.request_hash != request_hash {
        return Decision::Mismatch;
    }
    match (&r.status, &r.response) {
        (Status::Completed, Some(resp)) => Decision::Replay(resp.clone()),
        _ => Decision::InProgress,
    }
}

/// Scopes a client's key to its caller, or explains why the key is unusable.
pub fn scoped_key(principal: &str, key: &str) -> Result<String, String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"));
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err("Idempotency-Key must be printable ASCII without spaces".into());
    }
    Ok(format!("{principal}#{key}"))
}

/// The fingerprint that tells "same request again" from "same key, other request". JSON is
/// canonicalised first (object keys sorted, no whitespace) so a re-serialised body still matches.
pub fn request_hash(route: &str, body: &Value) -> String {
    crate::crypto::sha256_hex_of(&[route.as_bytes(), b"\n", serde_json::to_string(body).unwrap_or_default().as_bytes()])
}

/// The `eventId` Relay assigns when the caller sends none: derived from the scoped key (and the
/// item's index in a batch), so every retry of one request yields the same id and any copy that
/// reaches the bus twice is recognisable downstream.
///
/// Keyed with a secret only Relay holds, so nobody can compute the id another caller's request
/// will get and take it first (which would make that request answer 409 for good).
pub fn derived_event_id(id_key: &[u8], scoped_key: &str, index: usize) -> Uuid {
    let mac = crate::crypto::hmac_sha256(id_key, &[scoped_key.as_bytes(), b"#", index.to_string().as_bytes()]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&mac[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(status: Status, hash: &str) -> Record {
        Record {
            key: "product:x#k".into(),
            status,
            request_hash: hash.into(),
            in_progress_expiry_ms: 10_000,
            expires_at: 100,
            response: (status == Status::Completed).then(|| StoredResponse { status: 202, body: "{}".into() }),
        }
    }

    #[test]
    fn state_machine() {
        assert_eq!(decide(None, "h", 0), Decision::Proceed);
        assert_eq!(decide(Some(&record(Status::Inprogress, "h")), "h", 5_000), Decision::InProgress);
        assert_eq!(decide(Some(&record(Status::Inprogress, "h")), "h", 10_000), Decision::Proceed, "lock expired");
        assert_eq!(decide(Some(&record(Status::Inprogress, "h")), "other", 5_000), Decision::Mismatch);
        assert!(matches!(decide(Some(&record(Status::Completed, "h")), "h", 50_000), Decision::Replay(_)));
        assert_eq!(decide(Some(&record(Status::Completed, "h")), "other", 50_000), Decision::Mismatch);
        assert_eq!(decide(Some(&record(Status::Completed, "h")), "h", 100_000), Decision::Proceed, "record expired");
    }

    #[test]
    fn hash_ignores_formatting_but_not_content_or_route() {
        let a: Value = serde_json::from_str(r#"{"b":1, "a":[1,2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(request_hash("r", &a), request_hash("r", &b));
        assert_ne!(request_hash("r", &a), request_hash("r", &json!({"a":[2,1],"b":1})));
        assert_ne!(request_hash("r", &a), request_hash("s", &a));
    }

    #[test]
    fn keys_are_scoped_and_checked() {
        assert_eq!(scoped_key("product:a", "k-1").as_deref(), Ok("product:a#k-1"));
        assert!(scoped_key("p", "").is_err());
        assert!(scoped_key("p", "has space").is_err());
        assert!(scoped_key("p", &"x".repeat(256)).is_err());
        assert_eq!(derived_event_id(b"key", "a#k", 0), derived_event_id(b"key", "a#k", 0));
        assert_ne!(derived_event_id(b"key", "a#k", 0), derived_event_id(b"key", "a#k", 1));
        assert_ne!(derived_event_id(b"key", "a#k", 0), derived_event_id(b"key", "b#k", 0));
        // Unpredictable without Relay's key: another product cannot compute it and take it first.
        assert_ne!(derived_event_id(b"key", "a#k", 0), derived_event_id(b"other", "a#k", 0));
    }
}
