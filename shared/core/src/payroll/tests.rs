//! The payroll workflow over in-memory ports: a run split, computed and finished once; crashes
//! mid-chunk and between completing and announcing, with every message redelivered, neither pay,
//! count nor announce anything twice; runs that cannot run say why and pay nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};

use super::job::{EmployerAccount, RunRecord, RunRequest, RunStatus};
use super::rules::RuleTable;
use super::run::{PayrollBatch, PayrollConfig, PayrollError, PayrollPorts};
use crate::memory::{MemoryBlobs, MemoryBus, MemoryChunkQueue, MemoryPayrollRuns, RecordedMetrics};
use crate::metrics::EMPLOYEES_PAID;
use crate::model::envelope::EventEnvelope;
use crate::ports::{BlobExists, BlobReader, BlobWriter, EventPublisher, PayrollRuns, PublishError, StoreError};

const NL_2025: &str = include_str!("../../../../rules/payroll/nl-2025.json");

/// The six employees worked out by hand in `compute.rs`, a malformed line, a blank line, and
/// an employee on two lines (lines 8 and 10).
pub(super) fn input() -> String {
    [
        json!({"employeeId": "e1", "name": "Anna de Vries", "email": "anna@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "2000.00", "pensionScheme": "none", "taxCreditApplied": true}).to_string(),
        json!({"employeeId": "e2", "name": "Zoë Ørsted", "email": "zoe@example.nl", "iban": "DE89370400440532013000", "grossPay": "4000.00", "pensionScheme": "basic", "taxCreditApplied": true}).to_string(),
        "{not json".to_string(),
        json!({"employeeId": "e3", "name": "Bram Jansen", "email": "bram@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "8000.00", "pensionScheme": "none", "taxCreditApplied": true}).to_string(),
        String::new(),
        json!({"employeeId": "e4", "name": "Chris Bakker", "email": "chris@example.nl", "iban": "BE68539007547034", "grossPay": "1000.00", "allowances": "50.00", "deductions": "25.00", "pensionScheme": "none", "taxCreditApplied": false}).to_string(),
        json!({"employeeId": "e5", "name": "Dana Visser", "email": "dana@example.nl", "iban": "GB82WEST12345698765432", "grossPay": "12500.00", "pensionScheme": "basic", "taxCreditApplied": true}).to_string(),
        json!({"employeeId": "e7", "name": "Finn Mol", "email": "finn@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "3000.00", "pensionScheme": "none", "taxCreditApplied": true}).to_string(),
        json!({"employeeId": "e6", "name": "Eva Smit", "email": "eva@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "800.00", "pensionScheme": "none", "taxCreditApplied": true}).to_string(),
        json!({"employeeId": "e7", "name": "Finn Mol", "email": "finn@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "3100.00", "pensionScheme": "none", "taxCreditApplied": true}).to_string(),
    ]
    .join("\n")
}

pub(super) fn request() -> RunRequest {
    RunRequest {
        payroll_run_id: "run-2025-11".into(),
        organization_id: "org-1".into(),
        period: "2025-11".into(),
        input: "inputs/org-1/2025-11.jsonl".into(),
        pay_date: NaiveDate::from_ymd_opt(2025, 11, 25).unwrap(),
        employer: EmployerAccount { name: "Acme B.V.".into(), iban: "NL91ABNA0417164300".into(), bic: Some("ABNANL2A".into()) },
        rule_table: None,
    }
}

/// A blob store that fails its `n`th write once (a crash mid-chunk).
#[derive(Default)]
pub(super) struct Flaky {
    pub(super) inner: MemoryBlobs,
    writes: AtomicUsize,
    fail_at: AtomicUsize,
}

#[async_trait]
impl BlobWriter for Flaky {
    fn bucket(&self) -> &str {
        "payroll"
    }
    async fn put_blob(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(StoreError::new("put_blob", "crash"));
        }
        self.inner.put_blob(key, bytes, content_type).await
    }
}

#[async_trait]
impl BlobReader for Flaky {
    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_blob(key).await
    }
}

#[async_trait]
impl BlobExists for Flaky {
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.blob_exists(key).await
    }
}

/// A bus that refuses one event type once.
#[derive(Default)]
struct Bus {
    inner: MemoryBus,
    refuse_once: std::sync::Mutex<Option<String>>,
}

#[async_trait]
impl EventPublisher for Bus {
    async fn publish(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>> {
        let refused = {
            let mut refuse = self.refuse_once.lock().unwrap();
            let hit = events.iter().any(|e| refuse.as_deref() == Some(e.event_type.as_str()));
            if hit {
                *refuse = None;
            }
            hit
        };
        if refused {
            return events.iter().map(|_| Err(PublishError("refused".into()))).collect();
        }
        self.inner.publish(events).await
    }
}

pub(super) struct World {
    pub(super) batch: PayrollBatch,
    pub(super) runs: Arc<MemoryPayrollRuns>,
    pub(super) blobs: Arc<Flaky>,
    bus: Arc<Bus>,
    queue: Arc<MemoryChunkQueue>,
    pub(super) metrics: Arc<RecordedMetrics>,
}

pub(super) async fn world(tables: Vec<RuleTable>) -> World {
    let blobs = Arc::new(Flaky::default());
    blobs.inner.put_blob("inputs/org-1/2025-11.jsonl", input().into_bytes(), "application/x-ndjson").await.unwrap();
    let (runs, bus, queue, metrics) = (
        Arc::new(MemoryPayrollRuns::default()),
        Arc::new(Bus::default()),
        Arc::new(MemoryChunkQueue::default()),
        Arc::new(RecordedMetrics::default()),
    );
    let ports = PayrollPorts {
        runs: runs.clone(),
        reader: blobs.clone(),
        writer: blobs.clone(),
        bus: bus.clone(),
        chunks: queue.clone(),
        metrics: metrics.clone(),
        links: Arc::new(MemoryBlobs::default()),
    };
    let config = PayrollConfig { chunk_size: 3, tables, link_lifetime: std::time::Duration::from_secs(7 * 24 * 3600) };
    World { batch: PayrollBatch::new(ports, config), runs, blobs, bus, queue, metrics }
}

pub(super) fn table() -> Vec<RuleTable> {
    vec![RuleTable::parse(NL_2025).unwrap()]
}

impl World {
    async fn run(&self) -> RunRecord {
        self.runs.get_run("org-1", "run-2025-11").await.unwrap().unwrap()
    }

    fn blob(&self, name: &str) -> Option<Vec<u8>> {
        self.blobs.inner.blobs.lock().unwrap().get(&format!("runs/org-1/run-2025-11/{name}")).cloned()
    }

    fn events(&self, event_type: &str) -> Vec<EventEnvelope> {
        self.bus.inner.events().into_iter().filter(|e| e.event_type == event_type).collect()
    }

    /// Hands every queued chunk to the worker until the queue is empty; answers the failures.
    pub(super) async fn work(&self) -> usize {
        let mut failures = 0;
        loop {
            let chunks = self.queue.take();
            if chunks.is_empty() {
                return failures;
            }
            for chunk in chunks {
                if self.batch.chunk(&chunk, Utc::now()).await.is_err() {
                    failures += 1;
                    self.queue.sent.lock().unwrap().push(chunk); // SQS hands it back
                }
            }
        }
    }
}

fn ids(events: &[EventEnvelope]) -> HashSet<uuid::Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

#[tokio::test]
async fn a_run_is_split_computed_and_finished_once_with_totals_that_are_the_sum_of_its_payslips() {
    let w = world(table()).await;
    let record = w.batch.request(&request(), Utc::now()).await.unwrap();
    assert_eq!((record.status, record.chunks_total, record.employees_total), (RunStatus::Running, 3, 9));
    assert_eq!(w.work().await, 0);

    let run = w.run().await;
    assert_eq!((run.status, run.chunks_done, run.employees_done, run.announced), (RunStatus::Completed, 3, 9, true));
    let totals = run.totals.unwrap();
    // 1917.00 + 3046.67 + 5042.07 + 648.89 + 6819.50 + 800.00
    assert_eq!((totals.employees, totals.net.to_string()), (6, "18274.13".to_string()));
    assert!(totals.reconciles());

    let sepa = String::from_utf8(w.blob("sepa.xml").unwrap()).unwrap();
    assert_eq!(sepa.matches("<CdtTrfTxInf>").count(), 6);
    assert_eq!(sepa.matches("<CtrlSum>18274.13</CtrlSum>").count(), 2);
    let report: Value = serde_json::from_slice(&w.blob("report.json").unwrap()).unwrap();
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{report}");
    assert_eq!(rejected[0]["line"], 3);
    assert!(rejected[0]["reason"].as_str().unwrap().starts_with("not an employee record"));
    for (r, line) in rejected[1..].iter().zip([8, 10]) {
        assert_eq!((r["line"].as_u64(), r["employeeId"].as_str()), (Some(line), Some("e7")));
        assert!(r["reason"].as_str().unwrap().contains("appears on lines [8, 10]: none of them is paid"), "{r}");
    }
    let journal: Value = serde_json::from_slice(&w.blob("journal.json").unwrap()).unwrap();
    let side = |k: &str| {
        journal["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l[k].as_str())
            .map(|a| a.parse::<rust_decimal::Decimal>().unwrap())
            .sum::<rust_decimal::Decimal>()
    };
    assert_eq!(side("debit"), side("credit"), "the journal balances");
    for e in ["e1", "e2", "e3", "e4", "e5", "e6"] {
        assert!(w.blob(&format!("payslips/{e}.pdf")).is_some_and(|b| b.starts_with(b"%PDF")), "{e}'s PDF");
        let slip: Value = serde_json::from_slice(&w.blob(&format!("payslips/{e}.json")).unwrap()).unwrap();
        assert_eq!(slip["employeeId"], e);
    }
    assert!(w.blob("payslips/e7.json").is_none(), "an employee on two lines is paid on neither");

    assert_eq!((w.events("payroll.started").len(), w.events("payslip.generated").len(), w.events("payroll.completed").len()), (1, 6, 1));
    assert_eq!(w.events("payroll.completed")[0].payload.as_ref().unwrap()["totalAmount"], "18274.13");
    let mails = w.events("email.requested");
    assert_eq!(mails.len(), 6, "one payslip e-mail per paid employee");
    let first = mails[0].payload.as_ref().unwrap();
    assert_eq!(
        (first["sender"].as_str(), first["template"].as_str(), first["to"][0].as_str()),
        (Some("paylinq"), Some("payslip-available"), Some("anna@example.nl"))
    );
    assert_eq!(first["data"]["netPay"], "€ 1917.00");
    assert_eq!(first["data"]["payslipUrl"], "memory://runs/org-1/run-2025-11/payslips/e1.pdf?expires=604800");
    assert_eq!(w.metrics.total(EMPLOYEES_PAID), 6.0);
}

#[tokio::test]
async fn a_crash_mid_chunk_and_every_message_redelivered_pays_counts_and_announces_nothing_twice() {
    let w = world(table()).await;
    // The request copies the input (1 object), chunks 2 (twice) and 3 write 17; chunk 1 then
    // writes e1's two and crashes on e2's.
    w.blobs.fail_at.store(21, Ordering::SeqCst);
    w.batch.request(&request(), Utc::now()).await.unwrap();
    let chunks = w.queue.take();
    // Chunk 2 is delivered twice while the run is still running; chunk 1 crashes half-way.
    for chunk in [&chunks[1], &chunks[1], &chunks[2]] {
        w.batch.chunk(chunk, Utc::now()).await.unwrap();
    }
    assert_eq!(w.run().await.chunks_done, 2, "a chunk delivered twice counts once");
    assert!(w.batch.chunk(&chunks[0], Utc::now()).await.is_err());
    assert_eq!(w.run().await.status, RunStatus::Running);
    assert!(w.events("email.requested").is_empty(), "no payslip is mailed before the run is complete");
    w.queue.sent.lock().unwrap().push(chunks[0].clone());
    assert_eq!(w.work().await, 0);
    // SQS may deliver any message again, however often: every chunk twice more, and the request.
    w.batch.request(&request(), Utc::now()).await.unwrap();
    w.queue.sent.lock().unwrap().extend(chunks.iter().cloned().chain(chunks.iter().cloned()));
    assert_eq!(w.work().await, 0);

    let run = w.run().await;
    assert_eq!((run.chunks_done, run.employees_done), (3, 9), "each chunk counted once");
    assert_eq!(run.totals.unwrap().net.to_string(), "18274.13");
    let sepa = String::from_utf8(w.blob("sepa.xml").unwrap()).unwrap();
    assert_eq!(sepa.matches("<CdtTrfTxInf>").count(), 6, "each employee paid once");
    assert_eq!(ids(&w.events("payslip.generated")).len(), 6, "repeats carry the same ids");
    assert_eq!(ids(&w.events("payroll.started")).len(), 1);
    assert_eq!(w.events("payroll.completed").len(), 1, "announced once");
    assert_eq!(w.events("email.requested").len(), 6, "each payslip mailed once");
    assert_eq!(w.metrics.total(EMPLOYEES_PAID), 6.0, "the run is counted once");
}

#[tokio::test]
async fn a_crash_between_completing_and_announcing_announces_again_with_the_same_id() {
    let w = world(table()).await;
    *w.bus.refuse_once.lock().unwrap() = Some("payroll.completed".into());
    w.batch.request(&request(), Utc::now()).await.unwrap();
    assert_eq!(w.work().await, 1, "the last chunk failed after completing the run");
    let run = w.run().await;
    assert_eq!((run.status, run.announced), (RunStatus::Completed, true));
    assert_eq!(w.events("payroll.completed").len(), 1);
    assert_eq!(w.metrics.total(EMPLOYEES_PAID), 6.0);
    let mails = w.events("email.requested");
    assert_eq!(
        (mails.len(), ids(&mails).len()),
        (12, 6),
        "the mails are asked for again with the same ids: the mail function sends each once"
    );
}

#[tokio::test]
async fn a_run_that_cannot_run_is_recorded_failed_with_the_reason_and_pays_nothing() {
    let w = world(Vec::new()).await;
    let record = w.batch.request(&request(), Utc::now()).await.unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert!(record.reason.unwrap().contains("no rule table nl-2025"));
    assert!(w.queue.take().is_empty() && w.bus.inner.events().is_empty());

    let w = world(table()).await;
    let missing = RunRequest { input: "inputs/org-1/none.jsonl".into(), ..request() };
    assert!(w.batch.request(&missing, Utc::now()).await.unwrap().reason.unwrap().contains("no input"));

    let bad = RunRequest { input: "inputs/org-2/2025-11.jsonl".into(), ..request() };
    assert!(
        matches!(w.batch.request(&bad, Utc::now()).await, Err(PayrollError::Refused(r)) if r.contains("inputs/org-1/")),
        "another organisation's file"
    );
    let bad = RunRequest { period: "November".into(), ..request() };
    assert!(matches!(w.batch.request(&bad, Utc::now()).await, Err(PayrollError::Refused(r)) if r.contains("period")));
    let bad = RunRequest { employer: EmployerAccount { iban: "NL00BANK0123456789".into(), ..request().employer }, ..request() };
    assert!(matches!(w.batch.request(&bad, Utc::now()).await, Err(PayrollError::Refused(r)) if r.contains("iban")));
}

#[tokio::test]
async fn the_run_pays_what_it_split_whatever_happens_to_the_input_or_the_request_afterwards() {
    let w = world(table()).await;
    w.batch.request(&request(), Utc::now()).await.unwrap();
    let chunks = w.queue.take();
    // Paylinq replaces the input after the split, and a second request with another body comes in.
    w.blobs.inner.put_blob("inputs/org-1/2025-11.jsonl", b"{\"employeeId\": \"x\"}".to_vec(), "application/x-ndjson").await.unwrap();
    let other = RunRequest { pay_date: NaiveDate::from_ymd_opt(2025, 11, 28).unwrap(), ..request() };
    assert!(matches!(w.batch.request(&other, Utc::now()).await, Err(PayrollError::Refused(r)) if r.contains("another request")));
    // A chunk number beyond the split is dropped and counts nothing.
    let stray = super::job::ChunkMessage { chunk: 4, ..chunks[0].clone() };
    assert!(matches!(w.batch.chunk(&stray, Utc::now()).await, Err(PayrollError::Refused(_))));
    for chunk in &chunks {
        w.batch.chunk(chunk, Utc::now()).await.unwrap();
    }
    let run = w.run().await;
    assert_eq!((run.chunks_done, run.status), (3, RunStatus::Completed));
    assert_eq!(run.totals.unwrap().net.to_string(), "18274.13", "the run's copy of its input is what is paid");
}
