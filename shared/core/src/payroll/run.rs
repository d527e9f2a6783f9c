//! The payroll-batch workflow over its ports. A run request is split into chunks on the chunk
//! queue; each chunk worker computes its employees, writes their payslips and its result, and
//! counts the chunk once; the worker that counts the last chunk builds the run's bank file,
//! journal and report from the chunk results and announces the run.
//!
//! Why nothing is paid, counted or announced twice, whatever is redelivered or crashes:
//! - every object has a key derived from the run (and the chunk or employee): writing it again
//!   writes the same bytes to the same place;
//! - a chunk is counted by one conditional write (its mark and the run's progress together);
//! - the bank file is built once, at the end, from one result per chunk, and each input line
//!   belongs to exactly one chunk;
//! - every event has an id derived from the run, so a repeat is the same event to its consumers;
//! - the run is completed by a conditional write, and `payroll.completed` is marked sent after
//!   it went out (a crash between the two sends it again, with the same id).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::compute::{payslip, EmployeeLine};
use super::job::{event_id, ChunkMessage, ChunkResult, Payment, Rejection, RunRecord, RunRequest, RunStatus, Totals};
use super::pdf::{render, Employer};
use super::rules::RuleTable;
use super::sepa::{credit_transfer, Debtor, Transfer};
use crate::mail::request::requested_event;
use crate::metrics::{Metric, Metrics, EMPLOYEES_PAID, EMPLOYEES_REJECTED, PAYROLL_RUNS_COMPLETED};
use crate::model::envelope::EventEnvelope;
use crate::model::mail::{Content, MailRequest, Recipients, Sender};
use crate::ports::{BlobReader, BlobWriter, ChunkQueue, EventPublisher, LinkSigner, PayrollRuns, StoreError};

#[derive(Clone)]
pub struct PayrollPorts {
    pub runs: Arc<dyn PayrollRuns>,
    /// The payroll bucket: the input Paylinq uploaded, and every output.
    pub reader: Arc<dyn BlobReader>,
    pub writer: Arc<dyn BlobWriter>,
    pub bus: Arc<dyn EventPublisher>,
    pub chunks: Arc<dyn ChunkQueue>,
    pub metrics: Arc<dyn Metrics>,
    /// Links to the payslips, for their e-mails.
    pub links: Arc<dyn LinkSigner>,
}

#[derive(Debug, Clone)]
pub struct PayrollConfig {
    /// Employees per chunk.
    pub chunk_size: u32,
    /// Every rule table built in.
    pub tables: Vec<RuleTable>,
    /// How long the link in a payslip's e-mail works.
    pub link_lifetime: std::time::Duration,
}

/// Why a message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum PayrollError {
    /// A store or the bus failed: the message comes back and is handled again.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the bus refused an event: {0}")]
    Publish(String),
    /// The message can never be handled (a malformed request, a chunk of no run's); it is
    /// dropped with this reason.
    #[error("{0}")]
    Refused(String),
    /// The run cannot go on without a person (its input copy or a chunk result is gone, a rule
    /// table left the build, totals do not reconcile): the message fails, comes back, and ends
    /// in the payroll dead-letter queue, whose alarm calls someone; the run stays `running`.
    #[error("{0}")]
    Fault(String),
}

pub struct PayrollBatch {
    ports: PayrollPorts,
    config: PayrollConfig,
}

impl PayrollBatch {
    pub fn new(ports: PayrollPorts, config: PayrollConfig) -> Self {
        Self { ports, config }
    }

    /// A run request: recorded (failed, with the reason, when it cannot run), announced and
    /// split into chunks. The input is copied into the run first (`input-<sha256>.jsonl`) and
    /// everything after reads that copy, so a file changed or replaced meanwhile cannot make
    /// the split and the chunks disagree. A repeat of a running run splits the run's own copy
    /// again and sends its chunks again (harmless: each is counted once); a repeat of a finished
    /// run does nothing; a different request under a recorded run's id is refused.
    pub async fn request(&self, request: &RunRequest, now: DateTime<Utc>) -> Result<RunRecord, PayrollError> {
        if let Some(why) = request.problems() {
            return Err(PayrollError::Refused(why));
        }
        let runs = &self.ports.runs;
        let mut run = match runs.get_run(&request.organization_id, &request.payroll_run_id).await? {
            Some(existing) => existing,
            None => {
                let record = self.record(request, now).await?;
                runs.create_run(&record).await?;
                // Whoever created the run (this call or a concurrent one), its record is the truth.
                runs.get_run(&request.organization_id, &request.payroll_run_id).await?.unwrap_or(record)
            }
        };
        if run.request != *request {
            return Err(PayrollError::Refused(format!(
                "payroll run {} exists for another request; this one is ignored",
                request.payroll_run_id
            )));
        }
        if run.status != RunStatus::Running {
            return Ok(run);
        }
        let lines = self.snapshot(&run).await?;
        let chunks = split(&run, &lines, self.config.chunk_size);
        run.chunks_total = chunks.len() as u32;
        let started = request.event("payroll.started", now, json!({"employeeCount": run.employees_total}));
        self.publish(&[started]).await?;
        if chunks.is_empty() {
            self.finish(&run, now).await?;
        } else {
            self.ports.chunks.send_chunks(&chunks).await?;
        }
        Ok(run)
    }

    /// The run's first record: running with its split, or failed with the reason (no rule
    /// table, no input). The input is copied into the run before the record names the copy.
    async fn record(&self, request: &RunRequest, now: DateTime<Utc>) -> Result<RunRecord, PayrollError> {
        let mut record = RunRecord {
            request: request.clone(),
            status: RunStatus::Running,
            input_copy: String::new(),
            chunks_total: 0,
            chunks_done: 0,
            employees_total: 0,
            employees_done: 0,
            reason: None,
            totals: None,
            created_at: now,
            completed_at: None,
            announced: false,
        };
        let table = self.config.tables.iter().find(|t| t.id == request.table_id());
        let input = self.ports.reader.get_blob(&request.input).await?;
        let (Some(_), Some(input)) = (table, input) else {
            record.status = RunStatus::Failed;
            record.reason = Some(match table {
                None => format!("no rule table {} (add rules/payroll/{}.json)", request.table_id(), request.table_id()),
                Some(_) => format!("no input at {} in the payroll bucket", request.input),
            });
            return Ok(record);
        };
        let digest = crate::crypto::sha256_hex(&input);
        record.input_copy = format!("{}input-{}.jsonl", request.prefix(), &digest[..16]);
        let lines = input_lines(&input);
        record.employees_total = lines.len() as u32;
        record.chunks_total = lines.len().div_ceil(self.config.chunk_size.max(1) as usize) as u32;
        self.ports.writer.put_blob(&record.input_copy, input, "application/x-ndjson").await?;
        Ok(record)
    }

    /// The run's copy of its input, as numbered lines.
    async fn snapshot(&self, run: &RunRecord) -> Result<Vec<(u32, String)>, PayrollError> {
        let bytes = self.ports.reader.get_blob(&run.input_copy).await?;
        let bytes = bytes.ok_or_else(|| PayrollError::Fault(format!("the run's copy of its input ({}) is gone", run.input_copy)))?;
        Ok(input_lines(&bytes))
    }

    /// One chunk: its payslips written, its result kept, counted once; the last one finishes the run.
    pub async fn chunk(&self, message: &ChunkMessage, now: DateTime<Utc>) -> Result<(), PayrollError> {
        let runs = &self.ports.runs;
        let Some(run) = runs.get_run(&message.organization_id, &message.payroll_run_id).await? else {
            return Err(PayrollError::Fault(format!("no run {} for chunk {}", message.payroll_run_id, message.chunk)));
        };
        if run.status == RunStatus::Completed {
            return self.finish(&run, now).await;
        }
        if run.status == RunStatus::Failed || message.chunk == 0 || message.chunk > run.chunks_total {
            return Err(PayrollError::Refused(format!("chunk {} is not one of run {}'s", message.chunk, message.payroll_run_id)));
        }
        let request = &run.request;
        let table = self.config.tables.iter().find(|t| t.id == request.table_id());
        let table = table.ok_or_else(|| PayrollError::Fault(format!("no rule table {} in this build", request.table_id())))?;
        let lines = self.snapshot(&run).await?;
        // The chunk's lines, from the run's own split (never the message's word for it).
        let Some(mine) = split(&run, &lines, self.config.chunk_size).into_iter().find(|c| c.chunk == message.chunk) else {
            return Err(PayrollError::Fault(format!(
                "run {} has no chunk {} at chunk size {}",
                request.payroll_run_id, message.chunk, self.config.chunk_size
            )));
        };
        let repeated = repeated_ids(&lines);
        let mut result = ChunkResult { chunk: message.chunk, paid: Vec::new(), rejected: Vec::new(), totals: Totals::default() };
        let mut events = Vec::new();
        let employer = Employer { name: &request.employer.name, pay_date: &request.pay_date.to_string() };
        for (n, text) in lines.iter().filter(|(n, _)| (mine.first_line..=mine.last_line).contains(n)) {
            let line: EmployeeLine = match serde_json::from_str(text) {
                Ok(l) => l,
                Err(e) => {
                    result.rejected.push(Rejection { line: *n, employee_id: None, reason: format!("not an employee record: {e}") });
                    continue;
                }
            };
            if let Some(on) = repeated.get(&line.employee_id) {
                let reason =
                    format!("employee {} appears on lines {on:?}: none of them is paid; send one line per employee", line.employee_id);
                result.rejected.push(Rejection { line: *n, employee_id: Some(line.employee_id.clone()), reason });
                continue;
            }
            let id = format!("{}-{}", request.payroll_run_id, line.employee_id);
            let slip = match payslip(&line, table, &request.period, id) {
                Ok(p) => p,
                Err(refusal) => {
                    result.rejected.push(Rejection { line: *n, employee_id: Some(line.employee_id.clone()), reason: refusal.0 });
                    continue;
                }
            };
            let key = format!("{}payslips/{}", request.prefix(), slip.employee_id);
            let json = serde_json::to_vec_pretty(&slip).map_err(|e| StoreError::new("encode payslip", e))?;
            self.ports.writer.put_blob(&format!("{key}.json"), json, "application/json").await?;
            self.ports.writer.put_blob(&format!("{key}.pdf"), render(&slip, &employer), "application/pdf").await?;
            result.totals.add(&slip);
            let payload = json!({"payslipId": slip.payslip_id, "employeeId": slip.employee_id, "grossPay": slip.gross.to_string(),
                "netPay": slip.net_pay.to_string(), "payslipKey": format!("{key}.pdf")});
            let mut generated = request.event("payslip.generated", now, payload);
            generated.event_id = event_id(request, &format!("payslip:{}", slip.employee_id));
            events.push(generated);
            result.paid.push(Payment {
                line: *n,
                payslip_id: slip.payslip_id,
                employee_id: slip.employee_id,
                name: slip.name,
                email: slip.email,
                iban: slip.iban,
                bic: slip.bic,
                net: slip.net_pay,
            });
        }
        if !result.totals.reconciles() {
            return Err(PayrollError::Fault(format!("chunk {} does not reconcile: {:?}", message.chunk, result.totals)));
        }
        let bytes = serde_json::to_vec(&result).map_err(|e| StoreError::new("encode chunk", e))?;
        self.ports.writer.put_blob(&chunk_key(request, message.chunk), bytes, "application/json").await?;
        self.publish(&events).await?;
        let (_, run) = runs.count_chunk(&request.organization_id, &request.payroll_run_id, message.chunk, mine.count).await?;
        if run.chunks_done >= run.chunks_total {
            self.finish(&run, now).await?;
        }
        Ok(())
    }

    /// The end of a run, once every chunk is counted: the bank file, journal and report from
    /// the chunk results, the run completed; then each payslip's e-mail and `payroll.completed`,
    /// after the run is committed, never before. Safe to repeat at any point.
    async fn finish(&self, run: &RunRecord, now: DateTime<Utc>) -> Result<(), PayrollError> {
        let request = &run.request;
        if run.announced || run.status == RunStatus::Failed {
            return Ok(());
        }
        let (payments, rejected, totals) = self.results(run).await?;
        if run.status == RunStatus::Running {
            if !totals.reconciles() || payments.iter().map(|p| p.net).sum::<Decimal>() != totals.net {
                return Err(PayrollError::Fault(format!("run {} does not reconcile: {totals:?}", request.payroll_run_id)));
            }
            self.write_outputs(run, &payments, &rejected, &totals).await?;
            if self.ports.runs.complete_run(&request.organization_id, &request.payroll_run_id, &totals, now).await? {
                self.ports.metrics.record(
                    &[],
                    &[
                        Metric::count(PAYROLL_RUNS_COMPLETED, 1),
                        Metric::count(EMPLOYEES_PAID, totals.employees as usize),
                        Metric::count(EMPLOYEES_REJECTED, rejected.len()),
                    ],
                );
            }
        }
        self.mail_payslips(request, &payments, now).await?;
        let payload =
            json!({"employeeCount": totals.employees, "totalAmount": totals.net.to_string(), "grossAmount": totals.gross.to_string()});
        self.publish(&[request.event("payroll.completed", now, payload)]).await?;
        self.ports.runs.mark_announced(&request.organization_id, &request.payroll_run_id).await?;
        Ok(())
    }

    /// Every chunk's result, merged: payments and rejections in input order, and the totals.
    async fn results(&self, run: &RunRecord) -> Result<(Vec<Payment>, Vec<Rejection>, Totals), PayrollError> {
        let (mut payments, mut rejected, mut totals) = (Vec::new(), Vec::new(), Totals::default());
        for chunk in 1..=run.chunks_total {
            let key = chunk_key(&run.request, chunk);
            let bytes = self
                .ports
                .reader
                .get_blob(&key)
                .await?
                .ok_or_else(|| StoreError::new("chunk result", format!("chunk {chunk} counted but {key} is missing")))?;
            let result: ChunkResult = serde_json::from_slice(&bytes).map_err(|e| StoreError::new("decode chunk", e))?;
            totals.merge(&result.totals);
            payments.extend(result.paid);
            rejected.extend(result.rejected);
        }
        payments.sort_by_key(|p| p.line);
        rejected.sort_by_key(|r| r.line);
        Ok((payments, rejected, totals))
    }

    /// One `email.requested` per paid employee (Paylinq's `payslip-available` template with a
    /// time-limited link to the PDF), each with an id derived from the run and the employee:
    /// the mail function sends a request once, however often it is put on the bus.
    async fn mail_payslips(&self, request: &RunRequest, payments: &[Payment], now: DateTime<Utc>) -> Result<(), PayrollError> {
        let mut mails = Vec::with_capacity(payments.len());
        for p in payments {
            let link =
                self.ports.links.link(&format!("{}payslips/{}.pdf", request.prefix(), p.employee_id), self.config.link_lifetime).await?;
            let mut data = Map::new();
            data.insert("employeeName".into(), json!(p.name));
            data.insert("period".into(), json!(request.period));
            data.insert("netPay".into(), json!(format!("€ {:.2}", p.net)));
            data.insert("payDate".into(), json!(request.pay_date.to_string()));
            data.insert("payslipUrl".into(), json!(link));
            let mail = MailRequest {
                sender: Sender::Paylinq,
                recipients: Recipients { to: vec![p.email.clone()], ..Recipients::default() },
                reply_to: Vec::new(),
                tags: Default::default(),
                content: Content::Template { name: "payslip-available".into(), data },
            };
            let id = event_id(request, &format!("mail:{}", p.employee_id));
            mails.push(requested_event(id, "paylinq", &request.organization_id, Some(request.payroll_run_id.clone()), &mail, now));
        }
        self.publish(&mails).await
    }

    /// `sepa.xml` (net amounts above zero, in input order), `journal.json` and `report.json`.
    async fn write_outputs(
        &self,
        run: &RunRecord,
        payments: &[Payment],
        rejected: &[Rejection],
        totals: &Totals,
    ) -> Result<(), PayrollError> {
        let request = &run.request;
        let transfers: Vec<Transfer> = payments
            .iter()
            .filter(|p| p.net > Decimal::ZERO)
            .map(|p| Transfer {
                end_to_end_id: end_to_end(&request.payroll_run_id, &p.employee_id),
                amount: p.net,
                name: p.name.clone(),
                iban: p.iban.clone(),
                bic: p.bic.clone(),
                remittance: format!("Salary {} {}", request.period, p.employee_id),
            })
            .collect();
        let debtor = Debtor { name: request.employer.name.clone(), iban: request.employer.iban.clone(), bic: request.employer.bic.clone() };
        let prefix = request.prefix();
        // A credit transfer holds at least one payment: with none, there is no bank file.
        if !transfers.is_empty() {
            let xml = credit_transfer(&end_to_end(&request.payroll_run_id, "run"), run.created_at, request.pay_date, &debtor, &transfers);
            self.ports.writer.put_blob(&format!("{prefix}sepa.xml"), xml.into_bytes(), "application/xml").await?;
        }
        let journal = json!({
            "payrollRunId": request.payroll_run_id, "period": request.period, "currency": "EUR",
            "lines": [
                {"account": "wages", "debit": totals.gross.to_string()},
                {"account": "wage tax payable", "credit": totals.wage_tax.to_string()},
                {"account": "pension payable (employee)", "credit": totals.pension.to_string()},
                {"account": "deductions payable", "credit": totals.deductions.to_string()},
                {"account": "net wages payable", "credit": totals.net.to_string()},
                {"account": "employer charges and pension", "debit": totals.employer_cost.to_string()},
                {"account": "employer charges and pension payable", "credit": totals.employer_cost.to_string()},
            ],
        });
        let report = json!({
            "payrollRunId": request.payroll_run_id, "period": request.period, "ruleTable": request.table_id(),
            "employeesInInput": run.employees_total, "employeesPaid": totals.employees, "transfers": transfers.len(),
            "rejected": rejected, "totals": totals,
        });
        for (name, doc) in [("journal.json", journal), ("report.json", report)] {
            let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::new("encode output", e))?;
            self.ports.writer.put_blob(&format!("{prefix}{name}"), bytes, "application/json").await?;
        }
        Ok(())
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<(), PayrollError> {
        for outcome in self.ports.bus.publish(events).await {
            outcome.map_err(|e| PayrollError::Publish(e.0))?;
        }
        Ok(())
    }
}

/// The run's chunks: its non-empty lines, `chunk_size` to a chunk, in order.
fn split(run: &RunRecord, lines: &[(u32, String)], chunk_size: u32) -> Vec<ChunkMessage> {
    lines
        .chunks(chunk_size.max(1) as usize)
        .enumerate()
        .map(|(i, group)| ChunkMessage {
            payroll_run_id: run.request.payroll_run_id.clone(),
            organization_id: run.request.organization_id.clone(),
            chunk: i as u32 + 1,
            first_line: group[0].0,
            last_line: group[group.len() - 1].0,
            count: group.len() as u32,
        })
        .collect()
}

/// Employee ids on more than one line, with those lines: none of them is paid (which line is
/// right is for the sender to say, not for Relay to guess).
fn repeated_ids(lines: &[(u32, String)]) -> HashMap<String, Vec<u32>> {
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    for (n, text) in lines {
        if let Some(id) = serde_json::from_str::<Value>(text).ok().and_then(|v| v.get("employeeId")?.as_str().map(str::to_string)) {
            seen.entry(id).or_default().push(*n);
        }
    }
    seen.retain(|_, on| on.len() > 1);
    seen
}

/// The input's non-empty lines, numbered from 1 as in the file.
fn input_lines(input: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(input)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i as u32 + 1, l.to_string()))
        .collect()
}

fn chunk_key(request: &RunRequest, chunk: u32) -> String {
    format!("{}chunks/{chunk:05}.json", request.prefix())
}

/// A SEPA id (at most 35 characters) unique per run and employee.
fn end_to_end(run_id: &str, what: &str) -> String {
    let digest = crate::crypto::sha256_hex(format!("{run_id}:{what}").as_bytes());
    format!("PR{}", &digest[..33])
}
