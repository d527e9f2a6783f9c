//! The management rules over in-memory ports, through the function's own HTTP handling:
//! ownership (another organisation's things answer 404 and stay unchanged), the subscription
//! cap, rotation, recover, replay, test sends, integrations and the contact address. The same
//! API is exercised over real HTTP and the AWS wire protocol in `tests/`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::{Body, Request};
use relay_core::auth::Authenticator;
use relay_core::mail::log::MailRecords;
use relay_core::mail::request::{IntakeConfig, IntakePorts, MailIntake};
use relay_core::manage::{Manage, ManageConfig, ManagePorts};
use relay_core::memory::{
    MemoryBlobs, MemoryBus, MemoryDeliveries, MemoryEvents, MemoryKeys, MemoryMailLog, MemoryMailer, MemoryOrganizations,
    MemoryPayrollRuns, MemoryPayrollSchedules, MemoryRequests, MemoryRetries, MemorySources, MemorySubscriptions, RecordedMetrics,
};
use relay_core::memory::{MemoryFleet, MemoryProvisionQueue, MemoryTenants, TEST_LICENCE_SEED};
use relay_core::model::delivery::{Attempt, AttemptClaim, AttemptOutcome, FollowUp, PairKey, State};
use relay_core::model::envelope::EventEnvelope;
use relay_core::model::event::{DeliveryMark, StoredEvent};
use relay_core::model::keys::{self, ApiKey, KeyKind};
use relay_core::model::subscription::{Changes, MAX_SUBSCRIPTIONS_PER_ORGANIZATION};
use relay_core::payroll::requests::{PayrollApi, PayrollApiPorts};
use relay_core::ports::{DeliveryStore, EventLedger, EventWriter, KeyWriter, SubscriptionStore};
use relay_core::provision::licence::LicenceKey;
use relay_core::provision::requests::{TenantApi, TenantApiPorts};
use relay_core::secrets::SecretBox;
use serde_json::{json, Value};
use uuid::Uuid;

use super::App;

const ORG_1: &str = "rk_org_test_one";
const ORG_2: &str = "rk_org_test_two";
const ADMIN: &str = "rk_admin_test";
const PRODUCT: &str = "rk_prod_test";
const PAYLINQ: &str = "rk_prod_test_paylinq";
/// A public address literal: registration checks it without DNS.
const HOOK: &str = "https://93.184.215.14/hook";

struct World {
    app: App,
    subscriptions: Arc<MemorySubscriptions>,
    deliveries: Arc<MemoryDeliveries>,
    events: Arc<MemoryEvents>,
    retries: Arc<MemoryRetries>,
    mailer: Arc<MemoryMailer>,
    mail_log: Arc<MemoryMailLog>,
    bus: Arc<MemoryBus>,
    secrets: SecretBox,
    payroll_runs: Arc<MemoryPayrollRuns>,
    tenants: Arc<MemoryTenants>,
    provision_queue: Arc<MemoryProvisionQueue>,
}

async fn world() -> World {
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let keys = Arc::new(MemoryKeys::default());
    for (key, kind, org, product) in [
        (ORG_1, KeyKind::Organization, Some("org-1"), None),
        (ORG_2, KeyKind::Organization, Some("org-2"), None),
        (ADMIN, KeyKind::Admin, None, None),
        (PRODUCT, KeyKind::Product, None, Some("recruitiq")),
        (PAYLINQ, KeyKind::Product, None, Some("paylinq")),
    ] {
        let api_key = ApiKey {
            kind,
            product: product.map(str::to_string),
            organization_id: org.map(str::to_string),
            name: "t".into(),
            created_at: Utc::now(),
            disabled: false,
        };
        keys.put_key(&keys::hash(key), &api_key).await.unwrap();
    }
    let subscriptions = Arc::new(MemorySubscriptions::default());
    let deliveries = Arc::new(MemoryDeliveries::default());
    let events = Arc::new(MemoryEvents::default());
    let retries = Arc::new(MemoryRetries::default());
    let mailer = Arc::new(MemoryMailer::default());
    let ports = ManagePorts {
        subscriptions: subscriptions.clone(),
        sources: Arc::new(MemorySources::default()),
        events: events.clone(),
        deliveries: deliveries.clone(),
        organizations: Arc::new(MemoryOrganizations::default()),
        retries: retries.clone(),
        mailer: mailer.clone(),
        blobs: Arc::new(MemoryBlobs::default()),
        requests: Arc::new(MemoryRequests::default()),
        archive: Arc::new(MemoryBlobs::default()),
    };
    let mail_log = Arc::new(MemoryMailLog::default());
    let bus = Arc::new(MemoryBus::default());
    let intake = MailIntake::new(
        IntakePorts {
            idempotency: events.clone(),
            log: mail_log.clone(),
            publisher: bus.clone(),
            metrics: Arc::new(RecordedMetrics::default()),
        },
        IntakeConfig::default(),
    );
    let payroll_files = Arc::new(MemoryBlobs::default());
    let payroll_runs = Arc::new(MemoryPayrollRuns::default());
    let payroll = PayrollApi::new(
        PayrollApiPorts {
            runs: payroll_runs.clone(),
            schedules: Arc::new(MemoryPayrollSchedules::default()),
            bus: bus.clone(),
            reader: payroll_files.clone(),
            links: payroll_files,
        },
        vec!["nl-2025".into()],
    );
    let (tenants, fleet, provision_queue) =
        (Arc::new(MemoryTenants::default()), Arc::new(MemoryFleet::default()), Arc::new(MemoryProvisionQueue::default()));
    let tenant_api = TenantApi::new(
        TenantApiPorts { tenants: tenants.clone(), fleet, queue: provision_queue.clone() },
        "tenants.example".into(),
        LicenceKey::from_base64(TEST_LICENCE_SEED).unwrap().public(),
    );
    let app = App {
        auth: Authenticator::new(keys, Duration::from_secs(60)),
        manage: Manage::new(ports, ManageConfig::new(secrets.clone())),
        intake,
        records: MailRecords { log: mail_log.clone(), suppressions: mail_log.clone() },
        payroll,
        tenants: tenant_api,
    };
    World { app, subscriptions, deliveries, events, retries, mailer, mail_log, bus, secrets, payroll_runs, tenants, provision_queue }
}

impl World {
    /// One request (`path` may carry a query); answers the status and the JSON body (`null` when empty).
    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, key, body, &[]).await
    }

    async fn call_with(&self, method: &str, path: &str, key: &str, body: Option<Value>, extra: &[(&str, &str)]) -> (u16, Value) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut headers = json!({"authorization": format!("Bearer {key}"), "host": "localhost:3000"});
        for (k, v) in extra {
            headers[*k] = json!(v);
        }
        if body.is_some() {
            headers["content-type"] = json!("application/json");
        }
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": headers, "body": body.map(|b| b.to_string()), "isBase64Encoded": false,
            "requestContext": {"accountId": "1", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0}
        });
        let req: Request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let resp = self.app.handle(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, body)
    }

    async fn create_subscription(&self, key: &str, types: &[&str]) -> String {
        let (status, body) = self.call("POST", "/v1/subscriptions", key, Some(json!({"url": HOOK, "eventTypes": types}))).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// An event of org-1 stored as ingest stores it.
    async fn stored_event(&self) -> EventEnvelope {
        let envelope = EventEnvelope {
            event_id: Uuid::new_v4(),
            event_type: "candidate.hired".into(),
            event_version: "1.0".into(),
            source_product: "recruitiq".into(),
            organization_id: "org-1".into(),
            timestamp: Utc::now(),
            correlation_id: None,
            payload: json!({"candidateId": "c"}).as_object().cloned(),
            payload_ref: None,
        };
        let stored = StoredEvent {
            envelope: envelope.clone(),
            received_at: Utc::now(),
            idempotency_key: None,
            expires_at: i64::MAX,
            deliveries: Default::default(),
        };
        self.events.put_events(&[stored]).await.unwrap();
        envelope
    }

    /// Records `attempts` failed attempts of the pair, ending in `state`.
    async fn failed_pair(&self, e: &EventEnvelope, subscription_id: &str, attempts: u32, state: State) {
        let now = Utc::now();
        for n in 1..=attempts {
            let lease = now.timestamp_millis() + 60_000;
            let claim = AttemptClaim {
                event: e,
                subscription_id,
                organization_id: "org-1",
                attempt: n,
                lease_until_ms: lease,
                now_ms: now.timestamp_millis() + i64::from(n),
            };
            self.deliveries.claim(&claim).await.unwrap();
            let attempt = Attempt {
                number: n,
                at: now,
                status_code: Some(500),
                duration_ms: 1,
                response_excerpt: None,
                error_kind: Some("http".into()),
            };
            let (state, next) = if n == attempts { (state, n) } else { (State::Retrying, n + 1) };
            let outcome = AttemptOutcome { attempt: &attempt, state, next_attempt: next, follow_up: FollowUp::None };
            self.deliveries.record(PairKey { event_id: e.event_id, subscription_id }, &outcome).await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_organisation_sees_and_changes_only_its_own_subscriptions() {
    let w = world().await;
    let (status, created) = w.call("POST", "/v1/subscriptions", ORG_1, Some(json!({"url": HOOK, "eventTypes": ["candidate.*"]}))).await;
    assert_eq!(status, 201);
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "the secret is shown once, at creation");
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/subscriptions/{id}");
    let before = w.subscriptions.get_subscription(id).await.unwrap();

    for (method, path, body) in [
        ("GET", path.clone(), None),
        ("PATCH", path.clone(), Some(json!({"enabled": false}))),
        ("DELETE", path.clone(), None),
        ("POST", format!("{path}/secret/rotate"), None),
        ("POST", format!("{path}/recover"), Some(json!({"since": "2026-01-01T00:00:00Z"}))),
        ("POST", format!("{path}/test"), None),
    ] {
        let (status, body) = w.call(method, &path, ORG_2, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("no subscription"), "{body}");
    }
    assert_eq!(w.subscriptions.get_subscription(id).await.unwrap(), before, "nothing changed");
    assert!(w.retries.scheduled().is_empty());
    let (_, list) = w.call("GET", "/v1/subscriptions", ORG_2, None).await;
    assert_eq!(list["subscriptions"], json!([]));

    let (status, list) = w.call("GET", "/v1/subscriptions", ORG_1, None).await;
    assert_eq!((status, list["subscriptions"][0]["id"].as_str()), (200, Some(id)));
    assert!(list["subscriptions"][0].get("secret").is_none() && !list.to_string().contains("sealed"), "{list}");
    let (status, patched) = w.call("PATCH", &path, ORG_1, Some(json!({"enabled": false}))).await;
    assert_eq!((status, &patched["enabled"], &patched["eventTypes"]), (200, &json!(false), &json!(["candidate.*"])), "only the field sent");
    assert_eq!(w.call("DELETE", &path, ORG_1, None).await.0, 204);
    assert_eq!(w.call("GET", &path, ORG_1, None).await.0, 404);
}

#[tokio::test]
async fn keys_of_the_wrong_kind_are_refused_naming_what_the_route_manages() {
    let w = world().await;
    let (status, body) = w.call("GET", "/v1/subscriptions", PRODUCT, None).await;
    assert_eq!(status, 403);
    assert!(body["detail"].as_str().unwrap().contains("subscriptions belong to an organisation"), "{body}");
    let (status, body) = w.call("GET", "/v1/sources", ADMIN, None).await;
    assert_eq!(status, 403);
    assert!(body["detail"].as_str().unwrap().contains("sources belong"), "{body}");
    assert_eq!(w.call("GET", "/v1/integrations", ORG_1, None).await.0, 403);
    assert_eq!(w.call("GET", "/v1/subscriptions", "rk_org_nobody", None).await.0, 401);
}

#[tokio::test]
async fn bad_input_gets_its_problem_and_changes_nothing() {
    let w = world().await;
    for body in [json!({"url": "http://10.0.0.1/hook", "eventTypes": ["a.b"]}), json!({"url": HOOK, "eventTypes": []}), json!([1])] {
        let (status, problem) = w.call("POST", "/v1/subscriptions", ORG_1, Some(body.clone())).await;
        assert!((400..500).contains(&status), "{body}: {status}");
        assert!(problem["type"].is_string() && problem["detail"].is_string(), "{problem}");
    }
    assert!(w.subscriptions.list_subscriptions("org-1").await.unwrap().is_empty());
    assert_eq!(w.call("PUT", "/v1/subscriptions", ORG_1, None).await.0, 405);
}

#[tokio::test]
async fn the_subscription_cap_answers_409_and_creates_nothing() {
    let w = world().await;
    for i in 0..MAX_SUBSCRIPTIONS_PER_ORGANIZATION {
        let changes = Changes::parse(&json!({"url": HOOK, "eventTypes": ["a.b"]})).unwrap();
        let (sub, _) = changes.create("org-1", format!("sub_{i}"), Utc::now(), &w.secrets).unwrap();
        w.subscriptions.insert(sub);
    }
    let (status, body) = w.call("POST", "/v1/subscriptions", ORG_1, Some(json!({"url": HOOK, "eventTypes": ["a.b"]}))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(w.subscriptions.list_subscriptions("org-1").await.unwrap().len(), MAX_SUBSCRIPTIONS_PER_ORGANIZATION);
}

#[tokio::test]
async fn a_rotation_answers_the_new_secret_and_keeps_the_old_one_signing_for_the_overlap() {
    let w = world().await;
    let id = w.create_subscription(ORG_1, &["a.b"]).await;
    let (status, body) = w.call("POST", &format!("/v1/subscriptions/{id}/secret/rotate"), ORG_1, None).await;
    assert_eq!(status, 200);
    let sub = w.subscriptions.get_subscription(&id).await.unwrap().unwrap();
    let signing = sub.signing_secrets(Utc::now(), &w.secrets);
    assert_eq!(signing.len(), 2, "old and new sign together during the overlap");
    assert_eq!(body["secret"].as_str(), Some(signing[0].as_str()), "the secret answered is the one stored");
    let until: chrono::DateTime<Utc> = body["previousSecretsValidUntil"].as_str().unwrap().parse().unwrap();
    assert_eq!(sub.signing_secrets(until + chrono::Duration::seconds(1), &w.secrets).len(), 1);
}

#[tokio::test]
async fn recover_resends_only_what_failed_since_the_time_given_as_each_pairs_next_attempt() {
    let w = world().await;
    let id = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let (failed, delivered) = (w.stored_event().await, w.stored_event().await);
    w.failed_pair(&failed, &id, 3, State::Failed).await;
    w.failed_pair(&delivered, &id, 1, State::Delivered).await;

    let path = format!("/v1/subscriptions/{id}/recover");
    let (status, body) = w.call("POST", &path, ORG_1, Some(json!({"since": "2026-01-01T00:00:00Z"}))).await;
    assert_eq!((status, &body["recovered"]), (202, &json!([failed.event_id])));
    let scheduled = w.retries.scheduled();
    assert_eq!(scheduled.len(), 1);
    assert_eq!((scheduled[0].0.attempt, scheduled[0].0.envelope.event_id, scheduled[0].1), (4, failed.event_id, Duration::ZERO));
    assert_eq!(w.deliveries.status(failed.event_id, &id).map(|s| (s.state, s.attempt_no)), Some((State::Retrying, 4)));

    let future = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, body) = w.call("POST", &path, ORG_1, Some(json!({"since": future}))).await;
    assert_eq!(body["recovered"], json!([]));
    assert_eq!(w.call("POST", &path, ORG_1, Some(json!({}))).await.0, 400, "since is required");
}

#[tokio::test]
async fn replay_reopens_each_pair_as_its_next_attempt_and_leaves_a_pair_being_sent_alone() {
    let w = world().await;
    let a = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let b = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let e = w.stored_event().await;
    w.failed_pair(&e, &a, 2, State::Failed).await;
    // b is being sent right now: its lease has not lapsed.
    let now = Utc::now().timestamp_millis();
    let claim =
        AttemptClaim { event: &e, subscription_id: &b, organization_id: "org-1", attempt: 1, lease_until_ms: now + 60_000, now_ms: now };
    w.deliveries.claim(&claim).await.unwrap();

    let (status, body) = w.call("POST", &format!("/v1/events/{}/replay", e.event_id), ORG_1, None).await;
    assert_eq!((status, &body["replayedTo"]), (202, &json!([a])), "{body}");
    let scheduled = w.retries.scheduled();
    assert_eq!((scheduled.len(), scheduled[0].0.attempt), (1, 3));

    let (status, _) = w.call("POST", &format!("/v1/events/{}/replay", e.event_id), ORG_2, None).await;
    assert_eq!(status, 404, "another organisation's event does not exist for it");
    assert_eq!(w.retries.scheduled().len(), 1);
}

#[tokio::test]
async fn a_deleted_endpoints_failures_stop_counting_in_the_listing() {
    let w = world().await;
    let (gone, kept) = (w.create_subscription(ORG_1, &["candidate.*"]).await, w.create_subscription(ORG_1, &["candidate.*"]).await);
    let e = w.stored_event().await;
    w.events.mark_delivery(e.event_id, &gone, DeliveryMark::Failing).await.unwrap();
    w.events.mark_delivery(e.event_id, &kept, DeliveryMark::Delivered).await.unwrap();
    let listed = |body: &Value| body["events"].as_array().map_or(0, Vec::len);

    let (status, failed) = w.call("GET", "/v1/events?deliveryState=failed", ORG_1, None).await;
    assert_eq!((status, listed(&failed)), (200, 1), "{failed}");
    assert_eq!(failed["events"][0]["deliveries"], json!({"delivered": 1, "failing": 1}));
    assert_eq!(w.call("DELETE", &format!("/v1/subscriptions/{gone}"), ORG_1, None).await.0, 204);
    let (_, failed) = w.call("GET", "/v1/events?deliveryState=failed", ORG_1, None).await;
    assert_eq!(listed(&failed), 0, "nothing can be replayed to a deleted endpoint: {failed}");
    let (_, delivered) = w.call("GET", "/v1/events?deliveryState=delivered", ORG_1, None).await;
    assert_eq!(delivered["events"][0]["deliveries"], json!({"delivered": 1, "failing": 0}));
}

#[tokio::test]
async fn an_events_page_shows_the_organisations_own_attempts_not_the_platforms() {
    let w = world().await;
    let own = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let e = w.stored_event().await;
    w.failed_pair(&e, &own, 1, State::Failed).await;
    w.failed_pair(&e, "int_recruitiq_nexus", 1, State::Failed).await;

    let (status, body) = w.call("GET", &format!("/v1/events/{}", e.event_id), ORG_1, None).await;
    assert_eq!(status, 200);
    let subs: Vec<&str> = body["deliveries"].as_array().unwrap().iter().filter_map(|d| d["subscriptionId"].as_str()).collect();
    assert_eq!(subs, [own.as_str()]);
    assert_eq!(body["deliveries"][0]["attempts"][0]["statusCode"], 500);
    assert_eq!(w.call("GET", &format!("/v1/events/{}", e.event_id), ORG_2, None).await.0, 404);
    assert_eq!(w.call("GET", "/v1/events/not-a-uuid", ORG_1, None).await.0, 404);
}

#[tokio::test]
async fn a_test_send_queues_a_relay_test_event_for_that_subscription_alone() {
    let w = world().await;
    let id = w.create_subscription(ORG_1, &["candidate.hired"]).await;
    let (status, body) = w.call("POST", &format!("/v1/subscriptions/{id}/test"), ORG_1, None).await;
    assert_eq!(status, 202);
    let (message, delay) = w.retries.scheduled()[0].clone();
    assert_eq!(delay, Duration::ZERO);
    assert_eq!((message.subscription_id.as_str(), message.attempt), (id.as_str(), 1));
    assert_eq!(message.envelope.event_type, "relay.test");
    assert_eq!(body["eventId"], json!(message.envelope.event_id));
}

#[tokio::test]
async fn an_integration_is_created_once_with_its_secret_then_switched_and_repointed() {
    let w = world().await;
    let path = "/v1/integrations/recruitiq/nexus";
    let (status, first) = w.call("PUT", path, ADMIN, Some(json!({"enabled": true, "url": HOOK}))).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
    assert_eq!(first["eventTypes"], json!(["candidate.hired"]));

    let (_, second) = w.call("PUT", path, ADMIN, Some(json!({"enabled": false}))).await;
    assert!(second.get("secret").is_none(), "shown once");
    assert_eq!((&second["enabled"], &second["url"]), (&json!(false), &json!(HOOK)));
    let (_, list) = w.call("GET", "/v1/integrations", ADMIN, None).await;
    let listed = list["integrations"].as_array().unwrap().iter().find(|i| i["source"] == "recruitiq" && i["target"] == "nexus").cloned();
    assert_eq!(listed.map(|i| (i["configured"].clone(), i["enabled"].clone())), Some((json!(true), json!(false))));
    assert_eq!(w.call("PUT", "/v1/integrations/nexus/recruitiq", ADMIN, Some(json!({"enabled": true}))).await.0, 404);
    assert_eq!(w.subscriptions.list_subscriptions("*").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_contact_address_counts_only_once_its_code_comes_back() {
    let w = world().await;
    w.mailer.fail.store(true, Ordering::SeqCst);
    let (status, _) = w.call("PUT", "/v1/organization", ORG_1, Some(json!({"contactEmail": "ops@example.com"}))).await;
    assert_eq!(status, 503);
    let (_, profile) = w.call("GET", "/v1/organization", ORG_1, None).await;
    assert_eq!(profile["pendingContactEmail"], Value::Null, "a code nobody received is not pending");

    w.mailer.fail.store(false, Ordering::SeqCst);
    let (status, profile) = w.call("PUT", "/v1/organization", ORG_1, Some(json!({"contactEmail": "ops@example.com"}))).await;
    assert_eq!((status, &profile["contactEmail"], &profile["pendingContactEmail"]), (202, &Value::Null, &json!("ops@example.com")));
    let (org, mail) = w.mailer.sent().pop().unwrap();
    assert_eq!(
        (org.as_str(), mail.recipients.to.as_slice(), mail.template_name()),
        ("org-1", &["ops@example.com".to_string()][..], Some("contact-verification"))
    );
    let code = match &mail.content {
        relay_core::model::mail::Content::Template { data, .. } => data["code"].as_str().unwrap().to_string(),
        other => panic!("{other:?}"),
    };

    let (status, _) = w.call("POST", "/v1/organization/contact/verify", ORG_1, Some(json!({"code": "WRONG"}))).await;
    assert!((400..500).contains(&status));
    let (status, _) = w.call("POST", "/v1/organization/contact/verify", ORG_2, Some(json!({"code": code}))).await;
    assert!((400..500).contains(&status), "another organisation's code is not this one's");
    let (status, profile) = w.call("POST", "/v1/organization/contact/verify", ORG_1, Some(json!({"code": code}))).await;
    assert_eq!((status, &profile["contactEmail"]), (200, &json!("ops@example.com")));
}

mod emails;
mod operations;
mod payroll;
mod tenants;
