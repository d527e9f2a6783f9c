//! The provisioning workflow's stores over the real DynamoDB wire protocol (the local stack's
//! emulator, the tenants table as template.yaml declares it): fifty tenants placed at once on
//! three shared VPSs with twenty slots between them, each slot taken by a conditional write;
//! the workflow lease and the versioned save; the tenants listed newest first.
//!
//! The hosting provider, deploy agents and health checks are in-memory stand-ins here; the
//! whole function against a TransIP-shaped server is issue 10's next step (see the README).

use std::sync::Arc;

use chrono::Utc;
use relay_aws::dynamo::tenants::DynamoTenants;
use relay_core::memory::{
    provision_config, MemoryBlobs, MemoryBus, MemoryProvisionQueue, MemoryTenantIntegrations, RecordedMetrics, RecordingAgent,
    ScriptedProbe, ScriptedProvider,
};
use relay_core::ports::provision::{FleetStore, TenantStore};
use relay_core::provision::fleet::{Vps, VpsRegistration};
use relay_core::provision::tenant::{DeploymentType, Step, Tenant, TenantRequest, TenantStatus, Tier};
use relay_core::provision::workflow::{ProvisionPorts, Provisioner};
use relay_e2e::{Stack, StackOptions};

fn request(i: usize) -> TenantRequest {
    TenantRequest {
        organization_id: format!("org-{i:02}"),
        name: format!("Tenant {i}"),
        slug: format!("tenant-{i:02}"),
        tier: Tier::Starter,
        deployment_type: DeploymentType::Shared,
        contact_email: format!("it@tenant-{i:02}.example"),
        products: vec!["recruitiq".into()],
    }
}

fn provisioner(store: Arc<DynamoTenants>) -> Provisioner {
    let ports = ProvisionPorts {
        tenants: store.clone(),
        fleet: store,
        provider: Arc::new(ScriptedProvider::default()),
        agent: Arc::new(RecordingAgent::default()),
        probe: Arc::new(ScriptedProbe::default()),
        files: Arc::new(MemoryBlobs::default()),
        integrations: Arc::new(MemoryTenantIntegrations::default()),
        bus: Arc::new(MemoryBus::default()),
        queue: Arc::new(MemoryProvisionQueue::default()),
        metrics: Arc::new(RecordedMetrics::default()),
    };
    Provisioner::new(ports, provision_config())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_placements_on_twenty_dynamodb_slots_never_overfill_a_vps() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let store = Arc::new(DynamoTenants::new(&stack.aws().await, "relay-local-tenants".into()));
    for (name, slots) in [("vps-a", 7), ("vps-b", 7), ("vps-c", 6)] {
        let registration = VpsRegistration {
            name: name.into(),
            ip: "10.0.0.1".into(),
            hostname: None,
            location: Some("ams0".into()),
            max_tenants: Some(slots),
            deploy_agent_url: format!("https://{name}.example/deploy"),
        };
        assert!(store.add_vps(&Vps::shared(registration, Utc::now())).await.unwrap());
    }
    let p = Arc::new(provisioner(store.clone()));
    let runs = (0..50).map(|i| {
        let p = p.clone();
        tokio::spawn(async move { p.request(request(i), Utc::now()).await })
    });
    for run in futures::future::join_all(runs).await {
        run.expect("task").expect("handled");
    }

    let fleet = store.list_vps().await.unwrap();
    for v in &fleet {
        assert!(v.tenants.len() as u32 <= v.max_tenants, "{} over capacity: {:?}", v.name, v.tenants);
    }
    let placed: Vec<String> = fleet.iter().flat_map(|v| v.tenants.clone()).collect();
    assert_eq!(placed.len(), 20, "every slot taken once: {fleet:?}");
    let (tenants, _) = store.list_tenants(None, 100).await.unwrap();
    assert_eq!(tenants.len(), 50);
    let (active, failed): (Vec<&Tenant>, Vec<&Tenant>) = tenants.iter().partition(|t| t.status == TenantStatus::Active);
    assert_eq!((active.len(), failed.len()), (20, 30));
    for t in &failed {
        let f = t.failure.as_ref().expect("why");
        assert_eq!(f.step, Step::Placement);
        assert!(f.reason.starts_with("no capacity"), "{}", f.reason);
        assert!(t.placement.is_none() && !placed.contains(&t.id().to_string()), "{} holds nothing", t.id());
    }
    for t in &active {
        let on = t.placement.as_ref().expect("placed");
        assert!(fleet.iter().any(|v| v.name == on.vps_name && v.tenants.contains(&t.id().to_string())));
    }
}

#[tokio::test]
async fn the_lease_the_versioned_save_and_the_listing_hold_on_dynamodb() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let store = DynamoTenants::new(&stack.aws().await, "relay-local-tenants".into());
    let now = Utc::now();
    let mut first = Tenant::new(request(1), "https://tenant-01.tenants.example".into(), now - chrono::Duration::minutes(1));
    let second = Tenant::new(request(2), "https://tenant-02.tenants.example".into(), now);
    assert!(store.create_tenant(&first).await.unwrap());
    assert!(!store.create_tenant(&first).await.unwrap(), "created once");
    assert!(store.create_tenant(&second).await.unwrap());

    let until = now + chrono::Duration::minutes(5);
    assert!(store.lease("org-01", "a", until, now).await.unwrap());
    assert!(!store.lease("org-01", "b", until, now).await.unwrap(), "held by a");
    assert!(store.lease("org-01", "a", until, now).await.unwrap(), "a holds it again");
    assert!(store.lease("org-01", "b", until, until + chrono::Duration::seconds(1)).await.unwrap(), "expired: b takes it");
    store.release_lease("org-01", "a").await.unwrap();
    assert!(!store.lease("org-01", "c", until, now).await.unwrap(), "a cannot release b's lease");
    assert!(!store.lease("org-99", "a", until, now).await.unwrap(), "no such tenant");

    first.version += 1;
    first.licence = Some("token".into());
    assert!(store.save_tenant(&first).await.unwrap());
    assert!(!store.save_tenant(&first).await.unwrap(), "a second write over the same version is refused");
    assert_eq!(store.get_tenant("org-01").await.unwrap().unwrap().licence.as_deref(), Some("token"));

    let (page, next) = store.list_tenants(None, 1).await.unwrap();
    assert_eq!(page[0].id(), "org-02", "newest first");
    let (rest, _) = store.list_tenants(next.as_deref(), 1).await.unwrap();
    assert_eq!(rest[0].id(), "org-01");
}
