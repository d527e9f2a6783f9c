//! The payroll table: per run (pk `RUN#<organisation>#<run>`), the run's item (sk `RUN`: its
//! request and totals as JSON, its progress as numbers that are added to atomically) and one
//! mark per counted chunk (sk `CHUNK#<n>`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use relay_core::payroll::job::{RunRecord, RunStatus, Totals};
use relay_core::ports::{PayrollRuns, StoreError};
use serde::{Deserialize, Serialize};

use super::{conditional, conditional_transaction, get_n, get_s, key, n, s, Item, OrStoreError};

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
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        Ok(conditional(result, "dynamodb:PutItem")?.is_some())
    }

    async fn get_run(&self, organization_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::run_key(organization_id, run_id)))
            .consistent_read(true)
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        Ok(out.item.as_ref().and_then(record))
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
