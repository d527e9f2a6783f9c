//! The mail routes over in-memory ports: a request checked, logged and queued once, refused
//! whole before anything is kept, undone when it cannot be queued; the log shown only to whom
//! it concerns; the suppression list kept by operators.

use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{world, ADMIN, ORG_1, ORG_2, PAYLINQ, PRODUCT};

fn payslip_mail(to: &str) -> Value {
    json!({"organizationId": "org-1", "to": [to], "template": "payslip-available", "tags": {"run": "r-1"},
           "data": {"employeeName": "Ada <b>", "period": "2026-11", "netPay": "EUR 1", "payDate": "2026-11-25", "payslipUrl": "https://p.example.com/1"}})
}

#[tokio::test]
async fn a_mail_request_is_checked_logged_queued_once_and_replayed() {
    let w = world().await;
    let key = [("idempotency-key", "payslip-1")];
    let (status, body) = w.call_with("POST", "/v1/emails", PAYLINQ, Some(payslip_mail("ada@example.com")), &key).await;
    assert_eq!((status, &body["status"]), (202, &json!("queued")), "{body}");
    let id = body["messageId"].as_str().unwrap().to_string();
    // The same key and body: the same answer, nothing queued again.
    let (status, again) = w.call_with("POST", "/v1/emails", PAYLINQ, Some(payslip_mail("ada@example.com")), &key).await;
    assert_eq!((status, &again["messageId"]), (202, &json!(id)));
    // The same key, another body: 422.
    let (status, other) = w.call_with("POST", "/v1/emails", PAYLINQ, Some(payslip_mail("bob@example.com")), &key).await;
    assert_eq!((status, &other["type"]), (422, &json!("https://relay.dev/problems/idempotency-key-reused")));
    let published = w.bus.events();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].event_type.as_str(), published[0].event_id.to_string()), ("email.requested", id.clone()));
    assert_eq!(published[0].source_product, "paylinq");

    // The log: to the sender, to the organisation, to operators; not to another product.
    for k in [PAYLINQ, ORG_1, ADMIN] {
        let (status, view) = w.call("GET", &format!("/v1/emails/{id}"), k, None).await;
        assert_eq!((status, &view["status"], &view["recipients"]["to"]), (200, &json!("queued"), &json!(["ada@example.com"])), "{k}");
    }
    for k in [PRODUCT, ORG_2] {
        assert_eq!(w.call("GET", &format!("/v1/emails/{id}"), k, None).await.0, 404, "{k}");
    }
}

#[tokio::test]
async fn a_mail_that_cannot_be_sent_is_refused_before_anything_is_kept() {
    let w = world().await;
    let mut missing = payslip_mail("ada@example.com");
    missing["data"].as_object_mut().unwrap().remove("netPay");
    let (status, p) = w.call("POST", "/v1/emails", PAYLINQ, Some(missing)).await;
    assert_eq!(status, 422, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("netPay"), "{p}");
    assert_eq!(p["errors"][0]["field"], "data.netPay");

    // Another product's template, and another product's sender.
    let (status, p) = w.call("POST", "/v1/emails", PRODUCT, Some(payslip_mail("ada@example.com"))).await;
    assert_eq!(status, 422, "recruitiq has no payslip template: {p}");
    let mut as_paylinq = payslip_mail("ada@example.com");
    as_paylinq["sender"] = json!("paylinq");
    let (status, p) = w.call("POST", "/v1/emails", PRODUCT, Some(as_paylinq)).await;
    assert_eq!((status, p["detail"].as_str().unwrap().contains("own address")), (403, true), "{p}");
    // Not a product key.
    assert_eq!(w.call("POST", "/v1/emails", ORG_1, Some(payslip_mail("ada@example.com"))).await.0, 403);
    // Bad fields, all named.
    let (status, p) = w.call("POST", "/v1/emails", PAYLINQ, Some(json!({"to": "nope", "subject": "s"}))).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["organizationId", "to[0]", "text"]);
    assert!(w.bus.events().is_empty(), "nothing was queued");
}

#[tokio::test]
async fn a_mail_that_cannot_be_queued_leaves_nothing_behind_and_its_retry_queues_once() {
    let w = world().await;
    let key = [("idempotency-key", "payslip-2")];
    w.bus.fail.store(true, Ordering::SeqCst);
    let (status, _) = w.call_with("POST", "/v1/emails", PAYLINQ, Some(payslip_mail("ada@example.com")), &key).await;
    assert_eq!(status, 503);
    w.bus.fail.store(false, Ordering::SeqCst);
    let (status, body) = w.call_with("POST", "/v1/emails", PAYLINQ, Some(payslip_mail("ada@example.com")), &key).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(w.bus.events().len(), 1);
    let id: Uuid = body["messageId"].as_str().unwrap().parse().unwrap();
    assert_eq!(relay_core::ports::MailLog::get_message(&*w.mail_log, id, 0).await.unwrap().unwrap().history.len(), 1);
}

#[tokio::test]
async fn operators_list_and_lift_suppressions() {
    use relay_core::model::mail_log::{Suppression, SuppressionReason};
    use relay_core::ports::SuppressionList;
    let w = world().await;
    for a in ["a@example.com", "b+tag@example.com", "c@example.com"] {
        let entry =
            Suppression { address: a.into(), reason: SuppressionReason::Bounce, suppressed_at: Utc::now(), message_id: None, detail: None };
        w.mail_log.suppress(&entry).await.unwrap();
    }
    assert_eq!(w.call("GET", "/v1/email-suppressions", ORG_1, None).await.0, 403);
    let (status, page) = w.call("GET", "/v1/email-suppressions?limit=2", ADMIN, None).await;
    assert_eq!((status, page["suppressions"].as_array().unwrap().len(), &page["nextCursor"]), (200, 2, &json!("b+tag@example.com")));
    let (_, rest) = w.call("GET", "/v1/email-suppressions?limit=2&cursor=b%2Btag%40example.com", ADMIN, None).await;
    assert_eq!(rest["suppressions"][0]["address"], "c@example.com");
    assert_eq!(w.call("DELETE", "/v1/email-suppressions/B%2Btag%40Example.com", ADMIN, None).await.0, 204);
    assert_eq!(w.call("DELETE", "/v1/email-suppressions/b%2Btag%40example.com", ADMIN, None).await.0, 404);
    assert!(w.mail_log.suppressed(&["b+tag@example.com".into()]).await.unwrap().is_empty());
}
