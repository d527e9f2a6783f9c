//! Relay's domain. Everything here is plain Rust: no AWS SDK, no Lambda types, so every rule can
//! be unit-tested in microseconds and every adapter can be swapped for a test double.
//!
//! Four layers and the test doubles; a module imports only from its own layer or the ones below
//! it, never upwards (`tests/layout.rs` in the workspace checks this, and that no two modules
//! import each other):
//!
//! 1. **Primitives**: [`crypto`] (HMAC and digests, for both signing directions), [`secrets`]
//!    (secrets sealed at rest), [`signing`] (Standard Webhooks signatures and secrets), [`ssrf`]
//!    (which addresses Relay may call).
//! 2. **Model**: [`model`], the types and the pure rules over them (envelope, validation,
//!    idempotency records, delivery records, subscriptions, sources, mail and its templates, ids,
//!    problems, replies);
//!    and the pure halves of incoming webhooks: [`webhooks::verify`], [`webhooks::mapping`],
//!    [`webhooks::sources`]; [`payroll`]'s rule tables, pay computation, SEPA file and PDF;
//!    [`provision`]'s tenants, licences, cloud-config and fleet.
//! 3. **Ports**: [`ports`], the traits the outside world implements (stores, bus, queues,
//!    mail, HTTP), and [`metrics`], the metric names and their port.
//! 4. **Workflows**, over `Arc<dyn Port>`s: [`auth`] (API keys), [`idempotent`] (the
//!    `Idempotency-Key` handling keyed routes share), [`ingest`] (exactly-once publish),
//!    [`delivery`] (signed, retried webhooks), [`webhooks::receive`] (verified incoming
//!    webhooks), [`manage`] (the management API's use cases), [`mail`] (mail requests, sending
//!    through SES at most once, bounces), [`notify`] (mail to an organisation's verified contact).
//! 5. **Test doubles**: [`memory`] (tests and benchmarks only) implements the ports in memory,
//!    one file per port.
//!
//! [`webhooks`] spans two layers: its types, [`webhooks::verify`], [`webhooks::mapping`] and
//! [`webhooks::sources`] are pure rules (model); [`webhooks::receive`] is the workflow.

pub mod crypto;
pub mod secrets;
pub mod signing;
pub mod ssrf;

pub mod model;
pub mod payroll;
pub mod provision;
pub mod webhooks;

pub mod metrics;
pub mod ports;

pub mod auth;
pub mod delivery;
pub mod idempotent;
pub mod ingest;
pub mod mail;
pub mod manage;
pub mod notify;

#[cfg(any(test, feature = "test-doubles"))]
pub mod memory;
