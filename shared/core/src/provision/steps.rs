//! What each provisioning step does, what a failure releases, and deprovisioning. Every step
//! can run again after a crash at any point and does nothing twice (see [`super::workflow`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map};

use super::cloud_init::{env_file, render, CloudInitContext};
use super::fleet::{least_loaded, Vps, VpsStatus};
use super::tenant::{DeploymentType, Placement, Step, Tenant, TenantStatus};
use super::workflow::{tenant_event_id, ProvisionError, Provisioner, StepOutcome};
use crate::mail::request::requested_event;
use crate::model::envelope::RELAY_SOURCE;
use crate::model::mail::MailRequest;
use crate::model::subscription::SEED_INTEGRATIONS;
use crate::ports::provision::{RemoteError, VpsOrder};

/// A remote call's error as a step's outcome: transient ones are tried again, others end the workflow.
fn remote(what: &str, e: RemoteError) -> StepOutcome {
    match e.transient {
        true => StepOutcome::Retry(format!("{what}: {}", e.message)),
        false => StepOutcome::Fail(format!("{what}: {}", e.message)),
    }
}

impl Provisioner {
    pub(crate) async fn step(&self, tenant: &mut Tenant, step: Step, now: DateTime<Utc>) -> Result<StepOutcome, ProvisionError> {
        match step {
            Step::Licence => {
                let (licence, token) = self.config.licence.issue(tenant);
                tenant.licence = Some(token);
                Ok(StepOutcome::Done(Some(format!("{} seats, {}, until {}", licence.seats, licence.tier, licence.expires_at.date_naive()))))
            }
            Step::Placement => match tenant.request.deployment_type {
                DeploymentType::Shared => self.place_shared(tenant).await,
                DeploymentType::Dedicated => self.place_dedicated(tenant, now).await,
            },
            Step::Deploy => self.deploy(tenant).await,
            Step::Health => {
                let url = self.config.health_url.replace("{slug}", &tenant.request.slug).replace("{domain}", &self.config.tenant_domain);
                let tries = tenant.step(Step::Health).attempts.min(4);
                Ok(match self.ports.probe.check(&url).await {
                    Ok(()) => StepOutcome::Done(Some(format!("healthy at {url}"))),
                    Err(e) => StepOutcome::Wait {
                        delay: (self.config.health_first_wait * 2u32.pow(tries)).min(Duration::from_secs(60)),
                        note: format!("{url} is not healthy yet: {}", e.message),
                        deadline: self.config.health_deadline,
                    },
                })
            }
            Step::Integrations => {
                let has = |p: &str| tenant.request.products.iter().any(|x| x == p);
                let pairs: Vec<(&str, &str)> =
                    SEED_INTEGRATIONS.iter().filter(|(s, t, _)| has(s) && has(t)).map(|(s, t, _)| (*s, *t)).collect();
                // Many tenants switch on the same integration at once: a write that lost the race is
                // tried again with the step's backoff, not by failing the whole message.
                let notes = match self.ports.integrations.switch_on(tenant.id(), &pairs).await {
                    Ok(notes) => notes,
                    Err(e) => return Ok(StepOutcome::Retry(format!("switching integrations on: {e}"))),
                };
                Ok(StepOutcome::Done(Some(match notes.is_empty() {
                    true => "none: no two of the tenant's products integrate".into(),
                    false => notes.join("; "),
                })))
            }
            Step::Welcome => {
                let r = &tenant.request;
                let mut data = Map::new();
                data.insert("contactName".into(), json!(r.name));
                data.insert("organizationName".into(), json!(r.name));
                data.insert("tenantUrl".into(), json!(tenant.url));
                data.insert("products".into(), json!(r.products));
                let mail = MailRequest::system(&r.contact_email, "welcome", data);
                let id = tenant_event_id(tenant.id(), "welcome");
                let event = requested_event(id, RELAY_SOURCE, tenant.id(), None, &mail, now);
                for outcome in self.ports.bus.publish(&[event]).await {
                    outcome.map_err(|e| ProvisionError::Publish(e.0))?;
                }
                Ok(StepOutcome::Done(Some(format!("welcome mail to {}", r.contact_email))))
            }
            Step::Active => {
                tenant.status = TenantStatus::Active;
                self.announce(tenant, "tenant.provisioned", &format!("provisioned:{}", tenant.failures), now).await?;
                Ok(StepOutcome::Done(Some(format!("live at {}", tenant.url))))
            }
        }
    }

    /// A slot on the least-loaded open shared VPS, taken by a conditional write; a slot this
    /// tenant already holds (taken before a crash) is the placement.
    async fn place_shared(&self, tenant: &mut Tenant) -> Result<StepOutcome, ProvisionError> {
        let id = tenant.id().to_string();
        let fleet = self.ports.fleet.list_vps().await?;
        if let Some(held) = fleet.iter().find(|v| v.deployment_type == DeploymentType::Shared && v.tenants.contains(&id)) {
            tenant.placement = Some(Placement { vps_name: held.name.clone(), deployment_type: DeploymentType::Shared });
            return Ok(StepOutcome::Done(Some(format!("a slot on {}", held.name))));
        }
        for vps in least_loaded(&fleet) {
            if self.ports.fleet.take_slot(&vps.name, &id).await? {
                tenant.placement = Some(Placement { vps_name: vps.name.clone(), deployment_type: DeploymentType::Shared });
                return Ok(StepOutcome::Done(Some(format!("a slot on {}", vps.name))));
            }
        }
        let shared = fleet.iter().filter(|v| v.deployment_type == DeploymentType::Shared).count();
        let draining = fleet.iter().filter(|v| v.deployment_type == DeploymentType::Shared && v.status == VpsStatus::Draining).count();
        Ok(StepOutcome::Fail(format!(
            "no capacity: every shared VPS is full or draining ({shared} shared, {draining} draining); add or undrain one, then retry"
        )))
    }

    /// A VPS of its own, ordered once through the provider, then polled until it runs.
    async fn place_dedicated(&self, tenant: &mut Tenant, now: DateTime<Utc>) -> Result<StepOutcome, ProvisionError> {
        let poll = |note: String| StepOutcome::Wait { delay: self.config.vps_poll, note, deadline: self.config.vps_deadline };
        let found = match &tenant.placement {
            Some(p) => match self.ports.provider.vps(&p.vps_name).await {
                Ok(v) => v,
                Err(e) => return Ok(remote(&format!("reading VPS {}", p.vps_name), e)),
            },
            None => match self.ports.provider.find_vps(&tenant.order_marker()).await {
                Ok(Some(v)) => {
                    tenant.placement = Some(Placement { vps_name: v.name.clone(), deployment_type: DeploymentType::Dedicated });
                    v
                }
                Ok(None) if tenant.vps_ordered_at.is_some() => {
                    return Ok(poll(format!("ordered at {}; waiting for the provider to list it", tenant.vps_ordered_at.unwrap_or(now))))
                }
                Ok(None) => return self.order(tenant, now).await,
                Err(e) => return Ok(remote("listing VPSs", e)),
            },
        };
        if found.locked {
            return Ok(poll(format!("VPS {} is busy (an action runs on it)", found.name)));
        }
        match found.status.as_str() {
            "running" => {
                let vps = Vps {
                    name: found.name.clone(),
                    ip: found.ip.clone().unwrap_or_default(),
                    hostname: Some(tenant.request.slug.clone()),
                    deployment_type: DeploymentType::Dedicated,
                    organization_id: Some(tenant.id().to_string()),
                    location: None,
                    max_tenants: 1,
                    tenants: vec![tenant.id().to_string()],
                    status: VpsStatus::Active,
                    usage: None,
                    deploy_agent_url: None,
                    created_at: now,
                };
                self.ports.fleet.add_vps(&vps).await?;
                Ok(StepOutcome::Done(Some(format!("VPS {} runs at {}", found.name, found.ip.unwrap_or_default()))))
            }
            "stopped" => match self.ports.provider.start_vps(&found.name).await {
                Ok(()) => Ok(poll(format!("starting VPS {}", found.name))),
                Err(e) => Ok(remote(&format!("starting VPS {}", found.name), e)),
            },
            status => Ok(poll(format!("VPS {} is {status}", found.name))),
        }
    }

    /// Notes the order on the tenant, then sends it: once noted, it is never sent again. An
    /// order the provider refused (4xx) was not placed, so the note is taken back.
    async fn order(&self, tenant: &mut Tenant, now: DateTime<Utc>) -> Result<StepOutcome, ProvisionError> {
        tenant.vps_ordered_at = Some(now);
        self.save(tenant, now).await?;
        let order = VpsOrder {
            product: tenant.request.tier.vps_product().into(),
            hostname: tenant.request.slug.clone(),
            description: tenant.order_marker(),
            cloud_init: self.cloud_init(tenant),
        };
        match self.ports.provider.order_vps(&order).await {
            Ok(()) => Ok(StepOutcome::Wait {
                delay: self.config.vps_poll.min(Duration::from_secs(10)),
                note: format!("ordered a {}", order.product),
                deadline: self.config.vps_deadline,
            }),
            Err(e) if !e.transient => {
                tenant.vps_ordered_at = None;
                Ok(StepOutcome::Fail(format!("ordering a {}: {}", order.product, e.message)))
            }
            // Sent, and answered with an error: whether it was placed is unknown, so the
            // workflow looks for it (until the deadline) rather than order a second VPS.
            Err(e) => Ok(StepOutcome::Wait {
                delay: self.config.vps_poll,
                note: format!("ordered a {}, answered {}; looking for it", order.product, e.message),
                deadline: self.config.vps_deadline,
            }),
        }
    }

    fn cloud_init(&self, tenant: &Tenant) -> String {
        let ctx = CloudInitContext {
            tenant_domain: &self.config.tenant_domain,
            image: &self.config.image,
            certificate_email: &self.config.certificate_email,
        };
        render(tenant, tenant.licence.as_deref().unwrap_or_default(), &ctx)
    }

    /// The cloud-config kept beside the tenant; on a shared VPS, the deploy agent asked to run it.
    async fn deploy(&self, tenant: &mut Tenant) -> Result<StepOutcome, ProvisionError> {
        let key = format!("tenants/{}/cloud-init.yaml", tenant.id());
        self.ports.files.put_blob(&key, self.cloud_init(tenant).into_bytes(), "text/cloud-config").await?;
        let Some(placement) = tenant.placement.clone() else { return Ok(StepOutcome::Fail("deploying without a placement".into())) };
        if placement.deployment_type == DeploymentType::Dedicated {
            return Ok(StepOutcome::Done(Some(format!("cloud-config {key}, installed with the VPS"))));
        }
        let Some(agent) = self.ports.fleet.get_vps(&placement.vps_name).await?.and_then(|v| v.deploy_agent_url) else {
            return Ok(StepOutcome::Fail(format!("VPS {} has no deploy agent", placement.vps_name)));
        };
        let host = format!("{}.{}", tenant.request.slug, self.config.tenant_domain);
        let env = env_file(tenant, tenant.licence.as_deref().unwrap_or_default(), &host);
        Ok(match self.ports.agent.deploy(&agent, tenant.id(), &env).await {
            Ok(()) => StepOutcome::Done(Some(format!("deployed on {} by its agent", placement.vps_name))),
            Err(e) => remote(&format!("the deploy agent of {}", placement.vps_name), e),
        })
    }

    /// Where the tenant runs, even if a crash came between taking it and recording it: a
    /// shared slot that holds the tenant, or the VPS its order's marker names.
    async fn adopt_leftovers(&self, tenant: &mut Tenant) -> Result<(), ProvisionError> {
        if tenant.placement.is_some() {
            return Ok(());
        }
        let id = tenant.id().to_string();
        if let Some(held) =
            self.ports.fleet.list_vps().await?.into_iter().find(|v| v.deployment_type == DeploymentType::Shared && v.tenants.contains(&id))
        {
            tenant.placement = Some(Placement { vps_name: held.name, deployment_type: DeploymentType::Shared });
        } else if tenant.vps_ordered_at.is_some() {
            match self.ports.provider.find_vps(&tenant.order_marker()).await {
                Ok(Some(v)) => tenant.placement = Some(Placement { vps_name: v.name, deployment_type: DeploymentType::Dedicated }),
                Ok(None) => {}
                Err(e) => return Err(ProvisionError::Remote(format!("listing VPSs: {e}"))),
            }
        }
        Ok(())
    }

    /// What a failed workflow gives back: a shared slot and its deployment; a dedicated VPS is
    /// stopped and kept for inspection. An agent or provider that does not answer fails the
    /// message, which comes back (the tenant stays failed, its release pending).
    pub(crate) async fn release(&self, tenant: &mut Tenant) -> Result<(), ProvisionError> {
        self.adopt_leftovers(tenant).await?;
        let Some(placement) = tenant.placement.clone() else { return Ok(()) };
        match placement.deployment_type {
            DeploymentType::Shared => {
                if let Some(agent) = self.ports.fleet.get_vps(&placement.vps_name).await?.and_then(|v| v.deploy_agent_url) {
                    self.ports
                        .agent
                        .remove(&agent, tenant.id())
                        .await
                        .map_err(|e| ProvisionError::Remote(format!("removing the tenant: {e}")))?;
                }
                self.ports.fleet.release_slot(&placement.vps_name, tenant.id()).await?;
                tenant.placement = None;
            }
            DeploymentType::Dedicated => match self.ports.provider.stop_vps(&placement.vps_name).await {
                Ok(()) => {}
                Err(e) if e.gone => tenant.placement = None,
                Err(e) => return Err(ProvisionError::Remote(format!("stopping VPS {}: {e}", placement.vps_name))),
            },
        }
        Ok(())
    }

    /// Takes a tenant down: a dedicated VPS snapshotted then cancelled, a shared slot freed;
    /// then `tenant.deprovisioned`. A provider or agent that is busy or failing brings the
    /// tenant back later, with what it waits for noted on it; only a VPS the provider no longer
    /// has (404) counts as gone.
    pub(crate) async fn deprovision(&self, mut tenant: Tenant, now: DateTime<Utc>) -> Result<Tenant, ProvisionError> {
        self.adopt_leftovers(&mut tenant).await?;
        if let Some(p) = tenant.placement.clone() {
            let waiting = match p.deployment_type {
                DeploymentType::Dedicated => self.take_down_dedicated(&mut tenant, &p.vps_name, now).await?,
                DeploymentType::Shared => self.release(&mut tenant).await.err().map(|e| e.to_string()),
            };
            if let Some(note) = waiting {
                tracing::warn!(tenant = tenant.id(), note = %note, "deprovisioning waits");
                tenant.deprovision_note = Some(note);
                self.wake_later(&mut tenant, self.config.vps_poll, now).await?;
                self.save(&mut tenant, now).await?;
                return Ok(tenant);
            }
        }
        tenant.placement = None;
        tenant.deprovision_note = None;
        tenant.status = TenantStatus::Deprovisioned;
        self.announce(&tenant, "tenant.deprovisioned", "deprovisioned", now).await?;
        self.save(&mut tenant, now).await?;
        Ok(tenant)
    }

    /// Snapshot (asked once), wait while it is taken, cancel, leave the fleet. Answers what it
    /// waits for, or `None` when the VPS is gone.
    async fn take_down_dedicated(&self, tenant: &mut Tenant, name: &str, now: DateTime<Utc>) -> Result<Option<String>, ProvisionError> {
        if tenant.snapshot_requested_at.is_none() {
            tenant.snapshot_requested_at = Some(now);
            self.save(tenant, now).await?;
            let description = format!("relay: tenant {} deprovisioned {}", tenant.id(), now.date_naive());
            if let Err(e) = self.ports.provider.snapshot_vps(name, &description).await {
                if !e.gone {
                    // Saved at once: a record left saying "asked" would cancel without a snapshot.
                    tenant.snapshot_requested_at = None;
                    self.save(tenant, now).await?;
                    return Ok(Some(format!("asking for a snapshot of {name}: {e}")));
                }
            }
        }
        match self.ports.provider.vps(name).await {
            Ok(v) if v.locked => return Ok(Some(format!("VPS {name} is busy (its snapshot is being taken)"))),
            Ok(_) => {}
            Err(e) if e.gone => {}
            Err(e) => return Ok(Some(format!("reading VPS {name}: {e}"))),
        }
        match self.ports.provider.cancel_vps(name).await {
            Ok(()) => {}
            Err(e) if e.gone => {}
            Err(e) => return Ok(Some(format!("cancelling VPS {name}: {e}"))),
        }
        self.ports.fleet.remove_vps(name).await?;
        Ok(None)
    }
}
