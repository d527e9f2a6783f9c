//! The provision function through the local stack, with real HTTP all the way: the Portal's
//! `organization.created` through ingest and the bus, the operator API, and a server that
//! speaks TransIP's v6 shape (checking each login's RSA-SHA512 signature with the account's
//! public key), deploy agents that check Standard Webhooks signatures, and tenants' health
//! checks (`relay_local::hosting`, the stand-in `./dev up` runs too).
//!
//! - a shared and a dedicated tenant go live; the dedicated VPS runs only after several polls
//!   and one read answers 503; the licence verifies with an independent Ed25519 implementation
//!   (Python's `cryptography`) and the key `GET /v1/licence-key` publishes; a replayed
//!   `organization.created` changes nothing; both are taken down again;
//! - the handler killed after every step's checkpoint, each message redelivered: one VPS, one
//!   deployment, one mail and one `tenant.provisioned` per tenant;
//! - fifty tenants at once on three VPSs with twenty slots: none over capacity, the thirty
//!   others failed for want of capacity, holding nothing;
//! - bad input refused with a problem document before anything is written.

use std::time::{Duration, Instant};

use relay_e2e::stack::ADMIN_KEY;
use relay_e2e::{sent_mails, Stack, StackOptions};
use relay_local::hosting::{Behaviour, HostingStandIn};
use serde_json::{json, Value};

const PORTAL_KEY: &str = "rk_prod_test_portal";
const TENANT_FILES: &str = "relay-local-tenant-files-123456789012-us-east-1";

async fn stack_with(hosting: &HostingStandIn, function_env: Vec<(String, String)>, visibility: Option<u32>) -> Stack {
    let stack = Stack::start(StackOptions {
        params: vec![("TransipApiBase".into(), hosting.url.clone()), ("TenantHealthUrl".into(), hosting.health_url())],
        function_env,
        visibility_timeout_secs: visibility,
        ..StackOptions::default()
    })
    .await;
    stack.add_product_key(PORTAL_KEY, "portal").await;
    stack
}

async fn call(stack: &Stack, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", stack.url))
        .header("authorization", format!("Bearer {key}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn admin(stack: &Stack, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(stack, ADMIN_KEY, method, path, body).await
}

fn tenant(org: &str, slug: &str, tier: &str, deployment: &str, products: &[&str]) -> Value {
    json!({"organizationId": org, "name": format!("{slug} B.V."), "slug": slug, "tier": tier, "deploymentType": deployment,
           "contactEmail": format!("it@{slug}.example"), "products": products})
}

/// The Portal publishing `organization.created` through ingest, as a product does.
async fn organization_created(stack: &Stack, request: &Value) -> (u16, Value) {
    let mut payload = request.clone();
    payload.as_object_mut().unwrap().remove("organizationId");
    let event = json!({"eventType": "organization.created", "organizationId": request["organizationId"], "payload": payload});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/events", stack.url))
        .header("authorization", format!("Bearer {PORTAL_KEY}"))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("org-created-{}", request["organizationId"].as_str().unwrap()))
        .body(event.to_string())
        .send()
        .await
        .expect("ingest");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Waits until every tenant's status is one of `done`; answers them.
async fn wait_for(stack: &Stack, ids: &[&str], done: &[&str], limit: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let mut out = Vec::new();
        for id in ids {
            let (status, t) = admin(stack, "GET", &format!("/v1/tenants/{id}"), None).await;
            if status == 200 && done.contains(&t["status"].as_str().unwrap_or("")) {
                out.push(t);
            }
        }
        if out.len() == ids.len() {
            return out;
        }
        assert!(started.elapsed() < limit, "tenants {ids:?} not {done:?} in {limit:?}: {out:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the provision queue has nothing waiting, delayed or in flight for two seconds.
async fn provision_queue_idle(stack: &Stack) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let mut quiet_since = Instant::now();
    let started = Instant::now();
    loop {
        let out = sqs
            .get_queue_attributes()
            .queue_url(stack.queue_url("relay-local-provision"))
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("queue attributes");
        let busy = out.attributes().into_iter().flatten().any(|(_, v)| v != "0");
        if busy {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(2) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the provision queue never went quiet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn welcome_mails(mails: &[Value], to: &str) -> usize {
    mails
        .iter()
        .filter(|m| m["to"].as_array().is_some_and(|t| t.iter().any(|a| a == to)))
        .filter(|m| m["subject"].as_str().is_some_and(|s| s.starts_with("Welcome to the platform")))
        .count()
}

/// `tenant.*` events of an organisation, as the events API lists what the bus carried.
async fn tenant_events(stack: &Stack, org: &str) -> Vec<String> {
    let key = format!("rk_org_test_{org}");
    stack.add_org_key(&key, org).await;
    let (_, page) = call(stack, &key, "GET", "/v1/events?limit=100", None).await;
    page["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"]["eventType"].as_str())
        .filter(|t| t.starts_with("tenant."))
        .map(str::to_string)
        .collect()
}

/// Verifies a licence token with Python's `cryptography` (not Relay's code) and the PEM the API
/// publishes; answers the licence.
async fn verify_with_python(token: &str, public_key_pem: &str) -> Value {
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
token, pem = sys.argv[1], sys.argv[2]
b = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
payload, signature = token.split(".")
load_pem_public_key(pem.encode()).verify(b(signature), b(payload))
print(b(payload).decode())
"#;
    let out = tokio::process::Command::new(relay_e2e::repo_root().join(".venv/bin/python"))
        .args(["-c", script, token, public_key_pem])
        .output()
        .await
        .expect("python");
    assert!(out.status.success(), "the licence does not verify: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("licence JSON")
}

/// The licence token in a `.env`, or in a cloud-config that writes one.
fn licence_in(text: &str) -> String {
    let start = text.find("LICENCE='").expect("a LICENCE line") + "LICENCE='".len();
    text[start..].split('\'').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_and_a_dedicated_tenant_go_live_against_a_transip_shaped_server_and_come_down_again() {
    let hosting = HostingStandIn::start(0, Behaviour { reads_until_running: 3, transient_on_read: 2, unhealthy_checks: 1 }).await.unwrap();
    let stack = stack_with(&hosting, vec![], None).await;
    let vps = json!({"name": "vps-a", "ip": "127.0.0.1", "maxTenants": 20, "deployAgentUrl": hosting.agent_url("vps-a")});
    assert_eq!(admin(&stack, "POST", "/v1/vps", Some(vps)).await.0, 201);
    // RecruitIQ → Nexus serves listed organisations only: provisioning adds the tenant.
    let (status, body) =
        admin(&stack, "PUT", "/v1/integrations/recruitiq/nexus", Some(json!({"url": "https://93.184.215.14/hook", "organizations": []})))
            .await;
    assert_eq!(status, 200, "{body}");

    let shared = tenant("org-shared", "shared-co", "starter", "shared", &["recruitiq", "nexus"]);
    let (status, body) = organization_created(&stack, &shared).await;
    assert_eq!(status, 202, "{body}");
    let dedicated = tenant("org-dedicated", "dedicated-co", "enterprise", "dedicated", &["paylinq"]);
    let (status, created) = admin(&stack, "POST", "/v1/tenants", Some(dedicated.clone())).await;
    assert_eq!((status, created["url"].as_str()), (202, Some("https://dedicated-co.tenants.recruitiq.com")), "{created}");

    let live = wait_for(&stack, &["org-shared", "org-dedicated"], &["active", "failed"], Duration::from_secs(120)).await;
    for t in &live {
        assert_eq!(t["status"], "active", "{t}");
        for step in t["steps"].as_array().unwrap() {
            assert_eq!(step["status"], "done", "{t}");
            assert!(step["startedAt"].is_string() && step["attempts"].as_u64() >= Some(1), "{step}");
        }
    }
    assert_eq!(live[0]["placement"]["vpsName"], "vps-a");

    // The TransIP side: logins signed with the account's key, one order of the tier's product,
    // polled through a 503 until it ran, its install text the tenant's cloud-config.
    let record = hosting.record();
    assert_eq!((record["refusedLogins"].as_u64(), record["orders"].as_u64()), (Some(0), Some(1)), "{record}");
    assert!(record["logins"].as_u64() >= Some(1));
    assert_eq!(record["transientAnswers"], 1, "one read answered 503 and was tried again");
    let vps = &record["vpss"][0];
    assert_eq!(
        (vps["product"].as_str(), vps["hostname"].as_str(), vps["status"].as_str()),
        (Some("vps-bladevps-x8"), Some("dedicated-co"), Some("running"))
    );
    assert!(vps["reads"].as_u64() > Some(3), "ready only after several polls: {vps}");
    assert!(vps["cloudInit"].as_str().unwrap().starts_with("#cloud-config"), "{vps}");
    assert_eq!(live[1]["placement"]["vpsName"], vps["name"]);
    // The shared side: one signed deployment on vps-a; the licence in its .env verifies.
    assert_eq!((record["deployCalls"].as_u64(), record["refusedAgentCalls"].as_u64()), (Some(1), Some(0)), "{record}");
    let env = record["deployments"]["vps-a"]["org-shared"].as_str().expect("deployed on vps-a");
    assert!(env.contains("TENANT_HOST='shared-co.tenants.recruitiq.com'"), "{env}");
    let (_, key) = call(&stack, "", "GET", "/v1/licence-key", None).await;
    let licence = verify_with_python(&licence_in(env), key["publicKeyPem"].as_str().unwrap()).await;
    assert_eq!(
        (licence["organizationId"].as_str(), licence["host"].as_str()),
        (Some("org-shared"), Some("shared-co.tenants.recruitiq.com"))
    );
    assert_eq!((licence["tier"].as_str(), licence["keyId"].as_str()), (Some("starter"), key["keyId"].as_str()));
    let licence = verify_with_python(&licence_in(vps["cloudInit"].as_str().unwrap()), key["publicKeyPem"].as_str().unwrap()).await;
    assert_eq!((licence["organizationId"].as_str(), licence["seats"].as_u64()), (Some("org-dedicated"), Some(1000)), "{licence}");
    // Both cloud-configs are kept in S3.
    let s3 = aws_sdk_s3::Client::new(&stack.aws().await);
    for org in ["org-shared", "org-dedicated"] {
        s3.head_object().bucket(TENANT_FILES).key(format!("tenants/{org}/cloud-init.yaml")).send().await.expect("cloud-config kept");
    }

    // A replayed organization.created (the bus delivers at least once) changes nothing.
    let mut replay = shared.clone();
    replay.as_object_mut().unwrap().remove("organizationId");
    let detail = json!({"eventId": "5b0c2f1e-8d3a-4c6b-9e7f-0a1b2c3d4e5f", "eventType": "organization.created", "eventVersion": "1.0",
        "sourceProduct": "portal", "organizationId": "org-shared", "timestamp": "2026-11-24T10:00:00Z", "payload": replay});
    stack.put_on_bus(Some("relay-local"), "portal", "organization.created", &detail).await;
    stack.put_on_bus(Some("relay-local"), "portal", "organization.created", &detail).await;
    provision_queue_idle(&stack).await;
    assert_eq!(hosting.record()["deployCalls"], 1, "no second deployment");
    let mails = sent_mails(&stack).await;
    assert_eq!((welcome_mails(&mails, "it@shared-co.example"), welcome_mails(&mails, "it@dedicated-co.example")), (1, 1));
    assert_eq!(stack.metric_total("provision", "TenantsProvisioned", 2.0, Duration::from_secs(10)).await, 2.0);
    assert_eq!(tenant_events(&stack, "org-shared").await, ["tenant.provisioned"]);
    let (_, integrations) = admin(&stack, "GET", "/v1/integrations", None).await;
    let recruitiq_nexus = integrations["integrations"].as_array().unwrap().iter().find(|i| i["target"] == "nexus").unwrap().clone();
    assert_eq!(recruitiq_nexus["organizations"], json!(["org-shared"]), "{recruitiq_nexus}");
    let (_, fleet) = admin(&stack, "GET", "/v1/vps", None).await;
    assert_eq!((fleet["statistics"]["sharedVps"].as_u64(), fleet["statistics"]["dedicatedVps"].as_u64()), (Some(1), Some(1)), "{fleet}");

    // Taken down: the dedicated VPS snapshotted and cancelled, the shared slot freed.
    for org in ["org-shared", "org-dedicated"] {
        assert_eq!(admin(&stack, "DELETE", &format!("/v1/tenants/{org}"), None).await.0, 202);
    }
    wait_for(&stack, &["org-shared", "org-dedicated"], &["deprovisioned"], Duration::from_secs(60)).await;
    let record = hosting.record();
    assert!(record["vpss"][0]["cancelled"].as_bool().unwrap() && record["vpss"][0]["snapshots"].as_array().unwrap().len() == 1, "{record}");
    assert_eq!((record["removals"].as_u64(), record["deployments"]["vps-a"].as_object().map(|d| d.len())), (Some(1), Some(0)));
    let (_, fleet) = admin(&stack, "GET", "/v1/vps", None).await;
    assert_eq!(fleet["statistics"]["totalTenants"], 0, "{fleet}");
    assert_eq!(tenant_events(&stack, "org-dedicated").await.len(), 2, "provisioned, then deprovisioned");
    assert_eq!(stack.iam_denials(), Vec::<Value>::new(), "template.yaml grants every call the functions made");
}

/// Where the handler is killed: after each step's checkpoint, for a shared and a dedicated
/// tenant. Split over two tenants of each kind because a message killed five times goes to the
/// dead-letter queue, as SQS's redrive policy says.
const KILLS: [(&str, &str, &str, &str); 4] = [
    ("org-s1", "s1-co", "shared", "licence+placement+deploy"),
    ("org-s2", "s2-co", "shared", "health+integrations+welcome"),
    ("org-d1", "d1-co", "dedicated", "licence+placement+deploy"),
    ("org-d2", "d2-co", "dedicated", "health+integrations+welcome"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_killed_after_every_steps_checkpoint_leaves_one_vps_one_deployment_one_mail_one_announcement() {
    let hosting = HostingStandIn::start(0, Behaviour { reads_until_running: 2, transient_on_read: 0, unhealthy_checks: 0 }).await.unwrap();
    let kills: Vec<String> = KILLS.iter().map(|(org, _, _, steps)| format!("{org}:{steps}")).collect();
    let env = vec![
        ("RELAY_LOCAL_FAULT_EXIT_AFTER".to_string(), kills.join(",")),
        // A killed handler's lease runs out before its message comes back.
        ("RELAY_PROVISION_LEASE_SECONDS".to_string(), "3".to_string()),
    ];
    let stack = stack_with(&hosting, env, Some(4)).await;
    let vps = json!({"name": "vps-a", "ip": "127.0.0.1", "maxTenants": 20, "deployAgentUrl": hosting.agent_url("vps-a")});
    assert_eq!(admin(&stack, "POST", "/v1/vps", Some(vps)).await.0, 201);
    for (org, slug, deployment, _) in KILLS {
        let request = tenant(org, slug, "professional", deployment, &["nexus"]);
        match deployment {
            "shared" => assert_eq!(organization_created(&stack, &request).await.0, 202),
            _ => assert_eq!(admin(&stack, "POST", "/v1/tenants", Some(request)).await.0, 202),
        }
    }

    let ids: Vec<&str> = KILLS.iter().map(|k| k.0).collect();
    let live = wait_for(&stack, &ids, &["active", "failed"], Duration::from_secs(240)).await;
    for t in &live {
        assert_eq!(t["status"], "active", "{t}");
    }
    let log = std::fs::read_to_string(stack.state_dir.join("stack.err.log")).unwrap_or_default();
    let kills = log.matches("RELAY_LOCAL_FAULT exiting after").count();
    assert_eq!(kills, 12, "killed after each of six steps, for each kind of tenant:\n{log}");
    let record = hosting.record();
    assert_eq!(
        (record["orders"].as_u64(), record["deployCalls"].as_u64()),
        (Some(2), Some(2)),
        "one VPS per dedicated tenant, one deployment per shared: {record}"
    );
    let mails = sent_mails(&stack).await;
    for (_, slug, _, _) in KILLS {
        assert_eq!(welcome_mails(&mails, &format!("it@{slug}.example")), 1, "{slug}");
    }
    assert_eq!(stack.metric_total("provision", "TenantsProvisioned", 4.0, Duration::from_secs(10)).await, 4.0);
    for org in ids {
        assert_eq!(tenant_events(&stack, org).await, ["tenant.provisioned"], "{org}");
    }
    assert_eq!(stack.iam_denials(), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tenants_at_once_on_twenty_slots_fill_them_and_the_rest_fail_for_want_of_capacity_holding_nothing() {
    let hosting = HostingStandIn::start(0, Behaviour { reads_until_running: 0, transient_on_read: 0, unhealthy_checks: 0 }).await.unwrap();
    let stack = stack_with(&hosting, vec![], None).await;
    for (name, slots) in [("vps-a", 7), ("vps-b", 7), ("vps-c", 6)] {
        let vps = json!({"name": name, "ip": "127.0.0.1", "maxTenants": slots, "deployAgentUrl": hosting.agent_url(name)});
        assert_eq!(admin(&stack, "POST", "/v1/vps", Some(vps)).await.0, 201);
    }
    let ids: Vec<String> = (0..50).map(|i| format!("org-{i:02}")).collect();
    let posts = ids.iter().enumerate().map(|(i, id)| {
        let body = tenant(id, &format!("tenant-{i:02}"), "starter", "shared", &["recruitiq"]);
        let stack = &stack;
        async move { admin(stack, "POST", "/v1/tenants", Some(body)).await.0 }
    });
    assert!(futures::future::join_all(posts).await.iter().all(|s| *s == 202));
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let done = wait_for(&stack, &refs, &["active", "failed"], Duration::from_secs(240)).await;

    let (_, fleet) = admin(&stack, "GET", "/v1/vps", None).await;
    let mut placed = Vec::new();
    for v in fleet["vps"].as_array().unwrap() {
        let tenants: Vec<String> = v["tenants"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
        assert!(tenants.len() as u64 <= v["maxTenants"].as_u64().unwrap(), "{v}");
        placed.extend(tenants);
    }
    let active: Vec<&Value> = done.iter().filter(|t| t["status"] == "active").collect();
    let failed: Vec<&Value> = done.iter().filter(|t| t["status"] == "failed").collect();
    assert_eq!((active.len(), failed.len(), placed.len()), (20, 30, 20), "{fleet}");
    for t in &failed {
        assert_eq!(t["failure"]["step"], "placement", "{t}");
        assert!(t["failure"]["reason"].as_str().unwrap().starts_with("no capacity"), "{t}");
        assert!(t["placement"].is_null() && !placed.contains(&t["organizationId"].as_str().unwrap().to_string()), "{t} holds nothing");
    }
    for t in &active {
        assert!(placed.contains(&t["organizationId"].as_str().unwrap().to_string()), "{t}");
    }
    assert_eq!(hosting.record()["deployCalls"], 20);
    assert_eq!(stack.metric_total("provision", "ProvisioningFailed", 30.0, Duration::from_secs(10)).await, 30.0);
    // Under the dimensions its alarm and the dashboard name (Service alone): CloudWatch keeps a
    // metric per dimension set, and an alarm on another set would never fire.
    let log = std::fs::read_to_string(stack.state_dir.join("stack.log")).unwrap_or_default();
    let failed = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|d| d["ProvisioningFailed"].is_number())
        .expect("a ProvisioningFailed line");
    assert_eq!(failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service"]]), "{failed}");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_problem_before_anything_is_written() {
    let hosting = HostingStandIn::start(0, Behaviour::default()).await.unwrap();
    let stack = stack_with(&hosting, vec![], None).await;
    for (field, value) in
        [("tier", json!("gold")), ("slug", json!("Not_A_Host")), ("contactEmail", json!("nobody")), ("deploymentType", json!("cloud"))]
    {
        let mut body = tenant("org-bad", "bad-co", "starter", "shared", &["recruitiq"]);
        body[field] = value;
        let (status, problem) = admin(&stack, "POST", "/v1/tenants", Some(body)).await;
        assert_eq!(status, 400, "{field}: {problem}");
        assert_eq!(problem["type"], "https://relay.dev/problems/invalid-request");
        assert!(
            problem["detail"].as_str().unwrap().contains(field) || problem["detail"].as_str().unwrap().contains("unknown variant"),
            "{problem}"
        );
    }
    let mut missing = tenant("org-bad", "bad-co", "starter", "shared", &["recruitiq"]);
    missing.as_object_mut().unwrap().remove("contactEmail");
    assert_eq!(admin(&stack, "POST", "/v1/tenants", Some(missing.clone())).await.0, 400);
    // The Portal's event without a contact is refused at ingest, by the catalogue.
    let (status, problem) = organization_created(&stack, &missing).await;
    assert_eq!((status, problem["type"].as_str()), (422, Some("https://relay.dev/problems/invalid-event")), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "payload.contactEmail", "{problem}");
    // One with a tier that does not exist passes ingest (the catalogue checks presence); the
    // provision function writes nothing for it and keeps it, with why, in its dead-letter queue
    // (under an alarm) for a person: acknowledged means kept.
    let gold = tenant("org-gold", "gold-co", "gold", "shared", &["recruitiq"]);
    assert_eq!(organization_created(&stack, &gold).await.0, 202);
    provision_queue_idle(&stack).await;
    assert_eq!(stack.count("relay-local-tenants").await, 0, "nothing written");
    assert_eq!(admin(&stack, "GET", "/v1/tenants/org-gold", None).await.0, 404);
    let kept = stack.drain("relay-local-provision-dlq", Duration::from_secs(2)).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["detail"]["payload"]["tier"], "gold", "the message as it came: {kept:?}");
    let log = std::fs::read_to_string(stack.state_dir.join("stack.log")).unwrap_or_default();
    assert!(log.contains("unknown variant `gold`"), "the reason, logged");
    // A slug is one tenant's: another organisation asking for it is 409, and nothing is written.
    assert_eq!(admin(&stack, "POST", "/v1/tenants", Some(tenant("org-one", "same-co", "starter", "shared", &["nexus"]))).await.0, 202);
    let (status, problem) = admin(&stack, "POST", "/v1/tenants", Some(tenant("org-two", "same-co", "starter", "shared", &["nexus"]))).await;
    assert_eq!((status, problem["detail"].as_str()), (409, Some("the slug same-co is another tenant's")), "{problem}");
    assert_eq!(admin(&stack, "GET", "/v1/tenants/org-two", None).await.0, 404);
    assert_eq!(call(&stack, "rk_org_test_acme", "GET", "/v1/tenants", None).await.0, 403, "operators only");
}
