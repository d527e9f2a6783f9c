//! The payroll-batch function: an SQS handler with partial batch responses around
//! [`relay_core::payroll::run`] and [`relay_core::payroll::tick`]. It reads two queues: the
//! payroll queue (`payroll.run.requested` events from the bus, and the monthly schedule's daily
//! tick, `{"payrollScheduleTick": "<time>"}`) and the chunk queue (chunks it sent itself). A message fails, and comes
//! back, when a store or the bus failed, or when the run cannot go on without a person (then,
//! after five tries, it waits in the payroll dead-letter queue under an alarm); a message that
//! can never be handled (not a run request, not a chunk of any run) is logged and dropped.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use lambda_runtime::Error;
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::payroll::DynamoPayroll;
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::s3::S3Blobs;
use relay_aws::sqs::SqsChunks;
use relay_core::payroll::job::{ChunkMessage, RunRequest};
use relay_core::payroll::rules;
use relay_core::payroll::run::{PayrollBatch, PayrollConfig, PayrollError, PayrollPorts};
use relay_core::payroll::tick::{ScheduleTick, TickPorts};
use serde_json::Value;

pub struct App {
    pub batch: PayrollBatch,
    pub tick: ScheduleTick,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let blobs = Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYROLL_BUCKET")?));
        let link_days = config::number("RELAY_PAYSLIP_LINK_DAYS", 7)?.clamp(1, 7) as u64;
        let table = Arc::new(DynamoPayroll::new(&sdk, config::required("RELAY_PAYROLL_TABLE")?));
        let bus = Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?));
        let metrics = Arc::new(EmfMetrics::from_env("payroll-batch"));
        let tables = rules::built_in().map_err(|e| ConfigError::Invalid {
            name: "rules/payroll",
            expected: "valid rule tables",
            value: e.to_string(),
        })?;
        let tick = ScheduleTick::new(
            TickPorts { schedules: table.clone(), runs: table.clone(), inputs: blobs.clone(), bus: bus.clone(), metrics: metrics.clone() },
            tables.iter().map(|t| t.id.clone()).collect(),
        );
        let ports = PayrollPorts {
            runs: table,
            reader: blobs.clone(),
            writer: blobs.clone(),
            links: blobs,
            bus,
            chunks: Arc::new(SqsChunks::new(&sdk, config::required("RELAY_PAYROLL_CHUNK_QUEUE_URL")?)),
            metrics,
        };
        let chunk_size = config::number("RELAY_PAYROLL_CHUNK_SIZE", 500)?.clamp(1, 1_000) as u32;
        let link_lifetime = std::time::Duration::from_secs(link_days * 24 * 3600);
        Ok(Self { batch: PayrollBatch::new(ports, PayrollConfig { chunk_size, tables, link_lifetime }), tick })
    }

    /// Handles one SQS batch, a message at a time (a chunk already uses the instance's CPU).
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, Error> {
        Ok(relay_edge::sqs::one_at_a_time(&event, |record| self.message(record)).await)
    }

    async fn message(&self, message: &SqsMessage) -> Result<(), PayrollError> {
        let body: Value = serde_json::from_str(message.body.as_deref().unwrap_or("")).unwrap_or(Value::Null);
        let outcome = if let Some(at) = body.get("payrollScheduleTick") {
            match at.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
                Some(at) => self.tick.tick(at.with_timezone(&Utc)).await.map(|report| {
                    tracing::info!(requested = ?report.requested, waiting = ?report.waiting, "payroll schedule tick");
                }),
                None => Err(PayrollError::Refused(format!("a schedule tick whose time is not RFC 3339: {at}"))),
            }
        } else if let Some(detail) = body.get("detail") {
            match run_request(detail) {
                Some(request) => self.batch.request(&request, Utc::now()).await.map(|run| {
                    if let Some(reason) = run.reason {
                        tracing::warn!(run = %request.payroll_run_id, reason = %reason, "payroll run failed");
                    }
                }),
                None => Err(PayrollError::Refused("payroll.run.requested whose payload is not a run request".into())),
            }
        } else {
            match serde_json::from_value::<ChunkMessage>(body) {
                Ok(chunk) => self.batch.chunk(&chunk, Utc::now()).await,
                Err(e) => Err(PayrollError::Refused(format!("not a chunk message: {e}"))),
            }
        };
        match outcome {
            Err(PayrollError::Refused(why)) => {
                tracing::warn!(reason = %why, "dropping a message that can never be handled");
                Ok(())
            }
            other => other,
        }
    }
}

/// The run request in a `payroll.run.requested` envelope: its payload, with the envelope's
/// organisation (the one that counts: a product key can publish only for what it is allowed).
fn run_request(envelope: &Value) -> Option<RunRequest> {
    let mut payload = envelope.get("payload")?.as_object()?.clone();
    payload.insert("organizationId".into(), envelope.get("organizationId")?.clone());
    serde_json::from_value(Value::Object(payload)).ok()
}

#[cfg(test)]
mod tests;
