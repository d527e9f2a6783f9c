//! Mail, end to end through the local stack: `POST /v1/emails` on the manage function, the
//! rule on `email.requested`, the real mail binary polling its queue, SES as the emulator runs
//! it, and what it sent parsed by Python's `email` package. Bounces are SES's documented event
//! record put on the default bus, as SES's event publishing would.

use std::time::{Duration, Instant};

use relay_e2e::stack::ADMIN_KEY;
use relay_e2e::{repo_root, sent_mails, stack_behind_proxy, wait_for_mail, Fault, Stack, StackOptions};
use serde_json::{json, Value};

const ORG: &str = "org-acme";

async fn stack() -> Stack {
    Stack::start(StackOptions { function_env: env(), ..StackOptions::default() }).await
}

fn env() -> Vec<(String, String)> {
    vec![("RELAY_MAIL_FIRST_BACKOFF_SECONDS".into(), "1".into())]
}

async fn call(stack: &Stack, method: reqwest::Method, key: &str, path: &str, body: Option<Value>, idem: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", stack.url)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(k) = idem {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn invitation(to: &str, name: &str) -> Value {
    json!({"organizationId": ORG, "to": [to], "replyTo": "recruiter@acme.example", "tags": {"campaign": "autumn-2026"},
           "template": "interview-invitation",
           "data": {"candidateName": name, "jobTitle": "Platform Engineer", "organizationName": "Acme", "dateTime": "2026-12-01 10:00",
                    "confirmUrl": "https://recruitiq.example/i/1?a=1&b=2"}})
}

/// Sends one mail through the API; its message id.
async fn send(stack: &Stack, body: Value, idem: &str) -> String {
    let (status, v) = call(stack, reqwest::Method::POST, &stack.product_key, "/v1/emails", Some(body), Some(idem)).await;
    assert_eq!((status, &v["status"]), (202, &json!("queued")), "{v}");
    v["messageId"].as_str().expect("messageId").to_string()
}

/// Polls the message log (as an operator) until the message reaches `status`.
async fn until_status(stack: &Stack, id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let (code, v) = call(stack, reqwest::Method::GET, ADMIN_KEY, &format!("/v1/emails/{id}"), None, None).await;
        if code == 200 && v["status"] == status {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{id} never reached {status}: {v}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn mails_to<'a>(mails: &'a [Value], to: &str) -> Vec<&'a Value> {
    mails
        .iter()
        .filter(|m| m["destinations"].as_array().is_some_and(|d| d.iter().any(|a| a.as_str().is_some_and(|a| a.contains(to)))))
        .collect()
}

#[tokio::test]
async fn a_template_mail_is_queued_sent_with_both_parts_escaped_and_announced() {
    let stack = stack().await;
    let hostile = "<script>alert('x')</script> & Co";
    let id = send(&stack, invitation("ada@candidates.example", hostile), "invite-ada").await;
    let (_, queued) = call(&stack, reqwest::Method::GET, &stack.product_key, &format!("/v1/emails/{id}"), None, None).await;
    assert!(["queued", "sending", "sent"].contains(&queued["status"].as_str().unwrap_or("")), "{queued}");

    let view = until_status(&stack, &id, "sent").await;
    let mail = wait_for_mail(&stack, "ada@candidates.example", "Interview for Platform Engineer").await;
    assert_eq!(mail["from"], "RecruitIQ <noreply@recruitiq.com>");
    assert_eq!(mail["to"], json!(["ada@candidates.example"]));
    assert_eq!(mail["reply_to"], json!(["recruiter@acme.example"]));
    assert_eq!(mail["subject"], "Interview for Platform Engineer at Acme");
    assert_eq!(mail["bcc"], Value::Null);
    let (text, html) = (mail["text"].as_str().expect("a text part"), mail["html"].as_str().expect("an html part"));
    assert!(text.contains(hostile), "the text part is plain text: {text}");
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;") && html.contains("&amp; Co"), "{html}");
    assert!(html.contains("?a=1&amp;b=2\""), "an attribute value is escaped too: {html}");
    assert_eq!(view["providerMessageId"], mail["id"], "the log names SES's message");
    let steps: Vec<&str> = view["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(steps, ["queued", "sent"]);
    assert_eq!(view["recipients"]["to"], json!(["ada@candidates.example"]));

    // email.sent is on the bus, so the organisation's events list it (deliver keeps it).
    let started = Instant::now();
    loop {
        let (_, page) = call(&stack, reqwest::Method::GET, &stack.org_key, "/v1/events?type=email.sent", None, None).await;
        if page["events"].as_array().is_some_and(|d| d.iter().any(|e| e["event"]["payload"]["messageId"] == id.as_str())) {
            let e = &page["events"][0]["event"];
            assert_eq!(e["sourceProduct"], "relay");
            assert!(!e.to_string().contains("ada@"), "no address in the announcement: {e}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "email.sent never listed: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The request itself went to the mail queue only: the events listing never shows it.
    let (_, requests) = call(&stack, reqwest::Method::GET, &stack.org_key, "/v1/events?type=email.requested", None, None).await;
    assert_eq!(requests["events"], json!([]), "{requests}");
    assert!(stack.metric_total("mail", "EmailsSent", 1.0, Duration::from_secs(10)).await >= 1.0);
    assert!(stack.iam_denials().is_empty(), "{:?}", stack.iam_denials());
}

#[tokio::test]
async fn a_mail_that_cannot_be_sent_is_refused_before_anything_is_queued() {
    let stack = stack().await;
    let mut missing = invitation("bob@candidates.example", "Bob");
    missing["data"].as_object_mut().unwrap().remove("dateTime");
    let (status, p) = call(&stack, reqwest::Method::POST, &stack.product_key, "/v1/emails", Some(missing), None).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["type"], "https://relay.dev/problems/invalid-email");
    assert!(p["detail"].as_str().unwrap().contains("dateTime"), "{p}");
    assert_eq!(p["errors"][0]["field"], "data.dateTime");

    let mut as_paylinq = invitation("bob@candidates.example", "Bob");
    as_paylinq["sender"] = json!("paylinq");
    let (status, p) = call(&stack, reqwest::Method::POST, &stack.product_key, "/v1/emails", Some(as_paylinq), None).await;
    assert_eq!(status, 403, "{p}");
    let payslip = json!({"organizationId": ORG, "to": "bob@candidates.example", "template": "payslip-available", "data": {}});
    let (status, p) = call(&stack, reqwest::Method::POST, &stack.product_key, "/v1/emails", Some(payslip), None).await;
    assert_eq!(status, 422, "another product's template: {p}");
    let (status, _) =
        call(&stack, reqwest::Method::POST, &stack.org_key, "/v1/emails", Some(invitation("bob@candidates.example", "Bob")), None).await;
    assert_eq!(status, 403, "an organisation key does not send mail");

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.count("relay-local-mail").await, 0, "nothing logged");
    assert!(mails_to(&sent_mails(&stack).await, "bob@").is_empty(), "nothing sent");
}

#[tokio::test]
async fn a_request_put_on_the_bus_twice_and_redelivered_is_sent_once() {
    let stack = stack().await;
    let id = uuid::Uuid::new_v4();
    let envelope = json!({"eventId": id, "eventType": "email.requested", "eventVersion": "1.0", "sourceProduct": "paylinq",
        "organizationId": ORG, "timestamp": "2026-11-24T10:00:00Z",
        "payload": {"to": ["eve@employees.example"], "template": "payslip-available",
                    "data": {"employeeName": "Eve", "period": "2026-11", "netPay": "EUR 2,450.10", "payDate": "2026-11-25", "payslipUrl": "https://paylinq.example/p/1"}}});
    for _ in 0..2 {
        stack.put_on_bus(Some("relay-local"), "paylinq", "email.requested", &envelope).await;
    }
    // And the very message again, as SQS would redeliver it.
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let body = json!({"version": "0", "id": "x", "detail-type": "email.requested", "source": "paylinq", "detail": envelope}).to_string();
    sqs.send_message().queue_url(stack.queue_url("relay-local-mail")).message_body(body).send().await.expect("send");

    let view = until_status(&stack, &id.to_string(), "sent").await;
    assert_eq!(view["sender"], "paylinq");
    let path = format!("/v1/emails/{id}");
    assert_eq!(
        call(&stack, reqwest::Method::GET, &stack.product_key, &path, None, None).await.0,
        404,
        "recruitiq does not read paylinq's mail"
    );
    assert_eq!(
        call(&stack, reqwest::Method::GET, &stack.org_key, &path, None, None).await.0,
        200,
        "the organisation reads mail sent for it"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = sent_mails(&stack).await;
    let sent = mails_to(&mails, "eve@employees.example");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["from"], "Paylinq <noreply@paylinq.com>");
    assert!(sent[0]["text"].as_str().unwrap().contains("EUR 2,450.10"));
}

#[tokio::test]
async fn a_throttled_send_is_retried_and_sent_once() {
    let (stack, proxy) = stack_behind_proxy(StackOptions { function_env: env(), ..StackOptions::default() }).await;
    proxy.inject("SendEmail", Fault::Throttle(2));
    let id = send(&stack, invitation("tim@candidates.example", "Tim"), "invite-tim").await;
    let view = until_status(&stack, &id, "sent").await;
    assert_eq!(view["attempts"], 3, "two throttled tries, then the send: {view}");
    let refused: Vec<&Value> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["detail"].as_str().is_some_and(|d| d.contains("TooManyRequests")))
        .collect();
    assert_eq!(refused.len(), 2, "{view}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails_to(&sent_mails(&stack).await, "tim@candidates.example").len(), 1);
    assert_eq!(proxy.counts().get("SendEmail"), Some(&3));
    assert!(stack.metric_total("mail", "EmailRetries", 2.0, Duration::from_secs(10)).await >= 2.0);
}

#[tokio::test]
async fn a_bounce_suppresses_the_address_and_the_next_mail_is_reported_suppressed() {
    let stack = stack().await;
    let address = "bounce@simulator.amazonses.com";
    let first = send(&stack, invitation(address, "Bo"), "bounce-1").await;
    until_status(&stack, &first, "sent").await;

    // SES's documented bounce record for that message, on the default bus.
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(repo_root().join("events/mail-ses-bounce.json")).unwrap()).unwrap();
    let mut detail: Value = serde_json::from_str::<Value>(fixture["Records"][0]["body"].as_str().unwrap()).unwrap()["detail"].clone();
    detail["mail"]["tags"]["relay-message-id"] = json!([first]);
    detail["mail"]["tags"]["ses:configuration-set"] = json!(["relay-local-mail"]);
    // Another application's bounce (its own configuration set) goes first: not Relay's to act on.
    let mut foreign = detail.clone();
    foreign["mail"]["tags"]["ses:configuration-set"] = json!(["another-app"]);
    foreign["bounce"]["bouncedRecipients"][0]["emailAddress"] = json!("someone-else@example.com");
    for d in [foreign, detail] {
        stack.put_on_bus(None, "aws.ses", "Email Bounced", &d).await;
    }

    let bounced = until_status(&stack, &first, "bounced").await;
    assert!(bounced["history"].to_string().contains("hard bounce"), "{bounced}");
    let (status, list) = call(&stack, reqwest::Method::GET, ADMIN_KEY, "/v1/email-suppressions", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["suppressions"].as_array().map(Vec::len), Some(1), "only this stage's bounce counts: {list}");
    assert_eq!(list["suppressions"][0]["address"], address);
    assert_eq!(list["suppressions"][0]["reason"], "bounce");
    assert_eq!(list["suppressions"][0]["messageId"], first.as_str());

    let second = send(&stack, invitation(address, "Bo"), "bounce-2").await;
    let view = until_status(&stack, &second, "suppressed").await;
    assert!(view["reason"].as_str().unwrap().contains("suppression list"), "{view}");
    assert_eq!(mails_to(&sent_mails(&stack).await, address).len(), 1, "only the first mail went out");
    assert!(stack.metric_total("mail", "EmailsSuppressed", 1.0, Duration::from_secs(10)).await >= 1.0);

    // An operator lifts it; the next mail goes out.
    let path = format!("/v1/email-suppressions/{}", address.replace('@', "%40"));
    assert_eq!(call(&stack, reqwest::Method::DELETE, ADMIN_KEY, &path, None, None).await.0, 204);
    let third = send(&stack, invitation(address, "Bo"), "bounce-3").await;
    until_status(&stack, &third, "sent").await;
    assert!(stack.iam_denials().is_empty(), "{:?}", stack.iam_denials());
}
