//! The operator API's use cases over in-memory ports: bad input refused with every wrong field
//! and nothing written, a replayed request answered as it stands, work handed to the workflow
//! through the queue, the fleet registered, reported, drained and counted, the licence key.

use std::time::Duration;

use serde_json::json;

use super::tenant::{DeploymentType, TenantStatus};
use super::tests::{now, request, shared_vps, world};
use crate::memory::ScriptedProvider;
use crate::ports::provision::{FleetStore, TenantStore};

fn body(org: &str) -> serde_json::Value {
    serde_json::to_value(request(org, DeploymentType::Shared)).unwrap()
}

#[tokio::test]
async fn a_tenant_is_recorded_and_queued_once_and_bad_input_writes_nothing() {
    let w = world(ScriptedProvider::default());
    let mut bad = body("org-1");
    bad["slug"] = json!("-x");
    bad["contactEmail"] = json!("nobody");
    let problem = w.api.create(bad, now()).await.unwrap_err();
    assert_eq!(problem.status, 400);
    assert!(problem.detail.contains("slug") && problem.detail.contains("contactEmail"), "every wrong field: {}", problem.detail);
    let mut tier = body("org-1");
    tier["tier"] = json!("gold");
    assert_eq!(w.api.create(tier, now()).await.unwrap_err().status, 400, "an unknown tier");
    assert!(w.tenants.tenants.lock().unwrap().is_empty() && w.queue.take().is_empty(), "nothing written, nothing queued");

    let created = w.api.create(body("org-1"), now()).await.unwrap();
    assert_eq!((created["status"].as_str(), created["url"].as_str()), (Some("provisioning"), Some("https://t-org-1.tenants.example")));
    assert_eq!(w.queue.take(), [("org-1".to_string(), Duration::ZERO)]);
    let again = w.api.create(body("org-1"), now()).await.unwrap();
    assert_eq!(again["status"], "provisioning", "a replay answers the tenant as it stands");
    // A client retrying a 503 whose message was never sent: the tenant is queued again.
    assert_eq!(w.queue.take(), [("org-1".to_string(), Duration::ZERO)], "a replay nudges the tenant");
    let mut other = body("org-1");
    other["tier"] = json!("enterprise");
    assert_eq!(w.api.create(other, now()).await.unwrap_err().status, 409);
    let mut same_slug = body("org-2");
    same_slug["slug"] = body("org-1")["slug"].clone();
    let taken = w.api.create(same_slug, now()).await.unwrap_err();
    assert_eq!(taken.status, 409, "a slug is one tenant's");
    assert!(taken.detail.contains("slug"), "{}", taken.detail);
    assert!(w.api.get("org-2").await.is_err(), "nothing written for it");

    w.p.advance("org-1", None, now()).await.unwrap(); // the workflow, as the queued message would run it
    let seen = w.api.get("org-1").await.unwrap();
    assert_eq!(
        (seen["status"].as_str(), seen["failure"]["step"].as_str()),
        (Some("failed"), Some("placement")),
        "no VPS in the fleet: {seen}"
    );
    assert_eq!(w.tenant("org-1").await.status, TenantStatus::Failed);
    assert!(seen.get("licence").is_none() && seen["licenceIssued"] == json!(true), "the token is not shown");
    assert_eq!(w.api.get("org-9").await.unwrap_err().status, 404);
    let (page, _) = w.tenants.list_tenants(None, 10).await.unwrap();
    assert_eq!(page.len(), 1);
}

#[tokio::test]
async fn the_fleet_is_registered_reported_drained_and_counted() {
    let w = world(ScriptedProvider::default());
    shared_vps(&w, "vps-a", 10).await;
    let registration = json!({"name": "vps-b", "ip": "10.0.0.2", "maxTenants": 5, "deployAgentUrl": "https://vps-b.example/deploy"});
    assert_eq!(w.api.register_vps(registration.clone(), now()).await.unwrap()["maxTenants"], 5);
    assert_eq!(w.api.register_vps(registration, now()).await.unwrap_err().status, 409, "a name once");
    let bad = json!({"name": "vps c", "ip": "nope", "deployAgentUrl": "http://vps-c.example/deploy"});
    let problem = w.api.register_vps(bad, now()).await.unwrap_err();
    assert!(
        problem.detail.contains("name") && problem.detail.contains("ip") && problem.detail.contains("deployAgentUrl"),
        "{}",
        problem.detail
    );

    assert_eq!(w.api.report_health("vps-a", json!({"cpu": 40.0, "memory": 60.0, "disk": 20.0}), now()).await.unwrap()["cpu"], 40.0);
    assert_eq!(w.api.report_health("vps-a", json!({"cpu": 140.0, "memory": 60.0, "disk": 20.0}), now()).await.unwrap_err().status, 400);
    assert_eq!(w.api.report_health("vps-z", json!({"cpu": 1.0, "memory": 1.0, "disk": 1.0}), now()).await.unwrap_err().status, 404);
    w.api.set_draining("vps-b", true).await.unwrap();
    assert_eq!(w.api.set_draining("vps-z", true).await.unwrap_err().status, 404);

    w.api.create(body("org-1"), now()).await.unwrap();
    w.drain(now()).await;
    assert_eq!(w.fleet.get_vps("vps-a").await.unwrap().unwrap().tenants, ["org-1"], "the draining VPS took no one");
    let fleet = w.api.fleet().await.unwrap();
    let s = &fleet["statistics"];
    assert_eq!(
        (s["totalVps"].as_u64(), s["drainingVps"].as_u64(), s["totalTenants"].as_u64(), s["freeSharedSlots"].as_u64()),
        (Some(2), Some(1), Some(1), Some(9))
    );
    assert_eq!(s["avgCpuUsage"], 40.0);

    let key = w.api.licence_key();
    assert_eq!(key["algorithm"], "Ed25519");
    assert!(key["publicKeyPem"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
}
