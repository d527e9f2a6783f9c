//! The handler over in-memory ports, fed the `events/` fixtures `sam local invoke` would send:
//! a run request from the bus, then the chunk it queued, then the monthly schedule's tick; and messages that can never be
//! handled are dropped, not retried forever.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use relay_core::memory::{MemoryBlobs, MemoryBus, MemoryChunkQueue, MemoryPayrollRuns, MemoryPayrollSchedules, RecordedMetrics};
use relay_core::payroll::job::EmployerAccount;
use relay_core::payroll::rules;
use relay_core::payroll::run::{PayrollBatch, PayrollConfig, PayrollPorts};
use relay_core::payroll::schedule::PayrollSchedule;
use relay_core::payroll::tick::{ScheduleTick, TickPorts};
use relay_core::ports::{BlobWriter, PayrollRuns, PayrollSchedules};
use serde_json::json;

use super::App;

fn fixture(name: &str) -> SqsEvent {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("an SQS event")
}

#[tokio::test]
async fn the_fixtures_run_a_payroll_and_unhandleable_messages_are_dropped() {
    let (runs, blobs, queue, bus) = (
        Arc::new(MemoryPayrollRuns::default()),
        Arc::new(MemoryBlobs::default()),
        Arc::new(MemoryChunkQueue::default()),
        Arc::new(MemoryBus::default()),
    );
    let line = json!({"employeeId": "e1", "name": "Anna de Vries", "email": "anna@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "2000.00", "pensionScheme": "none", "taxCreditApplied": true});
    blobs.put_blob("inputs/org-demo/2025-11.jsonl", line.to_string().into_bytes(), "application/x-ndjson").await.unwrap();
    let ports = PayrollPorts {
        runs: runs.clone(),
        reader: blobs.clone(),
        writer: blobs.clone(),
        bus: bus.clone(),
        chunks: queue.clone(),
        metrics: Arc::new(RecordedMetrics::default()),
        links: blobs.clone(),
    };
    let config = PayrollConfig { chunk_size: 500, tables: rules::built_in().unwrap(), link_lifetime: std::time::Duration::from_secs(3600) };
    let schedules = Arc::new(MemoryPayrollSchedules::default());
    let tick = ScheduleTick::new(
        TickPorts {
            schedules: schedules.clone(),
            runs: runs.clone(),
            inputs: blobs.clone(),
            bus: bus.clone(),
            metrics: Arc::new(RecordedMetrics::default()),
        },
        vec!["nl-2025".into()],
    );
    let app = App { batch: PayrollBatch::new(ports, config), tick };

    let answer = app.handle(fixture("payroll-batch-run-requested.json")).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(queue.take().len(), 1, "one chunk queued");
    let answer = app.handle(fixture("payroll-batch-chunk.json")).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    let run = runs.get_run("org-demo", "run-2025-11").await.unwrap().unwrap();
    assert_eq!((run.chunks_done, run.totals.map(|t| t.net.to_string())), (1, Some("1917.00".to_string())));
    assert!(bus.events().iter().any(|e| e.event_type == "payroll.completed"));

    // The schedule's tick on org-demo's request day: November was just run by hand (above), so
    // it is skipped, not paid again; December is asked for on its day.
    let employer = EmployerAccount { name: "Acme B.V.".into(), iban: "NL91ABNA0417164300".into(), bic: None };
    let schedule = PayrollSchedule {
        organization_id: "org-demo".into(),
        request_day: 20,
        pay_day: 25,
        employer,
        rule_table: None,
        first_period: Some("2025-11".into()),
    };
    schedules.put_schedule(&schedule).await.unwrap();
    let answer = app.handle(fixture("payroll-batch-schedule-tick.json")).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
    assert!(!bus.events().iter().any(|e| e.event_type == "payroll.run.requested"), "November is not asked for twice");
    let state = schedules.list_schedules().await.unwrap().remove(0);
    assert_eq!((state.last_tick.map(|t| t.outcome), state.last_settled.as_deref()), (Some("skipped".into()), Some("2025-11")));
    blobs.put_blob("inputs/org-demo/2025-12.jsonl", line.to_string().into_bytes(), "application/x-ndjson").await.unwrap();
    let mut december = fixture("payroll-batch-schedule-tick.json");
    december.records[0].body = Some(r#"{"payrollScheduleTick": "2025-12-20T05:00:00Z"}"#.into());
    assert!(app.handle(december).await.unwrap().batch_item_failures.is_empty());
    let asked = bus.events().into_iter().find(|e| e.event_type == "payroll.run.requested").expect("December asked for");
    assert_eq!(asked.payload.as_ref().and_then(|p| p["payrollRunId"].as_str()), Some("scheduled-2025-12"));
    let mut bad_tick = fixture("payroll-batch-schedule-tick.json");
    bad_tick.records[0].body = Some(r#"{"payrollScheduleTick": "yesterday"}"#.into());
    assert!(app.handle(bad_tick).await.unwrap().batch_item_failures.is_empty(), "a tick without a time is dropped");

    let mut garbage = fixture("payroll-batch-chunk.json");
    garbage.records[0].body = Some("not json".into());
    assert!(app.handle(garbage).await.unwrap().batch_item_failures.is_empty(), "dropped with a log line, not retried");
}
