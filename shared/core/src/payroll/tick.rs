//! The schedule's daily tick (payroll-batch): every organisation whose pending month is due gets
//! its run asked for, by the same `payroll.run.requested` Paylinq would publish.
//!
//! The run is asked for only once its input is in the bucket and a rule table of its year is
//! built in: a run asked for without either would be recorded failed under the month's id, and
//! could never be run. Until then every tick notes that it waits (on the schedule, and as the
//! `ScheduledRunsWaiting` metric, which an alarm watches). A month Paylinq already ran by hand
//! (another run of the same period, not failed) is skipped, never paid twice. A tick repeated
//! publishes nothing new: the run exists, and the event's id is the run's.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::job::{RunRequest, RunStatus};
use super::run::PayrollError;
use super::schedule::{ScheduleState, TickOutcome};
use crate::metrics::{Metrics, SCHEDULED_RUNS_WAITING};
use crate::ports::{BlobExists, EventPublisher, PayrollRuns, PayrollSchedules};

#[derive(Clone)]
pub struct TickPorts {
    pub schedules: Arc<dyn PayrollSchedules>,
    pub runs: Arc<dyn PayrollRuns>,
    /// The payroll bucket, asked whether a month's input was uploaded.
    pub inputs: Arc<dyn BlobExists>,
    pub bus: Arc<dyn EventPublisher>,
    pub metrics: Arc<dyn Metrics>,
}

/// What a tick did: runs asked for, months found already run by hand, and runs that wait.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub requested: Vec<String>,
    pub skipped: Vec<String>,
    pub waiting: Vec<String>,
}

pub struct ScheduleTick {
    ports: TickPorts,
    /// The rule tables payroll-batch has built in.
    table_ids: Vec<String>,
}

impl ScheduleTick {
    pub fn new(ports: TickPorts, table_ids: Vec<String>) -> Self {
        Self { ports, table_ids }
    }

    /// The tick scheduled for `at` (its date, in UTC, is the day that counts: the template's
    /// schedule fires in the morning, Amsterdam time, the same date). Every due schedule is
    /// handled even if one fails; the tick fails then (and comes back) with the first error.
    pub async fn tick(&self, at: DateTime<Utc>) -> Result<TickReport, PayrollError> {
        let mut report = TickReport::default();
        let mut first_error = None;
        for state in self.ports.schedules.list_schedules().await? {
            if let Err(e) = self.one(&state, at, &mut report).await {
                tracing::error!(organization = %state.schedule.organization_id, error = %e, "scheduled payroll run not asked for");
                first_error.get_or_insert(e);
            }
        }
        if !report.waiting.is_empty() {
            self.ports.metrics.record(&[], &[crate::metrics::Metric::count(SCHEDULED_RUNS_WAITING, report.waiting.len())]);
        }
        first_error.map_or(Ok(report), Err)
    }

    async fn one(&self, state: &ScheduleState, at: DateTime<Utc>, report: &mut TickReport) -> Result<(), PayrollError> {
        let Some(request) = state.schedule.due(at.date_naive(), state.last_settled.as_deref()) else { return Ok(()) };
        let org = &request.organization_id;
        let who = format!("{org}/{}", request.payroll_run_id);
        let runs = &self.ports.runs;
        if runs.get_run(org, &request.payroll_run_id).await?.is_some() {
            // Asked for before, and the note of it lost: settle the month now.
            return self.note(&request, at, "requested", format!("asked for run {}", request.payroll_run_id)).await;
        }
        // A month Paylinq already ran by hand is not run again under the schedule's id.
        let (recent, _) = runs.list_runs(Some(org), None, 100).await?;
        if let Some(by_hand) = recent.iter().find(|r| r.request.period == request.period && r.status != RunStatus::Failed) {
            let detail = format!("already run by hand as {}", by_hand.request.payroll_run_id);
            self.note(&request, at, "skipped", detail).await?;
            report.skipped.push(who);
            return Ok(());
        }
        let waiting_for = if !self.table_ids.contains(&request.table_id()) {
            Some(format!(
                "waiting for a rule table {}: add rules/payroll/{}.json, or name one in the schedule",
                request.table_id(),
                request.table_id()
            ))
        } else if !self.ports.inputs.blob_exists(&request.input).await? {
            Some(format!("waiting for its input, {}", request.input))
        } else {
            None
        };
        if let Some(why) = waiting_for {
            tracing::warn!(run = %who, reason = %why, "scheduled payroll run is due and cannot be asked for yet");
            self.note(&request, at, "waiting", why).await?;
            report.waiting.push(who);
            return Ok(());
        }
        for outcome in self.ports.bus.publish(&[request.requested_event(at)]).await {
            outcome.map_err(|e| PayrollError::Publish(e.0))?;
        }
        self.note(&request, at, "requested", format!("asked for run {}", request.payroll_run_id)).await?;
        report.requested.push(who);
        Ok(())
    }

    async fn note(&self, request: &RunRequest, at: DateTime<Utc>, outcome: &str, detail: String) -> Result<(), PayrollError> {
        let tick = TickOutcome {
            at,
            period: request.period.clone(),
            payroll_run_id: request.payroll_run_id.clone(),
            outcome: outcome.into(),
            detail,
        };
        Ok(self.ports.schedules.note_tick(&request.organization_id, &tick).await?)
    }
}
