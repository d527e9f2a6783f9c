//! `relay-bench load`: N events through a running system from C concurrent publishers, each
//! delivered to a local receiver, and what it cost (issue 16).
//!
//! Reports accepted/s, delivered/s, p50/p99 ingest latency, whether every event arrived exactly
//! once (missing, duplicates), and CPU per event of each process group read from
//! `/proc/<pid>/stat`: Relay's functions one by one, the local stand-ins (`relay-local`: the
//! gateway, the Runtime API, the IAM gate, the pollers), the emulator (moto), and this driver.
//! A process that exits before the end takes its CPU with it (Relay's instances stay warm, and
//! the stand-ins and the emulator live as long as the stack). The run is cut into ten windows, each with its own rate, emulator CPU per event and emulator
//! memory, so a cost that grows with the state shows as a trend.
//!
//! Targets: by default a local stack of its own (release binaries); `--attach URL` a running
//! `./dev up` (its demo keys unless `--product-key` / `--org-key`); `--target svix --url URL
//! --token T` Svix's server (`infra/bench/svix.sh` starts one), driven the same way.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::latency::{serve, Percentiles};

struct Options {
    events: usize,
    publishers: usize,
    warm_up: usize,
    /// Events per second in all, paced; `None`: as fast as the target takes them.
    rate: Option<f64>,
    target: Target,
}

enum Target {
    /// A stack started here, or a running one (`./dev up`).
    Relay {
        attach: Option<String>,
        product_key: String,
        org_key: String,
        org_id: String,
    },
    Svix {
        url: String,
        token: String,
    },
}

fn usage() -> String {
    "usage: relay-bench load [--events N] [--publishers C] [--warm-up W] [--rate EVENTS_PER_SECOND]\n       \
     [--attach URL [--product-key K] [--org-key K] [--org-id ID]] | [--target svix --url URL --token T]"
        .into()
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or_else(usage)?;
        let value = it.next().ok_or_else(usage)?;
        flags.insert(name.to_string(), value.clone());
    }
    let number = |name: &str, default: usize| -> Result<usize, String> {
        flags.get(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("--{name} takes a number\n{}", usage())))
    };
    let flag = |name: &str, default: &str| flags.get(name).cloned().unwrap_or_else(|| default.to_string());
    let target = match flag("target", "relay").as_str() {
        "relay" => Target::Relay {
            attach: flags.get("attach").cloned(),
            product_key: flag("product-key", "rk_prod_local_demo"),
            org_key: flag("org-key", "rk_org_local_demo"),
            org_id: flag("org-id", "org-demo"),
        },
        "svix" => Target::Svix {
            url: flags.get("url").cloned().ok_or_else(|| format!("--target svix needs --url\n{}", usage()))?,
            token: flags.get("token").cloned().ok_or_else(|| format!("--target svix needs --token\n{}", usage()))?,
        },
        other => return Err(format!("unknown target {other}\n{}", usage())),
    };
    let rate = match flags.get("rate") {
        Some(r) => Some(r.parse::<f64>().ok().filter(|r| *r > 0.0).ok_or_else(|| format!("--rate takes events per second\n{}", usage()))?),
        None => None,
    };
    if number("events", 1000)? == 0 {
        return Err(format!("--events must be at least 1\n{}", usage()));
    }
    Ok(Options { events: number("events", 1000)?, publishers: number("publishers", 20)?, warm_up: number("warm-up", 20)?, rate, target })
}

/// Where the driver sends events: the URL, the headers, the body of event `i`.
struct Publisher {
    url: String,
    token: String,
    body: Box<dyn Fn(usize) -> Value + Send + Sync>,
    /// How the id the receiver will see is read from the publish answer, or known before.
    id_from_answer: bool,
    /// Names this run's idempotency keys, so a second run against the same stack publishes
    /// anew instead of being answered from the first run's records.
    run: String,
}

pub async fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()));
    let receiver = Receiver::start().await;
    let http = reqwest::Client::new();
    // A stack started here lives until the end of the run.
    let mut _stack = None;
    // The subscription made for the run, removed at its end (a running stack would otherwise
    // keep delivering to a receiver that is gone).
    let mut made: Option<(String, String)> = None;
    let (publisher, groups) = match &opts.target {
        Target::Relay { attach, product_key, org_key, org_id } => {
            let (url, product_key, org_key, org_id) = match attach {
                Some(url) => (url.clone(), product_key.clone(), org_key.clone(), org_id.clone()),
                None => {
                    eprintln!("load: starting a local stack (release binaries)");
                    let stack = relay_e2e::Stack::start(relay_e2e::StackOptions::default()).await;
                    let started = (stack.url.clone(), stack.product_key.clone(), stack.org_key.clone(), "org-acme".to_string());
                    _stack = Some(stack);
                    started
                }
            };
            let created = http
                .post(format!("{url}/v1/subscriptions"))
                .bearer_auth(&org_key)
                .json(&json!({"url": receiver.url, "eventTypes": ["candidate.hired"]}))
                .send()
                .await
                .map_err(|e| format!("subscribing at {url}: {e}"))?;
            if created.status() != 201 {
                return Err(format!("subscribing answered {}: {}", created.status(), created.text().await.unwrap_or_default()));
            }
            let id = created.json::<Value>().await.ok().and_then(|v| v["id"].as_str().map(str::to_string)).unwrap_or_default();
            made = Some((format!("{url}/v1/subscriptions/{id}"), org_key.clone()));
            let body = move |i: usize| {
                let mut event = crate::sample::event_1kb(i);
                event["organizationId"] = Value::String(org_id.clone());
                event
            };
            let publisher = Publisher {
                url: format!("{url}/v1/events"),
                token: product_key,
                body: Box::new(body),
                id_from_answer: true,
                run: run.clone(),
            };
            (publisher, relay_groups())
        }
        Target::Svix { url, token } => {
            let app = format!("load-{}", std::process::id());
            let post = |path: String, body: Value| http.post(format!("{url}{path}")).bearer_auth(token).json(&body).send();
            let made = post("/api/v1/app/".into(), json!({"name": app, "uid": app})).await.map_err(|e| e.to_string())?;
            if !made.status().is_success() {
                return Err(format!("creating the Svix app answered {}: {}", made.status(), made.text().await.unwrap_or_default()));
            }
            let made = post(format!("/api/v1/app/{app}/endpoint/"), json!({"url": receiver.url, "version": 1}))
                .await
                .map_err(|e| e.to_string())?;
            if !made.status().is_success() {
                return Err(format!("creating the Svix endpoint answered {}: {}", made.status(), made.text().await.unwrap_or_default()));
            }
            // The receiver reads `data.eventId`, as Relay's deliveries carry it.
            let salt = run.clone();
            let body = move |i: usize| json!({"eventType": "candidate.hired", "payload": {"data": {"eventId": format!("load-{salt}-{i}")}, "event": crate::sample::event_1kb(i)}});
            let publisher = Publisher {
                url: format!("{url}/api/v1/app/{app}/msg/"),
                token: token.clone(),
                body: Box::new(body),
                id_from_answer: false,
                run: run.clone(),
            };
            (publisher, svix_groups())
        }
    };

    // Warm-up: every process started, every connection open, before anything is counted.
    let warm = publish(&http, &publisher, 0..opts.warm_up, (opts.publishers.min(opts.warm_up.max(1)), None), None).await;
    receiver.wait_for(&warm.ids, Duration::from_secs(120)).await?;
    let first = 1_000_000;
    let before = Snapshot::take(&groups);
    let windows = Windows::new(opts.events, groups.clone(), &before);
    let started = Instant::now();
    let progress = report_progress(receiver.clone());
    let sent = publish(&http, &publisher, first..first + opts.events, (opts.publishers, opts.rate), Some(windows.as_ref())).await;
    let accepted_in = started.elapsed();
    let outcome = receiver.wait_for(&sent.ids, Duration::from_secs(60 + opts.events as u64 / 5)).await;
    let delivered_in = started.elapsed();
    let after = Snapshot::take(&groups);
    progress.abort();
    // Two seconds more for late duplicates before they are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some((url, key)) = made {
        let _ = http.delete(url).bearer_auth(key).send().await;
    }
    let windows = windows.finish();

    let n = sent.ids.len();
    let pace = opts.rate.map_or("as fast as taken".to_string(), |r| format!("paced at {r} per second"));
    println!("Load: {} events, {} publishers, {pace}, ~1 KB each, to one subscription at a local receiver", opts.events, opts.publishers);
    println!("  accepted            {n} ({} answers other than 202 were retried with the same idempotency key)", sent.retries);
    println!("  accepted/s          {:.1}", n as f64 / accepted_in.as_secs_f64());
    println!("  delivered/s         {:.1} (first publish to last delivery)", n as f64 / delivered_in.as_secs_f64());
    let latency = Percentiles::of(sent.latencies.clone());
    println!("  ingest latency      p50 {:.1} ms, p99 {:.1} ms", ms(latency.p50), ms(latency.p99));
    let (missing, duplicates) = receiver.exactly_once(&sent.ids);
    println!("  exactly once        {} delivered, {missing} missing, {duplicates} duplicates", n - missing);
    println!("  CPU per event (ms, from /proc; ticks of 10 ms)");
    let mut cpu = BTreeMap::new();
    for (label, ticks) in after.since(&before) {
        let per = ticks as f64 * 10.0 / n as f64;
        println!("    {label:<34} {per:>7.3}");
        cpu.insert(label, per);
    }
    println!(
        "  windows (each {} events): accepted/s, emulator or database CPU ms per event, its memory (RSS summed over its processes)",
        opts.events / 10
    );
    for w in &windows {
        println!("    {:>3}%  {:>7.1}/s  {:>6.2} ms  {:>7.1} MB", w.percent, w.per_second, w.store_ms_per_event, w.store_rss_mb);
    }
    let summary = json!({"events": n, "publishers": opts.publishers, "rate": opts.rate, "retries": sent.retries, "missing": missing, "duplicates": duplicates,
        "acceptedPerSecond": n as f64 / accepted_in.as_secs_f64(), "deliveredPerSecond": n as f64 / delivered_in.as_secs_f64(),
        "ingestP50Ms": ms(latency.p50), "ingestP99Ms": ms(latency.p99), "cpuMsPerEvent": cpu,
        "windows": windows.iter().map(|w| json!({"percent": w.percent, "perSecond": w.per_second, "storeMsPerEvent": w.store_ms_per_event, "storeRssMb": w.store_rss_mb})).collect::<Vec<_>>()});
    println!("LOAD_SUMMARY {summary}");
    outcome?;
    if missing > 0 || duplicates > 0 {
        return Err(format!("{missing} events missing and {duplicates} duplicated"));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Sent {
    ids: Vec<String>,
    latencies: Vec<Duration>,
    retries: usize,
}

/// Publishes events `range` from `concurrency` publishers, each event `i` no earlier than its
/// slot when `rate` paces them; a refusal (429, 5xx) is retried with the same idempotency key,
/// as a product's client does.
async fn publish(
    http: &reqwest::Client,
    p: &Publisher,
    range: std::ops::Range<usize>,
    (concurrency, rate): (usize, Option<f64>),
    windows: Option<&Windows>,
) -> Sent {
    let next = AtomicUsize::new(range.start);
    let retries = AtomicUsize::new(0);
    let start = tokio::time::Instant::now();
    let workers = (0..concurrency.max(1)).map(|_| async {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= range.end {
                return out;
            }
            if let Some(rate) = rate {
                tokio::time::sleep_until(start + Duration::from_secs_f64((i - range.start) as f64 / rate)).await;
            }
            let body = (p.body)(i).to_string();
            let at = Instant::now();
            let id = loop {
                let answer = http
                    .post(&p.url)
                    .bearer_auth(&p.token)
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("load-{}-{i}", p.run))
                    .body(body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(a) if a.status().as_u16() == 202 => {
                        let v: Value = a.json().await.unwrap_or_default();
                        break if p.id_from_answer {
                            v["eventId"].as_str().unwrap_or_default().to_string()
                        } else {
                            format!("load-{}-{i}", p.run)
                        };
                    }
                    // 409: the first try of this key still holds its lock; 429, 5xx: try again.
                    Ok(a) if a.status().as_u16() < 500 && ![409, 429].contains(&a.status().as_u16()) => {
                        panic!("the target refused event {i}: {} {}", a.status(), a.text().await.unwrap_or_default())
                    }
                    _ => {
                        retries.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            out.push((id, at.elapsed()));
            if let Some(w) = windows {
                w.accepted();
            }
        }
    });
    let done: Vec<(String, Duration)> = futures::future::join_all(workers).await.into_iter().flatten().collect();
    Sent {
        ids: done.iter().map(|(id, _)| id.clone()).collect(),
        latencies: done.iter().map(|(_, d)| *d).collect(),
        retries: retries.into_inner(),
    }
}

/// Prints the delivery count every 30 s, so a long or stalled run shows where it is.
fn report_progress(receiver: Receiver) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            eprintln!("load: {} deliveries so far", receiver.delivered());
        }
    })
}

/// A local endpoint that counts every arrival of every event id (`data.eventId` of the body).
#[derive(Clone)]
struct Receiver {
    url: String,
    arrivals: Arc<Mutex<HashMap<String, u32>>>,
    total: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> Self {
        let arrivals: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let total = Arc::new(AtomicUsize::new(0));
        let (seen, count) = (arrivals.clone(), total.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (seen, count) = (seen.clone(), count.clone());
                async move {
                    let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["data"]["eventId"].as_str().map(str::to_string));
                    if let (Some(id), Ok(mut seen)) = (id, seen.lock()) {
                        *seen.entry(id).or_default() += 1;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        );
        Self { url: serve(app).await, arrivals, total }
    }

    /// Waits until every id in `ids` has arrived (to 20 ms).
    async fn wait_for(&self, ids: &[String], limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let arrived = self.arrivals.lock().map(|a| ids.iter().filter(|id| a.contains_key(*id)).count()).unwrap_or(0);
            if arrived == ids.len() {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(format!("{arrived} of {} events delivered after {limit:?}", ids.len()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// (missing, duplicates) among `ids`.
    fn exactly_once(&self, ids: &[String]) -> (usize, usize) {
        let a = self.arrivals.lock().expect("lock");
        let missing = ids.iter().filter(|id| !a.contains_key(*id)).count();
        let duplicates = ids.iter().filter_map(|id| a.get(id)).map(|n| n.saturating_sub(1) as usize).sum();
        (missing, duplicates)
    }

    fn delivered(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

/// A process group: a label and which processes (by name and command line) belong to it.
#[derive(Clone)]
struct Group {
    label: &'static str,
    matches: fn(&str, &str) -> bool,
    /// The store that stands in for the cloud (moto) or holds the data (Postgres): its windows.
    store: bool,
}

fn relay_groups() -> Vec<Group> {
    vec![
        Group { label: "relay: ingest", matches: |comm, _| comm == "ingest", store: false },
        Group { label: "relay: deliver", matches: |comm, _| comm == "deliver", store: false },
        Group { label: "relay: other functions", matches: |comm, _| ["manage", "webhook-receive", "mail"].contains(&comm), store: false },
        Group { label: "stand-ins: relay-local (gw, rt, iam)", matches: |comm, _| comm == "relay-local", store: false },
        Group { label: "emulator: moto", matches: |_, cmdline| cmdline.contains("moto_server"), store: true },
        Group { label: "driver (publishers, receiver)", matches: |_, _| false, store: false },
    ]
}

fn svix_groups() -> Vec<Group> {
    vec![
        Group { label: "svix-server", matches: |comm, _| comm == "svix-server", store: false },
        Group { label: "postgres", matches: |comm, _| comm == "postgres", store: true },
        Group { label: "redis-server", matches: |comm, _| comm == "redis-server", store: false },
        Group { label: "driver (publishers, receiver)", matches: |_, _| false, store: false },
    ]
}

/// CPU ticks per process (pid → group, ticks) and the store's resident memory.
struct Snapshot {
    ticks: HashMap<u32, (&'static str, u64)>,
    store_rss_kb: u64,
}

impl Snapshot {
    fn take(groups: &[Group]) -> Self {
        let me = std::process::id();
        let mut ticks = HashMap::new();
        let mut store_rss_kb = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Some((comm, cmdline, t)) = process(&entry.path()) else { continue };
            let group = if pid == me {
                groups.iter().find(|g| g.label.starts_with("driver"))
            } else {
                groups.iter().find(|g| (g.matches)(&comm, &cmdline))
            };
            if let Some(g) = group {
                ticks.insert(pid, (g.label, t));
                if g.store {
                    store_rss_kb += rss_kb(&entry.path());
                }
            }
        }
        Self { ticks, store_rss_kb }
    }

    /// Ticks per group since `before`: per process, so one that started in between counts whole.
    fn since(&self, before: &Snapshot) -> Vec<(String, u64)> {
        let mut out: BTreeMap<&str, u64> = BTreeMap::new();
        for (pid, (label, t)) in &self.ticks {
            *out.entry(label).or_default() += t - before.ticks.get(pid).map_or(0, |(_, b)| (*b).min(*t));
        }
        out.into_iter().map(|(l, t)| (l.to_string(), t)).collect()
    }

    fn store_ticks(&self, groups: &[Group]) -> u64 {
        let stores: Vec<&str> = groups.iter().filter(|g| g.store).map(|g| g.label).collect();
        self.ticks.values().filter(|(l, _)| stores.contains(l)).map(|(_, t)| t).sum()
    }
}

/// (name, command line, user + system ticks) of one process (`/proc/<pid>`); the bench's other
/// CPU figures read it too.
pub fn process(dir: &Path) -> Option<(String, String, u64)> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let cmdline = String::from_utf8_lossy(&std::fs::read(dir.join("cmdline")).ok()?).replace('\0', " ");
    let (head, rest) = stat.rsplit_once(") ")?;
    let comm = head.split_once(" (").map_or("", |(_, c)| c).to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: utime and stime are fields 14 and 15 of stat, 11 and 12 here.
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some((comm, cmdline, field(11) + field(12)))
}

fn rss_kb(dir: &Path) -> u64 {
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// The run in tenths: when each tenth of the events was accepted, and the store's CPU and
/// memory at that moment.
struct Windows {
    events: usize,
    groups: Vec<Group>,
    accepted: AtomicUsize,
    marks: Mutex<Vec<(Instant, usize, u64, u64)>>,
}

struct Window {
    percent: usize,
    per_second: f64,
    store_ms_per_event: f64,
    store_rss_mb: f64,
}

impl Windows {
    /// Starts the windows at `start`, the run's first snapshot.
    fn new(events: usize, groups: Vec<Group>, start: &Snapshot) -> Arc<Self> {
        let mark = (Instant::now(), 0, start.store_ticks(&groups), start.store_rss_kb);
        Arc::new(Self { events, groups, accepted: AtomicUsize::new(0), marks: Mutex::new(vec![mark]) })
    }

    fn accepted(&self) {
        let n = self.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of((self.events / 10).max(1)) {
            let s = Snapshot::take(&self.groups);
            if let Ok(mut m) = self.marks.lock() {
                m.push((Instant::now(), n, s.store_ticks(&self.groups), s.store_rss_kb));
            }
        }
    }

    fn finish(self: Arc<Self>) -> Vec<Window> {
        let marks = self.marks.lock().map(|m| m.clone()).unwrap_or_default();
        marks
            .windows(2)
            .map(|w| {
                let ((t0, n0, c0, _), (t1, n1, c1, rss)) = (w[0], w[1]);
                let events = (n1 - n0).max(1) as f64;
                Window {
                    percent: n1 * 100 / self.events.max(1),
                    per_second: events / t1.duration_since(t0).as_secs_f64(),
                    // A store process that ended in between (a pooled Postgres backend) takes
                    // its ticks with it: never a negative window.
                    store_ms_per_event: c1.saturating_sub(c0) as f64 * 10.0 / events,
                    store_rss_mb: rss as f64 / 1024.0,
                }
            })
            .collect()
    }
}
