//! Relay's domain. Everything here is plain Rust: no AWS SDK, no Lambda types, so every rule can
//! be unit-tested in microseconds and every adapter can be swapped for a test double.
//!
//! - [`envelope`]: the one event shape on the bus, in the store and in webhooks.
//! - [`catalogue`] + [`validation`]: which event types Relay knows and what they must carry.
//! - [`idempotency`]: the IETF `Idempotency-Key` state machine (Powertools-style records).
//! - [`keys`]: API keys, stored only as hashes.
//! - [`problem`]: RFC 9457 problem documents.
//! - [`ports`]: the narrow traits the AWS adapters implement.
//! - [`ingest`]: the exactly-once ingest workflow over those ports.
//! - [`metrics`]: every metric Relay emits, and the port they are reported through.
//! - [`organization`]: an organisation's contact address, used only once verified.

pub mod auth;
pub mod catalogue;
pub mod delivery;
pub mod envelope;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod organization;
pub mod ports;
pub mod problem;
pub mod secrets;
pub mod signing;
pub mod ssrf;
pub mod subscriptions;
pub mod validation;
pub mod webhooks;

#[cfg(any(test, feature = "test-doubles"))]
pub mod memory;
