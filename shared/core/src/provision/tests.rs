//! The provisioning workflow over in-memory ports: a shared and a dedicated tenant to `active`;
//! a handler killed before each checkpoint in turn, every message redelivered, with nothing done
//! twice; fifty tenants placed at once on twenty slots; a failure that releases what it took and
//! a retry that goes on; deprovisioning; bad and replayed requests.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::fleet::{Vps, VpsRegistration};
use super::licence::{self, LicenceKey};
use super::requests::{TenantApi, TenantApiPorts};
use super::tenant::{DeploymentType, Step, StepStatus, Tenant, TenantRequest, TenantStatus, Tier};
use super::workflow::{ProvisionError, ProvisionPorts, Provisioner};
use crate::memory::{
    provision_config, MemoryBlobs, MemoryBus, MemoryFleet, MemoryProvisionQueue, MemoryTenantIntegrations, MemoryTenants, RecordedMetrics,
    RecordingAgent, ScriptedProbe, ScriptedProvider, TEST_LICENCE_SEED,
};
use crate::metrics::{PROVISIONING_FAILED, TENANTS_PROVISIONED};
use crate::model::envelope::EventEnvelope;
use crate::ports::provision::{FleetStore, TenantStore};

pub(super) struct World {
    pub(super) p: Provisioner,
    pub(super) api: TenantApi,
    pub(super) tenants: Arc<MemoryTenants>,
    pub(super) fleet: Arc<MemoryFleet>,
    provider: Arc<ScriptedProvider>,
    agent: Arc<RecordingAgent>,
    probe: Arc<ScriptedProbe>,
    bus: Arc<MemoryBus>,
    pub(super) queue: Arc<MemoryProvisionQueue>,
    metrics: Arc<RecordedMetrics>,
    integrations: Arc<MemoryTenantIntegrations>,
    files: Arc<MemoryBlobs>,
}

pub(super) fn world(provider: ScriptedProvider) -> World {
    let (tenants, fleet, provider, agent, probe) = (
        Arc::new(MemoryTenants::default()),
        Arc::new(MemoryFleet::default()),
        Arc::new(provider),
        Arc::new(RecordingAgent::default()),
        Arc::new(ScriptedProbe::default()),
    );
    let (bus, queue, metrics, integrations, files) = (
        Arc::new(MemoryBus::default()),
        Arc::new(MemoryProvisionQueue::default()),
        Arc::new(RecordedMetrics::default()),
        Arc::new(MemoryTenantIntegrations::default()),
        Arc::new(MemoryBlobs::default()),
    );
    let ports = ProvisionPorts {
        tenants: tenants.clone(),
        fleet: fleet.clone(),
        provider: provider.clone(),
        agent: agent.clone(),
        probe: probe.clone(),
        files: files.clone(),
        integrations: integrations.clone(),
        bus: bus.clone(),
        queue: queue.clone(),
        metrics: metrics.clone(),
    };
    let config = provision_config();
    let api = TenantApi::new(
        TenantApiPorts { tenants: tenants.clone(), fleet: fleet.clone(), queue: queue.clone() },
        config.tenant_domain.clone(),
        config.licence.public(),
    );
    World { p: Provisioner::new(ports, config), api, tenants, fleet, provider, agent, probe, bus, queue, metrics, integrations, files }
}

pub(super) fn request(org: &str, deployment_type: DeploymentType) -> TenantRequest {
    TenantRequest {
        organization_id: org.into(),
        name: format!("{org} B.V."),
        slug: format!("t-{org}"),
        tier: Tier::Professional,
        deployment_type,
        contact_email: format!("it@{org}.example"),
        products: vec!["recruitiq".into(), "nexus".into()],
    }
}

pub(super) async fn shared_vps(w: &World, name: &str, max: u32) {
    let registration = VpsRegistration {
        name: name.into(),
        ip: "10.0.0.1".into(),
        hostname: None,
        location: Some("ams0".into()),
        max_tenants: Some(max),
        deploy_agent_url: format!("https://{name}.example/deploy"),
    };
    assert!(w.fleet.add_vps(&Vps::shared(registration, Utc::now())).await.unwrap());
}

impl World {
    /// Handles every queued resumption (each as its own message, the time moved on by its
    /// delay) until the queue is empty; a message that fails comes back. Answers the failures.
    pub(super) async fn drain(&self, mut now: DateTime<Utc>) -> usize {
        let mut failures = 0;
        for _ in 0..200 {
            let due = self.queue.take_messages();
            if due.is_empty() {
                return failures;
            }
            for (id, wake, delay) in due {
                now += chrono::Duration::from_std(delay).unwrap();
                if self.p.advance(&id, wake.as_deref(), now).await.is_err() {
                    failures += 1;
                    self.queue.push(&id, wake, Duration::ZERO); // SQS hands it back
                }
            }
        }
        panic!("the workflow never settled");
    }

    pub(super) async fn tenant(&self, id: &str) -> Tenant {
        self.tenants.get_tenant(id).await.unwrap().unwrap()
    }

    fn events(&self, event_type: &str) -> Vec<EventEnvelope> {
        self.bus.events().into_iter().filter(|e| e.event_type == event_type).collect()
    }

    fn distinct(&self, event_type: &str) -> usize {
        self.events(event_type).iter().map(|e| e.event_id).collect::<HashSet<_>>().len()
    }
}

pub(super) fn now() -> DateTime<Utc> {
    "2026-11-24T10:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn a_shared_tenant_goes_live_step_by_step_and_waits_for_its_health_on_the_queue() {
    let w = world(ScriptedProvider::default());
    shared_vps(&w, "vps-a", 20).await;
    w.probe.unhealthy.store(2, Ordering::SeqCst);
    let t = w.p.request(request("org-acme", DeploymentType::Shared), now()).await.unwrap();
    assert_eq!(t.next_step(), Some(Step::Health), "licence, placement and deploy at once; health waits");
    assert_eq!(w.queue.resumes.lock().unwrap()[0].1, Duration::from_secs(5), "the first wait");
    assert_eq!(w.drain(now()).await, 0);

    let t = w.tenant("org-acme").await;
    assert_eq!(t.status, TenantStatus::Active);
    assert!(t.steps.iter().all(|s| s.status == StepStatus::Done), "{:?}", t.steps);
    assert_eq!(t.step(Step::Health).attempts, 3, "two unhealthy checks, then healthy");
    assert_eq!(t.placement.as_ref().map(|p| p.vps_name.as_str()), Some("vps-a"));
    assert_eq!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants, ["org-acme"]);
    assert_eq!(*w.agent.calls.lock().unwrap(), ["deploy org-acme"]);
    assert!(w.files.blobs.lock().unwrap().contains_key("tenants/org-acme/cloud-init.yaml"));
    assert_eq!(w.integrations.on.lock().unwrap()["org-acme"], ["recruitiq->nexus"]);
    let welcome = w.events("email.requested");
    assert_eq!(welcome.len(), 1);
    assert_eq!(welcome[0].payload.as_ref().unwrap()["to"], serde_json::json!(["it@org-acme.example"]));
    let live = w.events("tenant.provisioned");
    assert_eq!((live.len(), live[0].payload.as_ref().unwrap()["instanceUrl"].as_str()), (1, Some("https://t-org-acme.tenants.example")));
    assert_eq!(w.metrics.total(TENANTS_PROVISIONED), 1.0);

    // The licence verifies with the published key alone.
    let key = LicenceKey::from_base64(TEST_LICENCE_SEED).unwrap();
    let licence =
        licence::verify(t.licence.as_deref().unwrap(), &key.public_key(), "org-acme", "t-org-acme.tenants.example", now()).unwrap();
    assert_eq!((licence.organization_id.as_str(), licence.seats), ("org-acme", 100));

    // A replayed organization.created changes nothing; another request under the id is refused.
    let again = w.p.request(request("org-acme", DeploymentType::Shared), now()).await.unwrap();
    assert_eq!((again.status, again.version), (TenantStatus::Active, t.version));
    let mut other = request("org-acme", DeploymentType::Shared);
    other.tier = Tier::Enterprise;
    assert!(matches!(w.p.request(other, now()).await, Err(ProvisionError::Refused(_))));
    assert_eq!(w.events("tenant.provisioned").len(), 1);
}

#[tokio::test]
async fn a_dedicated_tenant_orders_one_vps_and_polls_it_through_a_transient_error_until_it_runs() {
    let w = world(ScriptedProvider { polls_to_run: 4, transient_on_read: 2, ..Default::default() });
    w.p.request(request("org-big", DeploymentType::Dedicated), now()).await.unwrap();
    assert_eq!(w.drain(now()).await, 0);
    let t = w.tenant("org-big").await;
    assert_eq!(t.status, TenantStatus::Active, "{:?}", t.steps);
    let orders = w.provider.orders.lock().unwrap().clone();
    assert_eq!(orders.len(), 1, "one VPS ordered");
    assert_eq!(orders[0].product, "vps-bladevps-x4");
    assert!(orders[0].description.contains("relay-tenant:org-big") && orders[0].cloud_init.starts_with("#cloud-config"));
    let placement = t.step(Step::Placement);
    assert!(placement.attempts >= 5, "ordered, polled while installing, and once through a 503: {placement:?}");
    let vps = w.fleet.get_vps("relay-vps1").await.unwrap().expect("the dedicated VPS is in the fleet");
    assert_eq!((vps.organization_id.as_deref(), vps.deployment_type), (Some("org-big"), DeploymentType::Dedicated));
    assert!(w.agent.calls.lock().unwrap().is_empty(), "cloud-init installs a dedicated VPS; no agent");
}

/// Kills the handler before its `n`th checkpoint, then redelivers everything.
async fn killed_before_checkpoint(n: usize, deployment_type: DeploymentType) -> World {
    // The provider lists a new order only from its second listing: a workflow that trusted the
    // listing alone would order again after a crash.
    let w = world(ScriptedProvider { polls_to_run: 2, list_lag: 1, ..Default::default() });
    shared_vps(&w, "vps-a", 20).await;
    w.probe.unhealthy.store(1, Ordering::SeqCst);
    w.tenants.fail_saves_at.store(n, Ordering::SeqCst);
    if w.p.request(request("org-k", deployment_type), now()).await.is_err() {
        w.queue.push("org-k", None, Duration::ZERO); // the message comes back
    }
    w.drain(now()).await;
    w
}

#[tokio::test]
async fn a_handler_killed_before_any_checkpoint_leaves_one_vps_one_mail_one_announcement() {
    for deployment_type in [DeploymentType::Shared, DeploymentType::Dedicated] {
        for n in 1..=14 {
            let w = killed_before_checkpoint(n, deployment_type).await;
            let t = w.tenant("org-k").await;
            let at = format!("{deployment_type:?}, killed before checkpoint {n}");
            assert_eq!(t.status, TenantStatus::Active, "{at}: {:?}", t.steps);
            assert_eq!(w.distinct("email.requested"), 1, "{at}: one welcome mail");
            assert_eq!(w.distinct("tenant.provisioned"), 1, "{at}: one announcement");
            assert_eq!(w.events("tenant.provisioning_failed").len(), 0, "{at}");
            match deployment_type {
                DeploymentType::Shared => {
                    assert_eq!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants, ["org-k"], "{at}: one slot");
                }
                DeploymentType::Dedicated => {
                    assert_eq!(w.provider.orders.lock().unwrap().len(), 1, "{at}: one VPS ordered");
                    assert_eq!(w.fleet.list_vps().await.unwrap().len(), 2, "{at}: the shared one and one dedicated");
                }
            }
        }
    }
}

#[tokio::test]
async fn fifty_tenants_placed_at_once_on_twenty_slots_fill_them_and_the_rest_fail_holding_nothing() {
    let w = Arc::new(world(ScriptedProvider::default()));
    for (name, slots) in [("vps-a", 7), ("vps-b", 7), ("vps-c", 6)] {
        shared_vps(&w, name, slots).await;
    }
    let runs = (0..50).map(|i| {
        let w = w.clone();
        tokio::spawn(async move { w.p.request(request(&format!("org-{i:02}"), DeploymentType::Shared), now()).await })
    });
    for run in futures::future::join_all(runs).await {
        run.unwrap().unwrap();
    }
    let fleet = w.fleet.list_vps().await.unwrap();
    assert!(fleet.iter().all(|v| v.tenants.len() as u32 <= v.max_tenants), "no VPS over capacity: {fleet:?}");
    let placed: Vec<String> = fleet.iter().flat_map(|v| v.tenants.clone()).collect();
    assert_eq!(placed.len(), 20, "every slot taken");
    let (all, _) = w.tenants.list_tenants(None, 100).await.unwrap();
    let failed: Vec<&Tenant> = all.iter().filter(|t| t.status == TenantStatus::Failed).collect();
    assert_eq!(failed.len(), 30);
    for t in &failed {
        let f = t.failure.as_ref().unwrap();
        assert_eq!(f.step, Step::Placement);
        assert!(f.reason.starts_with("no capacity"), "{}", f.reason);
        assert!(t.placement.is_none() && !placed.contains(&t.id().to_string()), "a failed tenant holds no slot");
    }
    assert_eq!(w.metrics.total(PROVISIONING_FAILED), 30.0);
    assert_eq!(w.events("tenant.provisioning_failed").len(), 30);
}

#[tokio::test]
async fn a_tenant_that_never_gets_healthy_fails_gives_its_slot_back_and_a_retry_goes_on() {
    let w = world(ScriptedProvider::default());
    shared_vps(&w, "vps-a", 1).await;
    w.probe.unhealthy.store(usize::MAX, Ordering::SeqCst);
    w.p.request(request("org-sick", DeploymentType::Shared), now()).await.unwrap();
    w.drain(now()).await;
    let t = w.tenant("org-sick").await;
    assert_eq!(t.status, TenantStatus::Failed);
    let f = t.failure.clone().unwrap();
    assert_eq!(f.step, Step::Health);
    assert!(f.reason.contains("not healthy") && f.reason.contains("20 minutes"), "{}", f.reason);
    assert_eq!(t.step(Step::Health).status, StepStatus::Failed);
    assert!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants.is_empty(), "the slot is free again");
    assert_eq!(*w.agent.calls.lock().unwrap(), ["deploy org-sick", "remove org-sick"]);
    let failed = w.events("tenant.provisioning_failed");
    assert_eq!(failed[0].payload.as_ref().unwrap()["step"], "health");
    assert_eq!(w.distinct("email.requested"), 0, "no welcome for a failed tenant");

    // Fixed: the operator retries; placement is taken again and the workflow goes on.
    w.probe.unhealthy.store(0, Ordering::SeqCst);
    let again = w.api.retry("org-sick", false, now()).await.unwrap();
    assert_eq!(again["status"], "provisioning");
    let again = w.tenant("org-sick").await;
    assert_eq!(again.next_step(), Some(Step::Placement));
    assert_eq!(again.step(Step::Licence).status, StepStatus::Done, "the licence is kept");
    let queued = w.queue.take_messages();
    assert_eq!((queued.len(), queued[0].0.as_str(), queued[0].2), (1, "org-sick", Duration::ZERO), "queued for the workflow");
    assert_eq!(w.p.advance("org-sick", None, now()).await.unwrap().next_step(), Some(Step::Placement), "a stray message does nothing");
    w.p.advance("org-sick", queued[0].1.as_deref(), now()).await.unwrap();
    let t = w.tenant("org-sick").await;
    assert_eq!(t.status, TenantStatus::Active, "{:?}", t.steps);
    assert_eq!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants, ["org-sick"]);
    assert_eq!(w.api.retry("org-sick", false, now()).await.unwrap_err().status, 409, "only a failed tenant is retried");
}

#[tokio::test]
async fn deprovisioning_snapshots_and_cancels_a_dedicated_vps_and_frees_a_shared_slot() {
    let w = world(ScriptedProvider { polls_to_run: 1, ..Default::default() });
    shared_vps(&w, "vps-a", 5).await;
    w.p.request(request("org-d", DeploymentType::Dedicated), now()).await.unwrap();
    w.p.request(request("org-s", DeploymentType::Shared), now()).await.unwrap();
    w.drain(now()).await;
    for id in ["org-d", "org-s"] {
        assert_eq!(w.tenant(id).await.status, TenantStatus::Active);
        w.api.deprovision(id, now()).await.unwrap();
        w.drain(now()).await;
        assert_eq!(w.tenant(id).await.status, TenantStatus::Deprovisioned, "{id}");
    }
    assert_eq!(*w.provider.actions.lock().unwrap(), ["snapshot relay-vps1", "cancel relay-vps1"]);
    assert!(w.fleet.get_vps("relay-vps1").await.unwrap().is_none(), "the dedicated VPS left the fleet");
    assert!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants.is_empty());
    assert_eq!(w.distinct("tenant.deprovisioned"), 2);
}

#[tokio::test]
async fn a_bad_request_is_refused_before_anything_is_written() {
    let w = world(ScriptedProvider::default());
    let mut bad = request("org-x", DeploymentType::Shared);
    bad.slug = "-x".into();
    assert!(matches!(w.p.request(bad, now()).await, Err(ProvisionError::Refused(why)) if why.starts_with("slug")));
    assert!(w.tenants.tenants.lock().unwrap().is_empty() && w.bus.events().is_empty());
}

#[tokio::test]
async fn a_tenant_never_takes_another_tenants_vps_whose_marker_starts_like_its_own() {
    let w = world(ScriptedProvider { polls_to_run: 1, ..Default::default() });
    w.p.request(request("org-10", DeploymentType::Dedicated), now()).await.unwrap();
    w.drain(now()).await;
    w.p.request(request("org-1", DeploymentType::Dedicated), now()).await.unwrap();
    w.drain(now()).await;
    assert_eq!(w.provider.orders.lock().unwrap().len(), 2, "org-1 ordered its own");
    let (one, ten) = (w.tenant("org-1").await, w.tenant("org-10").await);
    assert_ne!(one.placement.unwrap().vps_name, ten.placement.unwrap().vps_name);
}

#[tokio::test]
async fn a_message_for_a_tenant_another_handler_holds_comes_back_instead_of_being_lost() {
    let w = world(ScriptedProvider::default());
    shared_vps(&w, "vps-a", 5).await;
    let tenant = Tenant::new(request("org-busy", DeploymentType::Shared), "https://t-org-busy.tenants.example".into(), now());
    w.tenants.create_tenant(&tenant).await.unwrap();
    let until = now() + chrono::Duration::minutes(5);
    assert!(w.tenants.lease("org-busy", "another handler", until, now()).await.unwrap());
    let seen = w.p.advance("org-busy", None, now()).await.unwrap();
    assert_eq!(seen.next_step(), Some(Step::Licence), "nothing done without the lease");
    assert_eq!(*w.queue.resumes.lock().unwrap(), [("org-busy".to_string(), Duration::from_secs(20))]);
    w.tenants.release_lease("org-busy", "another handler").await.unwrap();
    assert_eq!(w.drain(now()).await, 0);
    assert_eq!(w.tenant("org-busy").await.status, TenantStatus::Active);
}

#[tokio::test]
async fn a_failure_whose_announcement_fails_is_finished_by_the_next_message() {
    let w = world(ScriptedProvider::default());
    shared_vps(&w, "vps-a", 5).await;
    w.probe.unhealthy.store(usize::MAX, Ordering::SeqCst);
    w.p.request(request("org-f", DeploymentType::Shared), now()).await.unwrap();
    w.bus.fail.store(true, Ordering::SeqCst);
    let mut at = now();
    for _ in 0..100 {
        at += chrono::Duration::minutes(2);
        let _ = w.p.advance("org-f", None, at).await;
        if w.tenant("org-f").await.status == TenantStatus::Failed {
            break;
        }
    }
    let stuck = w.tenant("org-f").await;
    assert_eq!((stuck.status, stuck.release_pending), (TenantStatus::Failed, true), "failed, its release not yet checkpointed");
    w.bus.fail.store(false, Ordering::SeqCst);
    w.p.advance("org-f", None, at).await.unwrap();
    let t = w.tenant("org-f").await;
    assert!(!t.release_pending && t.placement.is_none(), "{t:?}");
    assert!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants.is_empty());
    assert_eq!(w.distinct("tenant.provisioning_failed"), 1);
    assert!(w.api.retry("org-f", false, at).await.is_ok());
}

#[tokio::test]
async fn deprovisioning_finds_a_slot_taken_before_a_crash_and_gives_it_back() {
    let w = world(ScriptedProvider::default());
    shared_vps(&w, "vps-a", 5).await;
    let tenant = Tenant::new(request("org-half", DeploymentType::Shared), "https://t-org-half.tenants.example".into(), now());
    w.tenants.create_tenant(&tenant).await.unwrap();
    assert!(w.fleet.take_slot("vps-a", "org-half").await.unwrap(), "taken, and the handler died before recording it");
    w.api.deprovision("org-half", now()).await.unwrap();
    w.drain(now()).await;
    assert_eq!(w.tenant("org-half").await.status, TenantStatus::Deprovisioned);
    assert!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants.is_empty(), "the slot is free");
    assert_eq!(*w.agent.calls.lock().unwrap(), ["remove org-half"]);
}

#[tokio::test]
async fn a_replay_or_a_stray_message_during_a_wait_starts_no_second_polling_chain() {
    let w = world(ScriptedProvider { polls_to_run: 3, ..Default::default() });
    w.p.request(request("org-wait", DeploymentType::Dedicated), now()).await.unwrap();
    let waiting = w.queue.take_messages();
    assert_eq!(waiting.len(), 1, "one continuation, for the VPS installing");
    let reads = w.provider.reads.load(Ordering::SeqCst);
    // The Portal's event again, an old message and a duplicate without an id: none acts.
    w.p.request(request("org-wait", DeploymentType::Dedicated), now()).await.unwrap();
    w.p.advance("org-wait", Some("an-old-wake"), now()).await.unwrap();
    w.p.advance("org-wait", None, now()).await.unwrap();
    assert!(w.queue.take().is_empty(), "no second chain");
    assert_eq!(w.provider.reads.load(Ordering::SeqCst), reads, "nothing polled early");
    // The continuation itself goes on; once it is long overdue (lost), any message may act.
    for (id, wake, _) in waiting {
        w.queue.push(&id, wake, Duration::from_secs(30));
    }
    w.drain(now()).await;
    let t = w.tenant("org-wait").await;
    assert_eq!(t.status, TenantStatus::Active, "{:?}", t.steps);
    assert_eq!(t.step(Step::Placement).attempts, 5, "the order, then its own polls only");
}
