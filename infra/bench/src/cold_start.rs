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
    let mut cmd = tokio::process::Command::new(bin);
    let (at, started, mut child) = run_once(&mut cmd, env, aws, event).await;
    let _ = child.kill().await;
    at.duration_since(started)
}

/// Instructions `bin` executes from its start to its answer to the first request (and its
/// exit right after: its next poll is refused), counted by callgrind; `None` without valgrind.
pub async fn first_answer_instructions(bin: &Path, env: &[(&str, &str)], aws: &str, event: &Value) -> Option<u64> {
    let out = std::env::temp_dir().join(format!("relay-bench-first-{}.out", std::process::id()));
    let mut cmd = tokio::process::Command::new("valgrind");
    cmd.arg("--tool=callgrind").arg(format!("--callgrind-out-file={}", out.display())).arg(bin);
    // Its exit: the refused poll makes lambda_runtime panic (no request id); unwinding without
    // a backtrace costs next to nothing, symbolising one costs 440 M instructions.
    cmd.env("RUST_BACKTRACE", "0");
    if std::process::Command::new("valgrind").arg("--version").output().is_err() {
        return None;
    }
    let (_, _, mut child) = run_once(&mut cmd, env, aws, event).await;
    let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    let text = std::fs::read_to_string(&out).ok()?;
    let _ = std::fs::remove_file(&out);
    text.lines().find_map(|l| l.strip_prefix("totals:")).and_then(|v| v.trim().parse().ok())
}

/// Runs `cmd` against a one-invocation Runtime API: when it answered, when it was started, and
/// the process (which exits at its next poll, refused).
async fn run_once(
    cmd: &mut tokio::process::Command,
    env: &[(&str, &str)],
    aws: &str,
    event: &Value,
) -> (Instant, Instant, tokio::process::Child) {
    struct Runtime {
        event: Option<Value>,
        answered: Option<tokio::sync::oneshot::Sender<(Instant, bool, Value)>>,
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let state = Arc::new(Mutex::new(Runtime { event: Some(event.clone()), answered: Some(tx) }));
    let next = {
        let state = state.clone();
        move || async move {
            let event = state.lock().await.event.take();
            match event {
                Some(event) => Ok((
                    [
                        ("lambda-runtime-aws-request-id", "cold-start-1"),
                        ("lambda-runtime-deadline-ms", "99999999999999"),
                        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000"),
                    ],
                    event.to_string(),
                )),
                // One invocation only: the next poll is refused, and the runtime exits.
                None => Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
    };
    let answer = |ok: bool| {
        let state = state.clone();
        move |body: axum::body::Bytes| async move {
            let at = Instant::now();
            if let Some(tx) = state.lock().await.answered.take() {
                let _ = tx.send((at, ok, serde_json::from_slice(&body).unwrap_or(Value::Null)));
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
    let child = cmd
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_ENDPOINT_URL", aws)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let (at, ok, answer) =
        tokio::time::timeout(Duration::from_secs(60), rx).await.expect("no answer to the first request").expect("answer");
    assert!(ok, "the function answered its first request with an error: {answer}");
    // An early refusal (a 401, a 503) would look fast: only an accepted event counts.
    assert_eq!(answer["statusCode"], 202, "the first request was not accepted: {answer}");
    server.abort();
    (at, started, child)
}
