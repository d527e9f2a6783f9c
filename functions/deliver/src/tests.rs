//! The delivery rules over in-memory ports: fan-out, signing, per-pair claims, the retry
//! schedule, exhaustion into the DLQ, 410 and failing-too-long disables, rate limits and the
//! repair of a follow-up whose send failed, in milliseconds and with the clock in hand. The same
//! behaviour is proved against the real wire protocol and real endpoints in `tests/delivery.rs`
//! and `tests/attack.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use relay_core::delivery::{Deliverer, DeliveryConfig, DeliveryPorts};
use relay_core::memory::{
    MemoryBlobs, MemoryBus, MemoryDeliveries, MemoryEvents, MemoryMailer, MemoryOrganizations, MemoryRates, MemoryRetries,
    MemorySubscriptions, RecordedMetrics, ScriptedSender,
};
use relay_core::metrics;
use relay_core::model::delivery::{RetryKind, RetryMessage, RetryPolicy, State};
use relay_core::model::envelope::EventEnvelope;
use relay_core::model::event::{DeliveryFilter, DeliveryMarks, DeliverySummary, EventQuery, StoredEvent};
use relay_core::model::organization::Profile;
use relay_core::model::subscription::{Changes, Subscription};
use relay_core::notify::ContactNotifier;
use relay_core::ports::{DeliveryStore, EventStore, EventWriter, OrganizationStore, SubscriptionStore};
use relay_core::secrets::SecretBox;
use serde_json::json;
use uuid::Uuid;

use super::App;

const HOOK: &str = "https://hooks.example.com/a";
const OTHER_HOOK: &str = "https://hooks.example.com/b";

struct World {
    app: App,
    subscriptions: Arc<MemorySubscriptions>,
    deliveries: Arc<MemoryDeliveries>,
    retries: Arc<MemoryRetries>,
    sender: Arc<ScriptedSender>,
    bus: Arc<MemoryBus>,
    events: Arc<MemoryEvents>,
    mail: Arc<MemoryMailer>,
    metrics: Arc<RecordedMetrics>,
    secrets: SecretBox,
}

/// Three attempts: at once, after 5 s, after 300 s; disabled after an hour of failing. org-1 has
/// a verified contact address.
async fn world() -> World {
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let subscriptions = Arc::new(MemorySubscriptions::default());
    let deliveries = Arc::new(MemoryDeliveries::default());
    let events = Arc::new(MemoryEvents::default());
    let retries = Arc::new(MemoryRetries::default());
    let sender = Arc::new(ScriptedSender::default());
    let bus = Arc::new(MemoryBus::default());
    let organizations = Arc::new(MemoryOrganizations::default());
    let contact = Profile { contact_email: Some("ops@one.example".into()), pending: None };
    organizations.put_profile("org-1", &contact).await.unwrap();
    let mail = Arc::new(MemoryMailer::default());
    let metrics = Arc::new(RecordedMetrics::default());
    let ports = DeliveryPorts {
        subscriptions: subscriptions.clone(),
        deliveries: deliveries.clone(),
        events: events.clone(),
        rates: Arc::new(MemoryRates::default()),
        retries: retries.clone(),
        sender: sender.clone(),
        publisher: bus.clone(),
        notifier: Arc::new(ContactNotifier::new(organizations, mail.clone())),
        blobs: Arc::new(MemoryBlobs::default()),
        metrics: metrics.clone(),
    };
    let config = DeliveryConfig {
        policy: RetryPolicy::parse("0,5,300").unwrap(),
        disable_after: chrono::Duration::hours(1),
        ..DeliveryConfig::new(secrets.clone())
    };
    let app = App { deliverer: Deliverer::new(ports, config) };
    World { app, subscriptions, deliveries, events, retries, sender, bus, mail, metrics, secrets }
}

impl World {
    /// A subscription of `org` to `types` at `url`, stored as the API would store it.
    fn subscribe(&self, org: &str, url: &str, types: &[&str]) -> Subscription {
        let changes = Changes::parse(&json!({"url": url, "eventTypes": types})).unwrap();
        let (sub, _secret) = changes.create(org, relay_core::model::ids::new_subscription_id(), Utc::now(), &self.secrets).unwrap();
        self.subscriptions.insert(sub.clone());
        sub
    }

    /// Runs one SQS batch; answers the ids of the messages that failed.
    async fn batch(&self, bodies: &[String]) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some(body.clone());
                m
            })
            .collect();
        let response = self.app.handle(event).await.unwrap();
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    /// Runs every retry scheduled so far as SQS would once its delay is over (`at`).
    async fn run_retries(&self, at: DateTime<Utc>) {
        for (message, _) in self.retries.take_scheduled() {
            self.app.deliverer.on_retry(&message, at).await.unwrap();
        }
    }

    /// The ids of org-1's events under a delivery-state filter, as the API judges them (every
    /// endpoint here still exists).
    async fn listed(&self, delivery: Option<DeliveryFilter>) -> Vec<Uuid> {
        let query = EventQuery { organization_id: "org-1".into(), delivery, limit: 100, ..EventQuery::default() };
        let page = self.events.list_events(&query).await.unwrap().0;
        page.iter().filter(|e| delivery.is_none_or(|d| d.matches(e.deliveries.summary(|_| true)))).map(|e| e.envelope.event_id).collect()
    }

    async fn stored(&self, id: &str) -> Subscription {
        self.subscriptions.get_subscription(id).await.unwrap().unwrap()
    }
}

fn event(org: &str, event_type: &str) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        event_version: "1.0".into(),
        source_product: "recruitiq".into(),
        organization_id: org.into(),
        timestamp: Utc::now(),
        correlation_id: None,
        payload: json!({"candidateId": "c-1", "jobId": "j-1", "startDate": "2026-12-01"}).as_object().cloned(),
        payload_ref: None,
    }
}

/// The body EventBridge hands the delivery queue.
fn from_bus(e: &EventEnvelope) -> String {
    json!({"version": "0", "id": Uuid::new_v4(), "detail-type": e.event_type, "source": "relay.recruitiq", "detail": e}).to_string()
}

#[tokio::test]
async fn a_new_event_goes_signed_to_each_wanting_subscription_once_however_often_it_arrives() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.*"]);
    w.subscribe("org-1", OTHER_HOOK, &["employee.created"]);
    w.subscribe("org-2", "https://hooks.example.com/c", &["candidate.*"]);
    let e = event("org-1", "candidate.hired");

    assert!(w.batch(&[from_bus(&e)]).await.is_empty());
    assert!(w.batch(&[from_bus(&e), from_bus(&e)]).await.is_empty(), "SQS delivers a message more than once");

    assert_eq!(w.sender.sent().len(), 1, "one request in all: the one wanting subscription, once");
    let request = &w.sender.sent()[0];
    assert_eq!(request.url, HOOK);
    let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(header("webhook-id"), format!("msg_{}", e.event_id.simple()));
    let secrets = sub.signing_secrets(Utc::now(), &w.secrets);
    let expected = relay_core::signing::signature_header(
        &header("webhook-id"),
        header("webhook-timestamp").parse().unwrap(),
        &request.body,
        &[secrets[0].as_str()],
    );
    assert_eq!(header("webhook-signature"), expected);
    assert_eq!(w.deliveries.status(e.event_id, &sub.id).map(|s| s.state), Some(State::Delivered));
    assert_eq!(w.metrics.total(metrics::DELIVERIES_SUCCEEDED), 1.0);
}

#[tokio::test]
async fn every_event_from_the_bus_is_kept_for_the_listing_with_how_its_deliveries_stand() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.hired"]);
    w.sender.script(HOOK, &[Some(500), Some(200)]);
    let (e, unwanted) = (event("org-1", "candidate.hired"), event("org-1", "job.closed"));
    let t0 = Utc::now();

    assert!(w.batch(&[from_bus(&e), from_bus(&unwanted)]).await.is_empty());
    assert_eq!(w.listed(None).await.len(), 2, "both kept, though only one was wanted");
    assert_eq!(w.listed(Some(DeliveryFilter::Failed)).await, [e.event_id], "retrying after a 500");
    assert_eq!(w.listed(Some(DeliveryFilter::None)).await, [unwanted.event_id]);
    assert!(w.listed(Some(DeliveryFilter::Delivered)).await.is_empty());

    w.run_retries(t0 + chrono::Duration::seconds(6)).await;
    assert_eq!(w.listed(Some(DeliveryFilter::Delivered)).await, [e.event_id], "the retry got through");
    assert!(w.listed(Some(DeliveryFilter::Failed)).await.is_empty());
    let kept = w.events.get_event(e.event_id).await.unwrap().unwrap();
    assert_eq!(kept.deliveries.summary(|_| true), DeliverySummary { delivered: 1, failing: 0 }, "one endpoint, counted once");

    // A stale copy of the first message is refused at its claim and leaves the mark as it is.
    assert!(w.batch(&[from_bus(&e)]).await.is_empty());
    assert_eq!(w.listed(Some(DeliveryFilter::Delivered)).await, [e.event_id]);
    assert_eq!(w.deliveries.status(e.event_id, &sub.id).map(|s| s.state), Some(State::Delivered));

    // An event ingest stored is kept as ingest wrote it (with the key that may rewrite it).
    let published = event("org-1", "job.closed");
    let stored = StoredEvent {
        envelope: published.clone(),
        received_at: t0,
        idempotency_key: Some("product#k".into()),
        expires_at: i64::MAX,
        deliveries: DeliveryMarks::default(),
    };
    w.events.put_events(&[stored]).await.unwrap();
    w.batch(&[from_bus(&published)]).await;
    let kept = w.events.get_event(published.event_id).await.unwrap().unwrap();
    assert_eq!((kept.idempotency_key.as_deref(), kept.received_at), (Some("product#k"), t0));
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_on_the_schedule_then_dead_lettered_and_announced() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.hired"]);
    w.sender.script(HOOK, &[Some(500), None, Some(503)]);
    let e = event("org-1", "candidate.hired");
    let t0 = Utc::now();

    w.batch(&[from_bus(&e)]).await;
    let scheduled = w.retries.scheduled();
    assert_eq!(scheduled.len(), 1);
    let (retry, delay) = &scheduled[0];
    assert_eq!((retry.kind, retry.attempt), (RetryKind::Retry, 2));
    assert!(*delay >= Duration::from_secs_f64(4.5) && *delay <= Duration::from_secs_f64(5.5), "{delay:?}");
    let pair = w.deliveries.status(e.event_id, &sub.id).unwrap();
    assert_eq!((pair.state, pair.attempt_no, pair.retry_pending), (State::Retrying, 2, false), "the retry is out, so not pending");

    w.run_retries(t0 + chrono::Duration::seconds(6)).await;
    let (retry, delay) = w.retries.scheduled()[0].clone();
    assert_eq!(retry.attempt, 3);
    assert!(delay >= Duration::from_secs(270), "{delay:?}");

    w.run_retries(t0 + chrono::Duration::seconds(400)).await;
    assert_eq!(w.sender.sent_to(HOOK), 3);
    assert!(w.retries.scheduled().is_empty(), "no fourth attempt");
    let dead = w.retries.dead_letters();
    assert_eq!(dead.len(), 1);
    let dead: RetryMessage = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!((dead.kind, dead.attempt, dead.envelope.event_id), (RetryKind::Exhausted, 3, e.event_id));
    assert_eq!(w.deliveries.status(e.event_id, &sub.id).map(|s| (s.state, s.dead_letter_pending)), Some((State::Failed, false)));
    let announced: Vec<String> = w.bus.published.lock().unwrap().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(announced, ["delivery.exhausted"]);
    assert_eq!(w.metrics.total(metrics::DELIVERY_ATTEMPTS_FAILED), 3.0);
    assert_eq!(w.metrics.total(metrics::DELIVERIES_EXHAUSTED), 1.0);
    let records = w.deliveries.deliveries(e.event_id).await.unwrap();
    let attempts: Vec<(u32, Option<u16>, Option<String>)> =
        records[0].attempts.iter().map(|a| (a.number, a.status_code, a.error_kind.clone())).collect();
    assert_eq!(attempts, [(1, Some(500), Some("http".into())), (2, None, Some("timeout".into())), (3, Some(503), Some("http".into()))]);
}

#[tokio::test]
async fn a_410_disables_the_subscription_tells_the_contact_and_stops_its_pending_retries() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.*"]);
    w.sender.script(HOOK, &[Some(500), Some(410)]);
    let (first, second) = (event("org-1", "candidate.hired"), event("org-1", "candidate.created"));
    let t0 = Utc::now();

    w.batch(&[from_bus(&first)]).await;
    let pending_retry = w.retries.take_scheduled();
    w.batch(&[from_bus(&second)]).await;

    let stored = w.stored(&sub.id).await;
    assert!(!stored.enabled);
    assert_eq!(stored.disabled_reason.as_deref(), Some("the endpoint answered 410 Gone"));
    assert!(w.retries.scheduled().is_empty(), "a 410 is not retried");
    let mails = w.mail.sent();
    assert_eq!(mails.len(), 1);
    assert_eq!((mails[0].0.as_str(), mails[0].1.recipients.to.as_slice()), ("org-1", &["ops@one.example".to_string()][..]));
    assert_eq!(mails[0].1.template_name(), Some("endpoint-disabled"));
    assert!(!format!("{:?}", mails[0].1).contains(HOOK), "the mail quotes nothing the organisation chose");
    assert!(w.bus.published.lock().unwrap().iter().any(|e| e.event_type == "subscription.disabled"));
    assert_eq!(w.metrics.total(metrics::ENDPOINTS_DISABLED), 1.0);

    // The first event's retry comes due: the subscription is disabled, so nothing is sent and
    // the pair ends failed (where recover finds it).
    for (message, _) in pending_retry {
        w.app.deliverer.on_retry(&message, t0 + chrono::Duration::seconds(6)).await.unwrap();
    }
    assert_eq!(w.sender.sent_to(HOOK), 2);
    assert_eq!(w.deliveries.status(first.event_id, &sub.id).map(|s| s.state), Some(State::Failed));
}

#[tokio::test]
async fn an_endpoint_failing_without_a_success_for_longer_than_allowed_is_disabled() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.hired"]);
    w.sender.script(HOOK, &[Some(500), Some(500)]);
    let t0 = Utc::now();

    w.batch(&[from_bus(&event("org-1", "candidate.hired"))]).await;
    assert!(w.stored(&sub.id).await.enabled, "one failure is not failing too long");
    w.run_retries(t0 + chrono::Duration::hours(2)).await;

    let stored = w.stored(&sub.id).await;
    assert!(!stored.enabled);
    assert!(stored.disabled_reason.unwrap_or_default().starts_with("no successful delivery since"));
    assert_eq!(w.mail.sent().len(), 1);
}

#[tokio::test]
async fn a_success_clears_the_failing_mark_so_a_later_failure_starts_the_clock_again() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.hired"]);
    w.sender.script(HOOK, &[Some(500), Some(200), Some(500), Some(500)]);
    let t0 = Utc::now();
    let minutes = |m| t0 + chrono::Duration::minutes(m);
    w.app.deliverer.on_event(&event("org-1", "candidate.hired"), t0).await.unwrap();
    w.run_retries(minutes(90)).await;
    w.app.deliverer.on_event(&event("org-1", "candidate.hired"), minutes(100)).await.unwrap();
    w.run_retries(minutes(120)).await;
    assert_eq!(w.sender.sent_to(HOOK), 4);
    assert!(w.stored(&sub.id).await.enabled, "failing for 20 minutes since the last success, not for two hours");
}

#[tokio::test]
async fn a_rate_limited_subscription_is_sent_no_more_than_its_limit_in_a_second() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.hired"]);
    w.subscriptions.insert(Subscription { rate_limit: Some(2), ..sub });
    let now = Utc::now();
    for _ in 0..3 {
        w.app.deliverer.on_event(&event("org-1", "candidate.hired"), now).await.unwrap();
    }
    assert_eq!(w.sender.sent_to(HOOK), 2);
    let scheduled = w.retries.scheduled();
    assert_eq!(scheduled.len(), 1, "the third waits for a later second");
    assert_eq!(scheduled[0].0.attempt, 1, "as the same attempt: nothing was sent");
    assert!(scheduled[0].1 >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_retry_whose_send_failed_is_sent_by_the_redelivered_message_and_only_once() {
    let w = world().await;
    let sub = w.subscribe("org-1", HOOK, &["candidate.hired"]);
    w.sender.script(HOOK, &[Some(500)]);
    let e = event("org-1", "candidate.hired");
    w.retries.fail_next.store(1, Ordering::SeqCst);

    let failed = w.batch(&[from_bus(&e)]).await;
    assert_eq!(failed, ["m0"], "the message fails, so SQS hands it back");
    assert!(w.retries.scheduled().is_empty());
    assert!(w.deliveries.status(e.event_id, &sub.id).unwrap().retry_pending, "recorded as pending before the send");

    assert!(w.batch(&[from_bus(&e)]).await.is_empty());
    assert!(w.batch(&[from_bus(&e)]).await.is_empty());
    assert_eq!(w.sender.sent_to(HOOK), 1, "the redelivery repairs; it does not send the attempt again");
    let scheduled = w.retries.scheduled();
    assert_eq!(scheduled.len(), 1, "the lost retry is sent once, not once per redelivery");
    assert_eq!(scheduled[0].0.attempt, 2);
    assert!(!w.deliveries.status(e.event_id, &sub.id).unwrap().retry_pending);
}

#[tokio::test]
async fn a_message_that_is_neither_an_event_nor_a_retry_goes_to_the_dlq_without_failing_its_batch() {
    let w = world().await;
    let bad_envelope = json!({"detail": {"eventType": "candidate.hired"}}).to_string();
    let good = event("org-1", "candidate.hired");
    w.subscribe("org-1", HOOK, &["candidate.hired"]);

    let failed = w.batch(&["not json".to_string(), bad_envelope.clone(), from_bus(&good)]).await;

    assert!(failed.is_empty());
    assert_eq!(w.retries.dead_letters(), ["not json".to_string(), bad_envelope]);
    assert_eq!(w.sender.sent_to(HOOK), 1, "the good message of the batch is delivered");
}

#[tokio::test]
async fn a_test_event_goes_only_to_the_subscription_it_names() {
    let w = world().await;
    let target = w.subscribe("org-1", HOOK, &["*"]);
    w.subscribe("org-1", OTHER_HOOK, &["*"]);
    let mut e = event("org-1", "relay.test");
    e.source_product = "relay".into();
    e.payload = json!({"subscriptionId": target.id}).as_object().cloned();
    w.batch(&[from_bus(&e)]).await;
    assert_eq!((w.sender.sent_to(HOOK), w.sender.sent_to(OTHER_HOOK)), (1, 0));
}
