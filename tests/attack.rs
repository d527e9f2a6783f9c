//! The defects an attack on the local stack found (issue 7), each shown through the local stack:
//! a forgeable handshake, events acknowledged and then dropped, a state change whose message
//! was lost, lost updates, a stale subscription cache, replayed webhooks with new headers, and
//! an organisation shown the platform's deliveries. Every test here failed on the code before.

use std::time::{Duration, Instant};

use relay_e2e::receiver::Receiver;
use relay_e2e::stack::ADMIN_KEY;
use relay_e2e::{post_raw, stack_behind_proxy, Fault, Stack, StackOptions};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(30);

fn hmac_hex(key: &str, message: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn stack_with(env: &[(&str, &str)]) -> Stack {
    let function_env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Stack::start(StackOptions { function_env, ..StackOptions::default() }).await
}

async fn call(stack: &Stack, method: reqwest::Method, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", stack.url)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// `GET path` with the organisation key until `done` holds for the body (or panics after LIMIT).
async fn get_until(stack: &Stack, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (_, v) = call(stack, reqwest::Method::GET, &stack.org_key, path, None).await;
        if done(&v) {
            return v;
        }
        assert!(started.elapsed() < LIMIT, "{path} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn subscribe(stack: &Stack, url: &str, types: &[&str]) -> String {
    let (status, sub) =
        call(stack, reqwest::Method::POST, &stack.org_key, "/v1/subscriptions", Some(json!({"url": url, "eventTypes": types}))).await;
    assert_eq!(status, 201, "{sub}");
    sub["id"].as_str().expect("id").to_string()
}

async fn source(stack: &Stack, provider: &str, secret: &str) -> String {
    let (status, src) =
        call(stack, reqwest::Method::POST, &stack.org_key, "/v1/sources", Some(json!({"provider": provider, "secret": secret}))).await;
    assert_eq!(status, 201, "{src}");
    src["url"].as_str().expect("url").to_string()
}

async fn hire(stack: &Stack, candidate: &str, extra: Value) -> String {
    let mut payload = json!({"candidateId": candidate, "jobId": "job-1", "startDate": "2026-12-01"});
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let body = json!({"eventType": "candidate.hired", "organizationId": "org-acme", "payload": payload}).to_string();
    let resp = stack.post("/v1/events", &body, Some(&format!("hire-{candidate}"))).await;
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.expect("json");
    v["eventId"].as_str().expect("eventId").to_string()
}

fn stripe(secret: &str, body: &str) -> Vec<(&'static str, String)> {
    let t = now();
    vec![("stripe-signature", format!("t={t},v1={}", hmac_hex(secret, &format!("{t}.{body}"))))]
}

#[tokio::test]
async fn the_linkedin_handshake_signs_no_body_an_attacker_could_post() {
    let stack = stack_with(&[]).await;
    let receiver = Receiver::start().await;
    subscribe(&stack, &receiver.url, &["*"]).await;
    let url = source(&stack, "linkedin", "li-client-secret").await;
    let forged = json!({"type": "JOB_APPLICATION", "notificationId": "forged-1", "application": {"jobId": "job-1"}}).to_string();
    let oracle = reqwest::Client::new().get(&url).query(&[("challengeCode", forged.as_str())]).send().await.expect("get");
    assert_eq!(oracle.status(), 400, "the handshake signed a caller-chosen body");
    // Had it answered, this is the POST the attacker would make; with any signature it fails.
    let (status, _) = post_raw(&url, &[("x-li-signature", format!("hmacsha256={}", "00".repeat(32)))], &forged).await;
    assert_eq!(status, 401);
    let genuine = reqwest::Client::new().get(&url).query(&[("challengeCode", "890e4665-4dfe-4ab1-b689-ed553bceeed0")]).send().await;
    assert_eq!(genuine.expect("get").status(), 200, "LinkedIn's own UUID codes are still answered");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 0, "nothing forged reached the organisation's endpoint");
}

/// A 210 KiB event accepted by ingest, a Stripe payment failure and a 300 KB Stripe event all
/// reach the endpoint, each with its payload inline (no internal S3 reference).
#[tokio::test]
async fn everything_acknowledged_is_delivered_with_its_payload_inline() {
    let stack = stack_with(&[]).await;
    let receiver = Receiver::start().await;
    subscribe(&stack, &receiver.url, &["candidate.hired", "payment.failed", "stripe.*"]).await;
    let notes = "n".repeat(210 * 1024);
    let large_id = hire(&stack, "cand-large", json!({"notes": notes})).await;

    let url = source(&stack, "stripe", "whsec_attack").await;
    let failed = json!({"id": "evt_failed_1", "type": "payment_intent.payment_failed", "data": {"object": {"id": "pi_1", "amount": 500}}})
        .to_string();
    let (status, reply) = post_raw(&url, &stripe("whsec_attack", &failed), &failed).await;
    assert_eq!(status, 200, "{reply}");
    let big = json!({"id": "evt_big_1", "type": "customer.updated", "data": {"object": {"id": "cus_1", "metadata": {"blob": "b".repeat(300_000)}}}})
        .to_string();
    let (status, reply) = post_raw(&url, &stripe("whsec_attack", &big), &big).await;
    assert_eq!(status, 200, "a webhook over the bus's 256 KB limit is accepted: {reply}");

    let got = receiver.wait_for(3, Duration::from_secs(60)).await;
    let bodies: Vec<Value> = got.iter().map(|r| serde_json::from_str(&r.body).expect("json")).collect();
    for b in &bodies {
        assert!(b["data"]["payloadRef"].is_null(), "an internal reference was handed out: {}", &b["data"]["payloadRef"]);
        assert!(b["data"]["payload"].is_object());
    }
    let find = |t: &str| bodies.iter().find(|b| b["type"] == t).unwrap_or_else(|| panic!("no {t} delivered"));
    assert_eq!(find("candidate.hired")["data"]["payload"]["notes"].as_str().map(str::len), Some(210 * 1024));
    assert_eq!(find("payment.failed")["data"]["payload"]["data"]["id"], "pi_1");
    assert_eq!(find("stripe.customer.updated")["data"]["payload"]["data"]["metadata"]["blob"].as_str().map(str::len), Some(300_000));

    // The API shows the event whole, and never Relay's storage reference (bucket, account).
    let (_, one) = call(&stack, reqwest::Method::GET, &stack.org_key, &format!("/v1/events/{large_id}"), None).await;
    assert_eq!(one["event"]["payload"]["notes"].as_str().map(str::len), Some(210 * 1024));
    let (_, list) = call(&stack, reqwest::Method::GET, &stack.org_key, "/v1/events", None).await;
    for text in [one.to_string(), list.to_string()] {
        assert!(!text.contains("payloadRef") && !text.contains("123456789012"), "a storage reference was shown");
    }
}

/// A stack whose queues return failed messages after 3 s: one endpoint fails the first attempt
/// of an event while every SQS send fails (so its retry cannot be queued); SQS is back when this
/// returns. Returns the stack, the endpoint and the event id.
async fn first_attempt_fails_while_sqs_is_down(schedule: &str, candidate: &str) -> (Stack, Receiver, String) {
    let env = vec![("RELAY_RETRY_SCHEDULE".to_string(), schedule.to_string())];
    let (stack, proxy) =
        stack_behind_proxy(StackOptions { function_env: env, visibility_timeout_secs: Some(3), ..StackOptions::default() }).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None, Duration::ZERO, 1);
    subscribe(&stack, &receiver.url, &["candidate.hired"]).await;
    proxy.inject("SendMessage", Fault::Fail);
    let event_id = hire(&stack, candidate, json!({})).await;
    receiver.wait_for(1, LIMIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.clear();
    (stack, receiver, event_id)
}

/// The retry message cannot be sent (SQS fails) after the pair was marked retrying: the event's
/// message comes back, finds the pair retrying, and sends its retry again.
#[tokio::test]
async fn a_retry_whose_message_could_not_be_sent_is_not_stranded() {
    let (stack, receiver, event_id) = first_attempt_fails_while_sqs_is_down("0,1", "cand-sqs-down").await;
    receiver.wait_for(2, LIMIT).await;
    let v = get_until(&stack, &format!("/v1/events/{event_id}"), |v| v["deliveries"][0]["state"] == "delivered").await;
    assert_eq!(v["deliveries"][0]["attempts"].as_array().map(Vec::len), Some(2), "{v}");
}

/// The same, with a retry due in an hour: the message comes back long before the retry is due,
/// and must still find the retry pending and send it (delayed) rather than leave the pair waiting.
#[tokio::test]
async fn a_distant_retry_whose_message_could_not_be_sent_is_sent_on_redelivery() {
    let (stack, receiver, _) = first_attempt_fails_while_sqs_is_down("0,3600", "cand-distant").await;
    // The retry waits on the retry queue (SQS delays stop at 15 minutes, so it hops there).
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let started = Instant::now();
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(stack.queue_url("relay-local-retries"))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("attributes");
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attrs.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0)
        };
        let waiting = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        if waiting >= 1 {
            break;
        }
        assert!(started.elapsed() < LIMIT, "no retry is waiting: the pair was left retrying with no message");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(receiver.count(), 1, "not sent before it is due");
}

/// Rotations next to edits, an edit after a delete, and an automatic disable after a rotation:
/// no write undoes another.
#[tokio::test]
async fn concurrent_writes_to_a_subscription_lose_nothing() {
    let stack = stack_with(&[]).await;
    let receiver = Receiver::start().await;
    let id = subscribe(&stack, &receiver.url, &["candidate.hired"]).await;
    let path = format!("/v1/subscriptions/{id}");
    let rounds = 8;
    let writes = (0..rounds).map(|i| {
        let (stack, path) = (&stack, path.clone());
        async move {
            let rotate_path = format!("{path}/secret/rotate");
            let rotate = call(stack, reqwest::Method::POST, &stack.org_key, &rotate_path, None);
            let patch = call(stack, reqwest::Method::PATCH, &stack.org_key, &path, Some(json!({"description": format!("round {i}")})));
            let ((r, _), (p, _)) = tokio::join!(rotate, patch);
            assert_eq!((r, p), (200, 200));
        }
    });
    for round in writes {
        round.await;
    }
    let (_, view) = call(&stack, reqwest::Method::GET, &stack.org_key, &path, None).await;
    assert_eq!(view["secretsActive"], rounds + 1, "every rotation's secret is stored: {view}");
    assert!(view["description"].as_str().is_some_and(|d| d.starts_with("round ")), "{view}");

    // An edit racing a delete never brings the subscription back.
    let delete = call(&stack, reqwest::Method::DELETE, &stack.org_key, &path, None);
    let patch = call(&stack, reqwest::Method::PATCH, &stack.org_key, &path, Some(json!({"description": "late"})));
    let ((d, _), _) = tokio::join!(delete, patch);
    assert_eq!(d, 204);
    assert_eq!(call(&stack, reqwest::Method::GET, &stack.org_key, &path, None).await.0, 404);

    // Deliver disables after a 410, on the stored copy: the rotation made before stays.
    let other = Receiver::start().await;
    let id = subscribe(&stack, &other.url, &["candidate.hired"]).await;
    hire(&stack, "cand-before-rotation", json!({})).await;
    other.wait_for(1, LIMIT).await;
    assert_eq!(call(&stack, reqwest::Method::POST, &stack.org_key, &format!("/v1/subscriptions/{id}/secret/rotate"), None).await.0, 200);
    other.answer(410, None, Duration::ZERO, 1);
    hire(&stack, "cand-after-rotation", json!({})).await;
    let v = get_until(&stack, &format!("/v1/subscriptions/{id}"), |v| v["enabled"] == false).await;
    assert_eq!(v["secretsActive"], 2, "the disable undid the rotation: {v}");
}

/// Deliver had a per-instance subscription cache: an event accepted right after a new
/// subscription's 201 missed it. Deliver's default settings, nothing shortened.
#[tokio::test]
async fn an_event_accepted_after_a_subscription_is_created_reaches_it() {
    let stack = stack_with(&[]).await;
    let first = Receiver::start().await;
    subscribe(&stack, &first.url, &["candidate.hired"]).await;
    hire(&stack, "cand-warm", json!({})).await;
    first.wait_for(1, LIMIT).await;
    let second = Receiver::start().await;
    subscribe(&stack, &second.url, &["candidate.hired"]).await;
    hire(&stack, "cand-next", json!({})).await;
    let got = second.wait_for(1, LIMIT).await;
    assert!(got[0].body.contains("cand-next"));
}

/// A captured GitHub delivery replayed with a new delivery id and event name is a duplicate: the
/// signature covers only the body.
#[tokio::test]
async fn a_replayed_github_delivery_with_new_headers_is_a_duplicate() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let url = source(&stack, "github", "gh-secret").await;
    let body = json!({"action": "opened", "pull_request": {"number": 7}}).to_string();
    let sig = format!("sha256={}", hmac_hex("gh-secret", &body));
    let first = vec![("x-hub-signature-256", sig.clone()), ("x-github-delivery", "d-1".into()), ("x-github-event", "pull_request".into())];
    let (status, a) = post_raw(&url, &first, &body).await;
    assert_eq!(status, 200, "{a}");
    let replay = vec![("x-hub-signature-256", sig), ("x-github-delivery", "d-2".into()), ("x-github-event", "issues".into())];
    let (status, b) = post_raw(&url, &replay, &body).await;
    assert_eq!((status, &b["duplicate"], &b["eventId"]), (200, &json!(true), &a["eventId"]), "{b}");
    assert_eq!(stack.drain("relay-local-delivery", Duration::from_millis(1500)).await.len(), 1);
}

/// The platform's integration to Nexus (its URL carrying a token) delivers the same event; the
/// organisation sees only its own endpoint's attempts.
#[tokio::test]
async fn an_organisation_sees_only_its_own_deliveries() {
    let stack = stack_with(&[]).await;
    let nexus = Receiver::start().await;
    let (status, _) = call(
        &stack,
        reqwest::Method::PUT,
        ADMIN_KEY,
        "/v1/integrations/recruitiq/nexus",
        Some(json!({"url": format!("{}?token=internal-s3cr3t", nexus.url), "enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let mine = Receiver::start().await;
    let sub = subscribe(&stack, &mine.url, &["candidate.hired"]).await;
    let event_id = hire(&stack, "cand-int", json!({})).await;
    nexus.wait_for(1, LIMIT).await;
    mine.wait_for(1, LIMIT).await;
    let v = get_until(&stack, &format!("/v1/events/{event_id}"), |v| {
        v["deliveries"].as_array().is_some_and(|ds| ds.iter().any(|d| d["state"] == "delivered"))
    })
    .await;
    let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(deliveries.len(), 1, "{v}");
    assert_eq!(deliveries[0]["subscriptionId"], sub.as_str());
    assert!(!v.to_string().contains("s3cr3t"));
}

#[tokio::test]
async fn an_organisation_has_at_most_fifty_subscriptions() {
    let stack = stack_with(&[]).await;
    for i in 0..50 {
        subscribe(&stack, &format!("http://127.0.0.1:9/hook{i}"), &["candidate.hired"]).await;
    }
    let (status, problem) = call(
        &stack,
        reqwest::Method::POST,
        &stack.org_key,
        "/v1/subscriptions",
        Some(json!({"url": "http://127.0.0.1:9/one-more", "eventTypes": ["candidate.hired"]})),
    )
    .await;
    assert_eq!((status, problem["type"].as_str()), (409, Some("https://relay.dev/problems/limit-reached")), "{problem}");
}

/// A contact address is mailed nothing but its verification code until it is confirmed, and
/// that mail carries nothing the organisation chose.
#[tokio::test]
async fn an_unverified_contact_gets_only_its_verification_code() {
    let stack = stack_with(&[("RELAY_RETRY_SCHEDULE", "0"), ("RELAY_DISABLE_AFTER_SECONDS", "60")]).await;
    let (status, problem) =
        call(&stack, reqwest::Method::PUT, &stack.org_key, "/v1/organization", Some(json!({"contactEmail": "a@b.test,victim@evil.test"})))
            .await;
    assert_eq!(status, 400, "{problem}");
    let (status, view) =
        call(&stack, reqwest::Method::PUT, &stack.org_key, "/v1/organization", Some(json!({"contactEmail": "victim@evil.test"}))).await;
    assert_eq!((status, &view["contactEmail"], &view["pendingContactEmail"]), (202, &Value::Null, &json!("victim@evil.test")));
    let (status, _) =
        call(&stack, reqwest::Method::PUT, &stack.org_key, "/v1/organization", Some(json!({"contactEmail": "victim@evil.test"}))).await;
    assert_eq!(status, 429, "one verification mail a minute");
    let wrong = call(&stack, reqwest::Method::POST, &stack.org_key, "/v1/organization/contact/verify", Some(json!({"code": "NOPE"}))).await;
    assert_eq!(wrong.0, 400);

    // An endpoint answering 410 is disabled; the pending address is not told.
    let receiver = Receiver::start().await;
    receiver.answer(410, None, Duration::ZERO, 1);
    let id = subscribe(&stack, &format!("{}?phish=click-here", receiver.url), &["candidate.hired"]).await;
    hire(&stack, "cand-phish", json!({})).await;
    get_until(&stack, &format!("/v1/subscriptions/{id}"), |v| v["enabled"] == false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = relay_e2e::sent_mails(&stack).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0]["subject"].as_str().is_some_and(|s| s.starts_with("Confirm this address")));
    assert!(!mails[0].to_string().contains("phish"));
}

/// Subscriptions stored before writes were versioned (no `version` attribute) can still be
/// edited, rotated and disabled.
#[tokio::test]
async fn subscriptions_stored_before_versions_can_still_be_changed() {
    let stack = stack_with(&[]).await;
    let id = subscribe(&stack, "http://127.0.0.1:9/legacy", &["candidate.hired"]).await;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    for (pk, sk) in [(format!("SUB#{id}"), "SUB".to_string()), ("ORG#org-acme".to_string(), format!("SUB#{id}"))] {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        ddb.update_item()
            .table_name("relay-local-config")
            .key("pk", S(pk))
            .key("sk", S(sk))
            .update_expression("REMOVE version")
            .send()
            .await
            .expect("strip");
    }
    let path = format!("/v1/subscriptions/{id}");
    let (status, v) = call(&stack, reqwest::Method::PATCH, &stack.org_key, &path, Some(json!({"description": "edited"}))).await;
    assert_eq!((status, v["description"].as_str()), (200, Some("edited")), "{v}");
    assert_eq!(call(&stack, reqwest::Method::POST, &stack.org_key, &format!("{path}/secret/rotate"), None).await.0, 200);
}
