//! The management API's use cases: what an organisation (or an operator) may do with its
//! subscriptions, sources, events and contact address, and the platform's integrations. Each
//! use case takes plain values and answers a domain value or the [`Problem`] to show; the
//! manage function only parses HTTP and renders views.
//!
//! Ownership is checked here, once: an organisation's request for something of another
//! organisation fails exactly as if it did not exist (404), so ids reveal nothing.
//!
//! - [`subscriptions`]: create, change, rotate, delete, recover, test.
//! - [`events`]: list, inspect (with every attempt), replay.
//! - [`sources`]: register, list, delete incoming webhook sources; each one's request log.
//! - [`integrations`]: the platform's product-to-product integrations (operators only).
//! - [`organization`]: the contact address, used only once its code comes back.
//! - [`dead_letters`]: every organisation's exhausted deliveries, replayable (operators only).
//! - [`stats`]: deliveries per hour over the last day (the console's chart).

pub mod dead_letters;
pub mod events;
pub mod integrations;
pub mod organization;
pub mod sources;
pub mod stats;
pub mod subscriptions;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::delivery::{PairKey, RetryKind, RetryMessage};
use crate::model::envelope::EventEnvelope;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::source::SealedSource;
use crate::model::subscription::Subscription;
use crate::ports::{
    BlobReader, DeliveryStore, EventStore, Mailer, OrganizationStore, RequestLog, RetryQueue, SourceStore, StoreError, SubscriptionStore,
};
use crate::secrets::SecretBox;

/// What the management API talks to, each built once per instance by the function.
#[derive(Clone)]
pub struct ManagePorts {
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub sources: Arc<dyn SourceStore>,
    pub events: Arc<dyn EventStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub organizations: Arc<dyn OrganizationStore>,
    /// Replays, recoveries and test sends are queued here for deliver.
    pub retries: Arc<dyn RetryQueue>,
    /// Sends the contact address's verification code.
    pub mailer: Arc<dyn Mailer>,
    /// Large payloads, to show an event whole.
    pub blobs: Arc<dyn BlobReader>,
    /// What each source received.
    pub requests: Arc<dyn RequestLog>,
    /// The raw requests webhook-receive archived, to show an accepted call's body.
    pub archive: Arc<dyn BlobReader>,
}

/// How the management API behaves.
#[derive(Debug, Clone)]
pub struct ManageConfig {
    /// Seals new signing and source secrets.
    pub secrets: SecretBox,
    /// How long a rotated-out secret keeps signing.
    pub rotation_overlap: chrono::Duration,
}

impl ManageConfig {
    pub fn new(secrets: SecretBox) -> Self {
        Self { secrets, rotation_overlap: chrono::Duration::hours(24) }
    }
}

/// The management use cases over their ports.
pub struct Manage {
    ports: ManagePorts,
    config: ManageConfig,
}

impl Manage {
    pub fn new(ports: ManagePorts, config: ManageConfig) -> Self {
        Self { ports, config }
    }

    /// Reopens one pair for attempt `attempt` and queues it now (replay and recover).
    /// `Ok(false)`: a send of that pair is in flight, so it is left alone.
    async fn resend(
        &self,
        envelope: &EventEnvelope,
        subscription_id: &str,
        organization_id: &str,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Result<bool, Problem> {
        let pair = PairKey { event_id: envelope.event_id, subscription_id };
        let reopened = self.ports.deliveries.reopen(pair, organization_id, attempt, now.timestamp_millis()).await;
        if !reopened.map_err(unavailable)? {
            return Ok(false);
        }
        self.queue_now(&RetryMessage::new(RetryKind::Retry, envelope, subscription_id, attempt, now)).await?;
        Ok(true)
    }

    /// Hands a message to deliver at once.
    async fn queue_now(&self, message: &RetryMessage) -> Result<(), Problem> {
        self.ports.retries.schedule(message, std::time::Duration::ZERO).await.map_err(unavailable)
    }
}

/// The store could not answer: 503 with `Retry-After`, the cause logged, not shown.
pub fn unavailable(e: StoreError) -> Problem {
    tracing::error!(error = %e, "store failed");
    Problem::unavailable("Relay could not reach its store; retry", 2)
}

/// A 404 naming what was asked for, in the caller's organisation.
fn not_found(what: &str, id: &str) -> Problem {
    Problem::new(ProblemKind::NotFound, format!("no {what} {id} in your organisation"))
}

/// Something an organisation owns: listed oldest first, and found only by its owner.
trait Owned {
    /// What it is called in a 404 ("subscription", "source").
    const NAME: &'static str;
    fn id(&self) -> &str;
    fn owner(&self) -> &str;
    fn created_at(&self) -> DateTime<Utc>;
}

/// Subscriptions and sources keep their id, owner and creation time in fields of the same names.
macro_rules! impl_owned {
    ($type:ty, $name:literal) => {
        impl Owned for $type {
            const NAME: &'static str = $name;
            fn id(&self) -> &str {
                &self.id
            }
            fn owner(&self) -> &str {
                &self.organization_id
            }
            fn created_at(&self) -> DateTime<Utc> {
                self.created_at
            }
        }
    };
}

impl_owned!(Subscription, "subscription");
impl_owned!(SealedSource, "source");

/// A listing in a stable order: oldest first, ties by id.
fn oldest_first<T: Owned>(mut list: Vec<T>) -> Vec<T> {
    list.sort_by(|a, b| a.created_at().cmp(&b.created_at()).then_with(|| a.id().cmp(b.id())));
    list
}

/// What a look-up by `id` found, if the organisation owns it; otherwise the same 404 as for
/// nothing at all, so another organisation's ids reveal nothing.
fn owned<T: Owned>(found: Option<T>, organization_id: &str, id: &str) -> Result<T, Problem> {
    found.filter(|t| t.owner() == organization_id).ok_or_else(|| not_found(T::NAME, id))
}
