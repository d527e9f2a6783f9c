//! The payroll table: per run (pk `RUN#<organisation>#<run>`), the run's item (sk `RUN`: its
//! request and totals as JSON, its progress as numbers that are added to atomically) and one
//! mark per counted chunk (sk `CHUNK#<n>`); per organisation with a monthly schedule, its
//! schedule (pk `SCHEDULE`, sk the organisation: the schedule and its last tick as JSON).
//!
//! Runs are listed newest first through two indexes on the run's listing key (`created`):
//! `byCreated` (every run, under the constant `listed`) and `byOrganization`. Runs are few (a
//! handful per organisation a month), so one partition holds the platform's list easily.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use relay_core::payroll::job::{RunRecord, RunStatus, Totals};
use relay_core::payroll::schedule::{PayrollSchedule, ScheduleState, TickOutcome};
use relay_core::ports::{PayrollRuns, PayrollSchedules, StoreError};
use serde::{Deserialize, Serialize};

use super::{
    conditional, conditional_transaction, get_consistent, get_n, get_s, key, n, newest_first, partition, put_new, s, Item, OrStoreError,
};

/// The payroll runs in their own table (only the payroll function and the API's payroll routes
/// use it, so it is not among every function's `Tables`).
#[derive(Clone)]
pub struct DynamoPayroll {
    client: Client,
    table: String,
}

impl DynamoPayroll {
    pub fn new(config: &aws_config::SdkConfig, table: String) -> Self {
        Self { client: Client::new(config), table }
    }

    fn run_key(organization_id: &str, run_id: &str) -> Item {
        key::config(&format!("RUN#{organization_id}#{run_id}"), "RUN")
    }

    fn schedule_key(organization_id: &str) -> Item {
        key::config(SCHEDULE, organization_id)
    }
}

/// The `listed` of every run's item: the `byCreated` index's one partition.
const LISTED: &str = "RUN";
/// The partition of the schedules.
const SCHEDULE: &str = "SCHEDULE";

/// The index key of the run after which a page starts, from its listing key (the cursor).
fn listing_start(cursor: &str, by_organization: bool) -> Result<Item, StoreError> {
    let bad = || StoreError::new("cursor", "not a cursor of this list");
    let mut parts = cursor.splitn(3, '~');
    let (Some(at), Some(org), Some(run)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    if at.is_empty() || org.is_empty() || run.is_empty() {
        return Err(bad());
    }
    let mut start = DynamoPayroll::run_key(org, run);
    start.insert("created".into(), s(cursor));
    match by_organization {
        true => start.insert("organizationId".into(), s(org)),
        false => start.insert("listed".into(), s(LISTED)),
    };
    Ok(start)
}

/// What the run's item keeps as JSON (everything but its progress counters and state).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    request: relay_core::payroll::job::RunRequest,
    #[serde(default)]
    input_copy: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    reason: Option<String>,
}

fn status_text(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
    }
}

fn record(item: &Item) -> Option<RunRecord> {
    let doc: Doc = serde_json::from_str(get_s(item, "doc")?).ok()?;
    let status = match get_s(item, "status")? {
        "running" => RunStatus::Running,
        "completed" => RunStatus::Completed,
        _ => RunStatus::Failed,
    };
    let count = |name: &str| get_n(item, name).unwrap_or(0) as u32;
    Some(RunRecord {
        request: doc.request,
        input_copy: doc.input_copy,
        status,
        chunks_total: count("chunksTotal"),
        chunks_done: count("chunksDone"),
        employees_total: count("employeesTotal"),
        employees_done: count("employeesDone"),
        reason: doc.reason,
        totals: get_s(item, "totals").and_then(|t| serde_json::from_str::<Totals>(t).ok()),
        created_at: doc.created_at,
        completed_at: get_s(item, "completedAt").and_then(|t| t.parse().ok()),
        announced: get_s(item, "announced") == Some("yes"),
    })
}

#[async_trait]
impl PayrollRuns for DynamoPayroll {
    async fn create_run(&self, run: &RunRecord) -> Result<bool, StoreError> {
        let doc = Doc {
            request: run.request.clone(),
            input_copy: run.input_copy.clone(),
            created_at: run.created_at,
            reason: run.reason.clone(),
        };
        let mut item = Self::run_key(&run.request.organization_id, &run.request.payroll_run_id);
        item.insert("doc".into(), s(&serde_json::to_string(&doc).map_err(|e| StoreError::new("encode run", e))?));
        item.insert("status".into(), s(status_text(run.status)));
        item.insert("chunksTotal".into(), n(i64::from(run.chunks_total)));
        item.insert("chunksDone".into(), n(0));
        item.insert("employeesTotal".into(), n(i64::from(run.employees_total)));
        item.insert("employeesDone".into(), n(0));
        item.insert("organizationId".into(), s(&run.request.organization_id));
        item.insert("listed".into(), s(LISTED));
        item.insert("created".into(), s(&run.listing_key()));
        put_new(&self.client, &self.table, item).await
    }

    async fn get_run(&self, organization_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(get_consistent(&self.client, &self.table, Self::run_key(organization_id, run_id)).await?.as_ref().and_then(record))
    }

    async fn count_chunk(&self, organization_id: &str, run_id: &str, chunk: u32, employees: u32) -> Result<(bool, RunRecord), StoreError> {
        let run_key = Self::run_key(organization_id, run_id);
        let mut mark = key::config(&format!("RUN#{organization_id}#{run_id}"), &format!("CHUNK#{chunk:05}"));
        mark.insert("countedAt".into(), s(&Utc::now().to_rfc3339()));
        let mark = Put::builder()
            .table_name(&self.table)
            .set_item(Some(mark))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .or_store("build Put")?;
        let add = Update::builder()
            .table_name(&self.table)
            .set_key(Some(run_key))
            .update_expression("ADD chunksDone :one, employeesDone :n")
            // Only the run's own chunks count: a chunk number beyond its split counts nothing.
            .condition_expression("attribute_exists(pk) AND chunksTotal >= :chunk")
            .expression_attribute_values(":chunk", n(i64::from(chunk)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":n", n(i64::from(employees)))
            .build()
            .or_store("build Update")?;
        // The mark's condition fails for a chunk counted before: nothing is added then.
        let items = vec![TransactWriteItem::builder().put(mark).build(), TransactWriteItem::builder().update(add).build()];
        let counted = conditional_transaction(&self.client, items).await?;
        let run = self.get_run(organization_id, run_id).await?.ok_or_else(|| StoreError::new("count_chunk", "the run is gone"))?;
        Ok((counted, run))
    }

    async fn complete_run(&self, organization_id: &str, run_id: &str, totals: &Totals, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(organization_id, run_id)))
            .update_expression("SET #st = :completed, totals = :totals, completedAt = :at")
            .condition_expression("#st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":completed", s("completed"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":totals", s(&serde_json::to_string(totals).map_err(|e| StoreError::new("encode totals", e))?))
            .expression_attribute_values(":at", s(&at.to_rfc3339()))
            .return_values(ReturnValue::None)
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }

    async fn list_runs(
        &self,
        organization_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<RunRecord>, Option<String>), StoreError> {
        let start = cursor.map(|c| listing_start(c, organization_id.is_some())).transpose()?;
        let (index, partition) = match organization_id {
            Some(org) => ("byOrganization", ("organizationId", org)),
            None => ("byCreated", ("listed", LISTED)),
        };
        let (items, next) = newest_first(&self.client, &self.table, index, partition, start, limit).await?;
        Ok((items.iter().filter_map(record).collect(), next))
    }

    async fn mark_announced(&self, organization_id: &str, run_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(organization_id, run_id)))
            .update_expression("SET announced = :yes")
            .expression_attribute_values(":yes", s("yes"))
            .send()
            .await
            .or_store("dynamodb:UpdateItem")?;
        Ok(())
    }
}

#[async_trait]
impl PayrollSchedules for DynamoPayroll {
    async fn put_schedule(&self, schedule: &PayrollSchedule) -> Result<(), StoreError> {
        // An update, not a put: the schedule's last tick stays.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::schedule_key(&schedule.organization_id)))
            .update_expression("SET doc = :doc")
            .expression_attribute_values(":doc", s(&serde_json::to_string(schedule).map_err(|e| StoreError::new("encode schedule", e))?))
            .send()
            .await
            .or_store("dynamodb:UpdateItem")?;
        Ok(())
    }

    async fn delete_schedule(&self, organization_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::schedule_key(organization_id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .or_store("dynamodb:DeleteItem")?;
        Ok(out.attributes.is_some())
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleState>, StoreError> {
        let mut all = Vec::new();
        for item in &partition(&self.client, &self.table, SCHEDULE).await? {
            let Some(schedule) = get_s(item, "doc").and_then(|d| serde_json::from_str(d).ok()) else {
                // Never silently: a schedule that cannot be read does not tick.
                tracing::error!(organization = get_s(item, "sk").unwrap_or(""), "a payroll schedule that cannot be read is left out");
                continue;
            };
            all.push(ScheduleState {
                schedule,
                last_tick: get_s(item, "lastTick").and_then(|t| serde_json::from_str(t).ok()),
                last_settled: get_s(item, "lastSettled").map(str::to_string),
            });
        }
        Ok(all)
    }

    async fn note_tick(&self, organization_id: &str, tick: &TickOutcome) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::schedule_key(organization_id)))
            .condition_expression("attribute_exists(doc)")
            .expression_attribute_values(":tick", s(&serde_json::to_string(tick).map_err(|e| StoreError::new("encode tick", e))?));
        let update = match tick.settles() {
            true => update
                .update_expression("SET lastTick = :tick, lastSettled = :period")
                .expression_attribute_values(":period", s(&tick.period)),
            false => update.update_expression("SET lastTick = :tick"),
        };
        let result = update.send().await;
        conditional(result, "dynamodb:UpdateItem")?;
        Ok(())
    }
}
