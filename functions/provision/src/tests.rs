//! The handler over in-memory ports, fed the `events/` fixtures `sam local invoke` would send:
//! the Portal's `organization.created` from the bus records the tenant and starts it; the
//! continuation moves it on; a replay changes nothing; messages that can never be handled are
//! dropped, not retried forever.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use chrono::Utc;
use relay_core::memory::{
    provision_config, MemoryBlobs, MemoryBus, MemoryFleet, MemoryProvisionQueue, MemoryRetries, MemoryTenantIntegrations, MemoryTenants,
    RecordedMetrics, RecordingAgent, ScriptedProbe, ScriptedProvider,
};
use relay_core::ports::provision::{FleetStore, TenantStore};
use relay_core::provision::fleet::{Vps, VpsRegistration};
use relay_core::provision::tenant::{DeploymentType, TenantStatus, Tier};
use relay_core::provision::workflow::{ProvisionPorts, Provisioner};

use super::{App, Message};

fn fixture(name: &str) -> SqsEvent {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("an SQS event")
}

fn body(event: &SqsEvent) -> &str {
    event.records[0].body.as_deref().unwrap()
}

#[test]
fn the_fixtures_parse_as_a_request_and_a_continuation() {
    let Message::Create(request) = Message::parse(body(&fixture("provision-organization-created.json"))).unwrap() else {
        panic!("organization.created is a request")
    };
    assert_eq!((request.organization_id.as_str(), request.slug.as_str()), ("org-demo", "demo"));
    assert_eq!((request.tier, request.deployment_type), (Tier::Professional, DeploymentType::Shared));
    assert_eq!(
        Message::parse(body(&fixture("provision-continue.json"))),
        Ok(Message::Continue("org-demo".into(), Some("3f0c9a1e5b7d4c2a8e6f1b3d5a7c9e0f".into())))
    );
    assert_eq!(Message::parse(r#"{"tenantId": "org-1"}"#), Ok(Message::Continue("org-1".into(), None)));
}

#[test]
fn messages_that_are_not_provisionings_are_refused_with_why() {
    let event = |event_type: &str, org: &str, payload: serde_json::Value| {
        serde_json::json!({"detail": {"eventType": event_type, "organizationId": org, "payload": payload}}).to_string()
    };
    let payload = serde_json::json!({"name": "A", "slug": "a", "tier": "starter", "deploymentType": "shared", "contactEmail": "a@a.example", "products": ["nexus"], "extra": 1});
    assert!(
        matches!(Message::parse(&event("organization.created", "org-a", payload.clone())), Ok(Message::Create(_))),
        "fields the Portal adds are ignored"
    );
    for (body, why) in [
        ("nope".to_string(), "not JSON"),
        ("{}".to_string(), "neither"),
        (r#"{"tenantId": 5}"#.to_string(), "not a string"),
        (r#"{"tenantId": "org-1", "wake": 7}"#.to_string(), "wake is not a string"),
        (event("candidate.hired", "org-a", payload.clone()), "not provisioning's"),
        (event("organization.created", "org-a", serde_json::json!({"organizationId": "org-b"})), "another organisation"),
        (event("organization.created", "org-a", serde_json::json!({"name": "A", "slug": "a", "tier": "gold"})), "unknown variant"),
    ] {
        let err = Message::parse(&body).unwrap_err();
        assert!(err.contains(why), "{body}: {err}");
    }
}

#[tokio::test]
async fn the_fixtures_provision_a_shared_tenant_and_a_replay_changes_nothing() {
    let (tenants, fleet, queue, bus) = (
        Arc::new(MemoryTenants::default()),
        Arc::new(MemoryFleet::default()),
        Arc::new(MemoryProvisionQueue::default()),
        Arc::new(MemoryBus::default()),
    );
    let registration = VpsRegistration {
        name: "vps-1".into(),
        ip: "10.0.0.1".into(),
        hostname: None,
        location: None,
        max_tenants: Some(20),
        deploy_agent_url: "https://vps-1.example/deploy".into(),
    };
    fleet.add_vps(&Vps::shared(registration, Utc::now())).await.unwrap();
    let ports = ProvisionPorts {
        tenants: tenants.clone(),
        fleet: fleet.clone(),
        provider: Arc::new(ScriptedProvider::default()),
        agent: Arc::new(RecordingAgent::default()),
        probe: Arc::new(ScriptedProbe::default()),
        files: Arc::new(MemoryBlobs::default()),
        integrations: Arc::new(MemoryTenantIntegrations::default()),
        bus: bus.clone(),
        queue: queue.clone(),
        metrics: Arc::new(RecordedMetrics::default()),
    };
    let dead_letters = Arc::new(MemoryRetries::default());
    let app = App { provisioner: Provisioner::new(ports, provision_config()), dead_letters: dead_letters.clone() };

    let created = fixture("provision-organization-created.json");
    let response = app.handle(created.clone()).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let tenant = tenants.get_tenant("org-demo").await.unwrap().expect("recorded");
    assert_eq!(tenant.status, TenantStatus::Active, "{tenant:?}");
    let announced = bus.count();

    // The bus delivers at least once: the same event again, and a late continuation.
    assert!(app.handle(created).await.unwrap().batch_item_failures.is_empty());
    assert!(app.handle(fixture("provision-continue.json")).await.unwrap().batch_item_failures.is_empty());
    assert_eq!(bus.count(), announced, "nothing announced twice");
    assert_eq!(fleet.get_vps("vps-1").await.unwrap().unwrap().tenants.len(), 1, "one slot");

    // A message that can never be handled writes nothing and is kept, with why, in the
    // dead-letter queue (no batch failure: it would fail the same way five times).
    assert!(dead_letters.dead_letters().is_empty(), "the replays were not refused");
    let mut junk = fixture("provision-continue.json");
    junk.records[0].body = Some(
        "{\"detail\": {\"eventType\": \"organization.created\", \"organizationId\": \"org-x\", \"payload\": {\"tier\": \"gold\"}}}".into(),
    );
    assert!(app.handle(junk).await.unwrap().batch_item_failures.is_empty());
    assert!(tenants.get_tenant("org-x").await.unwrap().is_none());
    assert!(dead_letters.dead_letters()[0].contains("gold"), "the message as it came, for a person to mend and redrive");
    // Another organisation asking for a slug that is taken: refused and kept too.
    assert!(app.handle(twin_event()).await.unwrap().batch_item_failures.is_empty());
    assert!(tenants.get_tenant("org-twin").await.unwrap().is_none());
    assert_eq!(dead_letters.dead_letters()[1], body(&twin_event()), "{:?}", dead_letters.dead_letters());
}

/// The fixture's organization.created for another organisation with the same slug.
fn twin_event() -> SqsEvent {
    let mut twin = fixture("provision-organization-created.json");
    twin.records[0].body = Some(body(&twin).replace("org-demo", "org-twin"));
    twin
}
