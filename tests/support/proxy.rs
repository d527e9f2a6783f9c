//! A proxy between the functions and the emulator that counts every AWS request by operation
//! and can fail or stall chosen operations: the fault injection the ingest guarantees are
//! tested with (restarting moto would forget every table), and the counter the benchmarks
//! use for "AWS requests per event".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// What to do to requests for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 500 InternalFailure without forwarding.
    Fail,
    /// Hold the request this long, then drop it unanswered (never forwarded): a black hole.
    Stall(Duration),
    /// PutEvents only: answer 200 with every entry failed (`FailedEntryCount` = all), as
    /// EventBridge does under throttling, for the next `n` calls; then forward again.
    RejectEntries(usize),
    /// SES only: answer 429 TooManyRequestsException (SES's throttling) for the next `n` calls;
    /// then forward again.
    Throttle(usize),
}

#[derive(Default)]
struct Shared {
    upstream: String,
    faults: Mutex<BTreeMap<String, Fault>>,
    counts: Mutex<BTreeMap<String, usize>>,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (the emulator's URL).
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared { upstream, ..Shared::default() });
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// Injects `fault` into every request for `operation` (e.g. `PutEvents`, `TransactWriteItems`).
    pub fn inject(&self, operation: &str, fault: Fault) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.insert(operation.to_string(), fault);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.clear();
        }
    }

    /// Requests seen per operation since the last reset.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.shared.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.counts().values().sum()
    }

    pub fn reset_counts(&self) {
        if let Ok(mut c) = self.shared.counts.lock() {
            c.clear();
        }
    }
}

/// The operation a request calls: `X-Amz-Target` for JSON protocols (DynamoDB, EventBridge,
/// SQS), else the S3 method and path shape.
fn operation(method: &str, path: &str, headers: &HeaderMap) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if path.starts_with("/v2/email/outbound-emails") {
        return "SendEmail".into();
    }
    format!("S3:{method}{}", if path.matches('/').count() > 1 { "Object" } else { "Bucket" })
}

async fn forward(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let op = operation(parts.method.as_str(), parts.uri.path(), &parts.headers);
    if let Ok(mut c) = shared.counts.lock() {
        *c.entry(op.clone()).or_default() += 1;
    }
    let fault = shared.faults.lock().ok().and_then(|f| f.get(&op).copied());
    match fault {
        Some(Fault::Fail) => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header("content-type", "application/x-amz-json-1.1")
                .body(Body::from(r#"{"__type":"InternalFailure","message":"injected by the test proxy"}"#))
                .unwrap_or_default();
        }
        Some(Fault::RejectEntries(n)) => {
            if let Ok(mut f) = shared.faults.lock() {
                if n <= 1 {
                    f.remove(&op);
                } else {
                    f.insert(op.clone(), Fault::RejectEntries(n - 1));
                }
            }
            let bytes = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
            let entries =
                serde_json::from_slice::<serde_json::Value>(&bytes).ok().and_then(|v| v["Entries"].as_array().map(Vec::len)).unwrap_or(0);
            let failed: Vec<serde_json::Value> = (0..entries)
                .map(|_| serde_json::json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "injected by the test proxy"}))
                .collect();
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/x-amz-json-1.1")
                .body(Body::from(serde_json::json!({"FailedEntryCount": entries, "Entries": failed}).to_string()))
                .unwrap_or_default();
        }
        Some(Fault::Throttle(n)) => {
            if let Ok(mut f) = shared.faults.lock() {
                if n <= 1 {
                    f.remove(&op);
                } else {
                    f.insert(op.clone(), Fault::Throttle(n - 1));
                }
            }
            return Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("content-type", "application/json")
                .header("x-amzn-errortype", "TooManyRequestsException")
                .body(Body::from(r#"{"message":"Maximum sending rate exceeded (injected by the test proxy)"}"#))
                .unwrap_or_default();
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            return Response::builder().status(StatusCode::GATEWAY_TIMEOUT).body(Body::empty()).unwrap_or_default();
        }
        None => {}
    }
    let Ok(bytes) = to_bytes(body, 64 * 1024 * 1024).await else {
        return Response::builder().status(StatusCode::BAD_REQUEST).body(Body::empty()).unwrap_or_default();
    };
    relay_local::forward::forward(&reqwest::Client::new(), &shared.upstream, &parts, bytes).await
}

/// A local stack whose functions reach the emulator only through a fresh proxy: every AWS
/// request they make is counted, and faults can be injected.
/// Like [`crate::Stack::start`], a stack that exits before it is ready (a port taken in between)
/// is started again, with a new emulator port and proxy.
pub async fn stack_behind_proxy(opts: crate::StackOptions) -> (crate::Stack, FaultProxy) {
    let mut opts = opts;
    let mut last = String::new();
    for _ in 0..3 {
        let moto_port = crate::free_port();
        let proxy = FaultProxy::start(format!("http://127.0.0.1:{moto_port}")).await;
        opts.function_aws_endpoint = Some(proxy.url.clone());
        opts.moto_port = Some(moto_port);
        match crate::Stack::try_start(&opts).await {
            Ok(stack) => return (stack, proxy),
            Err(e) => last = e,
        }
    }
    panic!("relay-local did not become ready; stderr:\n{last}");
}
