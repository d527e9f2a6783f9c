//! The mail workflow over the in-memory doubles: each rule the end-to-end tests prove through
//! the local stack, in microseconds, plus the faults that are awkward to provoke there.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use relay_core::mail::send::{Handled, MailConfig, MailPorts, Postman};
use relay_core::memory::{MemoryBus, MemoryMailLog, MemoryRates, MemoryTransport, RecordedMetrics};
use relay_core::model::mail::SendFailure;
use relay_core::model::mail_log::MailStatus;
use relay_core::ports::{MailLog, SuppressionList};
use serde_json::{json, Value};
use uuid::Uuid;

struct World {
    postman: Postman,
    log: Arc<MemoryMailLog>,
    transport: Arc<MemoryTransport>,
    bus: Arc<MemoryBus>,
}

fn world(config: MailConfig) -> World {
    let log = Arc::new(MemoryMailLog::default());
    let transport = Arc::new(MemoryTransport::default());
    let bus = Arc::new(MemoryBus::default());
    let ports = MailPorts {
        log: log.clone(),
        suppressions: log.clone(),
        transport: transport.clone(),
        rates: Arc::new(MemoryRates::default()),
        publisher: bus.clone(),
        metrics: Arc::new(RecordedMetrics::default()),
    };
    World { postman: Postman::new(ports, config), log, transport, bus }
}

fn request(id: Uuid, product: &str, payload: Value) -> String {
    json!({"source": product, "detail-type": "email.requested", "detail": {
        "eventId": id, "eventType": "email.requested", "eventVersion": "1.0", "sourceProduct": product,
        "organizationId": "org-1", "timestamp": "2026-11-24T10:00:00Z", "payload": payload}})
    .to_string()
}

fn payslip(to: &str) -> Value {
    json!({"to": [to], "template": "payslip-available", "data": {"employeeName": "Ada", "period": "2026-11", "netPay": "EUR 1",
           "payDate": "2026-11-25", "payslipUrl": "https://p.example.com/1"}})
}

fn bounce(id: Uuid, address: &str, kind: &str) -> String {
    json!({"source": "aws.ses", "detail-type": "Email Bounced", "detail": {"eventType": "Bounce",
        "bounce": {"bounceType": kind, "bounceSubType": "General", "bouncedRecipients": [{"emailAddress": address}], "timestamp": "2026-11-24T10:05:00Z"},
        "mail": {"tags": {"relay-message-id": [id.to_string()]}}}})
    .to_string()
}

async fn status(w: &World, id: Uuid, now: DateTime<Utc>) -> MailStatus {
    w.log.get_message(id, now.timestamp()).await.unwrap().unwrap().status
}

#[tokio::test]
async fn a_request_is_sent_once_however_often_its_message_comes() {
    let w = world(MailConfig::default());
    let id = Uuid::new_v4();
    let body = request(id, "paylinq", payslip("ada@example.com"));
    let now = Utc::now();
    for _ in 0..3 {
        assert_eq!(w.postman.handle(&body, now, 1).await.unwrap(), Handled::Done);
    }
    let sent = w.transport.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].from.contains("paylinq"));
    assert_eq!(sent[0].tags["relay-message-id"], id.to_string());
    assert!(sent[0].rendered.html.as_deref().unwrap().contains("2026-11"));
    assert_eq!(status(&w, id, now).await, MailStatus::Sent);
    let announced: Vec<String> = w.bus.events().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(announced, ["email.sent"], "announced once");
}

#[tokio::test]
async fn a_throttled_send_is_put_off_with_backoff_then_sent_once() {
    let w = world(MailConfig::default());
    let id = Uuid::new_v4();
    let body = request(id, "paylinq", payslip("ada@example.com"));
    w.transport.fail_next([SendFailure::Retryable("TooManyRequestsException (429)".into()), SendFailure::Retryable("again".into())]);
    let t0 = Utc::now();
    assert_eq!(w.postman.handle(&body, t0, 1).await.unwrap(), Handled::RetryIn(Duration::from_secs(5)));
    // Redelivered early (a duplicate copy): it waits for the same due time, sending nothing.
    assert!(
        matches!(w.postman.handle(&body, t0 + chrono::Duration::seconds(1), 1).await.unwrap(), Handled::RetryIn(d) if d <= Duration::from_secs(4))
    );
    assert_eq!(w.postman.handle(&body, t0 + chrono::Duration::seconds(5), 1).await.unwrap(), Handled::RetryIn(Duration::from_secs(10)));
    assert_eq!(w.postman.handle(&body, t0 + chrono::Duration::seconds(15), 1).await.unwrap(), Handled::Done);
    assert_eq!(w.transport.sent().len(), 1);
    let m = w.log.get_message(id, t0.timestamp()).await.unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (MailStatus::Sent, 3));
}

#[tokio::test]
async fn a_send_with_an_unknown_outcome_is_never_repeated() {
    let w = world(MailConfig::default());
    let id = Uuid::new_v4();
    let body = request(id, "paylinq", payslip("ada@example.com"));
    w.transport.fail_next([SendFailure::Unknown("timed out".into())]);
    let now = Utc::now();
    assert_eq!(w.postman.handle(&body, now, 1).await.unwrap(), Handled::Done);
    assert_eq!(w.postman.handle(&body, now, 1).await.unwrap(), Handled::Done);
    assert!(w.transport.sent().is_empty());
    let m = w.log.get_message(id, now.timestamp()).await.unwrap().unwrap();
    assert_eq!(m.status, MailStatus::Failed);
    assert!(m.reason.unwrap().contains("unknown"));
}

#[tokio::test]
async fn a_claim_left_by_a_crash_fails_the_message_rather_than_send_twice() {
    let w = world(MailConfig::default());
    let id = Uuid::new_v4();
    let body = request(id, "paylinq", payslip("ada@example.com"));
    let now = Utc::now();
    // Crash after the claim: the log says `sending` with a lease, nothing recorded after.
    w.transport.fail_next([SendFailure::Retryable("x".into())]);
    w.postman.handle(&body, now, 1).await.unwrap();
    let mut m = w.log.get_message(id, now.timestamp()).await.unwrap().unwrap();
    let v = m.version;
    m.status = MailStatus::Sending;
    m.lease_until_ms = now.timestamp_millis() + 60_000;
    m.next_attempt_at = None;
    m.version += 1;
    assert!(w.log.put_message(&m, v).await.unwrap());
    // Within the lease: another instance holds it; this copy is a duplicate.
    assert_eq!(w.postman.handle(&body, now, 1).await.unwrap(), Handled::Done);
    assert_eq!(status(&w, id, now).await, MailStatus::Sending);
    // After it: the send may have gone out, so it is failed, not repeated.
    let later = now + chrono::Duration::minutes(2);
    assert_eq!(w.postman.handle(&body, later, 1).await.unwrap(), Handled::Done);
    assert_eq!(status(&w, id, later).await, MailStatus::Failed);
    assert!(w.transport.sent().is_empty());
}

#[tokio::test]
async fn a_hard_bounce_suppresses_the_address_and_the_next_mail_to_it_is_not_sent() {
    let w = world(MailConfig::default());
    let now = Utc::now();
    let first = Uuid::new_v4();
    w.postman.handle(&request(first, "paylinq", payslip("Gone@Example.com")), now, 1).await.unwrap();
    // A soft bounce only notes it.
    w.postman.handle(&bounce(first, "Gone@Example.com", "Transient"), now, 1).await.unwrap();
    assert!(w.log.suppressed(&["gone@example.com".into()]).await.unwrap().is_empty());
    assert_eq!(status(&w, first, now).await, MailStatus::Sent);
    // A hard bounce, twice (redelivered): suppressed, the message bounced, announced once.
    for _ in 0..2 {
        assert_eq!(w.postman.handle(&bounce(first, "Gone@Example.com", "Permanent"), now, 1).await.unwrap(), Handled::Done);
    }
    assert_eq!(w.log.suppressed(&["gone@example.com".into()]).await.unwrap(), ["gone@example.com"]);
    assert_eq!(status(&w, first, now).await, MailStatus::Bounced);
    let bounced = w.bus.events().iter().filter(|e| e.event_type == "email.bounced").count();
    assert_eq!(bounced, 1);

    let second = Uuid::new_v4();
    w.postman.handle(&request(second, "paylinq", payslip("gone@example.com")), now, 1).await.unwrap();
    assert_eq!(w.transport.sent().len(), 1, "only the first mail went out");
    assert_eq!(status(&w, second, now).await, MailStatus::Suppressed);
    let failed: Vec<Value> =
        w.bus.events().iter().filter(|e| e.event_type == "email.failed").map(|e| Value::Object(e.payload.clone().unwrap())).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"], "suppressed");
}

#[tokio::test]
async fn a_suppressed_cc_is_left_out_and_the_rest_still_get_the_mail() {
    let w = world(MailConfig::default());
    let now = Utc::now();
    let first = Uuid::new_v4();
    w.postman.handle(&request(first, "nexus", json!({"to": "x@example.com", "subject": "s", "text": "t"})), now, 1).await.unwrap();
    w.postman.handle(&bounce(first, "x@example.com", "Permanent"), now, 1).await.unwrap();
    let second = Uuid::new_v4();
    w.postman
        .handle(&request(second, "nexus", json!({"to": "y@example.com", "cc": "x@example.com", "subject": "s", "text": "t"})), now, 1)
        .await
        .unwrap();
    let sent = w.transport.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[1].recipients.to.as_slice(), sent[1].recipients.cc.len()), (&["y@example.com".to_string()][..], 0));
    assert_eq!(w.log.get_message(second, now.timestamp()).await.unwrap().unwrap().suppressed_recipients, 1);
}

#[tokio::test]
async fn a_request_on_the_bus_that_cannot_be_sent_fails_visibly() {
    let w = world(MailConfig::default());
    let now = Utc::now();
    let cases = [
        ("paylinq", json!({"to": "a@example.com", "template": "payslip-available", "data": {"period": "2026-11"}}), "needs data"),
        ("recruitiq", json!({"to": "a@example.com", "sender": "paylinq", "subject": "s", "text": "t"}), "may not send as paylinq"),
        ("paylinq", json!({"to": "not an address", "subject": "s", "text": "t"}), "to[0]"),
    ];
    for (product, payload, why) in cases {
        let id = Uuid::new_v4();
        assert_eq!(w.postman.handle(&request(id, product, payload), now, 1).await.unwrap(), Handled::Done);
        let m = w.log.get_message(id, now.timestamp()).await.unwrap().unwrap();
        assert_eq!(m.status, MailStatus::Failed);
        assert!(m.reason.as_deref().unwrap_or("").contains(why), "{why}: {:?}", m.reason);
    }
    assert!(w.transport.sent().is_empty());
}

#[tokio::test]
async fn the_send_rate_is_shared_and_counted_in_recipients() {
    let w = world(MailConfig { send_rate_per_second: 2, ..MailConfig::default() });
    let now = Utc::now();
    let three = json!({"to": ["a@example.com", "b@example.com"], "subject": "s", "text": "t"});
    assert_eq!(w.postman.handle(&request(Uuid::new_v4(), "nexus", three.clone()), now, 1).await.unwrap(), Handled::Done);
    // The second in the same second finds no room and is put off for a second or so (jittered).
    let wait = w.postman.handle(&request(Uuid::new_v4(), "nexus", three.clone()), now, 1).await.unwrap();
    assert!(matches!(wait, Handled::RetryIn(d) if (1000..=1500).contains(&d.as_millis())), "{wait:?}");
    // The more often it has waited, the longer the next wait, up to a minute.
    let later = w.postman.handle(&request(Uuid::new_v4(), "nexus", three), now, 20).await.unwrap();
    assert!(matches!(later, Handled::RetryIn(d) if d == Duration::from_secs(60)), "{later:?}");
    assert_eq!(w.transport.sent().len(), 1);
}

#[tokio::test]
async fn a_failed_announcement_is_repeated_without_sending_again() {
    let w = world(MailConfig::default());
    let id = Uuid::new_v4();
    let body = request(id, "paylinq", payslip("ada@example.com"));
    let now = Utc::now();
    w.bus.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(w.postman.handle(&body, now, 1).await.unwrap(), Handled::RetryIn(Duration::from_secs(5)));
    w.bus.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(w.postman.handle(&body, now, 1).await.unwrap(), Handled::Done);
    assert_eq!(w.transport.sent().len(), 1);
    assert_eq!(w.bus.events().len(), 1);
}

#[test]
fn the_sample_events_parse_and_are_handled() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    for name in ["mail-requested.json", "mail-ses-bounce.json"] {
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&std::fs::read_to_string(root.join(name)).unwrap()).unwrap();
        let body = event.records[0].body.clone().unwrap();
        let w = world(MailConfig::default());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(rt.block_on(w.postman.handle(&body, Utc::now(), 1)).unwrap(), Handled::Done, "{name}");
    }
}

#[tokio::test]
async fn a_request_whose_source_is_not_its_product_is_dropped() {
    let w = world(MailConfig::default());
    let id = Uuid::new_v4();
    // Put on the bus as paylinq, claiming to be the Portal (the system sender).
    let mut body: Value = serde_json::from_str(&request(id, "portal", payslip("ada@example.com"))).unwrap();
    body["source"] = json!("paylinq");
    assert_eq!(w.postman.handle(&body.to_string(), Utc::now(), 1).await.unwrap(), Handled::Done);
    assert!(w.transport.sent().is_empty());
    assert!(w.log.get_message(id, Utc::now().timestamp()).await.unwrap().is_none(), "nothing logged either");
}

#[tokio::test]
async fn a_request_reusing_another_messages_id_neither_sends_nor_touches_it() {
    let w = world(MailConfig::default());
    let now = Utc::now();
    let id = Uuid::new_v4();
    w.transport.fail_next([SendFailure::Retryable("throttled".into())]);
    w.postman.handle(&request(id, "paylinq", payslip("ada@example.com")), now, 1).await.unwrap();
    let before = w.log.get_message(id, now.timestamp()).await.unwrap().unwrap();
    assert_eq!(before.status, MailStatus::Queued);
    // nexus learns the id and sends its own content under it, then a request that is refused.
    let own = json!({"to": "mallory@example.com", "subject": "s", "text": "t"});
    assert_eq!(w.postman.handle(&request(id, "nexus", own), now + chrono::Duration::seconds(10), 1).await.unwrap(), Handled::Done);
    let bad = json!({"to": "not an address", "subject": "s", "text": "t"});
    assert_eq!(w.postman.handle(&request(id, "nexus", bad), now + chrono::Duration::seconds(10), 1).await.unwrap(), Handled::Done);
    assert!(w.transport.sent().is_empty());
    assert_eq!(w.log.get_message(id, now.timestamp()).await.unwrap().unwrap(), before, "untouched");
}

#[tokio::test]
async fn a_mail_that_never_finds_room_in_the_send_rate_fails_before_the_queue_gives_up() {
    let w = world(MailConfig { send_rate_per_second: 1, last_receive: 5, ..MailConfig::default() });
    let now = Utc::now();
    w.postman.handle(&request(Uuid::new_v4(), "nexus", json!({"to": "a@example.com", "subject": "s", "text": "t"})), now, 1).await.unwrap();
    let id = Uuid::new_v4();
    let body = request(id, "nexus", json!({"to": "b@example.com", "subject": "s", "text": "t"}));
    assert!(matches!(w.postman.handle(&body, now, 4).await.unwrap(), Handled::RetryIn(_)));
    assert_eq!(w.postman.handle(&body, now, 5).await.unwrap(), Handled::Done);
    let m = w.log.get_message(id, now.timestamp()).await.unwrap().unwrap();
    assert_eq!(m.status, MailStatus::Failed);
    assert!(w.bus.events().iter().any(|e| e.event_type == "email.failed"), "announced, not lost in the DLQ");
}

#[test]
fn a_refusal_quoting_an_address_is_kept_without_it() {
    let r = relay_core::model::mail_log::redact_addresses("MessageRejected: Email address is not verified. The following identities failed the check in region US-EAST-1: bob@x.example, <ann@y.example>");
    assert!(!r.contains("bob@") && !r.contains("ann@"), "{r}");
    assert!(r.contains("failed the check"), "{r}");
}
