//! Handler tests with in-memory ports: every HTTP rule in microseconds. The same behaviour is
//! proved over real HTTP and the AWS wire protocol in `tests/ingest.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request};
use relay_core::auth::Authenticator;
use relay_core::ingest::IngestPorts;
use relay_core::ingest::{Ingest, IngestConfig};
use relay_core::memory::{MemoryBlobs, MemoryBus, MemoryEvents, MemoryKeys, RecordedMetrics};
use relay_core::metrics;
use relay_core::model::keys::{self, ApiKey, KeyKind};
use relay_core::ports::KeyWriter;
use serde_json::{json, Value};

use super::App;

const PRODUCT_KEY: &str = "rk_prod_test_recruitiq";
const ORG_KEY: &str = "rk_org_test_acme";

struct World {
    app: App,
    store: Arc<MemoryEvents>,
    key_store: Arc<MemoryKeys>,
    bus: Arc<MemoryBus>,
    blobs: Arc<MemoryBlobs>,
    metrics: Arc<RecordedMetrics>,
}

async fn world() -> World {
    let store = Arc::new(MemoryEvents::default());
    let key_store = Arc::new(MemoryKeys::default());
    let bus = Arc::new(MemoryBus::default());
    let blobs = Arc::new(MemoryBlobs::default());
    let now = chrono::Utc::now();
    let product = ApiKey {
        kind: KeyKind::Product,
        product: Some("recruitiq".into()),
        organization_id: None,
        name: "t".into(),
        created_at: now,
        disabled: false,
    };
    let org = ApiKey {
        kind: KeyKind::Organization,
        product: None,
        organization_id: Some("org-1".into()),
        name: "t".into(),
        created_at: now,
        disabled: false,
    };
    key_store.put_key(&keys::hash(PRODUCT_KEY), &product).await.unwrap();
    key_store.put_key(&keys::hash(ORG_KEY), &org).await.unwrap();
    let config = IngestConfig { inline_payload_limit: 1024, ..IngestConfig::default() };
    let metrics = Arc::new(RecordedMetrics::default());
    let app = App {
        auth: Authenticator::new(key_store.clone(), Duration::from_secs(60)),
        ingest: Ingest::new(
            IngestPorts {
                idempotency: store.clone(),
                events: store.clone(),
                publisher: bus.clone(),
                blobs: blobs.clone(),
                metrics: metrics.clone(),
            },
            config,
        ),
    };
    World { app, store, key_store, bus, blobs, metrics }
}

/// An API Gateway v2 request, built from JSON the way Lambda delivers it.
fn request(method: &str, path: &str, headers: Value, body: &str) -> Request {
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": headers, "body": body, "isBase64Encoded": false,
        "requestContext": {"accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1", "routeKey": format!("{method} {path}"), "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0}
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

fn post(body: &str, key: Option<&str>, idem: Option<&str>) -> Request {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(k) = key {
        headers["authorization"] = json!(format!("Bearer {k}"));
    }
    if let Some(i) = idem {
        headers["idempotency-key"] = json!(i);
    }
    request("POST", "/v1/events", headers, body)
}

fn hired() -> String {
    json!({"eventType": "candidate.hired", "organizationId": "org-1",
           "payload": {"candidateId": "c1", "jobId": "j1", "startDate": "2026-01-01"}})
    .to_string()
}

async fn call(w: &World, req: Request) -> (u16, Value, lambda_http::http::HeaderMap) {
    let resp = w.app.handle(req).await.expect("handler never fails");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body, headers)
}

#[tokio::test]
async fn a_valid_event_is_accepted_stored_and_published_once() {
    let w = world().await;
    let (status, body, _) = call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["eventType"], "candidate.hired");
    assert!(body["receivedAt"].is_string());
    assert_eq!(w.bus.count(), 1);
    assert_eq!(w.store.event_count(), 1);
    let id = body["eventId"].as_str().unwrap().parse().unwrap();
    assert!(relay_core::ports::EventStore::get_event(&*w.store, id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_repeat_replays_and_another_body_is_refused() {
    let w = world().await;
    let (_, first, _) = call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await;
    let (status, again, headers) = call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await;
    assert_eq!(status, 202);
    assert_eq!(again["eventId"], first["eventId"]);
    assert_eq!(headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(w.bus.count(), 1);

    let other = hired().replace("c1", "c2");
    let (status, problem, _) = call(&w, post(&other, Some(PRODUCT_KEY), Some("k1"))).await;
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "https://relay.dev/problems/idempotency-key-reused");
    assert_eq!(w.bus.count(), 1);

    // One accepted, one replay, one refusal: counted as such, not as three events.
    assert_eq!(w.metrics.total(metrics::EVENTS_ACCEPTED), 1.0);
    assert_eq!(w.metrics.total(metrics::IDEMPOTENT_REPLAYS), 1.0);
    assert_eq!(w.metrics.total(metrics::REQUESTS_REJECTED), 1.0);
}

#[tokio::test]
async fn x_idempotency_key_is_accepted_too() {
    let w = world().await;
    let mut headers =
        json!({"content-type": "application/json", "authorization": format!("Bearer {PRODUCT_KEY}"), "x-idempotency-key": "legacy"});
    call(&w, request("POST", "/v1/events", headers.clone(), &hired())).await;
    headers["x-idempotency-key"] = json!("legacy");
    let (_, _, h) = call(&w, request("POST", "/v1/events", headers, &hired())).await;
    assert!(h.contains_key("idempotent-replayed"));
    assert_eq!(w.bus.count(), 1);
}

#[tokio::test]
async fn bad_input_gets_its_problem_and_writes_nothing() {
    let w = world().await;
    let cases: Vec<(Request, u16, &str)> = vec![
        (post(&hired(), None, None), 401, "unauthenticated"),
        (post(&hired(), Some("rk_prod_unknown"), None), 401, "unauthenticated"),
        (post(&hired(), Some(ORG_KEY), None), 403, "forbidden"),
        (
            post(
                &hired().replace("recruitiq", "x").replace("\"organizationId\"", "\"sourceProduct\":\"nexus\",\"organizationId\""),
                Some(PRODUCT_KEY),
                None,
            ),
            403,
            "forbidden",
        ),
        (post("{not json", Some(PRODUCT_KEY), Some("k")), 400, "malformed-json"),
        (post(&format!("{{\"x\":\"{}\"}}", "a".repeat(super::MAX_SINGLE_BYTES)), Some(PRODUCT_KEY), Some("k")), 413, "payload-too-large"),
        (
            request(
                "POST",
                "/v1/events",
                json!({"authorization": format!("Bearer {PRODUCT_KEY}"), "content-type": "text/plain"}),
                &hired(),
            ),
            415,
            "unsupported-media-type",
        ),
        (post(&hired().replace("\"jobId\":\"j1\",", ""), Some(PRODUCT_KEY), Some("k")), 422, "invalid-event"),
        (post(&hired(), Some(PRODUCT_KEY), Some("bad key")), 400, "invalid-request"),
        (request("DELETE", "/v1/events", json!({}), ""), 405, "method-not-allowed"),
        (request("GET", "/nope", json!({}), ""), 404, "not-found"),
    ];
    for (req, status, slug) in cases {
        let (got, body, headers) = call(&w, req).await;
        assert_eq!((got, body["type"].as_str()), (status, Some(format!("https://relay.dev/problems/{slug}").as_str())), "{body}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(w.bus.count(), 0);
    assert_eq!(w.store.event_count(), 0);
    assert!(w.store.record("product:recruitiq#k").is_none());
    // Refusals at the edge (auth, size, media type) count as well as the workflow's own; the
    // 404 and 405 are not requests to the ingest routes.
    assert_eq!(w.metrics.total(metrics::REQUESTS_REJECTED), 9.0);
    assert_eq!(w.metrics.total(metrics::EVENTS_ACCEPTED), 0.0);
}

#[tokio::test]
async fn a_missing_payload_field_is_named() {
    let w = world().await;
    let (_, problem, _) = call(&w, post(&hired().replace("\"jobId\":\"j1\",", ""), Some(PRODUCT_KEY), None)).await;
    assert_eq!(problem["errors"][0]["field"], "payload.jobId");
}

#[tokio::test]
async fn a_publish_failure_releases_everything_and_the_retry_publishes_once() {
    let w = world().await;
    w.bus.fail.store(true, Ordering::SeqCst);
    let (status, _, headers) = call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(w.store.event_count(), 0);
    assert!(w.store.record("product:recruitiq#k1").is_none());

    w.bus.fail.store(false, Ordering::SeqCst);
    let (status, _, _) = call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await;
    assert_eq!(status, 202);
    assert_eq!(w.bus.count(), 1);
    assert_eq!((w.metrics.total(metrics::UNAVAILABLE), w.metrics.total(metrics::EVENTS_ACCEPTED)), (1.0, 1.0));
}

#[tokio::test]
async fn a_store_failure_is_a_503_that_publishes_nothing() {
    let w = world().await;
    w.store.fail_writes.store(true, Ordering::SeqCst);
    let (status, _, _) = call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await;
    assert_eq!(status, 503);
    assert_eq!(w.bus.count(), 0);
    w.store.fail_writes.store(false, Ordering::SeqCst);
    assert_eq!(call(&w, post(&hired(), Some(PRODUCT_KEY), Some("k1"))).await.0, 202);
    assert_eq!(w.bus.count(), 1);
}

#[tokio::test]
async fn a_large_payload_travels_by_reference() {
    let w = world().await;
    let big = json!({"eventType": "job.published", "organizationId": "org-1",
                     "payload": {"jobId": "j1", "title": "T", "description": "x".repeat(5000)}})
    .to_string();
    let (status, _, _) = call(&w, post(&big, Some(PRODUCT_KEY), None)).await;
    assert_eq!(status, 202);
    let published = w.bus.published.lock().unwrap()[0].clone();
    let reference = published.payload_ref.expect("payload by reference");
    assert!(published.payload.is_none());
    let blob = w.blobs.blobs.lock().unwrap().get(&reference.key).cloned().expect("blob stored");
    assert_eq!(blob.len(), reference.size);
}

#[tokio::test]
async fn a_batch_reports_each_item() {
    let w = world().await;
    let good: Value = serde_json::from_str(&hired()).unwrap();
    let body = json!({"events": [good, {"eventType": "candidate.hired"}, good]}).to_string();
    let req = request(
        "POST",
        "/v1/events/batch",
        json!({"content-type": "application/json", "authorization": format!("Bearer {PRODUCT_KEY}"), "idempotency-key": "b1"}),
        &body,
    );
    let (status, result, _) = call(&w, req).await;
    assert_eq!(status, 207, "{result}");
    assert_eq!(result["accepted"], 2);
    assert_eq!(result["results"][1]["status"], 422);
    assert_ne!(result["results"][0]["eventId"], result["results"][2]["eventId"]);
    assert_eq!(w.bus.count(), 2);

    let req = request(
        "POST",
        "/v1/events/batch",
        json!({"content-type": "application/json", "authorization": format!("Bearer {PRODUCT_KEY}"), "idempotency-key": "b1"}),
        &body,
    );
    let (_, again, headers) = call(&w, req).await;
    assert_eq!(again, result);
    assert!(headers.contains_key("idempotent-replayed"));
    assert_eq!(w.bus.count(), 2);

    assert_eq!(w.metrics.total(metrics::EVENTS_ACCEPTED), 2.0);
    assert_eq!(w.metrics.total(metrics::EVENTS_REJECTED), 1.0);
    assert_eq!(w.metrics.total(metrics::IDEMPOTENT_REPLAYS), 1.0);
}

#[tokio::test]
async fn health_needs_no_key() {
    let w = world().await;
    assert_eq!(call(&w, request("GET", "/health", json!({}), "")).await.0, 200);
}

/// The `sam local invoke` fixtures are real requests to this handler, not just parseable JSON.
#[tokio::test]
async fn the_sam_fixtures_are_requests_this_handler_answers() {
    let w = world().await;
    let demo = ApiKey {
        kind: KeyKind::Product,
        product: Some("recruitiq".into()),
        organization_id: None,
        name: "demo".into(),
        created_at: chrono::Utc::now(),
        disabled: false,
    };
    w.key_store.put_key(&keys::hash("rk_prod_local_demo"), &demo).await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let expect = [("ingest-post-event.json", 202), ("ingest-post-batch.json", 202), ("ingest-health.json", 200)];
    for (file, status) in expect {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (got, body, _) = call(&w, req).await;
        assert_eq!(got, status, "{file}: {body}");
    }
}

#[tokio::test]
async fn a_batch_item_reusing_another_requests_event_id_is_refused_alone() {
    let w = world().await;
    let id = "7d444840-9dc0-41d2-a6c5-3c1a3e5f2b11";
    let mut taken: Value = serde_json::from_str(&hired()).unwrap();
    taken["eventId"] = json!(id);
    assert_eq!(call(&w, post(&taken.to_string(), Some(PRODUCT_KEY), Some("first"))).await.0, 202);

    let fresh: Value = serde_json::from_str(&hired()).unwrap();
    let body = json!({"events": [taken, fresh]}).to_string();
    let req = request(
        "POST",
        "/v1/events/batch",
        json!({"content-type": "application/json", "authorization": format!("Bearer {PRODUCT_KEY}"), "idempotency-key": "second"}),
        &body,
    );
    let (status, result, _) = call(&w, req).await;
    assert_eq!(status, 207, "{result}");
    assert_eq!(result["results"][0]["status"], 409);
    assert_eq!(result["results"][1]["status"], 202);
    assert_eq!(w.bus.count(), 2, "the first request's event and the fresh one");
}

#[tokio::test]
async fn a_product_may_not_publish_another_products_catalogued_event() {
    let w = world().await;
    let nexus = ApiKey {
        kind: KeyKind::Product,
        product: Some("nexus".into()),
        organization_id: None,
        name: "nexus".into(),
        created_at: chrono::Utc::now(),
        disabled: false,
    };
    w.key_store.put_key(&keys::hash("rk_prod_nexus"), &nexus).await.unwrap();
    let (status, body, _) = call(&w, post(&hired(), Some("rk_prod_nexus"), Some("hire-by-nexus"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("published by recruitiq")), "{body}");
    assert_eq!(w.bus.count(), 0);
}

#[tokio::test]
async fn mail_is_not_published_as_an_event() {
    let w = world().await;
    for t in ["email.requested", "email.sent"] {
        let body = json!({"eventType": t, "organizationId": "org-1", "payload": {"to": ["a@example.com"], "subject": "s", "text": "t"}});
        let (status, problem, _) = call(&w, post(&body.to_string(), Some(PRODUCT_KEY), Some(&format!("mail-{t}")))).await;
        assert_eq!(status, 403, "{t}: {problem}");
    }
}
