//! The monthly schedule over in-memory ports: which month is due on a day, a tick asking for
//! each due month once, waiting for a late input or a missing rule table, skipping a month run
//! by hand, and one failing organisation holding up no other.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};

use super::job::{RunRequest, RunStatus};
use super::schedule::PayrollSchedule;
use super::tests::{input, request, table, world, Flaky, World};
use super::tick::{ScheduleTick, TickPorts, TickReport};
use crate::memory::{MemoryBus, MemoryPayrollSchedules, RecordedMetrics};
use crate::metrics::{EMPLOYEES_PAID, SCHEDULED_RUNS_WAITING};
use crate::ports::{BlobExists, BlobWriter, PayrollRuns, PayrollSchedules, StoreError};

fn schedule(org: &str, first_period: &str) -> PayrollSchedule {
    PayrollSchedule {
        organization_id: org.into(),
        request_day: 20,
        pay_day: 25,
        employer: request().employer,
        rule_table: None,
        first_period: Some(first_period.into()),
    }
}

fn at(day: &str) -> chrono::DateTime<Utc> {
    format!("{day}T05:00:00Z").parse().unwrap()
}

fn day(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
}

#[test]
fn a_schedule_says_what_is_wrong_and_asks_for_each_month_in_turn() {
    let ok = schedule("org-1", "2025-11");
    assert_eq!(ok.problems(), None);
    let bad = |f: fn(&mut PayrollSchedule)| {
        let mut s = schedule("org-1", "2025-11");
        f(&mut s);
        s.problems().expect("refused")
    };
    assert!(bad(|s| s.request_day = 29).contains("requestDay"));
    assert!(bad(|s| s.pay_day = 19).contains("payDay"));
    assert!(bad(|s| s.first_period = Some("2025-13".into())).contains("firstPeriod"));
    assert!(bad(|s| s.employer.iban = "NL91ABNA0417164301".into()).contains("iban"));
    assert!(bad(|s| s.organization_id = "org 1".into()).contains("organizationId"));

    // Left out, the first period is the first month whose request day is still ahead.
    let open = PayrollSchedule { first_period: None, ..ok.clone() };
    assert_eq!(open.clone().settled(day("2025-11-19")).first_period.as_deref(), Some("2025-11"));
    assert_eq!(open.clone().settled(day("2025-11-20")).first_period.as_deref(), Some("2025-12"));
    assert_eq!(open.settled(day("2025-12-31")).first_period.as_deref(), Some("2026-01"));

    assert_eq!(ok.due(day("2025-11-19"), None), None, "not before the request day");
    assert_eq!(ok.due(day("2025-10-25"), None), None, "not before the first period");
    let due = ok.due(day("2025-11-20"), None).expect("due");
    assert_eq!(
        (due.payroll_run_id.as_str(), due.period.as_str(), due.input.as_str()),
        ("scheduled-2025-11", "2025-11", "inputs/org-1/2025-11.jsonl")
    );
    assert_eq!(due.pay_date, day("2025-11-25"));
    // Settled, the schedule moves to the next month; a month not settled in time stays due.
    assert_eq!(ok.due(day("2025-11-21"), Some("2025-11")), None);
    assert_eq!(ok.due(day("2025-12-02"), None).map(|r| r.period), Some("2025-11".into()), "a late input: its month, not skipped");
    assert_eq!(ok.due(day("2025-12-20"), Some("2025-11")).map(|r| r.period), Some("2025-12".into()));
    let end_of_month = PayrollSchedule { pay_day: 31, first_period: Some("2026-02".into()), ..ok.clone() };
    assert_eq!(end_of_month.due(day("2026-02-27"), None).unwrap().pay_date, day("2026-02-28"), "a short month pays on its last day");
    assert_eq!(ok.next_request(day("2025-11-21"), Some("2025-11")), Some((day("2025-12-20"), "2025-12".into())));
    assert_eq!(ok.next_request(day("2025-10-01"), None), Some((day("2025-11-20"), "2025-11".into())), "not before the first period");
    assert_eq!(ok.next_request(day("2025-12-02"), None), Some((day("2025-12-02"), "2025-11".into())), "overdue: today");
}

/// The payroll bucket as the tick sees it, failing for one organisation's inputs.
struct Inputs {
    blobs: Arc<Flaky>,
    failing: &'static str,
}

#[async_trait]
impl BlobExists for Inputs {
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError> {
        if key.starts_with(self.failing) {
            return Err(StoreError::new("s3:HeadObject", "403"));
        }
        self.blobs.blob_exists(key).await
    }
}

struct Ticking {
    w: World,
    schedules: Arc<MemoryPayrollSchedules>,
    bus: Arc<MemoryBus>,
    metrics: Arc<RecordedMetrics>,
    tick: ScheduleTick,
}

async fn ticking(failing: &'static str) -> Ticking {
    let w = world(table()).await;
    let schedules = Arc::new(MemoryPayrollSchedules::default());
    let (bus, metrics) = (Arc::new(MemoryBus::default()), Arc::new(RecordedMetrics::default()));
    let ports = TickPorts {
        schedules: schedules.clone(),
        runs: w.runs.clone(),
        inputs: Arc::new(Inputs { blobs: w.blobs.clone(), failing }),
        bus: bus.clone(),
        metrics: metrics.clone(),
    };
    let tick = ScheduleTick::new(ports, vec!["nl-2025".into()]);
    Ticking { w, schedules, bus, metrics, tick }
}

impl Ticking {
    fn last(&self, org: &str) -> super::schedule::TickOutcome {
        self.schedules.schedules.lock().unwrap()[org].last_tick.clone().expect("a tick noted")
    }

    /// The request in the bus's `n`th event, as payroll-batch reads it.
    fn asked(&self, n: usize) -> RunRequest {
        let e = &self.bus.events()[n];
        assert_eq!(e.event_type, "payroll.run.requested");
        let mut payload = e.payload.clone().unwrap();
        payload.insert("organizationId".into(), json!(e.organization_id));
        serde_json::from_value(Value::Object(payload)).unwrap()
    }
}

#[tokio::test]
async fn the_daily_tick_asks_for_each_due_month_once_and_waits_for_an_input_not_yet_uploaded() {
    let t = ticking("inputs/nobody/").await;
    t.schedules.put_schedule(&schedule("org-1", "2025-11")).await.unwrap();
    t.schedules.put_schedule(&schedule("org-2", "2025-11")).await.unwrap();

    assert_eq!(t.tick.tick(at("2025-11-19")).await.unwrap(), TickReport::default(), "nothing is due the day before");
    let report = t.tick.tick(at("2025-11-20")).await.unwrap();
    assert_eq!(report.requested, ["org-1/scheduled-2025-11"]);
    assert_eq!(report.waiting, ["org-2/scheduled-2025-11"], "org-2 uploaded nothing");
    assert_eq!(t.metrics.total(SCHEDULED_RUNS_WAITING), 1.0);
    assert_eq!((t.last("org-2").outcome.as_str(), t.last("org-1").outcome.as_str()), ("waiting", "requested"));

    // Both events of a repeated request reach payroll-batch: one run, each employee paid once.
    t.schedules.schedules.lock().unwrap().get_mut("org-1").unwrap().last_settled = None; // the note lost
    t.tick.tick(at("2025-11-20")).await.unwrap();
    let (first, second) = (t.asked(0), t.asked(1));
    assert_eq!(t.bus.events()[0].event_id, t.bus.events()[1].event_id, "the same event");
    assert_eq!(first, schedule("org-1", "2025-11").due(day("2025-11-20"), None).unwrap());
    t.w.batch.request(&first, Utc::now()).await.unwrap();
    t.w.batch.request(&second, Utc::now()).await.unwrap();
    assert_eq!(t.w.work().await, 0);
    let run = t.w.runs.get_run("org-1", "scheduled-2025-11").await.unwrap().unwrap();
    assert_eq!((run.status, run.employees_done), (RunStatus::Completed, 9), "each line counted once");
    assert_eq!(t.w.metrics.total(EMPLOYEES_PAID), 6.0, "each employee paid once");
    assert!(t.tick.tick(at("2025-11-21")).await.unwrap().requested.is_empty());
    assert_eq!(t.bus.events().len(), 2);

    // org-2's input arrives after the month ended: its November is still asked for, not skipped.
    t.w.blobs.inner.put_blob("inputs/org-2/2025-11.jsonl", input().into_bytes(), "application/x-ndjson").await.unwrap();
    assert_eq!(t.tick.tick(at("2025-12-02")).await.unwrap().requested, ["org-2/scheduled-2025-11"]);
    assert_eq!(t.asked(2).period, "2025-11");
}

#[tokio::test]
async fn a_month_run_by_hand_is_skipped_and_one_failing_organisation_holds_up_no_other() {
    let t = ticking("inputs/org-3/").await;
    for org in ["org-1", "org-2", "org-3"] {
        t.schedules.put_schedule(&schedule(org, "2025-11")).await.unwrap();
    }
    t.w.blobs.inner.put_blob("inputs/org-2/2025-11.jsonl", input().into_bytes(), "application/x-ndjson").await.unwrap();
    // org-1 ran November by hand (the test world's run-2025-11).
    t.w.batch.request(&request(), Utc::now()).await.unwrap();
    t.w.work().await;

    let outcome = t.tick.tick(at("2025-11-20")).await;
    assert!(outcome.is_err(), "org-3's bucket read failed: the tick comes back");
    assert_eq!(t.last("org-1").outcome, "skipped");
    assert!(t.last("org-1").detail.contains("run-2025-11"), "{:?}", t.last("org-1"));
    assert_eq!(t.last("org-2").outcome, "requested", "org-2 went through despite org-3");
    assert!(t.schedules.schedules.lock().unwrap()["org-3"].last_tick.is_none());
    assert_eq!(t.bus.events().len(), 1, "only org-2's month asked for");

    // A year with no rule table waits instead of failing the run; a bus that fails, fails the tick.
    let mut next_year = schedule("org-4", "2026-01");
    next_year.request_day = 1;
    t.schedules.put_schedule(&next_year).await.unwrap();
    t.w.blobs.inner.put_blob("inputs/org-4/2026-01.jsonl", input().into_bytes(), "application/x-ndjson").await.unwrap();
    let _ = t.tick.tick(at("2026-01-01")).await;
    assert_eq!(t.last("org-4").outcome, "waiting");
    assert!(t.last("org-4").detail.contains("nl-2026"), "{:?}", t.last("org-4"));
    t.bus.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    t.schedules.delete_schedule("org-3").await.unwrap();
    let mut december = schedule("org-5", "2025-12");
    december.request_day = 1;
    t.schedules.put_schedule(&december).await.unwrap();
    t.w.blobs.inner.put_blob("inputs/org-5/2025-12.jsonl", input().into_bytes(), "application/x-ndjson").await.unwrap();
    assert!(t.tick.tick(at("2025-12-01")).await.is_err(), "a refused publish comes back");
    assert!(t.schedules.schedules.lock().unwrap()["org-5"].last_tick.is_none(), "not noted as asked for");
}
