//! The bottom layer: Relay's types and the pure rules over them. Nothing here imports a port
//! or a workflow, so every rule is testable without a store and every layer above can use it.
//!
//! - [`envelope`]: the one event shape on the bus, in the store and in webhooks.
//! - [`event`]: an accepted event as stored, and a page request.
//! - [`catalogue`] + [`validation`]: which event types Relay knows and what they must carry.
//! - [`idempotency`]: the IETF `Idempotency-Key` state machine (Powertools-style records).
//! - [`delivery`]: a pair's state and attempts, the retry schedule, retry messages.
//! - [`subscription`]: an organisation's endpoint, its secrets and the platform integrations.
//! - [`source`]: a registered webhook source as stored; [`request`]: what a source received.
//! - [`organization`]: an organisation's contact address, used only once verified.
//! - [`mail`]: mail requests, senders and addresses; [`mail_log`]: the message log and the
//!   suppression list; [`mail_template`]: the products' templates, rendered; [`mail_feedback`]: SES's bounces and complaints.
//! - [`keys`]: API keys, stored only as hashes.
//! - [`ids`]: every id Relay makes up.
//! - [`problem`] + [`reply`]: RFC 9457 problem documents and the HTTP answer.

pub mod catalogue;
pub mod delivery;
pub mod envelope;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod mail;
pub mod mail_feedback;
pub mod mail_log;
pub mod mail_template;
pub mod organization;
pub mod problem;
pub mod reply;
pub mod request;
pub mod source;
pub mod subscription;
pub mod validation;
