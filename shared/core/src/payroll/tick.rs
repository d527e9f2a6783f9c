//! The schedule's daily tick (payroll-batch): every organisation whose monthly run is due and
//! not yet asked for gets it asked for, by the same `payroll.run.requested` Paylinq would publish.
//!
//! The run is asked for only once its input is in the bucket: a run asked for without one would
//! be recorded failed under the month's id, and the upload that came a day late could never be
//! run. Until then every tick notes that it waits (on the schedule, and as the
//! `PayrollInputsMissing` metric, which an alarm watches). A tick repeated, or one after the run
//! was asked for, publishes nothing new: the run exists, and the event's id is the run's.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::job::RunRequest;
use super::run::PayrollError;
use super::schedule::{PayrollSchedule, TickOutcome};
use crate::metrics::{Metrics, PAYROLL_INPUTS_MISSING};
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

/// What a tick did: runs asked for, and runs that wait for their input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub requested: Vec<String>,
    pub waiting: Vec<String>,
}

pub struct ScheduleTick {
    ports: TickPorts,
}

impl ScheduleTick {
    pub fn new(ports: TickPorts) -> Self {
        Self { ports }
    }

    /// The tick scheduled for `at` (its date, in UTC, is the day that counts: the template's
    /// schedule fires in the morning, Amsterdam time, the same date). Every due schedule is
    /// handled even if one fails; the tick fails then (and comes back) with the first error.
    pub async fn tick(&self, at: DateTime<Utc>) -> Result<TickReport, PayrollError> {
        let mut report = TickReport::default();
        let mut first_error = None;
        for (schedule, _) in self.ports.schedules.list_schedules().await? {
            if let Err(e) = self.one(&schedule, at, &mut report).await {
                tracing::error!(organization = %schedule.organization_id, error = %e, "scheduled payroll run not asked for");
                first_error.get_or_insert(e);
            }
        }
        if !report.waiting.is_empty() {
            self.ports.metrics.record(&[], &[crate::metrics::Metric::count(PAYROLL_INPUTS_MISSING, report.waiting.len())]);
        }
        first_error.map_or(Ok(report), Err)
    }

    async fn one(&self, schedule: &PayrollSchedule, at: DateTime<Utc>, report: &mut TickReport) -> Result<(), PayrollError> {
        let Some(request) = schedule.due(at.date_naive()) else { return Ok(()) };
        if self.ports.runs.get_run(&request.organization_id, &request.payroll_run_id).await?.is_some() {
            return Ok(());
        }
        let who = format!("{}/{}", request.organization_id, request.payroll_run_id);
        if !self.ports.inputs.blob_exists(&request.input).await? {
            tracing::warn!(run = %who, input = %request.input, "scheduled payroll run is due; its input is not uploaded yet");
            self.note(&request, at, "waiting", format!("waiting for its input, {}", request.input)).await?;
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
