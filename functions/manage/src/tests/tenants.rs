//! `/v1/tenants`, `/v1/vps` and `/v1/licence-key` through the function's HTTP handling: who may
//! call them, bad input refused before anything is written or queued, and what each answers.

use relay_core::ports::provision::TenantStore;
use serde_json::json;

use super::{world, ADMIN, ORG_1, PRODUCT};

fn tenant(org: &str) -> serde_json::Value {
    json!({"organizationId": org, "name": "Acme B.V.", "slug": "acme", "tier": "starter", "deploymentType": "shared",
           "contactEmail": "it@acme.example", "products": ["recruitiq", "nexus"]})
}

#[tokio::test]
async fn operators_provision_tenants_and_bad_input_writes_and_queues_nothing() {
    let w = world().await;
    for key in [ORG_1, PRODUCT] {
        let (status, body) = w.call("POST", "/v1/tenants", key, Some(tenant("org-acme"))).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(w.call("GET", "/v1/vps", key, None).await.0, 403);
    }
    for (bad, names) in [
        (json!({"tier": "gold"}), "unknown variant"),
        (json!({"slug": "Not A Host"}), "slug"),
        (json!({"contactEmail": ""}), "contactEmail"),
        (json!({"products": ["payroll-x"]}), "products"),
    ] {
        let mut body = tenant("org-acme");
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, problem) = w.call("POST", "/v1/tenants", ADMIN, Some(body)).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["type"], "https://relay.dev/problems/invalid-request", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(names), "{problem}");
    }
    let mut missing = tenant("org-acme");
    missing.as_object_mut().unwrap().remove("contactEmail");
    assert_eq!(w.call("POST", "/v1/tenants", ADMIN, Some(missing)).await.0, 400);
    assert!(w.tenants.get_tenant("org-acme").await.unwrap().is_none(), "nothing written");
    assert!(w.provision_queue.take().is_empty(), "nothing queued");

    let (status, created) = w.call("POST", "/v1/tenants", ADMIN, Some(tenant("org-acme"))).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!((created["url"].as_str(), created["status"].as_str()), (Some("https://acme.tenants.example"), Some("provisioning")));
    assert_eq!(created["steps"].as_array().unwrap().len(), 7);
    assert_eq!(w.provision_queue.take().len(), 1);
    // The same request again answers the tenant; another under the same organisation is 409.
    assert_eq!(w.call("POST", "/v1/tenants", ADMIN, Some(tenant("org-acme"))).await.0, 202);
    let mut other = tenant("org-acme");
    other["tier"] = json!("enterprise");
    assert_eq!(w.call("POST", "/v1/tenants", ADMIN, Some(other)).await.0, 409);

    let (status, page) = w.call("GET", "/v1/tenants?limit=10", ADMIN, None).await;
    assert_eq!((status, page["tenants"][0]["organizationId"].as_str()), (200, Some("org-acme")));
    assert_eq!(w.call("GET", "/v1/tenants?limit=0", ADMIN, None).await.0, 400);
    assert_eq!(w.call("GET", "/v1/tenants/org-nope", ADMIN, None).await.0, 404);
    // Provisioning with nothing due (its message lost, say): a retry queues it again.
    w.provision_queue.take();
    let (status, retry) = w.call("POST", "/v1/tenants/org-acme/retry", ADMIN, None).await;
    assert_eq!((status, w.provision_queue.take().len()), (202, 1), "{retry}");
    assert_eq!(w.call("POST", "/v1/tenants/org-acme/retry", ADMIN, Some(json!({"reorder": "yes"}))).await.0, 400);
    let (status, gone) = w.call("DELETE", "/v1/tenants/org-acme", ADMIN, None).await;
    assert_eq!((status, gone["status"].as_str()), (202, Some("deprovisioning")));
    assert_eq!(w.call("PATCH", "/v1/tenants/org-acme", ADMIN, None).await.0, 405);
}

#[tokio::test]
async fn the_fleet_is_registered_reported_and_drained_and_the_licence_key_is_public() {
    let w = world().await;
    let vps = json!({"name": "vps-1", "ip": "10.0.0.1", "maxTenants": 3, "deployAgentUrl": "https://vps-1.example/agent"});
    assert_eq!(w.call("POST", "/v1/vps", ADMIN, Some(vps.clone())).await.0, 201);
    assert_eq!(w.call("POST", "/v1/vps", ADMIN, Some(vps)).await.0, 409);
    let plain = json!({"name": "vps-2", "ip": "10.0.0.2", "deployAgentUrl": "http://vps-2.example/agent"});
    assert_eq!(w.call("POST", "/v1/vps", ADMIN, Some(plain)).await.0, 400, "an agent is called over HTTPS only");
    assert_eq!(w.call("PUT", "/v1/vps/vps-1/health", ADMIN, Some(json!({"cpu": 40, "memory": 50, "disk": 60}))).await.0, 200);
    assert_eq!(w.call("PUT", "/v1/vps/vps-1/health", ADMIN, Some(json!({"cpu": 400, "memory": 50, "disk": 60}))).await.0, 400);
    assert_eq!(w.call("PUT", "/v1/vps/vps-9/health", ADMIN, Some(json!({"cpu": 4, "memory": 5, "disk": 6}))).await.0, 404);
    let (status, drained) = w.call("POST", "/v1/vps/vps-1/drain", ADMIN, None).await;
    assert_eq!((status, drained["status"].as_str()), (200, Some("draining")));
    let (_, fleet) = w.call("GET", "/v1/vps", ADMIN, None).await;
    assert_eq!(fleet["vps"][0]["status"], "draining");
    assert_eq!(fleet["statistics"]["totalVps"], 1, "{fleet}");
    assert_eq!(w.call("DELETE", "/v1/vps/vps-1/drain", ADMIN, None).await.1["status"], "active");

    // No key needed: a tenant's application fetches it.
    let (status, key) = w.call("GET", "/v1/licence-key", "", None).await;
    assert_eq!((status, key["algorithm"].as_str()), (200, Some("Ed25519")));
    assert_eq!(key["publicKey"].as_str().map(str::len), Some(43));
    assert_eq!(w.call("POST", "/v1/licence-key", "", None).await.0, 405);
}
