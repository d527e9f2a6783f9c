//! The payroll routes' use cases: `POST /v1/payroll-runs` (Paylinq asks for a run),
//! `GET /v1/payroll-runs` (runs, newest first), `GET /v1/payroll-runs/{id}` (its status,
//! progress, totals, report and links to its files) and `/v1/payroll-schedules` (the monthly
//! schedules the daily tick asks for runs by).
//!
//! A run is asked for by publishing `payroll.run.requested` with an id derived from the run,
//! so asking twice is one event to the payroll function, which records the run once; the same
//! run id with another body is a conflict, not a second run.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::job::{is_id, RunRecord, RunRequest, RunStatus};
use super::schedule::{input_key, period_of, PayrollSchedule, ScheduleState, RUN_ID_PREFIX};
use crate::manage::unavailable;
use crate::model::problem::{Problem, ProblemKind};
use crate::ports::{BlobReader, EventPublisher, LinkSigner, PayrollRuns, PayrollSchedules};

/// How long a link to a run's file works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct PayrollApiPorts {
    pub runs: Arc<dyn PayrollRuns>,
    pub bus: Arc<dyn EventPublisher>,
    /// The payroll bucket, for a finished run's report.
    pub reader: Arc<dyn BlobReader>,
    pub links: Arc<dyn LinkSigner>,
    pub schedules: Arc<dyn PayrollSchedules>,
}

pub struct PayrollApi {
    ports: PayrollApiPorts,
    /// The rule tables payroll-batch has built in (the same crate builds both).
    table_ids: Vec<String>,
}

impl PayrollApi {
    pub fn new(ports: PayrollApiPorts, table_ids: Vec<String>) -> Self {
        Self { ports, table_ids }
    }

    /// Asks for a run on behalf of `product` (only Paylinq runs payrolls). Answers 202 with the
    /// run as it stands, or 409 if its id was used for another request.
    pub async fn request(&self, product: &str, body: Value, now: DateTime<Utc>) -> Result<Value, Problem> {
        if product != "paylinq" {
            return Err(Problem::new(ProblemKind::Forbidden, "payroll runs are asked for with Paylinq's product key"));
        }
        let request: RunRequest = serde_json::from_value(body)
            .map_err(|e| Problem::new(ProblemKind::InvalidRequest, format!("not a payroll run request: {e}")))?;
        if let Some(why) = request.problems() {
            return Err(Problem::new(ProblemKind::InvalidRequest, why));
        }
        if request.payroll_run_id.starts_with(RUN_ID_PREFIX) {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                format!("payrollRunIds beginning with {RUN_ID_PREFIX} are the monthly schedule's"),
            ));
        }
        if !self.table_ids.contains(&request.table_id()) {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                format!("no rule table {} (tables: {})", request.table_id(), self.table_ids.join(", ")),
            ));
        }
        if let Some(run) = self.ports.runs.get_run(&request.organization_id, &request.payroll_run_id).await.map_err(unavailable)? {
            return if run.request == request {
                Ok(view(&run, None, None))
            } else {
                Err(Problem::new(
                    ProblemKind::Conflict,
                    format!("payroll run {} was asked for with another request; use a new payrollRunId", request.payroll_run_id),
                ))
            };
        }
        let event = request.requested_event(now);
        for outcome in self.ports.bus.publish(&[event]).await {
            outcome.map_err(|e| {
                tracing::error!(error = %e, "payroll.run.requested not published");
                Problem::unavailable("Relay could not put the request on its bus; retry with the same body", 2)
            })?;
        }
        Ok(
            json!({"payrollRunId": request.payroll_run_id, "organizationId": request.organization_id, "period": request.period, "status": "requested"}),
        )
    }

    /// The run: status, progress, totals; once completed its report's rejections and links to
    /// its files, each valid for [`LINK_LIFETIME`].
    pub async fn view(&self, organization_id: &str, run_id: &str) -> Result<Value, Problem> {
        let Some(run) = self.ports.runs.get_run(organization_id, run_id).await.map_err(unavailable)? else {
            return Err(Problem::new(ProblemKind::NotFound, format!("no payroll run {run_id} in organisation {organization_id}")));
        };
        if run.status != RunStatus::Completed {
            return Ok(view(&run, None, None));
        }
        let prefix = run.request.prefix();
        let report: Option<Value> = self
            .ports
            .reader
            .get_blob(&format!("{prefix}report.json"))
            .await
            .map_err(unavailable)?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut links = Map::new();
        let files = [("sepa", "sepa.xml"), ("journal", "journal.json"), ("report", "report.json")];
        let transfers = report.as_ref().and_then(|r| r["transfers"].as_u64()).unwrap_or(0);
        for (name, file) in files.into_iter().filter(|(name, _)| *name != "sepa" || transfers > 0) {
            links.insert(name.into(), json!(self.ports.links.link(&format!("{prefix}{file}"), LINK_LIFETIME).await.map_err(unavailable)?));
        }
        Ok(view(&run, report.map(|r| r["rejected"].clone()), Some(Value::Object(links))))
    }
}

impl PayrollApi {
    /// A page of runs, newest first, of one organisation or of all.
    pub async fn list(&self, organization_id: Option<&str>, cursor: Option<&str>, limit: u32) -> Result<Value, Problem> {
        asked_organisation(organization_id)?;
        // A cursor is a run's listing key, `<created>~<organisation>~<run>`, of this same list.
        let parts: Vec<&str> = cursor.map(|c| c.splitn(3, '~').collect()).unwrap_or_default();
        let foreign = organization_id.is_some_and(|o| parts.get(1).is_some_and(|c| *c != o));
        if cursor.is_some() && (parts.len() != 3 || parts.iter().any(|p| p.is_empty()) || foreign) {
            return Err(Problem::new(ProblemKind::InvalidRequest, "cursor must be the nextCursor of a previous page of this list"));
        }
        let (runs, next) =
            self.ports.runs.list_runs(organization_id, cursor, limit.clamp(1, 100)).await.map_err(|e| match e.operation {
                "cursor" => Problem::new(ProblemKind::InvalidRequest, "cursor must be the nextCursor of a previous page"),
                _ => unavailable(e),
            })?;
        Ok(json!({"payrollRuns": runs.iter().map(|r| view(r, None, None)).collect::<Vec<_>>(), "nextCursor": next}))
    }

    /// Sets an organisation's monthly schedule (Paylinq or an operator). Answers the schedule as kept.
    pub async fn put_schedule(&self, organization_id: &str, body: Value, now: DateTime<Utc>) -> Result<Value, Problem> {
        let mut schedule: PayrollSchedule =
            serde_json::from_value(body).map_err(|e| Problem::new(ProblemKind::InvalidRequest, format!("not a payroll schedule: {e}")))?;
        if !schedule.organization_id.is_empty() {
            return Err(Problem::new(ProblemKind::InvalidRequest, "organizationId is the path's; leave it out of the body"));
        }
        schedule.organization_id = organization_id.to_string();
        if let Some(why) = schedule.problems() {
            return Err(Problem::new(ProblemKind::InvalidRequest, why));
        }
        // Replacing a schedule keeps its first period (re-settling it from today would skip a
        // month still pending) and what its ticks did.
        let all = self.ports.schedules.list_schedules().await.map_err(unavailable)?;
        let existing = all.into_iter().find(|s| s.schedule.organization_id == organization_id);
        if schedule.first_period.is_none() {
            schedule.first_period = existing.as_ref().and_then(|e| e.schedule.first_period.clone());
        }
        let schedule = schedule.settled(now.date_naive());
        let last_settled = existing.as_ref().and_then(|e| e.last_settled.clone());
        // The month it asks for next must have a rule table, or that run would be recorded failed.
        if let Some(month) = schedule.pending_month(last_settled.as_deref()) {
            let table = schedule.request_for(month).table_id();
            if !self.table_ids.contains(&table) {
                return Err(Problem::new(
                    ProblemKind::InvalidRequest,
                    format!(
                        "no rule table {table} for {} (tables: {}); name ruleTable, or add the table first",
                        period_of(month),
                        self.table_ids.join(", ")
                    ),
                ));
            }
        }
        self.ports.schedules.put_schedule(&schedule).await.map_err(unavailable)?;
        let last_tick = existing.and_then(|e| e.last_tick);
        Ok(schedule_view(&ScheduleState { schedule, last_tick, last_settled }, now))
    }

    /// Every schedule (of one organisation, when named), with what its last tick did and when
    /// it next asks for a run.
    pub async fn schedules(&self, organization_id: Option<&str>, now: DateTime<Utc>) -> Result<Value, Problem> {
        asked_organisation(organization_id)?;
        let all = self.ports.schedules.list_schedules().await.map_err(unavailable)?;
        let views: Vec<Value> =
            all.iter().filter(|s| organization_id.is_none_or(|o| s.schedule.organization_id == o)).map(|s| schedule_view(s, now)).collect();
        Ok(json!({ "payrollSchedules": views }))
    }

    /// Stops an organisation's schedule; runs already asked for go on.
    pub async fn delete_schedule(&self, organization_id: &str) -> Result<(), Problem> {
        match self.ports.schedules.delete_schedule(organization_id).await.map_err(unavailable)? {
            true => Ok(()),
            false => Err(Problem::new(ProblemKind::NotFound, format!("organisation {organization_id} has no payroll schedule"))),
        }
    }
}

/// An organisation named in a query must be an id (`?organizationId=` empty is not "all").
fn asked_organisation(organization_id: Option<&str>) -> Result<(), Problem> {
    match organization_id {
        Some(o) if !is_id(o) => Err(Problem::new(ProblemKind::InvalidRequest, "organizationId must be 1 to 64 letters, digits, - or _")),
        _ => Ok(()),
    }
}

fn schedule_view(state: &ScheduleState, now: DateTime<Utc>) -> Value {
    let schedule = &state.schedule;
    let mut v = serde_json::to_value(schedule).unwrap_or_default();
    if let Value::Object(map) = &mut v {
        if let Some((on, period)) = schedule.next_request(now.date_naive(), state.last_settled.as_deref()) {
            map.insert("nextRequest".into(), json!({"on": on, "period": period, "input": input_key(&schedule.organization_id, &period)}));
        }
        if let Some(last) = &state.last_tick {
            map.insert("lastTick".into(), json!(last));
        }
        if let Some(settled) = &state.last_settled {
            map.insert("lastSettled".into(), json!(settled));
        }
    }
    v
}

fn view(run: &RunRecord, rejected: Option<Value>, links: Option<Value>) -> Value {
    let r = &run.request;
    let mut v = json!({
        "payrollRunId": r.payroll_run_id, "organizationId": r.organization_id, "period": r.period, "payDate": r.pay_date,
        "ruleTable": r.table_id(), "status": run.status, "createdAt": run.created_at,
        "progress": {"chunksDone": run.chunks_done, "chunksTotal": run.chunks_total, "employeesDone": run.employees_done, "employeesTotal": run.employees_total},
    });
    let extra = [
        ("reason", run.reason.as_ref().map(|x| json!(x))),
        ("totals", run.totals.as_ref().map(|t| json!(t))),
        ("completedAt", run.completed_at.map(|t| json!(t))),
        ("rejected", rejected),
        ("links", links),
    ];
    if let Value::Object(map) = &mut v {
        for (k, value) in extra {
            if let Some(value) = value {
                map.insert(k.into(), value);
            }
        }
    }
    v
}
