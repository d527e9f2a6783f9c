//! In-memory implementations of the ports, a file per store, queue or sender (`events.rs` holds
//! idempotency records and events together, as they are written and undone together): fast unit tests of the
//! domain and CPU benchmarks with the AWS round trips taken out. Two ports have no double here:
//! the Mollie look-up's sits beside its only user (webhook-receive's tests), and the notifier
//! needs none (the real `ContactNotifier` runs over the mail and organisation doubles). They keep the adapters' semantics
//! (conditional locks and claims, versioned writes, all-or-nothing writes) so a test against
//! them means something; the end-to-end tests prove the same behaviour against the real wire
//! protocol. Built only for tests and for the `test-doubles` feature.

mod blobs;
mod bus;
mod dedupe;
mod deliveries;
mod events;
mod guard;
mod keys;
mod mail;
mod metrics;
mod organizations;
mod payroll;
mod provision;
mod queues;
mod rates;
mod requests;
mod sender;
mod sources;
mod subscriptions;

pub use blobs::MemoryBlobs;
pub use bus::MemoryBus;
pub use dedupe::MemoryDedupe;
pub use deliveries::MemoryDeliveries;
pub use events::MemoryEvents;
pub use keys::MemoryKeys;
pub use mail::{Mail, MemoryMailLog, MemoryMailer, MemoryTransport};
pub use metrics::RecordedMetrics;
pub use organizations::MemoryOrganizations;
pub use payroll::{MemoryChunkQueue, MemoryPayrollRuns, MemoryPayrollSchedules};
pub use provision::{
    provision_config, MemoryFleet, MemoryProvisionQueue, MemoryTenantIntegrations, MemoryTenants, RecordingAgent, ScriptedProbe,
    ScriptedProvider, TEST_LICENCE_SEED,
};
pub use queues::MemoryRetries;
pub use rates::MemoryRates;
pub use requests::MemoryRequests;
pub use sender::ScriptedSender;
pub use sources::MemorySources;
pub use subscriptions::MemorySubscriptions;
