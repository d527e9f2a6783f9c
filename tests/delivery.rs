//! Outgoing webhooks, end to end: subscriptions through the manage API, events through ingest,
//! the real deliver binary polling its queues in the local stack, and local HTTP receivers
//! whose every request is checked with the official Standard Webhooks library.

use std::time::{Duration, Instant};

use relay_e2e::receiver::{official_verify, Receiver};
use relay_e2e::stack::ADMIN_KEY;
use relay_e2e::{Stack, StackOptions};
use serde_json::{json, Value};

/// The deliver function with a compressed retry schedule and no subscription cache.
async fn stack(schedule: &str, extra: &[(&str, &str)]) -> Stack {
    let mut env =
        vec![("RELAY_RETRY_SCHEDULE".to_string(), schedule.to_string()), ("RELAY_SUBSCRIPTION_CACHE_SECONDS".to_string(), "0".to_string())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Stack::start(StackOptions { function_env: env, ..StackOptions::default() }).await
}

async fn subscribe(stack: &Stack, key: &str, url: &str, types: &[&str]) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions", stack.url))
        .bearer_auth(key)
        .json(&json!({"url": url, "eventTypes": types, "description": "test"}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(resp.status(), 201);
    resp.json().await.expect("json")
}

async fn publish(stack: &Stack, org: &str, candidate: &str) -> String {
    let body = json!({"eventType": "candidate.hired", "organizationId": org, "payload": {"candidateId": candidate, "jobId": "job-1", "startDate": "2026-12-01"}}).to_string();
    let resp = stack.post("/v1/events", &body, Some(&format!("{org}-{candidate}"))).await;
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.expect("json");
    v["eventId"].as_str().expect("eventId").to_string()
}

async fn get(stack: &Stack, key: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new().get(format!("{}{path}", stack.url)).bearer_auth(key).send().await.expect("get");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn event_deliveries(stack: &Stack, event_id: &str, until_state: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, v) = get(stack, &stack.org_key, &format!("/v1/events/{event_id}")).await;
        if status == 200 && v["deliveries"][0]["state"] == until_state {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "delivery never reached {until_state}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ids of a listing (`query` after `/v1/events?`) once it holds `event_id`; fails after 30 s.
async fn listed_once(stack: &Stack, query: &str, event_id: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let (status, v) = get(stack, &stack.org_key, &format!("/v1/events?{query}")).await;
        let ids: Vec<String> =
            v["events"].as_array().into_iter().flatten().filter_map(|e| e["event"]["eventId"].as_str().map(str::to_string)).collect();
        if status == 200 && ids.iter().any(|id| id == event_id) {
            return ids;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{event_id} never listed under {query}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_delivered_webhook_passes_the_official_verifier_and_its_attempt_is_logged() {
    let stack = stack("0,1,1", &[]).await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.*"]).await;
    let secret = sub["secret"].as_str().expect("secret shown once at creation");
    assert!(secret.starts_with("whsec_"));
    let event_id = publish(&stack, "org-acme", "cand-1").await;

    let got = receiver.wait_for(1, LIMIT).await;
    official_verify(secret, &got[0]).expect("the official standardwebhooks library accepts it");
    let body: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["type"], "candidate.hired");
    assert_eq!(body["data"]["eventId"], event_id.as_str());
    assert_eq!(body["data"]["payload"]["candidateId"], "cand-1");
    assert!(body["timestamp"].is_string());

    let v = event_deliveries(&stack, &event_id, "delivered").await;
    let attempt = &v["deliveries"][0]["attempts"][0];
    assert_eq!((attempt["number"].as_u64(), attempt["statusCode"].as_u64()), (Some(1), Some(200)));
    assert!(attempt["durationMs"].is_u64() && attempt["responseExcerpt"] == "ok");
    let (_, listed) = get(&stack, &stack.org_key, &format!("/v1/subscriptions/{}", sub["id"].as_str().expect("id"))).await;
    assert!(!listed.to_string().contains("whsec_"), "the secret is never shown again");
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id_honouring_retry_after() {
    let stack = stack("0,1,1,1,1", &[]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None, Duration::ZERO, 1);
    receiver.answer(503, Some(3), Duration::ZERO, 1);
    subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let event_id = publish(&stack, "org-acme", "cand-2").await;

    let got = receiver.wait_for(3, LIMIT).await;
    let ids: Vec<&str> = got.iter().map(|r| r.headers["webhook-id"].as_str()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "webhook-id is stable across retries: {ids:?}");
    assert!(got[2].at.duration_since(got[1].at) >= Duration::from_millis(2500), "Retry-After: 3 was honoured");
    let v = event_deliveries(&stack, &event_id, "delivered").await;
    let codes: Vec<u64> =
        v["deliveries"][0]["attempts"].as_array().expect("attempts").iter().filter_map(|a| a["statusCode"].as_u64()).collect();
    assert_eq!(codes, vec![500, 503, 200]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 3, "nothing after the success");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_later_events_are_not_sent() {
    let stack = stack("0,1,1", &[]).await;
    let receiver = Receiver::start().await;
    receiver.answer(410, None, Duration::ZERO, 1);
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let first = publish(&stack, "org-acme", "cand-3").await;
    receiver.wait_for(1, LIMIT).await;
    event_deliveries(&stack, &first, "failed").await;
    let (_, view) = get(&stack, &stack.org_key, &format!("/v1/subscriptions/{}", sub["id"].as_str().expect("id"))).await;
    assert_eq!(view["enabled"], false);
    assert!(view["disabledReason"].as_str().is_some_and(|r| r.contains("410")));
    publish(&stack, "org-acme", "cand-4").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.count(), 1, "a disabled endpoint gets nothing");
}

#[tokio::test]
async fn an_endpoint_down_for_the_whole_schedule_ends_in_the_dlq_and_a_replay_delivers_once() {
    let stack = stack("0,1,1", &[]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None, Duration::ZERO, 3);
    subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let event_id = publish(&stack, "org-acme", "cand-5").await;
    receiver.wait_for(3, LIMIT).await;
    let v = event_deliveries(&stack, &event_id, "failed").await;
    assert_eq!(v["deliveries"][0]["attempts"].as_array().map(Vec::len), Some(3));

    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let dlq = sqs
        .receive_message()
        .queue_url(stack.queue_url("relay-local-delivery-dlq"))
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("dlq");
    let bodies: Vec<Value> =
        dlq.messages.unwrap_or_default().iter().filter_map(|m| serde_json::from_str(m.body.as_deref().unwrap_or("")).ok()).collect();
    assert!(bodies.iter().any(|b| b["kind"] == "exhausted" && b["envelope"]["eventId"] == event_id.as_str()), "{bodies:?}");

    // The receiver recovers (its script is spent: it answers 200); a replay delivers once.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/events/{event_id}/replay", stack.url))
        .bearer_auth(&stack.org_key)
        .send()
        .await
        .expect("replay");
    assert_eq!(resp.status(), 202);
    receiver.wait_for(4, LIMIT).await;
    event_deliveries(&stack, &event_id, "delivered").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 4);

    // What CloudWatch would chart, from the EMF lines deliver wrote: three failed attempts, two
    // retries, one exhausted delivery, then the replay's success.
    let metric = |name: &'static str, n: f64| stack.metric_total("deliver", name, n, LIMIT);
    assert_eq!(metric("DeliveryAttemptsFailed", 3.0).await, 3.0);
    assert_eq!(metric("RetriesScheduled", 2.0).await, 2.0);
    assert_eq!(metric("DeliveriesExhausted", 1.0).await, 1.0);
    assert_eq!(metric("DeliveriesSucceeded", 1.0).await, 1.0);
}

async fn send(stack: &Stack, method: reqwest::Method, key: &str, path: &str) -> u16 {
    reqwest::Client::new().request(method, format!("{}{path}", stack.url)).bearer_auth(key).send().await.expect("send").status().as_u16()
}

#[tokio::test]
async fn exhausted_deliveries_are_listed_for_operators_page_by_page_and_leave_the_list_when_replayed_or_dismissed() {
    let stack = stack("0,1", &[]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None, Duration::ZERO, 4);
    subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let (first, second) = (publish(&stack, "org-acme", "cand-dl-1").await, publish(&stack, "org-acme", "cand-dl-2").await);
    receiver.wait_for(4, LIMIT).await;
    for id in [&first, &second] {
        event_deliveries(&stack, id, "failed").await;
    }

    // Two pages of one, through the index and its cursor on the emulator.
    assert_eq!(get(&stack, &stack.org_key, "/v1/dead-letters").await.0, 403);
    let (status, page) = get(&stack, ADMIN_KEY, "/v1/dead-letters?limit=1").await;
    assert_eq!(status, 200, "{page}");
    let cursor = page["nextCursor"].as_str().expect("a cursor").to_string();
    let (_, rest) = get(&stack, ADMIN_KEY, &format!("/v1/dead-letters?limit=1&cursor={cursor}")).await;
    // DynamoDB may end a full page with a cursor to an empty one; moto does not.
    let end = match rest["nextCursor"].as_str() {
        Some(c) => get(&stack, ADMIN_KEY, &format!("/v1/dead-letters?limit=1&cursor={c}")).await.1,
        None => json!({"deadLetters": []}),
    };
    let mut listed: Vec<String> = [&page, &rest, &end]
        .iter()
        .flat_map(|p| p["deadLetters"].as_array().cloned().unwrap_or_default())
        .filter_map(|l| l["eventId"].as_str().map(str::to_string))
        .collect();
    listed.sort();
    let mut want = vec![first.clone(), second.clone()];
    want.sort();
    assert_eq!(listed, want, "each exhausted delivery once, newest first, over the pages");
    let letter = &page["deadLetters"][0];
    assert_eq!(
        (letter["organizationId"].as_str(), letter["attempts"].as_u64(), letter["lastStatusCode"].as_u64()),
        (Some("org-acme"), Some(2), Some(500))
    );
    assert_eq!(letter["eventType"], "candidate.hired");

    // The receiver answers 200 again: a replay delivers once and takes the first off the list;
    // the second is dismissed and stays failed in the organisation's log.
    let sub = letter["subscriptionId"].as_str().expect("sub").to_string();
    let replayed = letter["eventId"].as_str().expect("id").to_string();
    let dismissed = if replayed == first { second.clone() } else { first.clone() };
    assert_eq!(send(&stack, reqwest::Method::POST, ADMIN_KEY, &format!("/v1/dead-letters/{replayed}/{sub}/replay")).await, 202);
    receiver.wait_for(5, LIMIT).await;
    event_deliveries(&stack, &replayed, "delivered").await;
    assert_eq!(send(&stack, reqwest::Method::DELETE, ADMIN_KEY, &format!("/v1/dead-letters/{dismissed}/{sub}")).await, 204);
    assert_eq!(send(&stack, reqwest::Method::DELETE, ADMIN_KEY, &format!("/v1/dead-letters/{dismissed}/{sub}")).await, 404);
    assert_eq!(get(&stack, ADMIN_KEY, "/v1/dead-letters").await.1["deadLetters"], json!([]));
    event_deliveries(&stack, &dismissed, "failed").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 5, "the dismissed one is not sent");

    // The chart counts each pair once, as it stands: one delivered, one failed, in this hour.
    let (status, stats) = get(&stack, &stack.org_key, "/v1/stats/deliveries").await;
    assert_eq!(status, 200, "{stats}");
    let now = &stats["hours"][23];
    assert_eq!((now["delivered"].as_u64(), now["failed"].as_u64()), (Some(1), Some(1)), "{stats}");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_each_verifies() {
    let stack = stack("0,1", &[]).await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["*"]).await;
    let old = sub["secret"].as_str().expect("secret").to_string();
    let rotated: Value = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions/{}/secret/rotate", stack.url, sub["id"].as_str().expect("id")))
        .bearer_auth(&stack.org_key)
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("json");
    let new = rotated["secret"].as_str().expect("new secret").to_string();
    assert_ne!(old, new);
    publish(&stack, "org-acme", "cand-6").await;
    let got = receiver.wait_for(1, LIMIT).await;
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 2, "two signatures during the overlap");
    official_verify(&old, &got[0]).expect("the old secret verifies");
    official_verify(&new, &got[0]).expect("the new secret verifies");
}

#[tokio::test]
async fn an_organisation_sees_only_its_own_subscriptions_and_events_and_urls_are_ssrf_checked() {
    let stack = stack("0", &[]).await;
    let other_key = "rk_org_test_beta";
    stack.add_org_key(other_key, "org-beta").await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let event_id = publish(&stack, "org-acme", "cand-7").await;
    receiver.wait_for(1, LIMIT).await;
    let id = sub["id"].as_str().expect("id");
    assert_eq!(get(&stack, other_key, &format!("/v1/subscriptions/{id}")).await.0, 404);
    assert_eq!(get(&stack, other_key, &format!("/v1/events/{event_id}")).await.0, 404);
    assert_eq!(get(&stack, &stack.org_key, &format!("/v1/events/{event_id}")).await.0, 200);
    let (_, theirs) = get(&stack, other_key, "/v1/subscriptions").await;
    assert_eq!(theirs["subscriptions"].as_array().map(Vec::len), Some(0));

    for url in
        ["http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::ffff:10.0.0.1]/", "http://[fd00::1]/", "ftp://example.com/"]
    {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/subscriptions", stack.url))
            .bearer_auth(&stack.org_key)
            .json(&json!({"url": url, "eventTypes": ["*"]}))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 400, "{url}");
    }
}

#[tokio::test]
async fn a_slow_receiver_delays_no_other_organisations_deliveries() {
    let stack = stack("0,1", &[("RELAY_SEND_TIMEOUT_MS", "4000")]).await;
    let slow = Receiver::start().await;
    slow.answer(200, None, Duration::from_secs(10), 1);
    let fast = Receiver::start().await;
    subscribe(&stack, &stack.org_key, &slow.url, &["candidate.hired"]).await;
    let beta_key = "rk_org_test_gamma";
    stack.add_org_key(beta_key, "org-gamma").await;
    subscribe(&stack, beta_key, &fast.url, &["candidate.hired"]).await;

    publish(&stack, "org-acme", "cand-slow").await;
    slow.wait_for(1, LIMIT).await;
    publish(&stack, "org-gamma", "cand-fast").await;
    fast.wait_for(1, LIMIT).await;
    assert_eq!(slow.in_flight(), 1, "the other organisation's event arrived while the slow receiver still held its request");
}

#[tokio::test]
async fn the_endpoints_of_one_organisation_are_sent_an_event_at_the_same_time() {
    let stack = stack("0,1", &[("RELAY_SEND_TIMEOUT_MS", "6000")]).await;
    // Both take 2 s to answer: sent one after the other, their requests would arrive at least
    // 2 s apart whichever went first.
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    a.answer(200, None, Duration::from_secs(2), 1);
    b.answer(200, None, Duration::from_secs(2), 1);
    subscribe(&stack, &stack.org_key, &a.url, &["candidate.hired"]).await;
    subscribe(&stack, &stack.org_key, &b.url, &["candidate.hired"]).await;

    publish(&stack, "org-acme", "cand-both").await;
    let (at_a, at_b) = (a.wait_for(1, LIMIT).await[0].at, b.wait_for(1, LIMIT).await[0].at);
    let apart = if at_a > at_b { at_a - at_b } else { at_b - at_a };
    assert!(apart < Duration::from_secs(1), "the second endpoint waited for the first: {apart:?} apart");
}

#[tokio::test]
async fn disabling_the_recruitiq_to_nexus_integration_stops_delivery_and_enabling_resumes_it() {
    let stack = stack("0", &[]).await;
    let nexus = Receiver::start().await;
    let client = reqwest::Client::new();
    let put = |enabled: bool| {
        client
            .put(format!("{}/v1/integrations/recruitiq/nexus", stack.url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"enabled": enabled, "url": nexus.url}))
            .send()
    };
    let (status, list) = get(&stack, ADMIN_KEY, "/v1/integrations").await;
    assert_eq!(status, 200);
    assert_eq!(list["integrations"].as_array().map(Vec::len), Some(3));
    assert_eq!(get(&stack, &stack.org_key, "/v1/integrations").await.0, 403, "operators only");

    assert_eq!(put(true).await.expect("enable").status(), 200);
    publish(&stack, "org-acme", "cand-i1").await;
    let got = nexus.wait_for(1, LIMIT).await;
    let body: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["data"]["payload"]["candidateId"], "cand-i1");

    assert_eq!(put(false).await.expect("disable").status(), 200);
    publish(&stack, "org-acme", "cand-i2").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(nexus.count(), 1, "nothing reaches Nexus while the integration is off");

    assert_eq!(put(true).await.expect("enable").status(), 200);
    let last = publish(&stack, "org-acme", "cand-i3").await;
    let got = nexus.wait_for(2, LIMIT).await;
    let body: Value = serde_json::from_str(&got[1].body).expect("json");
    assert_eq!(body["data"]["payload"]["candidateId"], "cand-i3");

    // The operator's list shows each integration's state and its last day's activity.
    let started = Instant::now();
    let nexus_row = loop {
        let (_, list) = get(&stack, ADMIN_KEY, "/v1/integrations").await;
        let row =
            list["integrations"].as_array().into_iter().flatten().find(|i| i["source"] == "recruitiq" && i["target"] == "nexus").cloned();
        if let Some(row) = row.filter(|r| r["lastEvent"]["eventId"] == last.as_str() && r["lastEvent"]["state"] == "delivered") {
            break row;
        }
        assert!(started.elapsed() < LIMIT, "the integration's activity never showed its last event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((nexus_row["state"].as_str(), nexus_row["lastDay"]["delivered"].as_u64()), (Some("on"), Some(2)), "{nexus_row}");
    assert_eq!(nexus_row["lastDay"]["failed"], 0);
    assert_eq!(nexus_row["lastEvent"]["eventType"], "candidate.hired");
    let (_, list) = get(&stack, ADMIN_KEY, "/v1/integrations").await;
    let unconfigured = list["integrations"].as_array().into_iter().flatten().filter(|i| i["state"] == "unconfigured").count();
    assert_eq!(unconfigured, 2, "{list}");
}

#[tokio::test]
async fn events_are_listed_newest_first_by_type_and_time_with_a_cursor() {
    let stack = stack("0", &[]).await;
    let first = publish(&stack, "org-acme", "cand-l1").await;
    let second = publish(&stack, "org-acme", "cand-l2").await;
    let job = json!({"eventType": "job.published", "organizationId": "org-acme", "payload": {"jobId": "j", "title": "T"}}).to_string();
    assert_eq!(stack.post("/v1/events", &job, Some("job-l1")).await.status(), 202);
    publish(&stack, "org-other", "cand-l3").await;

    let (status, page1) = get(&stack, &stack.org_key, "/v1/events?limit=2").await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["events"].as_array().map(Vec::len), Some(2));
    let cursor = page1["nextCursor"].as_str().expect("a next page");
    let (_, page2) = get(&stack, &stack.org_key, &format!("/v1/events?limit=2&cursor={cursor}")).await;
    let ids: Vec<&str> = page1["events"]
        .as_array()
        .into_iter()
        .chain(page2["events"].as_array())
        .flatten()
        .filter_map(|e| e["event"]["eventId"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "three events of org-acme, none of another organisation: {ids:?}");
    assert_eq!(ids[1], second.as_str(), "newest first");
    assert_eq!(ids[2], first.as_str());
    let (_, jobs) = get(&stack, &stack.org_key, "/v1/events?type=job.published").await;
    assert_eq!(jobs["events"].as_array().map(Vec::len), Some(1));
    let (_, none) = get(&stack, &stack.org_key, "/v1/events?from=2099-01-01T00:00:00Z").await;
    assert_eq!(none["events"].as_array().map(Vec::len), Some(0));
    assert_eq!(get(&stack, &stack.org_key, "/v1/events?from=yesterday").await.0, 400);
    assert_eq!(get(&stack, &stack.org_key, "/v1/events?cursor=bm9wZQ").await.0, 400);
}

#[tokio::test]
async fn recover_resends_what_failed_since_a_time() {
    let stack = stack("0,1", &[]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None, Duration::ZERO, 2);
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let event_id = publish(&stack, "org-acme", "cand-r1").await;
    receiver.wait_for(2, LIMIT).await;
    event_deliveries(&stack, &event_id, "failed").await;
    listed_once(&stack, "deliveryState=failed", &event_id).await;
    let (_, delivered) = get(&stack, &stack.org_key, "/v1/events?deliveryState=delivered").await;
    assert_eq!(delivered["events"].as_array().map(Vec::len), Some(0), "{delivered}");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions/{}/recover", stack.url, sub["id"].as_str().expect("id")))
        .bearer_auth(&stack.org_key)
        .json(&json!({"since": since.to_rfc3339()}))
        .send()
        .await
        .expect("recover");
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["recovered"][0], event_id.as_str());
    receiver.wait_for(3, LIMIT).await;
    event_deliveries(&stack, &event_id, "delivered").await;
    listed_once(&stack, "deliveryState=delivered", &event_id).await;
    let (_, failed) = get(&stack, &stack.org_key, "/v1/events?deliveryState=failed").await;
    assert_eq!(failed["events"].as_array().map(Vec::len), Some(0), "recovered, so no longer failing: {failed}");
    assert_eq!(get(&stack, &stack.org_key, "/v1/events?deliveryState=lost").await.0, 400);
}

#[tokio::test]
async fn a_rate_limit_holds_across_concurrent_deliveries() {
    let stack = stack("0,1", &[]).await;
    let receiver = Receiver::start().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"url": receiver.url, "eventTypes": ["candidate.hired"], "rateLimit": 2}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(resp.status(), 201);
    let body = json!({"events": (0..8).map(|i| json!({"eventType": "candidate.hired", "organizationId": "org-acme",
        "payload": {"candidateId": format!("cand-rl{i}"), "jobId": "j", "startDate": "2026-12-01"}})).collect::<Vec<_>>()});
    assert_eq!(stack.post("/v1/events/batch", &body.to_string(), Some("rate-1")).await.status(), 202);
    let got = receiver.wait_for(8, Duration::from_secs(60)).await;
    let span = got[7].at.duration_since(got[0].at);
    assert!(span >= Duration::from_millis(2500), "8 deliveries at 2 per second take at least 3 seconds; took {span:?}");
}

#[tokio::test]
async fn events_put_on_the_bus_directly_are_delivered_and_garbage_goes_to_the_dlq_alone() {
    let stack = stack("0", &[]).await;
    let receiver = Receiver::start().await;
    subscribe(&stack, &stack.org_key, &receiver.url, &["employee.created"]).await;
    let sdk = stack.aws().await;

    // Garbage straight onto the delivery queue, next to a real event.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    sqs.send_message().queue_url(stack.queue_url("relay-local-delivery")).message_body("{not json").send().await.expect("send");
    let invalid = json!({"detail-type": "employee.created", "source": "nexus", "detail": {"eventId": "7d444840-9dc0-41d2-a6c5-3c1a3e5f2b12", "eventType": "employee.created", "sourceProduct": "nexus", "organizationId": "org-acme", "timestamp": "2026-11-22T10:00:00Z", "payload": {"employeeId": "e-1"}}});
    sqs.send_message().queue_url(stack.queue_url("relay-local-delivery")).message_body(invalid.to_string()).send().await.expect("send");

    // A product (Nexus) puts a well-formed envelope on the bus itself.
    let event_id = "2f0c4c56-6f4b-4f8e-9d55-0a7f1c6b9e01";
    let envelope = json!({"eventId": event_id, "eventType": "employee.created", "eventVersion": "1.0", "sourceProduct": "nexus", "organizationId": "org-acme",
        "timestamp": "2026-11-22T10:00:00Z", "payload": {"employeeId": "emp-9", "firstName": "Ada", "lastName": "L", "email": "ada@example.com", "startDate": "2026-12-01"}});
    stack.put_on_bus(Some("relay-local"), "nexus", "employee.created", &envelope).await;

    let got = receiver.wait_for(1, LIMIT).await;
    let body: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["data"]["eventId"], event_id);
    let dlq = sqs
        .receive_message()
        .queue_url(stack.queue_url("relay-local-delivery-dlq"))
        .max_number_of_messages(10)
        .wait_time_seconds(3)
        .send()
        .await
        .expect("dlq");
    let bodies: Vec<String> = dlq.messages.unwrap_or_default().into_iter().filter_map(|m| m.body).collect();
    assert!(bodies.iter().any(|b| b == "{not json"), "{bodies:?}");
    assert!(
        bodies.iter().any(|b| b.contains("7d444840-9dc0-41d2-a6c5-3c1a3e5f2b12")),
        "an envelope missing required fields is refused: {bodies:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 1, "the invalid envelope was not delivered");
    assert_eq!(get(&stack, &stack.org_key, &format!("/v1/events/{event_id}")).await.0, 200, "a bus-direct event is inspectable");
    let listed = listed_once(&stack, "source=nexus&deliveryState=delivered", event_id).await;
    assert_eq!(listed, [event_id], "listed like a published event, by its source and delivery state");
    let (_, others) = get(&stack, &stack.org_key, "/v1/events?source=recruitiq").await;
    assert_eq!(others["events"].as_array().map(Vec::len), Some(0), "{others}");

    // Another product cannot take the kept event over by publishing under its id.
    let hijack =
        json!({"eventId": event_id, "eventType": "job.closed", "organizationId": "org-acme", "payload": {"jobId": "j"}}).to_string();
    let resp = stack.post("/v1/events", &hijack, Some("hijack-1")).await;
    assert_eq!(resp.status(), 409, "the id is Nexus's event");
    let (_, kept) = get(&stack, &stack.org_key, &format!("/v1/events/{event_id}")).await;
    assert_eq!((kept["event"]["sourceProduct"].as_str(), kept["event"]["eventType"].as_str()), (Some("nexus"), Some("employee.created")));
}

#[tokio::test]
async fn an_endpoint_failing_past_the_window_is_disabled_announced_and_its_contact_emailed() {
    let stack = stack("0,1,1,1,1,1,1,1", &[("RELAY_DISABLE_AFTER_SECONDS", "2")]).await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None, Duration::ZERO, 20);
    let client = reqwest::Client::new();
    let put = client
        .put(format!("{}/v1/organization", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"contactEmail": "ops@acme.test"}))
        .send()
        .await
        .expect("put");
    // The address is pending until the code mailed to it comes back.
    assert_eq!(put.status(), 202);
    let code = relay_e2e::verification_code(&stack, "ops@acme.test").await;
    let verified = client
        .post(format!("{}/v1/organization/contact/verify", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("verify");
    assert_eq!(verified.status(), 200);
    let bad = client
        .put(format!("{}/v1/organization", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"contactEmail": "not an address"}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 400);
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let id = sub["id"].as_str().expect("id");
    let event_id = publish(&stack, "org-acme", "cand-w1").await;

    let started = Instant::now();
    let view = loop {
        let (_, view) = get(&stack, &stack.org_key, &format!("/v1/subscriptions/{id}")).await;
        if view["enabled"] == false {
            break view;
        }
        assert!(started.elapsed() < LIMIT, "never disabled: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(view["disabledReason"].as_str().is_some_and(|r| r.starts_with("no successful delivery since")), "{view}");
    let attempts = receiver.count();
    assert!(attempts >= 2, "it failed more than once before the window passed");

    // The e-mail follows the disabling; moto lists what SES sent.
    let mail = relay_e2e::wait_for_mail(&stack, "ops@acme.test", "Relay disabled your webhook endpoint").await;
    // The mail names the subscription, never the organisation's URL (nothing an organisation
    // chose travels through Relay's sender to someone else).
    assert!(mail["subject"].as_str().is_some_and(|s| s.contains(id) && !s.contains(&receiver.url)), "{mail}");
    assert!(!mail["text"].to_string().contains(&receiver.url) && !mail["html"].to_string().contains(&receiver.url), "{mail}");
    assert_eq!(mail["from"], "RecruitIQ Platform <system@recruitiq.com>", "the system sender, through the mail path");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.count(), attempts, "pending retries stop once the endpoint is disabled");
    // The pair whose retry was pending ends failed, so recover can find it once re-enabled.
    event_deliveries(&stack, &event_id, "failed").await;
}

#[tokio::test]
async fn a_success_clears_the_failing_mark_so_a_later_failure_starts_a_new_window() {
    let stack = stack("0,1,1,1,1,1,1,1", &[("RELAY_DISABLE_AFTER_SECONDS", "2")]).await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&stack, &stack.org_key, &receiver.url, &["candidate.hired"]).await;
    let id = sub["id"].as_str().expect("id");
    let wait_for = |n: usize| {
        let receiver = &receiver;
        async move {
            let started = Instant::now();
            while receiver.count() < n {
                assert!(started.elapsed() < LIMIT, "{} of {n} requests arrived", receiver.count());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // Fails once (the failing mark is set), then succeeds on its retry (the mark must go).
    receiver.answer(500, None, Duration::ZERO, 1);
    publish(&stack, "org-acme", "cand-h1").await;
    wait_for(2).await;
    // Longer than the window: a mark left standing would now be "failing for too long".
    tokio::time::sleep(Duration::from_secs(3)).await;

    // One more failure starts a new window rather than disabling the endpoint, so its retry
    // is sent and succeeds.
    receiver.answer(500, None, Duration::ZERO, 1);
    let event_id = publish(&stack, "org-acme", "cand-h2").await;
    wait_for(4).await;
    event_deliveries(&stack, &event_id, "delivered").await;
    let (_, view) = get(&stack, &stack.org_key, &format!("/v1/subscriptions/{id}")).await;
    assert_eq!(view["enabled"], true, "{view}");
}

#[tokio::test]
async fn the_test_endpoint_sends_an_example_event_with_the_subscriptions_custom_headers() {
    let stack = stack("0", &[]).await;
    let receiver = Receiver::start().await;
    let client = reqwest::Client::new();
    let sub: Value = client
        .post(format!("{}/v1/subscriptions", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"url": receiver.url, "eventTypes": ["payroll.*"], "headers": {"X-Customer-Tenant": "acme-eu"}}))
        .send()
        .await
        .expect("subscribe")
        .json()
        .await
        .expect("json");
    let secret = sub["secret"].as_str().expect("secret");
    let resp = client
        .post(format!("{}/v1/subscriptions/{}/test", stack.url, sub["id"].as_str().expect("id")))
        .bearer_auth(&stack.org_key)
        .send()
        .await
        .expect("test");
    assert_eq!(resp.status(), 202);
    let got = receiver.wait_for(1, LIMIT).await;
    let body: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["type"], "relay.test", "sent even though the subscription does not list relay.test");
    assert_eq!(got[0].headers.get("x-customer-tenant").map(String::as_str), Some("acme-eu"));
    official_verify(secret, &got[0]).expect("signed like any delivery");
}
