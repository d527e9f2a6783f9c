//! The local stack as a newcomer meets it: stopping it (Ctrl-C, or a process manager's SIGTERM)
//! stops every function quietly, with no panic or backtrace from a function whose Runtime API
//! went away under it.

use std::time::Duration;

use relay_e2e::receiver::Receiver;
use relay_e2e::{Stack, StackOptions};
use serde_json::json;

/// Starts a stack with ingest, manage and deliver all running (deliver has sent one webhook and
/// waits on `/next` again), then stops it with `signal` and answers what it printed.
async fn run_then_stop(signal: &str) -> String {
    let stack = Stack::start(StackOptions::default()).await;
    let receiver = Receiver::start().await;
    let created = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"url": receiver.url, "eventTypes": ["candidate.hired"]}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(created.status(), 201);
    let body = json!({"eventType": "candidate.hired", "organizationId": "org-acme", "payload": {"candidateId": "c-1", "jobId": "j-1", "startDate": "2026-12-01"}});
    assert_eq!(stack.post("/v1/events", &body.to_string(), Some("stop-1")).await.status(), 202);
    assert_eq!(receiver.wait_for(1, Duration::from_secs(30)).await.len(), 1, "deliver ran");
    stack.stop(signal).await
}

#[tokio::test]
async fn a_stopped_stack_stops_its_functions_without_a_panic() {
    for signal in ["TERM", "INT"] {
        let output = run_then_stop(signal).await;
        assert!(output.contains("relay-local: stopped"), "SIG{signal}: the stack says it stopped:\n{output}");
        for sign in ["panicked", "stack backtrace", "missing lambda-runtime-aws-request-id"] {
            assert!(!output.contains(sign), "SIG{signal}: the output shows '{sign}':\n{output}");
        }
    }
}
