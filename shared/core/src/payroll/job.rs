//! A payroll run as it moves through the queues: the request, the run's record, a chunk's
//! message and what a chunk leaves behind. Keys and event ids are derived from the run's id, so
//! every write and every announcement of a redelivered message lands on the same place.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use serde_json::{json, Map, Value};

use super::compute::Payslip;
use crate::model::envelope::EventEnvelope;

/// `payroll.run.requested`'s payload (or `POST /v1/payroll-runs`' body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    /// Chosen by Paylinq; a run is done once per id.
    pub payroll_run_id: String,
    pub organization_id: String,
    /// `2025-11`.
    pub period: String,
    /// The input's key in the payroll bucket: JSON lines, one employee each.
    pub input: String,
    pub pay_date: NaiveDate,
    pub employer: EmployerAccount,
    /// A table in `rules/payroll/`; `nl-<year of the period>` when left out.
    #[serde(default)]
    pub rule_table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmployerAccount {
    pub name: String,
    pub iban: String,
    #[serde(default)]
    pub bic: Option<String>,
}

impl RunRequest {
    /// What is wrong with the request, before anything is written.
    pub fn problems(&self) -> Option<String> {
        if !is_id(&self.payroll_run_id) {
            return Some("payrollRunId must be 1 to 64 letters, digits, - or _".into());
        }
        if !is_id(&self.organization_id) {
            return Some("organizationId must be 1 to 64 letters, digits, - or _".into());
        }
        if self.period_start().is_none() {
            return Some("period must be a month such as 2025-11".into());
        }
        // Only the organisation's own uploads: a run can never read another organisation's file.
        let own = format!("inputs/{}/", self.organization_id);
        if !self.input.starts_with(&own) || self.input.len() > 512 || self.input.contains("..") {
            return Some(format!("input must be a key under {own} in the payroll bucket"));
        }
        if self.employer.name.trim().is_empty() || self.employer.name.chars().count() > 140 {
            return Some("employer.name must be 1 to 140 characters".into());
        }
        if self.employer.bic.as_deref().is_some_and(|b| !super::sepa::bic_is_valid(b)) {
            return Some("employer.bic is not a BIC (8 or 11 characters, as ABNANL2A)".into());
        }
        if !super::sepa::iban_is_valid(&super::sepa::normalize_iban(&self.employer.iban)) {
            return Some("employer.iban fails its checksum or format".into());
        }
        None
    }

    pub fn period_start(&self) -> Option<NaiveDate> {
        month_start(&self.period)
    }

    /// The rule table this run is computed with.
    pub fn table_id(&self) -> String {
        self.rule_table.clone().unwrap_or_else(|| format!("nl-{}", self.period.get(..4).unwrap_or("")))
    }

    /// An event of this run (`payroll.run.requested`, `payroll.started`, ...), from Paylinq
    /// (its owner in the catalogue), with an id derived from the run and its type, and a payload
    /// of the run's id and period and `extra`'s fields.
    pub fn event(&self, event_type: &str, now: DateTime<Utc>, extra: Value) -> EventEnvelope {
        let mut payload = Map::new();
        payload.insert("payrollRunId".into(), json!(self.payroll_run_id));
        payload.insert("period".into(), json!(self.period));
        if let Value::Object(more) = extra {
            payload.extend(more);
        }
        EventEnvelope {
            event_id: event_id(self, event_type),
            event_type: event_type.into(),
            event_version: "1.0".into(),
            source_product: "paylinq".into(),
            organization_id: self.organization_id.clone(),
            timestamp: now,
            correlation_id: Some(self.payroll_run_id.clone()),
            payload: Some(payload),
            payload_ref: None,
        }
    }

    /// `payroll.run.requested` for this run: the request as its payload (its organisation is the
    /// envelope's). Its id is derived from the run, so asking twice is one event.
    pub fn requested_event(&self, now: DateTime<Utc>) -> EventEnvelope {
        let mut payload = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = payload.as_object_mut() {
            fields.remove("organizationId");
        }
        self.event("payroll.run.requested", now, payload)
    }

    /// Where everything of this run is kept in the payroll bucket.
    pub fn prefix(&self) -> String {
        format!("runs/{}/{}/", self.organization_id, self.payroll_run_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Split into chunks; the chunks are being computed.
    Running,
    Completed,
    /// Could not run at all (no rule table, no input); nothing was paid.
    Failed,
}

/// The run's record: the request, its progress and, once done, its totals and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub request: RunRequest,
    pub status: RunStatus,
    /// The run's copy of its input (`runs/…/input-<sha256>.jsonl`), which every chunk reads.
    #[serde(default)]
    pub input_copy: String,
    pub chunks_total: u32,
    pub chunks_done: u32,
    pub employees_total: u32,
    pub employees_done: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// `payroll.completed` went out.
    #[serde(default)]
    pub announced: bool,
}

impl RunRecord {
    /// The run's place in the list of runs, newest first: `<created>~<organisation>~<run>`
    /// (ids never hold `~`). A page's cursor is its last run's key.
    pub fn listing_key(&self) -> String {
        let created = self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        format!("{created}~{}~{}", self.request.organization_id, self.request.payroll_run_id)
    }
}

/// A chunk of the run's input for one worker: the non-empty lines from `first_line` to
/// `last_line` (1-based line numbers of the file, both included), `count` of them. The worker
/// checks it against the run's own split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkMessage {
    pub payroll_run_id: String,
    pub organization_id: String,
    pub chunk: u32,
    pub first_line: u32,
    pub last_line: u32,
    pub count: u32,
}

/// A line that is not paid, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    pub reason: String,
}

/// Sums over payslips; `net + wage tax + pension + deductions = gross` holds for each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub employees: u32,
    pub gross: Decimal,
    pub pension: Decimal,
    pub wage_tax: Decimal,
    pub deductions: Decimal,
    pub net: Decimal,
    pub employer_cost: Decimal,
}

impl Totals {
    pub fn add(&mut self, p: &Payslip) {
        self.employees += 1;
        self.gross += p.gross;
        self.pension += p.pension;
        self.wage_tax += p.wage_tax;
        self.deductions += p.deductions;
        self.net += p.net_pay;
        self.employer_cost += p.employer_cost;
    }

    pub fn merge(&mut self, other: &Totals) {
        self.employees += other.employees;
        self.gross += other.gross;
        self.pension += other.pension;
        self.wage_tax += other.wage_tax;
        self.deductions += other.deductions;
        self.net += other.net;
        self.employer_cost += other.employer_cost;
    }

    pub fn reconciles(&self) -> bool {
        self.net + self.wage_tax + self.pension + self.deductions == self.gross
    }
}

/// What a chunk leaves in the bucket (`chunks/<n>.json`): its payslips' payment lines, its
/// rejections and its totals. The run's bank file and journal are built from these alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkResult {
    pub chunk: u32,
    pub paid: Vec<Payment>,
    pub rejected: Vec<Rejection>,
    pub totals: Totals,
}

/// One payslip's payment, as the bank file needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub line: u32,
    pub payslip_id: String,
    pub employee_id: String,
    pub name: String,
    /// Where the payslip's e-mail goes, once the run is complete.
    pub email: String,
    pub iban: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
    pub net: Decimal,
}

/// A run's or an organisation's id: 1 to 64 letters, digits, `-` or `_` (so it can sit in keys
/// and listing cursors, which `~` and `#` separate).
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The first day of a month written `2025-11`.
pub fn month_start(period: &str) -> Option<NaiveDate> {
    let (y, m) = period.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// An event id derived from the run and what it announces, so a redelivered message announces
/// with the same id and consumers (deliver among them) see one event.
pub fn event_id(run: &RunRequest, what: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("relay:payroll:{}:{}:{what}", run.organization_id, run.payroll_run_id).as_bytes())
}
