//! Handler tests over in-memory ports. The same behaviour is proved over real HTTP, moto and
//! independent signing libraries in `tests/webhooks.rs`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lambda_http::{Body, Request, RequestExt};
use relay_core::memory::{MemoryBlobs, MemoryBus, MemoryDedupe, MemoryRates, MemoryRequests, MemorySources, RecordedMetrics};
use relay_core::metrics;
use relay_core::model::request::RequestOutcome;
use relay_core::ports::{PaymentLookup, SourceStore};
use relay_core::secrets::SecretBox;
use relay_core::webhooks::receive::{Receiver, ReceiverConfig, ReceiverPorts, DEFAULT_MOLLIE_LOOKUPS_PER_SECOND};
use relay_core::webhooks::sources;
use serde_json::{json, Value};

use super::App;

#[derive(Default)]
struct FakeMollie {
    payments: Mutex<Vec<Value>>,
    lookups: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl PaymentLookup for FakeMollie {
    async fn payment(&self, _base: &str, api_key: &str, id: &str) -> Result<Option<Value>, String> {
        assert_eq!(api_key, "test_mollie_key");
        self.lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.payments.lock().unwrap().iter().find(|p| p["id"] == id).cloned())
    }
}

struct World {
    app: App,
    bus: Arc<MemoryBus>,
    blobs: Arc<MemoryBlobs>,
    mollie: Arc<FakeMollie>,
    metrics: Arc<RecordedMetrics>,
    requests: Arc<MemoryRequests>,
}

async fn world() -> World {
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let store = Arc::new(MemorySources::default());
    for (id, provider, secret) in [("src_stripe", "stripe", "whsec_stripe"), ("src_mollie", "mollie", "test_mollie_key")] {
        let sealed =
            sources::register(&json!({"provider": provider, "secret": secret}), "org-1", id.into(), chrono::Utc::now(), &secrets).unwrap();
        store.put_source(&sealed).await.unwrap();
    }
    let bus = Arc::new(MemoryBus::default());
    let blobs = Arc::new(MemoryBlobs::default());
    let mollie = Arc::new(FakeMollie::default());
    let metrics = Arc::new(RecordedMetrics::default());
    let requests = Arc::new(MemoryRequests::default());
    let ports = ReceiverPorts {
        sources: store,
        dedupe: Arc::new(MemoryDedupe::default()),
        publisher: bus.clone(),
        archive: blobs.clone(),
        payloads: blobs.clone(),
        payments: mollie.clone(),
        limiter: Arc::new(MemoryRates::default()),
        requests: requests.clone(),
        metrics: metrics.clone(),
    };
    let config = ReceiverConfig { noise_per_minute: 5, max_body_bytes: 4096, ..ReceiverConfig::new(secrets) };
    let receiver = Receiver::new(ports, config);
    World { app: App { receiver }, bus, blobs, mollie, metrics, requests }
}

fn request(method: &str, path: &str, headers: Value, body: &str) -> Request {
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} /webhooks/{{provider}}/{{sourceId}}"), "rawPath": path, "rawQueryString": "",
        "headers": headers, "body": body, "isBase64Encoded": false,
        "requestContext": {"accountId": "1", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": "x", "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0}
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn stripe_request(body: &str, secret: &str, t: i64) -> Request {
    let sig = hex(&relay_core::crypto::hmac_sha256(secret.as_bytes(), &[format!("{t}.").as_bytes(), body.as_bytes()]));
    request(
        "POST",
        "/webhooks/stripe/src_stripe",
        json!({"stripe-signature": format!("t={t},v1={sig}"), "content-type": "application/json"}),
        body,
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn call(w: &World, req: Request) -> (u16, Value) {
    let resp = w.app.handle(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body)
}

const PAYMENT: &str = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":5000}}}"#;

#[tokio::test]
async fn a_signed_stripe_event_is_published_once_and_archived() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    let (status, body) = call(&w, stripe_request(PAYMENT, "whsec_stripe", now)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["eventType"], "payment.received");
    let published = w.bus.published.lock().unwrap()[0].clone();
    assert_eq!(published.organization_id, "org-1");
    assert_eq!(published.payload.as_ref().unwrap()["data"]["id"], "pi_1");
    assert_eq!(w.blobs.blobs.lock().unwrap().len(), 1);

    let (status, again) = call(&w, stripe_request(PAYMENT, "whsec_stripe", now)).await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)));
    assert_eq!(again["eventId"], body["eventId"]);
    assert_eq!(w.bus.count(), 1);
    assert_eq!(w.metrics.total_where(metrics::WEBHOOKS_ACCEPTED, "Provider", "stripe"), 1.0);
    assert_eq!(w.metrics.total_where(metrics::WEBHOOKS_DUPLICATE, "Provider", "stripe"), 1.0);
}

#[tokio::test]
async fn forged_stale_and_unknown_calls_change_nothing() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    let cases = vec![
        (stripe_request(PAYMENT, "whsec_wrong", now), 401),
        (stripe_request(PAYMENT, "whsec_stripe", now - 3600), 401),
        (request("POST", "/webhooks/stripe/src_stripe", json!({}), PAYMENT), 401),
        (request("POST", "/webhooks/stripe/src_nope", json!({}), PAYMENT), 404),
        (request("POST", "/webhooks/github/src_stripe", json!({}), PAYMENT), 404),
        (request("POST", "/webhooks/paypal/src_stripe", json!({}), PAYMENT), 404),
    ];
    for (req, status) in cases {
        let (got, body) = call(&w, req).await;
        assert_eq!(got, status, "{body}");
        assert!(body["type"].as_str().is_some_and(|t| t.starts_with("https://relay.dev/problems/")));
    }
    let tampered = stripe_request(PAYMENT, "whsec_stripe", now);
    let (parts, _) = tampered.into_parts();
    let tampered = Request::from_parts(parts, Body::Text(PAYMENT.replace("5000", "5")));
    assert_eq!(call(&w, tampered).await.0, 401);
    assert_eq!(w.bus.count(), 0);
    // Unknown sources are not counted per provider: anyone can make up a provider name.
    assert_eq!(w.metrics.total_where(metrics::WEBHOOKS_REJECTED, "Provider", "stripe"), 4.0);
    assert_eq!(w.metrics.total(metrics::WEBHOOKS_ACCEPTED), 0.0);
    assert!(w.blobs.blobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_publish_forgets_the_claim_so_the_retry_publishes() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    w.bus.fail.store(true, Ordering::SeqCst);
    assert_eq!(call(&w, stripe_request(PAYMENT, "whsec_stripe", now)).await.0, 503);
    w.bus.fail.store(false, Ordering::SeqCst);
    assert_eq!(call(&w, stripe_request(PAYMENT, "whsec_stripe", now)).await.0, 200);
    assert_eq!(w.bus.count(), 1);
}

#[tokio::test]
async fn mollie_callbacks_publish_only_what_mollie_confirms_as_paid() {
    let w = world().await;
    w.mollie.payments.lock().unwrap().extend([
        json!({"id": "tr_paid1", "status": "paid", "amount": {"value": "10.00", "currency": "EUR"}}),
        json!({"id": "tr_open1", "status": "open"}),
    ]);
    let form = |id: &str| {
        request("POST", "/webhooks/mollie/src_mollie", json!({"content-type": "application/x-www-form-urlencoded"}), &format!("id={id}"))
    };
    let (status, body) = call(&w, form("tr_open1")).await;
    assert_eq!((status, &body["published"]), (200, &json!(false)));
    let (status, _) = call(&w, form("tr_unknown1")).await;
    assert_eq!(status, 200);
    assert_eq!(w.bus.count(), 0);
    let (status, body) = call(&w, form("tr_paid1")).await;
    assert_eq!((status, body["eventType"].as_str()), (200, Some("payment.received")));
    assert_eq!(w.bus.count(), 1);
    assert_eq!(call(&w, form("../etc")).await.0, 400);
}

#[tokio::test]
async fn unsigned_mollie_callbacks_are_cached_and_rate_limited_per_source() {
    let w = world().await;
    w.mollie.payments.lock().unwrap().push(json!({"id": "tr_paid2", "status": "paid"}));
    let form = |id: &str| {
        request("POST", "/webhooks/mollie/src_mollie", json!({"content-type": "application/x-www-form-urlencoded"}), &format!("id={id}"))
    };
    let lookups = || w.mollie.lookups.load(std::sync::atomic::Ordering::SeqCst);
    // The same paid payment again and again: one look-up, the answer reused (and one event).
    for _ in 0..10 {
        assert_eq!(call(&w, form("tr_paid2")).await.0, 200);
    }
    assert_eq!((lookups(), w.bus.count()), (1, 1));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // A flood of made-up ids: at most the per-second limit reaches Mollie, the rest wait.
    let mut refused = 0;
    for i in 0..20 {
        let (status, body) = call(&w, form(&format!("tr_flood{i}"))).await;
        if status == 429 {
            assert_eq!(body["type"], "https://relay.dev/problems/too-many-requests");
            refused += 1;
        }
    }
    let limit = DEFAULT_MOLLIE_LOOKUPS_PER_SECOND as usize;
    assert!(lookups() <= 1 + 2 * limit, "{} look-ups for 20 callbacks", lookups());
    // An open payment is not cached: its paid callback a moment later is looked up and published.
    w.mollie.payments.lock().unwrap().push(json!({"id": "tr_later", "status": "open"}));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(call(&w, form("tr_later")).await.1["published"], json!(false));
    w.mollie.payments.lock().unwrap().iter_mut().filter(|p| p["id"] == "tr_later").for_each(|p| p["status"] = json!("paid"));
    let (status, body) = call(&w, form("tr_later")).await;
    assert_eq!((status, body["eventType"].as_str()), (200, Some("payment.received")), "{body}");
    assert!(refused >= 20 - 2 * limit, "{refused} refused");
}

#[tokio::test]
async fn every_call_to_a_source_is_logged_with_what_relay_made_of_it_and_noise_is_capped() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    let (_, accepted) = call(&w, stripe_request(PAYMENT, "whsec_stripe", now)).await;
    call(&w, stripe_request(PAYMENT, "whsec_stripe", now)).await;
    call(&w, stripe_request(PAYMENT, "whsec_wrong", now)).await;
    call(&w, stripe_request(&"x".repeat(5000), "whsec_stripe", now)).await;
    call(&w, request("POST", "/webhooks/stripe/src_nope", json!({}), PAYMENT)).await;

    let log = w.requests.all("src_stripe");
    let outcomes: Vec<(RequestOutcome, u16)> = log.iter().map(|e| (e.outcome, e.status)).collect();
    assert_eq!(
        outcomes,
        [(RequestOutcome::Refused, 413), (RequestOutcome::Refused, 401), (RequestOutcome::Duplicate, 200), (RequestOutcome::Accepted, 200)],
        "newest first; the unknown source logs nothing"
    );
    let (too_large, forged, duplicate, first) = (&log[0], &log[1], &log[2], &log[3]);
    assert_eq!(first.event_id.map(|id| id.to_string()), accepted["eventId"].as_str().map(str::to_string));
    assert_eq!((first.event_type.as_deref(), first.size), (Some("payment.received"), PAYMENT.len() as u64));
    assert!(first.archive_key.is_some(), "an accepted call's raw body can be fetched");
    assert_eq!(duplicate.event_id, first.event_id, "a duplicate names the event it repeats");
    assert!(forged.reason.as_deref().is_some_and(|r| r.contains("signature")), "{:?}", forged.reason);
    assert!(too_large.reason.as_deref().is_some_and(|r| r.contains("limit")), "{:?}", too_large.reason);
    assert!(first.expires_at - forged.expires_at > 24 * 3600, "refused calls are kept briefly, accepted ones as long as events");

    // A flood of forged calls: at most the cap per minute is logged, and the log still takes
    // the next genuine call.
    for _ in 0..50 {
        assert_eq!(call(&w, stripe_request(PAYMENT, "whsec_wrong", now)).await.0, 401);
    }
    let noise = w.requests.all("src_stripe").iter().filter(|e| e.outcome.is_noise()).count();
    assert!(noise <= 2 * 5, "{noise} refused calls logged; the cap is 5 a minute");
    assert!(w.metrics.total(metrics::WEBHOOK_REQUESTS_NOT_LOGGED) >= 40.0);
    let other = r#"{"id":"evt_2","type":"payment_intent.succeeded","data":{"object":{"id":"pi_2"}}}"#;
    assert_eq!(call(&w, stripe_request(other, "whsec_stripe", now)).await.0, 200);
    assert_eq!(w.requests.all("src_stripe")[0].outcome, RequestOutcome::Accepted);
}

#[tokio::test]
async fn credentials_a_sender_puts_in_headers_or_the_query_are_never_archived() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    let req = stripe_request(PAYMENT, "whsec_stripe", now);
    let (mut parts, body) = req.into_parts();
    parts.headers.insert("x-api-token", "tok-secret-1".parse().unwrap());
    parts.headers.insert("authorization", "Bearer tok-secret-2".parse().unwrap());
    let req = Request::from_parts(parts, body).with_query_string_parameters(HashMap::from([
        ("token".to_string(), "tok-secret-3".to_string()),
        ("page".to_string(), "2".to_string()),
    ]));
    assert_eq!(call(&w, req).await.0, 200);
    let archived = w.blobs.blobs.lock().unwrap().values().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>().join("");
    for secret in ["tok-secret-1", "tok-secret-2", "tok-secret-3"] {
        assert!(!archived.contains(secret), "{secret} archived: {archived}");
    }
    assert!(archived.contains("[redacted]") && archived.contains("\"page\":\"2\""), "{archived}");
    assert!(archived.contains("stripe-signature"), "signatures are kept: they prove what was received");
}
