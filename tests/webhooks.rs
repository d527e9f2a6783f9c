//! Incoming webhooks, end to end: sources registered through the manage API, requests signed
//! by independent code (the official Standard Webhooks and Stripe libraries, Python's hmac),
//! sent over real HTTP to webhook-receive in the local stack, events read back off the queue
//! and raw requests out of the S3 archive.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use relay_e2e::{post_raw as post, repo_root, Stack, StackOptions};
use serde_json::{json, Value};

const DELIVERY_QUEUE: &str = "relay-local-delivery";
const ARCHIVE_BUCKET: &str = "relay-local-webhook-archive-123456789012-us-east-1";
const QUIET: Duration = Duration::from_millis(1500);

/// Runs tests/python/webhook_tools.py in the project's virtualenv.
fn python(args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/python/webhook_tools.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn hmac_hex(key: &str, message: &str) -> String {
    python(&["hmac-hex", key], message).expect("hmac")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn create_source(stack: &Stack, key: &str, body: Value) -> Value {
    let resp =
        reqwest::Client::new().post(format!("{}/v1/sources", stack.url)).bearer_auth(key).json(&body).send().await.expect("create source");
    assert_eq!(resp.status(), 201);
    resp.json().await.expect("json")
}

async fn archived(stack: &Stack) -> usize {
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.aws().await).force_path_style(true).build());
    let out = s3.list_objects_v2().bucket(ARCHIVE_BUCKET).prefix("webhooks/").send().await.expect("list");
    out.key_count.unwrap_or(0) as usize
}

fn stripe_header(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", hmac_hex(secret, &format!("{t}.{body}")))
}

#[tokio::test]
async fn standard_webhooks_and_svix_requests_signed_by_the_official_library_are_accepted() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for (provider, prefix) in [("standard-webhooks", "webhook"), ("svix", "svix")] {
        let source = create_source(&stack, &stack.org_key, json!({"provider": provider, "secret": secret})).await;
        let url = source["url"].as_str().expect("url").to_string();
        let body = json!({"type": "user.created", "timestamp": "2026-11-22T10:00:00Z", "data": {"id": "user_1", "email": "a@example.com"}})
            .to_string();
        let msg_id = format!("msg_{provider}");
        let ts = now();
        let signature = python(&["sign-standard", secret, &msg_id, &ts.to_string()], &body).expect("sign");
        let headers = [
            (&*format!("{prefix}-id"), msg_id.clone()),
            (&*format!("{prefix}-timestamp"), ts.to_string()),
            (&*format!("{prefix}-signature"), signature),
        ];
        let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
        let (status, reply) = post(&url, &headers, &body).await;
        assert_eq!(status, 200, "{provider}: {reply}");
        assert_eq!(reply["eventType"], format!("{}.user.created", provider.replace('-', "_")));
    }
    let events = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e["detail"]["organizationId"], "org-acme");
        assert_eq!(e["detail"]["payload"]["data"]["id"], "user_1");
    }
    assert_eq!(archived(&stack).await, 2);
}

#[tokio::test]
async fn stripe_signatures_per_the_documented_scheme_pass_the_official_library_and_relay() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let secret = "whsec_test_7f3a";
    let source = create_source(&stack, &stack.org_key, json!({"provider": "stripe", "secret": secret})).await;
    let url = source["url"].as_str().expect("url");
    let body = json!({"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded",
                      "data": {"object": {"id": "pi_1", "amount": 5000, "currency": "eur"}}})
    .to_string();
    let header = stripe_header(secret, now(), &body);
    assert_eq!(python(&["verify-stripe", secret, &header], &body).as_deref(), Ok("ok"), "the official stripe library accepts it");

    let (status, reply) = post(url, &[("stripe-signature", header.clone())], &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["eventType"], "payment.received");
    let (status, again) = post(url, &[("stripe-signature", header)], &body).await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "the same event again is a duplicate");

    let events = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(events.len(), 1, "one internal event for two deliveries");
    assert_eq!(events[0]["detail"]["eventType"], "payment.received");
    assert_eq!(events[0]["detail"]["payload"]["data"]["id"], "pi_1");
    assert_eq!(events[0]["detail"]["correlationId"], "evt_1NG8Du2eZvKYlo2CUI79vXWy");

    let failed = json!({"id": "evt_2", "type": "payment_intent.payment_failed", "data": {"object": {"id": "pi_2"}}}).to_string();
    let (status, reply) = post(url, &[("stripe-signature", stripe_header(secret, now(), &failed))], &failed).await;
    assert_eq!((status, reply["eventType"].as_str()), (200, Some("payment.failed")));
}

#[tokio::test]
async fn forged_stale_unsigned_and_unknown_calls_are_refused_and_change_nothing() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let secret = "whsec_test_7f3a";
    let source = create_source(&stack, &stack.org_key, json!({"provider": "stripe", "secret": secret})).await;
    let url = source["url"].as_str().expect("url").to_string();
    let body = json!({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "amount": 5000}}}).to_string();
    let good = stripe_header(secret, now(), &body);
    let stale = stripe_header(secret, now() - 3600, &body);
    assert!(python(&["verify-stripe", secret, &stale], &body).is_err(), "Stripe's library refuses the stale one too");
    // (url, headers, body, expected status)
    type Case<'a> = (String, Vec<(&'a str, String)>, String, u16);
    let cases: Vec<Case> = vec![
        (url.clone(), vec![("stripe-signature", good.clone())], body.replace("5000", "1"), 401),
        (url.clone(), vec![("stripe-signature", stripe_header("whsec_wrong", now(), &body))], body.clone(), 401),
        (url.clone(), vec![("stripe-signature", stale)], body.clone(), 401),
        (url.clone(), vec![], body.clone(), 401),
        (url.replace(source["id"].as_str().expect("id"), "src_unknown"), vec![("stripe-signature", good.clone())], body.clone(), 404),
        (url.replace("/stripe/", "/github/"), vec![("stripe-signature", good)], body.clone(), 404),
    ];
    for (target, headers, body, status) in cases {
        let (got, problem) = post(&target, &headers, &body).await;
        assert_eq!(got, status, "{problem}");
        assert!(problem["type"].as_str().is_some_and(|t| t.starts_with("https://relay.dev/problems/")), "{problem}");
    }
    assert!(stack.drain(DELIVERY_QUEUE, QUIET).await.is_empty(), "nothing published");
    assert_eq!(archived(&stack).await, 0, "nothing archived");
}

#[tokio::test]
async fn github_checkr_linkedin_and_custom_hmac_senders() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let secret = "s3cret-shared";

    let gh = create_source(&stack, &stack.org_key, json!({"provider": "github", "secret": secret})).await;
    let body = json!({"action": "opened", "pull_request": {"number": 7}}).to_string();
    let headers = vec![
        ("x-hub-signature-256", format!("sha256={}", hmac_hex(secret, &body))),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string()),
        ("x-github-event", "pull_request".to_string()),
    ];
    let (status, reply) = post(gh["url"].as_str().expect("url"), &headers, &body).await;
    assert_eq!((status, reply["eventType"].as_str()), (200, Some("github.pull_request.opened")), "{reply}");

    let checkr = create_source(&stack, &stack.org_key, json!({"provider": "checkr", "secret": secret})).await;
    let body =
        json!({"id": "evt_ck_1", "object": "event", "type": "report.completed", "data": {"object": {"id": "rep_1", "status": "clear"}}})
            .to_string();
    let (status, reply) = post(checkr["url"].as_str().expect("url"), &[("x-checkr-signature", hmac_hex(secret, &body))], &body).await;
    assert_eq!((status, reply["eventType"].as_str()), (200, Some("background_check.completed")), "{reply}");

    let li = create_source(&stack, &stack.org_key, json!({"provider": "linkedin", "secret": secret})).await;
    let li_url = li["url"].as_str().expect("url");
    let challenge = reqwest::get(format!("{li_url}?challengeCode=890e4665-4dfe-4ab1-b689-ed553bceeed1")).await.expect("get");
    assert_eq!(challenge.status(), 200);
    let answer: Value = challenge.json().await.expect("json");
    assert_eq!(answer["challengeCode"], "890e4665-4dfe-4ab1-b689-ed553bceeed1");
    assert_eq!(answer["challengeResponse"], hmac_hex(secret, "890e4665-4dfe-4ab1-b689-ed553bceeed1"));
    let body =
        json!({"type": "JOB_APPLICATION", "notificationId": "n-1", "application": {"jobId": "job-1", "candidate": "c-1"}}).to_string();
    let (status, reply) = post(li_url, &[("x-li-signature", format!("hmacsha256={}", hmac_hex(secret, &body)))], &body).await;
    assert_eq!((status, reply["eventType"].as_str()), (200, Some("application.received")), "{reply}");

    let custom = create_source(
        &stack,
        &stack.org_key,
        json!({"provider": "hmac", "secret": secret, "options": {"signatureHeader": "X-Webhook-Signature", "timestampHeader": "X-Webhook-Timestamp", "idHeader": "X-Webhook-Id"}}),
    )
    .await;
    let body = json!({"type": "row.inserted", "table": "candidates", "record": {"id": 42}}).to_string();
    let ts = now().to_string();
    let headers = vec![
        ("x-webhook-signature", hmac_hex(secret, &format!("{ts}.{body}"))),
        ("x-webhook-timestamp", ts),
        ("x-webhook-id", "row-42".to_string()),
    ];
    let (status, reply) = post(custom["url"].as_str().expect("url"), &headers, &body).await;
    assert_eq!((status, reply["eventType"].as_str()), (200, Some("hmac.row.inserted")), "{reply}");

    assert_eq!(stack.drain(DELIVERY_QUEUE, QUIET).await.len(), 4);
    assert_eq!(archived(&stack).await, 4);
}

/// A stand-in for Mollie's payments API, recording the API keys it was called with.
async fn fake_mollie(payments: Vec<Value>) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = seen.clone();
    let app = axum::Router::new().route(
        "/v2/payments/{id}",
        axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<String>, headers: http::HeaderMap| {
            let payments = payments.clone();
            let seen = seen_in.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                seen.lock().expect("lock").push(auth);
                match payments.iter().find(|p| p["id"] == id.as_str()) {
                    Some(p) => (http::StatusCode::OK, axum::Json(p.clone())),
                    None => (http::StatusCode::NOT_FOUND, axum::Json(json!({"status": 404, "title": "Not Found"}))),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test]
async fn mollie_callbacks_are_confirmed_against_the_api_and_only_paid_ones_publish() {
    let payments = vec![
        json!({"resource": "payment", "id": "tr_paid7x", "status": "paid", "amount": {"value": "10.00", "currency": "EUR"}}),
        json!({"resource": "payment", "id": "tr_open7x", "status": "open", "amount": {"value": "10.00", "currency": "EUR"}}),
    ];
    let (mollie_url, seen) = fake_mollie(payments).await;
    let stack = Stack::start(StackOptions {
        function_env: vec![("RELAY_MOLLIE_API_BASE".into(), mollie_url)],
        no_pollers: true,
        ..StackOptions::default()
    })
    .await;
    let source = create_source(&stack, &stack.org_key, json!({"provider": "mollie", "secret": "test_mollie_api_key"})).await;
    let url = source["url"].as_str().expect("url");
    let form = [("content-type", "application/x-www-form-urlencoded".to_string())];

    let (status, reply) = post(url, &form, "id=tr_open7x").await;
    assert_eq!((status, &reply["published"]), (200, &json!(false)), "{reply}");
    let (status, _) = post(url, &form, "id=tr_forged9").await;
    assert_eq!(status, 200, "an unknown payment is acknowledged but publishes nothing");
    assert!(stack.drain(DELIVERY_QUEUE, QUIET).await.is_empty());

    let (status, reply) = post(url, &form, "id=tr_paid7x").await;
    assert_eq!((status, reply["eventType"].as_str()), (200, Some("payment.received")), "{reply}");
    let events = stack.drain(DELIVERY_QUEUE, QUIET).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["payload"]["data"]["status"], "paid");
    assert!(seen.lock().expect("lock").iter().all(|a| a == "Bearer test_mollie_api_key"), "Relay asked Mollie with the organisation's key");
}

#[tokio::test]
async fn sources_belong_to_their_organisation_and_never_show_their_secret() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    // A second organisation's key, stored the way relay-admin stores keys: by hash.
    let other_key = "rk_org_test_other";
    stack.add_org_key(other_key, "org-other").await;

    let source = create_source(&stack, &stack.org_key, json!({"provider": "stripe", "secret": "whsec_top_secret_value"})).await;
    let id = source["id"].as_str().expect("id");
    let client = reqwest::Client::new();
    let list: Value =
        client.get(format!("{}/v1/sources", stack.url)).bearer_auth(&stack.org_key).send().await.expect("list").json().await.expect("json");
    assert_eq!(list["sources"].as_array().map(Vec::len), Some(1));
    assert!(!list.to_string().contains("whsec_top_secret_value") && !source.to_string().contains("whsec_top_secret_value"));

    let theirs = client.get(format!("{}/v1/sources/{id}", stack.url)).bearer_auth(other_key).send().await.expect("get");
    assert_eq!(theirs.status(), 404);
    let theirs: Value =
        client.get(format!("{}/v1/sources", stack.url)).bearer_auth(other_key).send().await.expect("list").json().await.expect("json");
    assert_eq!(theirs["sources"].as_array().map(Vec::len), Some(0));
    assert_eq!(client.delete(format!("{}/v1/sources/{id}", stack.url)).bearer_auth(other_key).send().await.expect("delete").status(), 404);
    assert_eq!(client.get(format!("{}/v1/sources", stack.url)).bearer_auth(&stack.product_key).send().await.expect("get").status(), 403);
    let bad = client
        .post(format!("{}/v1/sources", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"provider": "paypal", "secret": "x"}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);

    // The stored item holds the secret sealed, not in the clear.
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    let item = ddb
        .get_item()
        .table_name("relay-local-config")
        .key("pk", S(format!("SOURCE#{id}")))
        .key("sk", S("SOURCE".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("item");
    let sealed = item["sealedSecret"].as_s().expect("sealed");
    assert!(sealed.starts_with("v1.") && !sealed.contains("top_secret"));

    assert_eq!(
        client.delete(format!("{}/v1/sources/{id}", stack.url)).bearer_auth(&stack.org_key).send().await.expect("delete").status(),
        204
    );
    assert_eq!(client.get(format!("{}/v1/sources/{id}", stack.url)).bearer_auth(&stack.org_key).send().await.expect("get").status(), 404);
}

async fn get(stack: &Stack, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new().get(format!("{}{path}", stack.url)).bearer_auth(&stack.org_key).send().await.expect("get");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_source_logs_every_call_its_events_are_listed_and_a_flood_of_bad_calls_is_capped() {
    let stack = Stack::start(StackOptions {
        function_env: vec![("RELAY_REFUSED_REQUESTS_PER_MINUTE".into(), "25".into())],
        ..StackOptions::default()
    })
    .await;
    let secret = "whsec_log_1";
    let source = create_source(&stack, &stack.org_key, json!({"provider": "stripe", "secret": secret})).await;
    let (url, id) = (source["url"].as_str().expect("url"), source["id"].as_str().expect("id"));
    let body = json!({"id": "evt_log1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_log1"}}}).to_string();
    let (status, accepted) = post(url, &[("stripe-signature", stripe_header(secret, now(), &body))], &body).await;
    assert_eq!(status, 200, "{accepted}");
    let event_id = accepted["eventId"].as_str().expect("event id");
    let (status, _) = post(url, &[("stripe-signature", stripe_header("whsec_forged", now(), &body))], &body).await;
    assert_eq!(status, 401);

    // The log, newest first: the forged call with its reason, then the accepted one with its event.
    let (status, log) = get(&stack, &format!("/v1/sources/{id}/requests")).await;
    assert_eq!(status, 200, "{log}");
    let entries = log["requests"].as_array().expect("requests");
    assert_eq!(entries.len(), 2, "{log}");
    assert_eq!((entries[0]["outcome"].as_str(), entries[0]["status"].as_u64()), (Some("refused"), Some(401)));
    assert!(entries[0]["reason"].as_str().is_some_and(|r| r.contains("signature")), "{log}");
    assert_eq!((entries[1]["outcome"].as_str(), entries[1]["eventId"].as_str()), (Some("accepted"), Some(event_id)));
    assert_eq!(entries[1]["size"].as_u64(), Some(body.len() as u64));
    let request_id = entries[1]["id"].as_str().expect("id");
    let (status, raw) = get(&stack, &format!("/v1/sources/{id}/requests/{request_id}/body")).await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!((raw["body"].as_str(), raw["encoding"].as_str()), (Some(body.as_str()), Some("utf8")), "the raw body, byte for byte");
    assert!(raw["headers"]["stripe-signature"].is_string());
    let refused_id = entries[0]["id"].as_str().expect("id");
    assert_eq!(get(&stack, &format!("/v1/sources/{id}/requests/{refused_id}/body")).await.0, 404, "a refused body is not kept");
    let (_, only_refused) = get(&stack, &format!("/v1/sources/{id}/requests?outcome=refused")).await;
    assert_eq!(only_refused["requests"].as_array().map(Vec::len), Some(1));

    // The event it produced is listed among the organisation's events, by its source.
    let started = std::time::Instant::now();
    loop {
        let (_, page) = get(&stack, "/v1/events?source=stripe").await;
        if page["events"].as_array().is_some_and(|e| e.iter().any(|e| e["event"]["eventId"] == event_id)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the Stripe event was never listed: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Another organisation sees none of it.
    stack.add_org_key("rk_other_org_key_0001", "org-other").await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/sources/{id}/requests", stack.url))
        .bearer_auth("rk_other_org_key_0001")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);

    // A flood of 1,000 forged calls: all refused, at most the cap per minute logged.
    let client = reqwest::Client::new();
    let forged = stripe_header("whsec_forged", now(), &body);
    let statuses: Vec<u16> =
        futures::stream::iter(0..1000)
            .map(|_| {
                let (client, forged, body) = (client.clone(), forged.clone(), body.clone());
                async move {
                    client.post(url).header("stripe-signature", forged).body(body).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    assert!(statuses.iter().all(|s| *s == 401), "every forged call refused");
    let mut refused = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sources/{id}/requests?outcome=refused&limit=100&cursor={c}"),
            None => format!("/v1/sources/{id}/requests?outcome=refused&limit=100"),
        };
        let (status, page) = get(&stack, &path).await;
        assert_eq!(status, 200, "{page}");
        refused += page["requests"].as_array().map_or(0, Vec::len);
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!((25..=2 * 25 + 1).contains(&refused), "{refused} refused calls logged; the cap is 25 a minute");
    let next = json!({"id": "evt_log2", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_log2"}}}).to_string();
    assert_eq!(post(url, &[("stripe-signature", stripe_header(secret, now(), &next))], &next).await.0, 200);
    let (_, log) = get(&stack, &format!("/v1/sources/{id}/requests?limit=1")).await;
    assert_eq!(log["requests"][0]["outcome"], "accepted", "the flood pushed nothing out: {log}");
}
