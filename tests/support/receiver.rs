//! A local webhook receiver for the end-to-end tests: records every request it gets and answers
//! from a script (status, Retry-After, delay), 200 when the script is empty.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

/// Counts a request out of `in_flight` when its handler ends or is dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a receiver answers its next requests: (status, Retry-After, delay before answering).
type Script = VecDeque<(u16, Option<u64>, Duration)>;

#[derive(Clone, Default)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
    in_flight: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start() -> Self {
        let r = Receiver::default();
        let shared = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
                let r = shared.clone();
                async move {
                    r.in_flight.fetch_add(1, Ordering::SeqCst);
                    // Counted down however the request ends, a sender that gave up included.
                    let _in_flight = InFlight(r.in_flight.clone());
                    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
                    r.got.lock().expect("lock").push(Received {
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                        at: Instant::now(),
                    });
                    let (status, retry_after, delay) = r.script.lock().expect("lock").pop_front().unwrap_or((200, None, Duration::ZERO));
                    tokio::time::sleep(delay).await;
                    let mut resp = http::Response::builder().status(status);
                    if let Some(s) = retry_after {
                        resp = resp.header("retry-after", s.to_string());
                    }
                    resp.body(axum::body::Body::from("ok")).expect("response")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, ..r }
    }

    pub fn answer(&self, status: u16, retry_after: Option<u64>, delay: Duration, times: usize) {
        let mut s = self.script.lock().expect("lock");
        for _ in 0..times {
            s.push_back((status, retry_after, delay));
        }
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived (or panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        while self.count() < n {
            assert!(started.elapsed() < limit, "expected {n} requests at {}, got {}", self.url, self.count());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.requests()
    }
}

/// The official Standard Webhooks library's verdict on one received request
/// (`tests/python/webhook_tools.py`, in the project's virtualenv).
pub fn official_verify(secret: &str, r: &Received) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let headers = serde_json::json!({"webhook-id": r.headers["webhook-id"], "webhook-timestamp": r.headers["webhook-timestamp"], "webhook-signature": r.headers["webhook-signature"]}).to_string();
    let mut child = Command::new(crate::repo_root().join(".venv/bin/python"))
        .arg(crate::repo_root().join("tests/python/webhook_tools.py"))
        .args(["verify-standard", secret, &headers])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().expect("stdin").write_all(r.body.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
