//! The provisioning workflow over its ports: a tenant moved from step to step, each step
//! checkpointed on the tenant's record before the next begins.
//!
//! Why no side effect happens twice, whatever is redelivered or killed:
//! - one handler moves a tenant at a time (a lease on the record); every write names the
//!   version it read;
//! - each step is idempotent on its own: the licence is deterministic; a shared slot is taken by
//!   a conditional write and a resumed placement first looks for the slot it already holds; a
//!   dedicated VPS's order is noted before it goes out and is never sent again once noted (the
//!   VPS is found by the order's marker instead); the cloud-config is written to the same key;
//!   the deploy agent is keyed by tenant; e-mail and events carry ids derived from the tenant.
//! - waiting (a VPS installing, an instance not yet healthy) is a message put back on the queue
//!   with a delay, never a sleep in the handler.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::licence::LicenceKey;
use super::tenant::{Failure, Step, StepStatus, Tenant, TenantRequest, TenantStatus, Wake};
use crate::metrics::{Metric, Metrics, PROVISIONING_FAILED, STEP_DURATION, TENANTS_PROVISIONED};
use crate::model::envelope::{EventEnvelope, RELAY_SOURCE};
use crate::ports::provision::{DeployAgent, FleetStore, HealthProbe, HostingProvider, ProvisionQueue, TenantIntegrations, TenantStore};
use crate::ports::{BlobWriter, EventPublisher, StoreError};

#[derive(Clone)]
pub struct ProvisionPorts {
    pub tenants: Arc<dyn TenantStore>,
    pub fleet: Arc<dyn FleetStore>,
    pub provider: Arc<dyn HostingProvider>,
    pub agent: Arc<dyn DeployAgent>,
    pub probe: Arc<dyn HealthProbe>,
    /// Where each tenant's cloud-config is kept.
    pub files: Arc<dyn BlobWriter>,
    pub integrations: Arc<dyn TenantIntegrations>,
    /// `tenant.*` events, and the welcome mail's `email.requested`.
    pub bus: Arc<dyn EventPublisher>,
    pub queue: Arc<dyn ProvisionQueue>,
    pub metrics: Arc<dyn Metrics>,
}

pub struct ProvisionConfig {
    /// `tenants.example.com`: a tenant is `https://{slug}.{tenant_domain}`.
    pub tenant_domain: String,
    /// The health check's URL, `{slug}` and `{domain}` filled in.
    pub health_url: String,
    /// The tenant application's container image.
    pub image: String,
    /// The address Let's Encrypt mails about a tenant's certificate.
    pub certificate_email: String,
    pub licence: Arc<LicenceKey>,
    /// How often a dedicated VPS is polled while it installs, and how long it may take.
    pub vps_poll: Duration,
    pub vps_deadline: Duration,
    /// The health check's first wait (doubling, at most a minute), and how long it may take.
    pub health_first_wait: Duration,
    pub health_deadline: Duration,
    /// Tries of a step whose remote call fails transiently, before the workflow fails.
    pub max_attempts: u32,
    /// How long a handler holds a tenant (longer than the function's timeout).
    pub lease: Duration,
}

/// Why a message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A store, the bus or the queue failed: the message comes back and the step is tried again.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the bus refused an event: {0}")]
    Publish(String),
    /// The provider or an agent did not do what releasing a tenant needs: the message comes back.
    #[error("{0}")]
    Remote(String),
    /// The message can never be handled (bad input, a request conflicting with the tenant's).
    #[error("{0}")]
    Refused(String),
}

/// What a step did.
pub(crate) enum StepOutcome {
    Done(Option<String>),
    /// Not finished: come back after the delay (counted against the step's deadline).
    Wait {
        delay: Duration,
        note: String,
        deadline: Duration,
    },
    /// A remote call failed: try again later, up to `max_attempts`.
    Retry(String),
    /// The step cannot succeed: the workflow fails with this reason.
    Fail(String),
}

pub struct Provisioner {
    pub(crate) ports: ProvisionPorts,
    pub(crate) config: ProvisionConfig,
}

impl Provisioner {
    pub fn new(ports: ProvisionPorts, config: ProvisionConfig) -> Self {
        Self { ports, config }
    }

    pub fn tenant_url(&self, slug: &str) -> String {
        format!("https://{slug}.{}", self.config.tenant_domain)
    }

    /// An `organization.created` (or an operator's request): the tenant recorded once, then
    /// moved as far as it goes. A replayed request changes nothing; another request under an
    /// existing tenant's id is refused.
    pub async fn request(&self, request: TenantRequest, now: DateTime<Utc>) -> Result<Tenant, ProvisionError> {
        if let Some((field, why)) = request.problems().into_iter().next() {
            return Err(ProvisionError::Refused(format!("{field}: {why}")));
        }
        let tenant = Tenant::new(request.clone(), self.tenant_url(&request.slug), now);
        if !self.ports.tenants.create_tenant(&tenant).await? {
            let Some(existing) = self.ports.tenants.get_tenant(tenant.id()).await? else {
                return Err(ProvisionError::Refused(format!(
                    "slug {} is another tenant's; {} is not provisioned",
                    request.slug,
                    tenant.id()
                )));
            };
            if existing.request != request {
                return Err(ProvisionError::Refused(format!("tenant {} exists with another request; this one is ignored", tenant.id())));
            }
        }
        self.advance(tenant.id(), None, now).await
    }

    /// Moves the tenant as far as it goes now: step after step until one waits, fails or the
    /// workflow ends. Each call holds the tenant's lease under a name of its own (two copies of
    /// one message delivered at once are two holders), so one handler moves a tenant at a time.
    /// A tenant another handler holds is come back to shortly: the holder may be about to
    /// finish, and what this message asked for (a retry, a deprovisioning) must not be lost.
    ///
    /// `wake` is the continuation id the message carries (none for a request): a message that is
    /// not the continuation the tenant expects, while that one is pending, does nothing.
    pub async fn advance(&self, id: &str, wake: Option<&str>, now: DateTime<Utc>) -> Result<Tenant, ProvisionError> {
        let tenants = &self.ports.tenants;
        let holder = Uuid::new_v4().to_string();
        let until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        if !tenants.lease(id, &holder, until, now).await? {
            let Some(tenant) = tenants.get_tenant(id).await? else { return Err(ProvisionError::Refused(format!("no tenant {id}"))) };
            // Always back, under its own wake: the holder may be about to save this very message's
            // id as the wake it waits for. Whether it may act is decided under the lease.
            tracing::info!(tenant = id, "tenant is being moved by another handler; coming back to it");
            self.ports.queue.resume_later(id, wake, BUSY_RETRY).await?;
            return Ok(tenant);
        }
        let result = self.run(id, wake, now).await;
        // A lease left behind (a crash) expires by itself; release it now so the next message need not wait.
        let _ = tenants.release_lease(id, &holder).await;
        result
    }

    async fn run(&self, id: &str, wake: Option<&str>, now: DateTime<Utc>) -> Result<Tenant, ProvisionError> {
        let mut first = true;
        let clock = std::time::Instant::now();
        loop {
            let Some(mut tenant) = self.ports.tenants.get_tenant(id).await? else {
                return Err(ProvisionError::Refused(format!("no tenant {id}")));
            };
            if std::mem::take(&mut first) && !Wake::admits(tenant.wake.as_ref(), wake, now) {
                tracing::info!(tenant = id, "a stray message: the tenant waits for another continuation");
                return Ok(tenant);
            }
            match tenant.status {
                TenantStatus::Provisioning => {}
                TenantStatus::Deprovisioning => return self.deprovision(tenant, now).await,
                TenantStatus::Failed if tenant.release_pending => return self.finish_failure(tenant, now).await,
                _ => return Ok(tenant),
            }
            let Some(step) = tenant.next_step() else { return Ok(tenant) };
            // Each step's own times: `now` is when the message came, and a step can take seconds.
            let began = now + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default();
            let outcome = self.step(&mut tenant, step, began).await?;
            let ended = now + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default();
            let go_on = self.apply(&mut tenant, step, outcome, began, ended).await?;
            if !go_on {
                return Ok(tenant);
            }
        }
    }

    /// Checkpoints what a step did; true if the workflow goes straight on to the next step.
    async fn apply(
        &self,
        tenant: &mut Tenant,
        step: Step,
        outcome: StepOutcome,
        began: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, ProvisionError> {
        let state = tenant.step_mut(step);
        state.started_at.get_or_insert(began);
        state.attempts += 1;
        let (go_on, resume) = match outcome {
            StepOutcome::Done(note) => {
                state.status = StepStatus::Done;
                state.errors = 0;
                state.finished_at = Some(now);
                state.last_error = None;
                state.note = note.or(state.note.take());
                let took = (now - state.started_at.unwrap_or(now)).to_std().unwrap_or_default();
                self.ports.metrics.record(&[("Step", step.name())], &[Metric::millis(STEP_DURATION, took)]);
                if step == Step::Active {
                    tenant.status = TenantStatus::Active;
                    tenant.failure = None;
                    self.ports.metrics.increment(&[], TENANTS_PROVISIONED);
                }
                (step != Step::Active, None)
            }
            StepOutcome::Wait { delay, note, deadline } => {
                let waited = (now - state.started_at.unwrap_or(now)).to_std().unwrap_or_default();
                if waited > deadline {
                    return self
                        .fail(tenant, step, format!("{note}, still after {} minutes", deadline.as_secs() / 60), now)
                        .await
                        .map(|_| false);
                }
                state.status = StepStatus::Running;
                state.errors = 0;
                state.note = Some(note);
                (false, Some(delay))
            }
            StepOutcome::Retry(error) => {
                state.errors += 1;
                state.status = StepStatus::Running;
                state.last_error = Some(error.clone());
                if state.errors >= self.config.max_attempts {
                    let reason = format!("failed {} times in a row; last: {error}", state.errors);
                    return self.fail(tenant, step, reason, now).await.map(|_| false);
                }
                let backoff = Duration::from_secs(5 * 2u64.pow(state.errors.min(6))).min(Duration::from_secs(300));
                (false, Some(backoff))
            }
            StepOutcome::Fail(reason) => return self.fail(tenant, step, reason, now).await.map(|_| false),
        };
        if let Some(delay) = resume {
            self.wake_later(tenant, delay, now).await?;
        }
        self.save(tenant, now).await?;
        Ok(go_on)
    }

    /// Sends the tenant's next continuation, then notes it on the tenant (saved by the caller).
    /// Sent first: if the save fails, the message in hand comes back and still matches the
    /// tenant, and the one sent does nothing until the old wake is overdue; then whichever of
    /// the two comes first moves the tenant and the other finds itself superseded.
    pub(crate) async fn wake_later(&self, tenant: &mut Tenant, delay: Duration, now: DateTime<Utc>) -> Result<(), ProvisionError> {
        let wake = Wake::new(now, delay);
        self.ports.queue.resume_later(tenant.id(), Some(&wake.id), delay).await?;
        tenant.wake = Some(wake);
        Ok(())
    }

    /// Writes the record over the version it read (the lease makes a conflict unexpected: it
    /// means an operator acted meanwhile, and the message is handled again from the new state).
    pub(crate) async fn save(&self, tenant: &mut Tenant, now: DateTime<Utc>) -> Result<(), ProvisionError> {
        tenant.version += 1;
        tenant.updated_at = now;
        if self.ports.tenants.save_tenant(tenant).await? {
            Ok(())
        } else {
            Err(StoreError::new("save_tenant", format!("tenant {} changed meanwhile", tenant.id())).into())
        }
    }

    /// Ends the workflow as failed, in two checkpoints: first the failure (so no step runs
    /// again, whatever is redelivered), then, once what the tenant took is released (a shared
    /// slot given back, a dedicated VPS stopped and kept for inspection) and
    /// `tenant.provisioning_failed` said where and why, the release as done. A crash between
    /// the two finishes the release on the next message.
    async fn fail(&self, tenant: &mut Tenant, step: Step, reason: String, now: DateTime<Utc>) -> Result<(), ProvisionError> {
        tracing::warn!(tenant = tenant.id(), step = step.name(), reason = %reason, "provisioning failed");
        let state = tenant.step_mut(step);
        state.status = StepStatus::Failed;
        state.last_error = Some(reason.clone());
        state.finished_at = Some(now);
        tenant.status = TenantStatus::Failed;
        tenant.failures += 1;
        tenant.failure = Some(Failure { step, reason, at: now });
        tenant.release_pending = true;
        self.save(tenant, now).await?;
        // Service alone, as the alarm and the dashboard read it (the step is in the event and the record).
        self.ports.metrics.increment(&[], PROVISIONING_FAILED);
        *tenant = self.finish_failure(tenant.clone(), now).await?;
        Ok(())
    }

    /// The second half of a failure: release, announce (an id per failure), checkpoint.
    async fn finish_failure(&self, mut tenant: Tenant, now: DateTime<Utc>) -> Result<Tenant, ProvisionError> {
        self.release(&mut tenant).await?;
        self.announce(&tenant, "tenant.provisioning_failed", &format!("failed:{}", tenant.failures), now).await?;
        tenant.release_pending = false;
        self.save(&mut tenant, now).await?;
        Ok(tenant)
    }

    /// Publishes a `tenant.*` event with an id derived from the tenant and `what`.
    pub(crate) async fn announce(&self, tenant: &Tenant, event_type: &str, what: &str, now: DateTime<Utc>) -> Result<(), ProvisionError> {
        let mut payload = serde_json::Map::new();
        payload.insert("organizationId".into(), json!(tenant.id()));
        payload.insert("slug".into(), json!(tenant.request.slug));
        payload.insert("instanceUrl".into(), json!(tenant.url));
        payload.insert("status".into(), json!(tenant.status));
        if let Some(f) = &tenant.failure {
            payload.insert("step".into(), json!(f.step));
            payload.insert("reason".into(), json!(f.reason));
        }
        if let Some(p) = &tenant.placement {
            payload.insert("vpsName".into(), json!(p.vps_name));
        }
        let event = EventEnvelope {
            event_id: tenant_event_id(tenant.id(), what),
            event_type: event_type.into(),
            event_version: "1.0".into(),
            source_product: RELAY_SOURCE.into(),
            organization_id: tenant.id().to_string(),
            timestamp: now,
            correlation_id: None,
            payload: Some(payload),
            payload_ref: None,
        };
        for outcome in self.ports.bus.publish(&[event]).await {
            outcome.map_err(|e| ProvisionError::Publish(e.0))?;
        }
        Ok(())
    }
}

/// How soon a message for a tenant another handler holds comes back.
const BUSY_RETRY: Duration = Duration::from_secs(20);

/// An id derived from the tenant and what it names, so a repeat is the same event or mail.
pub fn tenant_event_id(tenant: &str, what: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("relay:tenant:{tenant}:{what}").as_bytes())
}

pub fn status_name(status: TenantStatus) -> &'static str {
    match status {
        TenantStatus::Provisioning => "provisioning",
        TenantStatus::Active => "active",
        TenantStatus::Failed => "failed",
        TenantStatus::Deprovisioning => "deprovisioning",
        TenantStatus::Deprovisioned => "deprovisioned",
    }
}
