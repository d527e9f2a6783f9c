//! The event envelope (DESIGN.md §3). Field names are camelCase on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Payloads larger than this (serialised) travel by reference: an EventBridge entry holds at
/// most 256 KB in all, envelope and headers included.
pub const DEFAULT_INLINE_PAYLOAD_LIMIT: usize = 200 * 1024;

/// The `Source` Relay uses for its own operational events on the bus; products may not use it.
pub const RELAY_SOURCE: &str = "relay";

/// One domain event, as stored, published and delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: String,
    pub source_product: String,
    pub organization_id: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The payload object. `None` only when it travels by reference (see [`PayloadRef`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Map<String, serde_json::Value>>,
    /// Set instead of `payload` when the payload is too large for a bus entry or a DynamoDB
    /// item: consumers fetch it from the blob store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<PayloadRef>,
}

/// Where a large payload lives, with what a consumer needs to check it fetched the right bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadRef {
    pub bucket: String,
    pub key: String,
    pub size: usize,
    pub sha256: String,
}

impl PayloadRef {
    /// Are these the bytes the reference was made from (size and SHA-256)?
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() == self.size && crate::crypto::sha256_hex(bytes) == self.sha256
    }
}

impl EventEnvelope {
    /// The envelope as compact JSON. Serialising a struct of strings and JSON values cannot
    /// fail, so this never panics.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Moves a payload over `limit` bytes out of the envelope, leaving a reference to
    /// `bucket`/`payloads/<org>/<eventId>.json`; returns the key and bytes to store there
    /// (before the envelope is published).
    pub fn offload_if_large(mut self, limit: usize, bucket: &str) -> (Self, Option<(String, Vec<u8>)>) {
        let Some(payload) = &self.payload else { return (self, None) };
        let bytes = serde_json::to_vec(payload).unwrap_or_default();
        if bytes.len() <= limit {
            return (self, None);
        }
        let key = format!("payloads/{}/{}.json", self.organization_id, self.event_id);
        self.payload_ref =
            Some(PayloadRef { bucket: bucket.to_string(), key: key.clone(), size: bytes.len(), sha256: crate::crypto::sha256_hex(&bytes) });
        self.payload = None;
        (self, Some((key, bytes)))
    }
}
