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
    /// Answer 500 InternalFailure to the requests whose body contains this text (an item's
    /// attribute, a table's name); forward every other call of the operation.
    FailWhenBodyHas(&'static str),
    /// Once, for the first request whose body contains this text: forward it (it lands), then
    /// answer 500 as if the answer were lost on the way back, so the SDK retries a write that
    /// already happened.
    LoseAnswerWhenBodyHas(&'static str),
}

#[derive(Default)]
struct Shared {
    upstream: String,
    faults: Mutex<BTreeMap<String, Fault>>,
    /// Faults chosen by what a request's body holds (`FailWhenBodyHas`, `LoseAnswerWhenBodyHas`):
    /// several per operation, the first that matches applies.
    body_faults: Mutex<Vec<(String, Fault)>>,
    counts: Mutex<BTreeMap<String, usize>>,
    /// While `Some`, every forwarded request is kept with its answer (the cost benchmark).
    recording: Mutex<Option<Vec<Exchange>>>,
}

/// One AWS request that crossed the proxy, with what the emulator answered. For DynamoDB
/// writes whose request does not hold the whole item (an update, a delete, an update or delete
/// inside a transaction), the item as stored before (deletes) or after (updates), read from the
/// emulator, since a write is billed by the item's size.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub service: &'static str,
    pub operation: String,
    pub request: serde_json::Value,
    pub response: serde_json::Value,
    /// Request body size in bytes (EventBridge and SQS bill by 64 KB chunk).
    pub request_bytes: usize,
    /// `TableName` and item of each write the request does not carry whole, in request order.
    pub stored_items: Vec<(String, serde_json::Value)>,
    /// Who signed it: the access key id of its SigV4 `Authorization` header. The local stack
    /// gives each function its logical id as its key id (as the IAM gate does), so this names
    /// the function that made the call.
    pub caller: String,
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
    /// Faults chosen by the body add up (one per text); any other replaces the operation's last.
    pub fn inject(&self, operation: &str, fault: Fault) {
        if matches!(fault, Fault::FailWhenBodyHas(_) | Fault::LoseAnswerWhenBodyHas(_)) {
            if let Ok(mut f) = self.shared.body_faults.lock() {
                f.push((operation.to_string(), fault));
            }
        } else if let Ok(mut f) = self.shared.faults.lock() {
            f.insert(operation.to_string(), fault);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.clear();
        }
        if let Ok(mut f) = self.shared.body_faults.lock() {
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

    /// Keeps every request from now on, with its answer (see [`Exchange`]).
    pub fn start_recording(&self) {
        if let Ok(mut r) = self.shared.recording.lock() {
            *r = Some(Vec::new());
        }
    }

    /// What was kept since [`Self::start_recording`]; recording stops.
    pub fn take_recording(&self) -> Vec<Exchange> {
        self.shared.recording.lock().ok().and_then(|mut r| r.take()).unwrap_or_default()
    }
}

/// The service a request is for, as the price list names it.
fn service(path: &str, headers: &HeaderMap) -> &'static str {
    match headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("") {
        t if t.starts_with("DynamoDB") => "dynamodb",
        t if t.starts_with("AWSEvents") => "eventbridge",
        t if t.starts_with("AmazonSQS") => "sqs",
        _ if path.starts_with("/v2/email") => "ses",
        _ => "s3",
    }
}

/// The items a DynamoDB write request does not carry whole: `(table, key)` of each update or
/// delete, in order, and whether it is read before (`true`: a delete) or after the write.
fn unsized_writes(op: &str, req: &serde_json::Value) -> Vec<(String, serde_json::Value, bool)> {
    let one = |kind: &str, x: &serde_json::Value| (x["TableName"].as_str().unwrap_or("").to_string(), x["Key"].clone(), kind == "Delete");
    match op {
        "UpdateItem" => vec![one("Update", req)],
        "DeleteItem" => vec![one("Delete", req)],
        "TransactWriteItems" => req["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| ["Update", "Delete"].into_iter().find_map(|k| i.get(k).map(|x| one(k, x))))
            .collect(),
        _ => Vec::new(),
    }
}

/// One item straight from the emulator (strongly consistent), or `null`.
async fn read_item(upstream: &str, table: &str, key: &serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"TableName": table, "Key": key, "ConsistentRead": true});
    let resp = reqwest::Client::new()
        .post(upstream)
        .header("x-amz-target", "DynamoDB_20120810.GetItem")
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await;
    match resp {
        Ok(r) => r.json::<serde_json::Value>().await.map(|v| v["Item"].clone()).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
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

/// The access key id in a SigV4 `Authorization` header (`... Credential=<key id>/<date>/...`).
fn signer(headers: &HeaderMap) -> String {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    auth.split("Credential=").nth(1).and_then(|c| c.split('/').next()).unwrap_or_default().to_string()
}

fn internal_failure() -> Response {
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(r#"{"__type":"InternalFailure","message":"injected by the test proxy"}"#))
        .unwrap_or_default()
}

async fn forward(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let op = operation(parts.method.as_str(), parts.uri.path(), &parts.headers);
    if let Ok(mut c) = shared.counts.lock() {
        *c.entry(op.clone()).or_default() += 1;
    }
    let fault = shared.faults.lock().ok().and_then(|f| f.get(&op).copied());
    match fault {
        Some(Fault::Fail) => return internal_failure(),
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
        Some(Fault::FailWhenBodyHas(_) | Fault::LoseAnswerWhenBodyHas(_)) | None => {}
    }
    let Ok(bytes) = to_bytes(body, 64 * 1024 * 1024).await else {
        return Response::builder().status(StatusCode::BAD_REQUEST).body(Body::empty()).unwrap_or_default();
    };
    let has = |text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    let body_fault = shared.body_faults.lock().ok().and_then(|mut faults| {
        let at = faults
            .iter()
            .position(|(o, f)| *o == op && matches!(f, Fault::FailWhenBodyHas(t) | Fault::LoseAnswerWhenBodyHas(t) if has(t)))?;
        // A lost answer happens once; a failure every time.
        Some(if matches!(faults[at].1, Fault::LoseAnswerWhenBodyHas(_)) { faults.remove(at).1 } else { faults[at].1 })
    });
    match body_fault {
        Some(Fault::LoseAnswerWhenBodyHas(_)) => {
            let _landed = relay_local::forward::forward(&reqwest::Client::new(), &shared.upstream, &parts, bytes).await;
            return internal_failure();
        }
        Some(_) => return internal_failure(),
        None => {}
    }
    let recording = shared.recording.lock().is_ok_and(|r| r.is_some());
    if !recording {
        return relay_local::forward::forward(&reqwest::Client::new(), &shared.upstream, &parts, bytes).await;
    }
    let request: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let writes = unsized_writes(&op, &request);
    let mut stored_items = Vec::new();
    for (table, key, _) in writes.iter().filter(|w| w.2) {
        stored_items.push((table.clone(), read_item(&shared.upstream, table, key).await));
    }
    let response = relay_local::forward::forward(&reqwest::Client::new(), &shared.upstream, &parts, bytes.clone()).await;
    for (table, key, _) in writes.iter().filter(|w| !w.2) {
        stored_items.push((table.clone(), read_item(&shared.upstream, table, key).await));
    }
    let (resp_parts, resp_body) = response.into_parts();
    let resp_bytes = to_bytes(resp_body, 64 * 1024 * 1024).await.unwrap_or_default();
    let exchange = Exchange {
        service: service(parts.uri.path(), &parts.headers),
        operation: op,
        request,
        response: serde_json::from_slice(&resp_bytes).unwrap_or_default(),
        request_bytes: bytes.len(),
        stored_items,
        caller: signer(&parts.headers),
    };
    if let Ok(mut r) = shared.recording.lock() {
        if let Some(list) = r.as_mut() {
            list.push(exchange);
        }
    }
    Response::from_parts(resp_parts, Body::from(resp_bytes))
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
