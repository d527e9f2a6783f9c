//! A Lambda Runtime API for the real function binaries. Each instance is the function's own
//! `bootstrap` process, started with `AWS_LAMBDA_RUNTIME_API` pointing at a small server here;
//! it pulls invocations from `/next` and posts results back, exactly as in Lambda. Instances
//! are started on demand up to a concurrency limit and reused while warm; an invocation that
//! outlives the function's timeout kills its instance, as Lambda does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// How a function is started and limited.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub max_instances: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the function could not start: {0}")]
    Start(String),
    #[error("the function timed out after {0:?}")]
    Timeout(Duration),
    #[error("the function's process exited during the invocation")]
    Crashed,
    #[error("the function returned an error: {0}")]
    Function(String),
}

struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
    reply: oneshot::Sender<Result<Bytes, String>>,
}

/// Shared between an instance's Runtime API server and its pool entry.
struct InstanceState {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, String>>>>,
    /// No longer given invocations (killed, crashed or timed out).
    dead: AtomicBool,
    /// The process is gone: only then does its Runtime API server close, so a function is never
    /// left talking to a server that went away under it (lambda_runtime panics on that).
    exited: AtomicBool,
    function_arn: String,
}

impl InstanceState {
    fn new(next: mpsc::Receiver<Invocation>, function_name: &str) -> Arc<Self> {
        Arc::new(Self {
            next: tokio::sync::Mutex::new(next),
            pending: Mutex::default(),
            dead: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            function_arn: format!("arn:aws:lambda:local:123456789012:function:{function_name}"),
        })
    }
}

struct Instance {
    tx: mpsc::Sender<Invocation>,
    state: Arc<InstanceState>,
    /// Tells the task that owns the process to kill it.
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl Instance {
    fn kill(&self) {
        self.state.dead.store(true, Ordering::SeqCst);
        if let Some(k) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let _ = k.send(());
        }
    }
}

/// All instances of one function.
pub struct FunctionPool {
    pub spec: FunctionSpec,
    idle: Mutex<Vec<Arc<Instance>>>,
    all: Mutex<Vec<Arc<Instance>>>,
    permits: Semaphore,
    counter: AtomicU64,
    /// Cold starts so far (instances spawned): shown by tests and benchmarks.
    pub cold_starts: AtomicU64,
    /// Set by `shutdown`: no instance is started after it.
    closed: AtomicBool,
}

impl FunctionPool {
    pub fn new(spec: FunctionSpec) -> Arc<Self> {
        let permits = Semaphore::new(spec.max_instances.max(1));
        Arc::new(Self {
            spec,
            idle: Mutex::default(),
            all: Mutex::default(),
            permits,
            counter: AtomicU64::new(0),
            cold_starts: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Invokes the function with a JSON payload; returns its JSON result.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        let _permit = self.permits.acquire().await.map_err(|e| InvokeError::Start(e.to_string()))?;
        let instance = match self.take_idle() {
            Some(i) => i,
            None => self.spawn().await?,
        };
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let request_id = format!("{}-{n:08}", uuid::Uuid::new_v4().simple());
        let deadline = chrono::Utc::now().timestamp_millis() as u64 + self.spec.timeout.as_millis() as u64;
        let (reply, rx) = oneshot::channel();
        let inv = Invocation { request_id, payload, deadline_ms: deadline, reply };
        if instance.tx.send(inv).await.is_err() {
            instance.kill();
            return Err(InvokeError::Crashed);
        }
        match tokio::time::timeout(self.spec.timeout, rx).await {
            Ok(Ok(Ok(body))) => {
                self.give_back(instance);
                Ok(body)
            }
            Ok(Ok(Err(error))) => {
                // A handler error leaves the process healthy, as in Lambda.
                self.give_back(instance);
                Err(InvokeError::Function(error))
            }
            Ok(Err(_)) => {
                instance.kill();
                Err(InvokeError::Crashed)
            }
            Err(_) => {
                tracing::warn!(function = %self.spec.name, timeout = ?self.spec.timeout, "invocation timed out; killing the instance");
                instance.kill();
                Err(InvokeError::Timeout(self.spec.timeout))
            }
        }
    }

    fn take_idle(&self) -> Option<Arc<Instance>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(i) = idle.pop() {
            if !i.state.dead.load(Ordering::SeqCst) {
                return Some(i);
            }
        }
        None
    }

    fn give_back(&self, i: Arc<Instance>) {
        if !i.state.dead.load(Ordering::SeqCst) {
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(i);
            }
        }
    }

    async fn spawn(self: &Arc<Self>) -> Result<Arc<Instance>, InvokeError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(InvokeError::Start("the local stack is stopping".into()));
        }
        let (tx, rx) = mpsc::channel(1);
        let state = InstanceState::new(rx, &self.spec.name);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| InvokeError::Start(e.to_string()))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| InvokeError::Start(e.to_string()))?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let server_state = state.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app);
            tokio::select! {
                _ = serve => {}
                _ = wait_exited(server_state) => {}
            }
        });

        if !self.spec.binary.exists() {
            return Err(InvokeError::Start(format!(
                "{} does not exist: build it with `cargo build --bins` (./dev up does)",
                self.spec.binary.display()
            )));
        }
        let mut cmd = tokio::process::Command::new(&self.spec.binary);
        cmd.envs(self.spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.spec.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{}", addr.port()))
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.spec.name))
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| InvokeError::Start(format!("{}: {e}", self.spec.binary.display())))?;
        self.cold_starts.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(function = %self.spec.name, runtime_api = %addr, "cold start");
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let instance = Arc::new(Instance { tx, state: state.clone(), kill: Mutex::new(Some(kill_tx)) });
        // The process's owner: when it exits (or is killed), fail whatever it was running.
        let name = self.spec.name.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                _ = kill_rx => { let _ = child.kill().await; None }
            };
            state.dead.store(true, Ordering::SeqCst);
            state.exited.store(true, Ordering::SeqCst);
            if let Ok(mut pending) = state.pending.lock() {
                pending.clear();
            }
            tracing::debug!(function = %name, ?status, "instance stopped");
        });
        if let Ok(mut all) = self.all.lock() {
            all.retain(|i| !i.state.dead.load(Ordering::SeqCst));
            all.push(instance.clone());
        }
        Ok(instance)
    }

    /// Stops every instance and waits (up to five seconds) until their processes are gone, so
    /// none outlives the stack or sees its Runtime API close under a waiting `/next`.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let all: Vec<Arc<Instance>> = self.all.lock().map(|a| a.clone()).unwrap_or_default();
        for i in &all {
            i.kill();
        }
        let gone = async {
            for i in &all {
                wait_exited(i.state.clone()).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), gone).await.is_err() {
            tracing::warn!(function = %self.spec.name, "an instance did not stop within five seconds");
        }
    }
}

async fn wait_exited(state: Arc<InstanceState>) {
    while !state.exited.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next(State(state): State<Arc<InstanceState>>) -> impl IntoResponse {
    let inv = state.next.lock().await.recv().await;
    let Some(inv) = inv else {
        // The instance is being stopped. Lambda never answers `/next` without an invocation (the
        // runtime would panic on the missing headers), so this waits until the process is killed.
        return std::future::pending::<(StatusCode, HeaderMap, Bytes)>().await;
    };
    if let Ok(mut pending) = state.pending.lock() {
        pending.insert(inv.request_id.clone(), inv.reply);
    }
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", inv.request_id.clone()),
        ("lambda-runtime-deadline-ms", inv.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", state.function_arn.clone()),
        ("lambda-runtime-trace-id", format!("Root=1-{:08x}-{}", chrono::Utc::now().timestamp(), uuid::Uuid::new_v4().simple())),
        ("content-type", "application/json".to_string()),
    ];
    for (k, v) in pairs {
        if let Ok(v) = v.parse() {
            headers.insert(k, v);
        }
    }
    (StatusCode::OK, headers, inv.payload)
}

async fn response(State(state): State<Arc<InstanceState>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&state, &id, Ok(body))
}

async fn error(State(state): State<Arc<InstanceState>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&state, &id, Err(String::from_utf8_lossy(&body).into_owned()))
}

async fn init_error(State(state): State<Arc<InstanceState>>, body: Bytes) -> StatusCode {
    tracing::error!(error = %String::from_utf8_lossy(&body), "function failed to initialise");
    state.dead.store(true, Ordering::SeqCst);
    StatusCode::ACCEPTED
}

fn complete(state: &InstanceState, id: &str, result: Result<Bytes, String>) -> StatusCode {
    let sender = state.pending.lock().ok().and_then(|mut p| p.remove(id));
    match sender {
        Some(s) => {
            let _ = s.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (mpsc::Sender<Invocation>, Arc<InstanceState>) {
        let (tx, rx) = mpsc::channel(1);
        (tx, InstanceState::new(rx, "f"))
    }

    #[tokio::test]
    async fn a_stopping_instance_gets_no_answer_to_next_rather_than_one_without_a_request_id() {
        // The instance's pool entry is gone (the stack is stopping): the runtime's `/next` must
        // stay unanswered until the process is killed; an answer without
        // `lambda-runtime-aws-request-id` makes lambda_runtime panic.
        let (tx, state) = state();
        drop(tx);
        let answer = tokio::time::timeout(Duration::from_millis(300), next(State(state))).await;
        assert!(answer.is_err(), "/next answered a stopping instance");
    }

    #[tokio::test]
    async fn next_hands_over_an_invocation_with_its_request_id() {
        let (tx, state) = state();
        let (reply, _rx) = oneshot::channel();
        tx.send(Invocation { request_id: "r-1".into(), payload: Bytes::from_static(b"{}"), deadline_ms: 1, reply }).await.unwrap();
        let response = next(State(state.clone())).await.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["lambda-runtime-aws-request-id"], "r-1");
        assert!(state.pending.lock().unwrap().contains_key("r-1"));
    }
}
