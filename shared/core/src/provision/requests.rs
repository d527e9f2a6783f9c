//! The operator API's use cases for tenants and the fleet (`/v1/tenants`, `/v1/vps`,
//! `/v1/licence-key`): each checks its input before it writes anything, and hands the workflow
//! its work through the provision queue (the API never runs a step itself).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::fleet::{is_vps_name, stats, Usage, Vps, VpsRegistration, VpsStatus};
use super::licence::LicencePublicKey;
use super::tenant::{StepState, Tenant, TenantRequest, TenantStatus, Wake};
use super::workflow::status_name;
use crate::manage::unavailable;
use crate::model::problem::{Problem, ProblemKind};
use crate::ports::provision::{FleetStore, ProvisionQueue, TenantStore};

#[derive(Clone)]
pub struct TenantApiPorts {
    pub tenants: Arc<dyn TenantStore>,
    pub fleet: Arc<dyn FleetStore>,
    pub queue: Arc<dyn ProvisionQueue>,
}

pub struct TenantApi {
    ports: TenantApiPorts,
    /// `tenants.example`: a tenant is `https://{slug}.{domain}`.
    tenant_domain: String,
    licence: LicencePublicKey,
}

fn invalid(why: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::InvalidRequest, why)
}

impl TenantApi {
    pub fn new(ports: TenantApiPorts, tenant_domain: String, licence: LicencePublicKey) -> Self {
        Self { ports, tenant_domain, licence }
    }

    /// `POST /v1/tenants`: recorded, then queued. The same request again answers the tenant as
    /// it stands; another request under an existing organisation's id is 409.
    pub async fn create(&self, body: Value, now: DateTime<Utc>) -> Result<Value, Problem> {
        let request: TenantRequest = serde_json::from_value(body).map_err(|e| invalid(format!("not a tenant request: {e}")))?;
        let wrong = request.problems();
        if !wrong.is_empty() {
            let list: Vec<String> = wrong.iter().map(|(f, why)| format!("{f}: {why}")).collect();
            return Err(invalid(list.join("; ")));
        }
        let url = format!("https://{}.{}", request.slug, self.tenant_domain);
        let tenant = Tenant::new(request, url, now);
        if !self.ports.tenants.create_tenant(&tenant).await.map_err(unavailable)? {
            let existing = self.ports.tenants.get_tenant(tenant.id()).await.map_err(unavailable)?;
            return match existing {
                // The same request again: also a client retrying a 503 whose message was never
                // sent, so the tenant is nudged (a stray if its continuation is on its way).
                Some(e) if e.request == tenant.request => {
                    self.nudge(&e, now).await?;
                    Ok(view(&e))
                }
                Some(_) => {
                    Err(Problem::new(ProblemKind::Conflict, format!("organisation {} has a tenant with another request", tenant.id())))
                }
                None => Err(Problem::new(ProblemKind::Conflict, format!("the slug {} is another tenant's", tenant.request.slug))),
            };
        }
        self.nudge(&tenant, now).await?;
        Ok(view(&tenant))
    }

    pub async fn get(&self, id: &str) -> Result<Value, Problem> {
        Ok(view(&self.tenant(id).await?))
    }

    pub async fn list(&self, cursor: Option<&str>, limit: u32) -> Result<Value, Problem> {
        let (tenants, next) = self.ports.tenants.list_tenants(cursor, limit.clamp(1, 100)).await.map_err(|e| match e.operation {
            "cursor" => invalid("cursor must be the nextCursor of a previous page"),
            _ => unavailable(e),
        })?;
        Ok(json!({"tenants": tenants.iter().map(view).collect::<Vec<_>>(), "nextCursor": next}))
    }

    /// `POST /v1/tenants/{id}/retry`: a failed tenant goes on from placement (its shared slot
    /// was given back; a stopped dedicated VPS is started); `reorder` also forgets a dedicated
    /// VPS that was ordered and never appeared, so a new one is ordered.
    pub async fn retry(&self, id: &str, reorder: bool, now: DateTime<Utc>) -> Result<Value, Problem> {
        let mut tenant = self.tenant(id).await?;
        // A retry whose message was lost (a 503 after the save), or a tenant whose messages all
        // went to the dead-letter queue, is provisioning with nothing due later: it is sent again.
        let lost = tenant.status == TenantStatus::Provisioning && tenant.wake.as_ref().is_none_or(|w| w.at <= now);
        if lost {
            self.nudge(&tenant, now).await?;
            return Ok(view(&tenant));
        }
        if tenant.status != TenantStatus::Failed {
            return Err(Problem::new(ProblemKind::Conflict, format!("tenant {id} is {}, not failed", status_name(tenant.status))));
        }
        if tenant.release_pending {
            self.nudge(&tenant, now).await?; // the release finishes on the next message
            return Err(Problem::unavailable(format!("tenant {id} is still giving back what it took; retry shortly"), 30));
        }
        for state in tenant.steps.iter_mut().filter(|s| s.step >= super::tenant::Step::Placement) {
            *state = StepState { last_error: state.last_error.take(), ..StepState::pending(state.step) };
        }
        if reorder && tenant.placement.is_none() {
            tenant.vps_ordered_at = None;
        }
        tenant.failure = None;
        tenant.status = TenantStatus::Provisioning;
        self.save_and_queue(&mut tenant, now).await
    }

    /// `DELETE /v1/tenants/{id}`: the workflow takes the tenant down (a dedicated VPS
    /// snapshotted and cancelled, a shared slot freed) and announces `tenant.deprovisioned`.
    pub async fn deprovision(&self, id: &str, now: DateTime<Utc>) -> Result<Value, Problem> {
        let mut tenant = self.tenant(id).await?;
        if matches!(tenant.status, TenantStatus::Deprovisioning | TenantStatus::Deprovisioned) {
            self.nudge(&tenant, now).await?;
            return Ok(view(&tenant));
        }
        tenant.status = TenantStatus::Deprovisioning;
        self.save_and_queue(&mut tenant, now).await
    }

    async fn tenant(&self, id: &str) -> Result<Tenant, Problem> {
        self.ports
            .tenants
            .get_tenant(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Problem::new(ProblemKind::NotFound, format!("no tenant {id}")))
    }

    /// Saves over the version read (409 if the workflow wrote meanwhile: the caller reads the
    /// tenant again) and queues the tenant for the workflow.
    async fn save_and_queue(&self, tenant: &mut Tenant, now: DateTime<Utc>) -> Result<Value, Problem> {
        tenant.version += 1;
        tenant.updated_at = now;
        // The operator's action supersedes whatever continuation was pending.
        tenant.wake = Some(Wake::new(now, Duration::ZERO));
        if !self.ports.tenants.save_tenant(tenant).await.map_err(unavailable)? {
            return Err(Problem::new(ProblemKind::Conflict, format!("tenant {} changed meanwhile; read it and try again", tenant.id())));
        }
        self.nudge(tenant, now).await?;
        Ok(view(tenant))
    }

    /// Queues the tenant for the workflow under the continuation it expects, if it has work
    /// left: harmless when that continuation is on its way too (whichever comes first moves the
    /// tenant and supersedes the other).
    /// Sent for when the continuation is due, never earlier: a nudge never runs a wait or a
    /// backoff early.
    async fn nudge(&self, tenant: &Tenant, now: DateTime<Utc>) -> Result<(), Problem> {
        let work = matches!(tenant.status, TenantStatus::Provisioning | TenantStatus::Deprovisioning) || tenant.release_pending;
        if work {
            let wake = tenant.wake.as_ref().map(|w| w.id.as_str());
            let delay = tenant.wake.as_ref().and_then(|w| (w.at - now).to_std().ok()).unwrap_or_default();
            self.ports.queue.resume_later(tenant.id(), wake, delay).await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// `POST /v1/vps`: a shared VPS joins the fleet (409 if its name is taken).
    pub async fn register_vps(&self, body: Value, now: DateTime<Utc>) -> Result<Value, Problem> {
        let registration: VpsRegistration = serde_json::from_value(body).map_err(|e| invalid(format!("not a VPS registration: {e}")))?;
        let wrong = registration.problems();
        if !wrong.is_empty() {
            return Err(invalid(wrong.iter().map(|(f, why)| format!("{f}: {why}")).collect::<Vec<_>>().join("; ")));
        }
        let vps = Vps::shared(registration, now);
        if !self.ports.fleet.add_vps(&vps).await.map_err(unavailable)? {
            return Err(Problem::new(ProblemKind::Conflict, format!("a VPS named {} is in the fleet", vps.name)));
        }
        Ok(json!(vps))
    }

    /// `PUT /v1/vps/{name}/health`: the VPS's usage, in percent.
    pub async fn report_health(&self, name: &str, body: Value, now: DateTime<Utc>) -> Result<Value, Problem> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Report {
            cpu: f64,
            memory: f64,
            disk: f64,
        }
        let r: Report = serde_json::from_value(body).map_err(|e| invalid(format!("not a health report: {e}")))?;
        let usage = Usage { cpu: r.cpu, memory: r.memory, disk: r.disk, at: now };
        if let Some(why) = usage.problems() {
            return Err(invalid(why));
        }
        self.found(name, self.ports.fleet.report_usage(name, &usage).await.map_err(unavailable)?)?;
        Ok(json!(usage))
    }

    /// `POST /v1/vps/{name}/drain` (`draining`) or `/undrain`: whether the VPS takes new tenants.
    pub async fn set_draining(&self, name: &str, draining: bool) -> Result<Value, Problem> {
        let status = if draining { VpsStatus::Draining } else { VpsStatus::Active };
        self.found(name, self.ports.fleet.set_vps_status(name, status).await.map_err(unavailable)?)?;
        Ok(json!({"name": name, "status": status}))
    }

    fn found(&self, name: &str, found: bool) -> Result<(), Problem> {
        match found && is_vps_name(name) {
            true => Ok(()),
            false => Err(Problem::new(ProblemKind::NotFound, format!("no VPS {name} in the fleet"))),
        }
    }

    /// `GET /v1/vps`: the fleet, with its statistics.
    pub async fn fleet(&self) -> Result<Value, Problem> {
        let fleet = self.ports.fleet.list_vps().await.map_err(unavailable)?;
        Ok(json!({"vps": fleet, "statistics": stats(&fleet)}))
    }

    /// `GET /v1/licence-key`: what a tenant's application verifies its licence with.
    pub fn licence_key(&self) -> Value {
        json!({
            "algorithm": "Ed25519", "keyId": self.licence.key_id(),
            "publicKey": self.licence.public_key(), "publicKeyPem": self.licence.public_key_pem(),
            "token": "base64url(licence JSON) '.' base64url(Ed25519 signature over those JSON bytes); check organizationId, host and expiresAt",
        })
    }
}

/// A tenant as the operator sees it: every step with its times, attempts and last error. The
/// licence itself is not shown (only that it was issued).
pub fn view(t: &Tenant) -> Value {
    let mut v = json!({
        "organizationId": t.id(), "name": t.request.name, "slug": t.request.slug, "tier": t.request.tier,
        "deploymentType": t.request.deployment_type, "contactEmail": t.request.contact_email, "products": t.request.products,
        "status": t.status, "url": t.url, "steps": t.steps, "licenceIssued": t.licence.is_some(),
        "createdAt": t.created_at, "updatedAt": t.updated_at,
    });
    if let Value::Object(map) = &mut v {
        if let Some(p) = &t.placement {
            map.insert("placement".into(), json!(p));
        }
        if let Some(f) = &t.failure {
            map.insert("failure".into(), json!(f));
        }
        if let Some(n) = &t.deprovision_note {
            map.insert("deprovisionNote".into(), json!(n));
        }
    }
    v
}
