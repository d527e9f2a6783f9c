//! Latency through the local stack (issue 14): ingest with 20 concurrent clients, and from the
//! moment a client sends an event to the moment a local receiver has it. Every hop is real
//! (HTTP to the local gateway, the functions' AWS calls to moto, EventBridge's rule to the
//! delivery queue, the queue poller, deliver's POST), so the figures are moto's speed plus
//! Relay's, not AWS's: read them as a regression yardstick, not as production latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Concurrent publishers, as the issue asks.
pub const CLIENTS: usize = 20;

/// What one run measured.
pub struct Latency {
    pub events: usize,
    pub ingest: Percentiles,
    pub to_delivery: Percentiles,
    pub accepted_per_second: f64,
}

pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples`.
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Self { p50: rank(0.50), p99: rank(0.99) }
    }
}

/// A local receiver that notes when each event id first arrived (`data.eventId` of the body).
pub async fn timing_receiver() -> (String, Arc<Mutex<HashMap<String, Instant>>>) {
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let at = Instant::now();
                let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["data"]["eventId"].as_str().map(str::to_string));
                if let (Some(id), Ok(mut seen)) = (id, seen.lock()) {
                    seen.entry(id).or_insert(at);
                }
                "ok"
            }
        }),
    );
    (serve(app).await, arrivals)
}

/// Serves `app` on a free local port; the URL of its `/hook`.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// `per_client` events from each of `clients` concurrent clients, each timed from just before
/// its request to its 202, and to its arrival at the receiver. `first` numbers the events (and
/// their idempotency keys) so runs on one stack do not overlap.
pub async fn measure(
    stack: &relay_e2e::Stack,
    arrivals: &Mutex<HashMap<String, Instant>>,
    (clients, per_client, first): (usize, usize, usize),
    event: impl Fn(usize) -> Value + Sync,
) -> Latency {
    let started = Instant::now();
    let clients = (0..clients).map(|c| {
        let event = &event;
        async move {
            let mut sent = Vec::with_capacity(per_client);
            for k in 0..per_client {
                let i = first + c * per_client + k;
                let body = event(i).to_string();
                let at = Instant::now();
                let resp = stack.post("/v1/events", &body, Some(&format!("latency-{i}"))).await;
                let took = at.elapsed();
                assert_eq!(resp.status(), 202, "ingest refused an event under load");
                let id = resp.json::<Value>().await.ok().and_then(|v| v["eventId"].as_str().map(str::to_string)).expect("eventId");
                sent.push((id, at, took));
            }
            sent
        }
    });
    let sent: Vec<(String, Instant, Duration)> = futures::future::join_all(clients).await.into_iter().flatten().collect();
    let accepted_per_second = sent.len() as f64 / started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let arrived = arrivals.lock().map(|a| sent.iter().filter(|(id, _, _)| a.contains_key(id)).count()).unwrap_or(0);
        if arrived == sent.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{arrived} of {} events delivered", sent.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrivals = arrivals.lock().expect("lock");
    let to_delivery = sent.iter().map(|(id, at, _)| arrivals[id].duration_since(*at)).collect();
    Latency {
        events: sent.len(),
        ingest: Percentiles::of(sent.iter().map(|(_, _, took)| *took).collect()),
        to_delivery: Percentiles::of(to_delivery),
        accepted_per_second,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |v: u64| Duration::from_millis(v);
        let p = Percentiles::of((1..=100).rev().map(ms).collect());
        assert_eq!((p.p50, p.p99), (ms(50), ms(99)));
        let p = Percentiles::of(vec![ms(7)]);
        assert_eq!((p.p50, p.p99), (ms(7), ms(7)));
    }
}
