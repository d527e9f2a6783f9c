//! Ingest, end to end: real HTTP into the local stack, the real ingest binary behind a local
//! Lambda Runtime API, the AWS wire protocol to moto, and the event read back off the SQS queue
//! that template.yaml's rule subscribes to the bus.

use std::time::Duration;

use relay_e2e::{Fault, FaultProxy, Stack, StackOptions};
use serde_json::{json, Value};

const DELIVERY_QUEUE: &str = "relay-local-delivery";
const EVENTS_TABLE: &str = "relay-local-events";
const IDEMPOTENCY_TABLE: &str = "relay-local-idempotency";
const QUIET: Duration = Duration::from_millis(1500);

fn hired(candidate: &str) -> String {
    json!({"eventType": "candidate.hired", "organizationId": "org-acme", "correlationId": "corr-1",
           "payload": {"candidateId": candidate, "jobId": "job-1", "startDate": "2026-12-01"}})
    .to_string()
}

async fn json_of(resp: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test]
async fn an_event_is_accepted_stored_and_arrives_once_on_the_subscribed_queue() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let (status, body, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("k-1")).await).await;
    assert_eq!(status, 202, "{body}");
    let event_id = body["eventId"].as_str().expect("eventId").to_string();
    assert_eq!(body["eventType"], "candidate.hired");

    let messages = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["source"], "recruitiq");
    assert_eq!(m["detail-type"], "candidate.hired");
    assert_eq!(m["detail"]["eventId"], event_id.as_str());
    assert_eq!(m["detail"]["organizationId"], "org-acme");
    assert_eq!(m["detail"]["correlationId"], "corr-1");
    assert_eq!(m["detail"]["payload"]["candidateId"], "cand-1");

    let ddb = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    let item = ddb
        .get_item()
        .table_name(EVENTS_TABLE)
        .key("eventId", aws_sdk_dynamodb::types::AttributeValue::S(event_id.clone()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the event is in the event store");
    // Kept as text, or as raw DEFLATE when that is smaller (shared/aws/src/dynamo/packed.rs).
    let json = match &item["envelope"] {
        aws_sdk_dynamodb::types::AttributeValue::S(text) => text.clone().into_bytes(),
        aws_sdk_dynamodb::types::AttributeValue::B(packed) => {
            miniz_oxide::inflate::decompress_to_vec(packed.as_ref()).expect("raw DEFLATE")
        }
        other => panic!("envelope stored as {other:?}"),
    };
    let stored: Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(stored, m["detail"]);
}

#[tokio::test]
async fn a_repeat_replays_another_body_is_refused_and_the_bus_sees_one_event() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let (_, first, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("k-1")).await).await;
    let (status, again, headers) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("k-1")).await).await;
    assert_eq!(status, 202);
    assert_eq!(again, first);
    assert_eq!(headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));

    let (status, problem, headers) = json_of(stack.post("/v1/events", &hired("cand-2"), Some("k-1")).await).await;
    assert_eq!(status, 422);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["type"], "https://relay.dev/problems/idempotency-key-reused");

    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 1);
    assert_eq!(stack.count(EVENTS_TABLE).await, 1);
}

#[tokio::test]
async fn twenty_concurrent_identical_requests_publish_exactly_one_event() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let body = hired("cand-race");
    let client = reqwest::Client::new();
    let requests = (0..20).map(|_| {
        client
            .post(format!("{}/v1/events", stack.url))
            .header("authorization", format!("Bearer {}", stack.product_key))
            .header("content-type", "application/json")
            .header("idempotency-key", "race-1")
            .body(body.clone())
            .send()
    });
    let responses = futures_join_all(requests).await;
    let mut originals = 0;
    let mut ids = std::collections::BTreeSet::new();
    for r in responses {
        let (status, body, headers) = json_of(r).await;
        match status {
            202 => {
                ids.insert(body["eventId"].as_str().unwrap_or_default().to_string());
                if !headers.contains_key("idempotent-replayed") {
                    originals += 1;
                }
            }
            409 => assert_eq!(body["type"], "https://relay.dev/problems/request-in-progress"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(originals, 1, "exactly one request did the work");
    assert!(ids.len() <= 1, "every 202 names the same event: {ids:?}");
    let messages = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
}

/// Runs futures concurrently (the tests need no more of `futures` than this).
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task").expect("request"));
    }
    out
}

/// Functions time out AWS calls fast, so injected stalls turn into 503s within a test's patience.
fn fast_timeouts() -> Vec<(String, String)> {
    vec![("RELAY_AWS_ATTEMPT_TIMEOUT_MS".into(), "400".into()), ("RELAY_AWS_OPERATION_TIMEOUT_MS".into(), "1500".into())]
}

async fn stack_behind_proxy() -> (Stack, FaultProxy) {
    relay_e2e::stack_behind_proxy(StackOptions { function_env: fast_timeouts(), no_pollers: true, ..StackOptions::default() }).await
}

async fn assert_nothing_kept(stack: &Stack) {
    assert_eq!(stack.count(EVENTS_TABLE).await, 0, "no event record is left behind");
    assert_eq!(stack.count(IDEMPOTENCY_TABLE).await, 0, "the lock was released");
    assert!(stack.drain(DELIVERY_QUEUE, QUIET).await.is_empty(), "nothing reached the bus");
}

#[tokio::test]
async fn a_failing_put_events_is_a_503_that_keeps_nothing_and_the_retry_publishes_once() {
    let (stack, proxy) = stack_behind_proxy().await;
    proxy.inject("PutEvents", Fault::Fail);
    let (status, problem, headers) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("fault-1")).await).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["type"], "https://relay.dev/problems/service-unavailable");
    assert!(headers.contains_key("retry-after"));
    assert_nothing_kept(&stack).await;

    proxy.clear();
    let (status, _, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("fault-1")).await).await;
    assert_eq!(status, 202);
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 1);

    // The outage shows in ingest's EMF metrics (what the IngestUnavailableAlarm watches).
    let limit = Duration::from_secs(10);
    assert_eq!(stack.metric_total("ingest", "Unavailable", 1.0, limit).await, 1.0);
    assert_eq!(stack.metric_total("ingest", "EventsAccepted", 1.0, limit).await, 1.0);
}

#[tokio::test]
async fn a_stalled_put_events_is_a_503_and_the_retry_publishes_once() {
    let (stack, proxy) = stack_behind_proxy().await;
    proxy.inject("PutEvents", Fault::Stall(Duration::from_secs(3)));
    let (status, _, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("stall-1")).await).await;
    assert_eq!(status, 503);
    assert_nothing_kept(&stack).await;

    proxy.clear();
    assert_eq!(json_of(stack.post("/v1/events", &hired("cand-1"), Some("stall-1")).await).await.0, 202);
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 1);
}

#[tokio::test]
async fn a_failing_store_write_is_a_503_that_publishes_nothing_and_the_retry_publishes_once() {
    let (stack, proxy) = stack_behind_proxy().await;
    // The lock's write fails: nothing is taken.
    proxy.inject("PutItem", Fault::Fail);
    let (status, _, headers) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("store-1")).await).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert_nothing_kept(&stack).await;

    // The lock is taken, then the event's write fails: the lock is given back at once, so the
    // retry is not told "in progress" until the lock's expiry.
    proxy.clear();
    proxy.inject("PutItem", Fault::FailWhenBodyHas("orgReceived"));
    let (status, _, headers) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("store-1")).await).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert_nothing_kept(&stack).await;
    assert_eq!(proxy.counts().get("PutEvents"), None, "nothing was published");

    proxy.clear();
    assert_eq!(json_of(stack.post("/v1/events", &hired("cand-1"), Some("store-1")).await).await.0, 202);
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 1);
}

#[tokio::test]
async fn a_batch_whose_event_write_fails_half_way_keeps_nothing_and_the_retry_publishes_each_once() {
    let (stack, proxy) = stack_behind_proxy().await;
    // One event of the batch cannot be written: the one with this id (its item's key).
    proxy.inject("PutItem", Fault::FailWhenBodyHas("0badc0de-0000-4000-8000-000000000017"));
    let mut events: Vec<Value> = (0..30).map(|i| serde_json::from_str(&hired(&format!("cand-{i}"))).expect("json")).collect();
    events[17]["eventId"] = "0badc0de-0000-4000-8000-000000000017".into();
    let body = serde_json::json!({"events": events}).to_string();
    let (status, problem, _) = json_of(stack.post("/v1/events/batch", &body, Some("batch-store-1")).await).await;
    assert_eq!(status, 503, "{problem}");
    assert_nothing_kept(&stack).await;

    proxy.clear();
    let (status, result, _) = json_of(stack.post("/v1/events/batch", &body, Some("batch-store-1")).await).await;
    assert_eq!(status, 202, "{result}");
    assert_eq!(stack.count(EVENTS_TABLE).await, 30);
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 30);
}

#[tokio::test]
async fn a_write_that_landed_but_whose_answer_was_lost_counts_as_written_not_as_taken() {
    let (stack, proxy) = stack_behind_proxy().await;
    // The lock's put lands, its answer is lost, the SDK retries: the lock is this request's own.
    proxy.inject("PutItem", Fault::LoseAnswerWhenBodyHas("INPROGRESS"));
    let (status, body, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("lost-1")).await).await;
    assert_eq!(status, 202, "{body}");
    // An event without a key: its put lands, the answer is lost; the retry finds its own item.
    proxy.inject("PutItem", Fault::LoseAnswerWhenBodyHas("orgReceived"));
    let (status, body, _) = json_of(stack.post("/v1/events", &hired("cand-2"), None).await).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(proxy.counts().get("PutItem").copied().unwrap_or(0), 4 + 1, "each lost answer was retried once");
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 2);
    assert_eq!(stack.count(EVENTS_TABLE).await, 2);
}

#[tokio::test]
async fn an_event_whose_answer_was_lost_is_not_kept_when_its_batch_fails() {
    let (stack, proxy) = stack_behind_proxy().await;
    // The first event's put lands and its answer is lost: the SDK's retry rewrites the same
    // item (its key lets it). Then another event's write fails: the undo must delete the
    // first, not put "what it replaced" (itself) back.
    proxy.inject("PutItem", Fault::LoseAnswerWhenBodyHas("5eed0000-0000-4000-8000-0000000000a1"));
    proxy.inject("PutItem", Fault::FailWhenBodyHas("5eed0000-0000-4000-8000-0000000000ff"));
    let mut first: Value = serde_json::from_str(&hired("first")).expect("json");
    first["eventId"] = "5eed0000-0000-4000-8000-0000000000a1".into();
    let mut poison: Value = serde_json::from_str(&hired("poison")).expect("json");
    poison["eventId"] = "5eed0000-0000-4000-8000-0000000000ff".into();
    let body = json!({"events": [first, poison]}).to_string();
    let (status, result, _) = json_of(stack.post("/v1/events/batch", &body, Some("lost-batch-1")).await).await;
    assert_eq!(status, 503, "{result}");
    assert_nothing_kept(&stack).await;
}

#[tokio::test]
async fn a_batch_meeting_taken_ids_all_through_it_refuses_just_those_in_one_answer() {
    let (stack, _proxy) = stack_behind_proxy().await;
    let ids: Vec<String> = (0..4).map(|k| format!("7a4e0000-0000-4000-8000-00000000000{k}")).collect();
    for (k, id) in ids.iter().enumerate() {
        let mut e: Value = serde_json::from_str(&hired(&format!("first-{k}"))).expect("json");
        e["eventId"] = id.as_str().into();
        assert_eq!(json_of(stack.post("/v1/events", &e.to_string(), Some(&format!("first-{k}"))).await).await.0, 202);
    }
    stack.drain(DELIVERY_QUEUE, QUIET).await;
    // The taken ids sit in four different groups of the adapter's parallel writes.
    let mut events: Vec<Value> = (0..100).map(|i| serde_json::from_str(&hired(&format!("b-{i}"))).expect("json")).collect();
    for (k, at) in [5, 30, 55, 80].into_iter().enumerate() {
        events[at]["eventId"] = ids[k].as_str().into();
    }
    let body = json!({"events": events}).to_string();
    let (status, result, _) = json_of(stack.post("/v1/events/batch", &body, Some("spread-1")).await).await;
    assert_eq!(status, 207, "{result}");
    assert_eq!((result["accepted"].as_u64(), result["rejected"].as_u64()), (Some(96), Some(4)), "{result}");
    for at in [5, 30, 55, 80] {
        assert_eq!(result["results"][at]["status"], 409, "{}", result["results"][at]);
    }
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 96);
    assert_eq!(stack.count(EVENTS_TABLE).await, 100);
}

#[tokio::test]
async fn undoing_a_failed_batch_puts_back_the_event_deliver_kept_from_the_bus() {
    let (stack, proxy) = relay_e2e::stack_behind_proxy(StackOptions { function_env: fast_timeouts(), ..StackOptions::default() }).await;
    // RecruitIQ's event reached the bus (say its request's ingest undid its record after an
    // ambiguous publish): deliver keeps it for the listing.
    let id = "5eed0000-0000-4000-8000-000000000001";
    let mut kept: Value = serde_json::from_str(&hired("on-the-bus")).expect("json");
    kept["eventId"] = id.into();
    kept["eventVersion"] = "1.0".into();
    kept["sourceProduct"] = "recruitiq".into();
    kept["timestamp"] = "2026-11-24T10:00:00Z".into();
    stack.put_on_bus(Some("relay-local"), "recruitiq", "candidate.hired", &kept).await;
    let client = reqwest::Client::new();
    let get = || client.get(format!("{}/v1/events/{id}", stack.url)).bearer_auth(&stack.org_key).send();
    let started = std::time::Instant::now();
    while get().await.expect("get").status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(30), "deliver never kept the event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The request retried with the same id writes over the kept copy, then another write of
    // its batch fails: the undo must put the kept copy back, not delete it.
    proxy.inject("PutItem", Fault::FailWhenBodyHas("5eed0000-0000-4000-8000-0000000000ff"));
    let mut retried = kept.clone();
    if let Some(o) = retried.as_object_mut() {
        o.retain(|k, _| k != "sourceProduct" && k != "eventVersion" && k != "timestamp");
    }
    retried["payload"]["candidateId"] = "retried".into();
    let mut poison: Value = serde_json::from_str(&hired("poison")).expect("json");
    poison["eventId"] = "5eed0000-0000-4000-8000-0000000000ff".into();
    let body = json!({"events": [retried, poison]}).to_string();
    let (status, result, _) = json_of(stack.post("/v1/events/batch", &body, Some("undo-1")).await).await;
    assert_eq!(status, 503, "{result}");
    let (status, event, _) = json_of(get().await.expect("get")).await;
    assert_eq!(status, 200, "the kept event is still listed: {event}");
    assert_eq!(event["event"]["payload"]["candidateId"], "on-the-bus", "{event}");
}

#[tokio::test]
async fn a_failing_completion_write_still_answers_202_and_never_publishes_twice() {
    // The event is on the bus before the completion write; answering 503 would invite a
    // retry that publishes it again. The caller gets its 202; the lock lapses on its own.
    let (stack, proxy) = stack_behind_proxy().await;
    proxy.inject("UpdateItem", Fault::Fail);
    let (status, first, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("complete-1")).await).await;
    assert_eq!(status, 202);
    proxy.clear();
    let (status, again, _) = json_of(stack.post("/v1/events", &hired("cand-1"), Some("complete-1")).await).await;
    assert_eq!(status, 409, "the lock still holds until its in-progress expiry: {again}");
    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 1);
    assert!(first["eventId"].is_string());
}

#[tokio::test]
async fn bad_input_gets_its_problem_document_and_writes_nothing() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/events", stack.url);
    let product = format!("Bearer {}", stack.product_key);
    let org = format!("Bearer {}", stack.org_key);
    let missing_field = json!({"eventType": "candidate.hired", "organizationId": "org-acme", "payload": {"candidateId": "c"}}).to_string();
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let cases: Vec<(Option<&str>, &str, String, u16, &str)> = vec![
        (Some(product.as_str()), "application/json", "{\"eventType\": ".into(), 400, "malformed-json"),
        (None, "application/json", hired("c"), 401, "unauthenticated"),
        (Some("Bearer rk_prod_nobody"), "application/json", hired("c"), 401, "unauthenticated"),
        (Some(org.as_str()), "application/json", hired("c"), 403, "forbidden"),
        (Some(product.as_str()), "application/json", big, 413, "payload-too-large"),
        (Some(product.as_str()), "text/plain", hired("c"), 415, "unsupported-media-type"),
        (Some(product.as_str()), "application/json", missing_field, 422, "invalid-event"),
        (
            Some(product.as_str()),
            "application/json",
            json!({"eventType": "candidate.hired", "eventVersion": "2.0", "organizationId": "o",
            "payload": {"candidateId": "c", "jobId": "j", "startDate": "2026-01-01"}})
            .to_string(),
            422,
            "invalid-event",
        ),
    ];
    for (auth, ct, body, status, slug) in cases {
        let mut req = client.post(&url).header("content-type", ct).header("idempotency-key", "bad-1").body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (got, problem, headers) = json_of(req.send().await.expect("send")).await;
        assert_eq!(got, status, "{slug}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json", "{slug}");
        assert_eq!(problem["type"], format!("https://relay.dev/problems/{slug}"));
        assert_eq!(problem["status"], status);
        assert!(problem["title"].is_string() && problem["detail"].is_string());
        if slug == "invalid-event" {
            assert!(problem["errors"][0]["field"].is_string(), "{problem}");
        }
    }
    let (_, problem, _) = json_of(
        stack
            .post(
                "/v1/events",
                &json!({"eventType": "candidate.hired", "organizationId": "o", "payload": {"candidateId": "c", "startDate": "d"}})
                    .to_string(),
                None,
            )
            .await,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "payload.jobId", "the missing field is named");
    assert_nothing_kept(&stack).await;
}

#[tokio::test]
async fn a_batch_of_100_is_published_with_a_result_per_item() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let events: Vec<Value> = (0..100).map(|i| serde_json::from_str(&hired(&format!("cand-{i}"))).expect("json")).collect();
    let body = json!({"events": events}).to_string();
    let (status, result, _) = json_of(stack.post("/v1/events/batch", &body, Some("batch-1")).await).await;
    assert_eq!(status, 202, "{result}");
    assert_eq!(result["accepted"], 100);
    assert_eq!(result["results"].as_array().map(Vec::len), Some(100));
    let messages = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(messages.len(), 100);
    let mut candidates: Vec<String> =
        messages.iter().map(|m| m["detail"]["payload"]["candidateId"].as_str().unwrap_or_default().to_string()).collect();
    candidates.sort();
    candidates.dedup();
    assert_eq!(candidates.len(), 100);

    let (_, again, headers) = json_of(stack.post("/v1/events/batch", &body, Some("batch-1")).await).await;
    assert_eq!(again, result);
    assert!(headers.contains_key("idempotent-replayed"));
    assert!(stack.drain(DELIVERY_QUEUE, QUIET).await.is_empty());
}

#[tokio::test]
async fn a_large_payload_travels_through_s3_by_reference() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let description = "x".repeat(300 * 1024);
    let body = json!({"eventType": "job.published", "organizationId": "org-acme", "payload": {"jobId": "j1", "title": "Engineer", "description": description}}).to_string();
    let (status, _, _) = json_of(stack.post("/v1/events", &body, Some("big-1")).await).await;
    assert_eq!(status, 202);
    let messages = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(messages.len(), 1);
    let reference = &messages[0]["detail"]["payloadRef"];
    assert!(messages[0]["detail"]["payload"].is_null());
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.aws().await).force_path_style(true).build());
    let object = s3
        .get_object()
        .bucket(reference["bucket"].as_str().expect("bucket"))
        .key(reference["key"].as_str().expect("key"))
        .send()
        .await
        .expect("the payload is in S3");
    let bytes = object.body.collect().await.expect("body").into_bytes();
    let payload: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(payload["description"].as_str().map(str::len), Some(300 * 1024));
    assert_eq!(reference["size"], bytes.len());
}

#[tokio::test]
async fn put_events_entries_rejected_in_a_200_are_retried_and_land_exactly_once() {
    let (stack, proxy) = stack_behind_proxy().await;
    let events: Vec<Value> = (0..25).map(|i| serde_json::from_str(&hired(&format!("cand-{i}"))).expect("json")).collect();
    proxy.reset_counts();
    proxy.inject("PutEvents", Fault::RejectEntries(2));
    let (status, result, _) =
        json_of(stack.post("/v1/events/batch", &json!({"events": events}).to_string(), Some("partial-1")).await).await;
    assert_eq!(status, 202, "{result}");
    let messages = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(messages.len(), 25, "every entry landed once");
    // Three chunks (10 + 10 + 5); the first is rejected twice and sent a third time.
    assert_eq!(proxy.counts().get("PutEvents"), Some(&5));
}
