//! Cold start as a caller feels it (issue 14): from spawning the binary to the Runtime API
//! receiving its answer to the first request, so that work a function puts off until its first
//! request (a client built lazily) is counted, not hidden. Ingest handles `POST /v1/events`
//! (the fixture `events/ingest-post-event.json` with a 1 KB event); the yardstick,
//! `bare-ingest`, makes the same five AWS calls through SDK clients built with their defaults.
//!
//! Both talk to a stand-in for AWS that answers each call at once from memory, so the figure
//! is the functions' own time (process start, runtime, SDK, Relay's code) and not an
//! emulator's: moto takes 5 to 50 ms a call, which would bury a millisecond of difference.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// A stand-in for DynamoDB and EventBridge that answers every call at once: the API key
/// ingest looks up (the fixture's, a product key of RecruitIQ), success for every write.
pub async fn instant_aws() -> String {
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let (kind, body) = match target.rsplit('.').next().unwrap_or_default() {
            "GetItem" => (
                "application/x-amz-json-1.0",
                json!({"Item": {"pk": {"S": "KEY#bench"}, "sk": {"S": "KEY"}, "kind": {"S": "product"}, "product": {"S": "recruitiq"},
                                "name": {"S": "bench"}, "createdAt": {"S": "2026-01-01T00:00:00Z"}, "disabled": {"BOOL": false}}}),
            ),
            "PutEvents" => ("application/x-amz-json-1.1", json!({"FailedEntryCount": 0, "Entries": [{"EventId": "bench-1"}]})),
            _ => ("application/x-amz-json-1.0", json!({})),
        };
        ([("content-type", kind)], body.to_string())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// The invocation: the fixture's API Gateway event carrying `body` under a fresh key.
pub fn invocation(body: &str, run: usize) -> Value {
    let mut event: Value = serde_json::from_str(include_str!("../../../events/ingest-post-event.json")).expect("fixture");
    event["body"] = body.into();
    event["headers"]["idempotency-key"] = format!("cold-{run}").into();
    event
}

/// Spawns `bin` against a one-invocation Runtime API and times spawn to its answer.
pub async fn first_answer(bin: &Path, env: &[(&str, &str)], aws: &str, event: &Value) -> Duration {
    struct Runtime {
        event: Option<Value>,
        answered: Option<tokio::sync::oneshot::Sender<(Instant, bool)>>,
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let state = Arc::new(Mutex::new(Runtime { event: Some(event.clone()), answered: Some(tx) }));
    let next = {
        let state = state.clone();
        move || async move {
            let event = state.lock().await.event.take();
            match event {
                Some(event) => (
                    [
                        ("lambda-runtime-aws-request-id", "cold-start-1"),
                        ("lambda-runtime-deadline-ms", "99999999999999"),
                        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000"),
                    ],
                    event.to_string(),
                ),
                // One invocation only: the next poll waits until the process is killed.
                None => std::future::pending().await,
            }
        }
    };
    let answer = |ok: bool| {
        let state = state.clone();
        move || async move {
            if let Some(tx) = state.lock().await.answered.take() {
                let _ = tx.send((Instant::now(), ok));
            }
            axum::http::StatusCode::ACCEPTED
        }
    };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", axum::routing::get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", axum::routing::post(answer(true)))
        .route("/2018-06-01/runtime/invocation/{id}/error", axum::routing::post(answer(false)))
        .route("/2018-06-01/runtime/init/error", axum::routing::post(answer(false)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_ENDPOINT_URL", aws)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let (at, ok) = tokio::time::timeout(Duration::from_secs(20), rx).await.expect("no answer to the first request").expect("answer");
    assert!(ok, "{} answered its first request with an error", bin.display());
    let _ = child.kill().await;
    server.abort();
    at.duration_since(started)
}
