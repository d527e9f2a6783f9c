//! Retries on SQS: a message per pending retry, delayed up to SQS's 15-minute cap. A longer wait
//! is a chain: the deliver function re-queues a message that arrives before its `notBefore`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use relay_core::model::delivery::RetryMessage;
use relay_core::ports::{RetryQueue, StoreError};

/// SQS's longest message delay.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

pub struct SqsRetries {
    client: Client,
    retry_queue_url: String,
    dead_letter_url: String,
}

impl SqsRetries {
    pub fn new(config: &aws_config::SdkConfig, retry_queue_url: String, dead_letter_url: String) -> Self {
        Self { client: Client::new(config), retry_queue_url, dead_letter_url }
    }
}

#[async_trait]
impl RetryQueue for SqsRetries {
    async fn schedule(&self, message: &RetryMessage, delay: Duration) -> Result<(), StoreError> {
        let body = serde_json::to_string(message).map_err(|e| StoreError::new("encode retry", e))?;
        // Round up so a chained retry never wakes a hair early and re-queues for nothing.
        let seconds = delay.min(MAX_DELAY).as_secs_f64().ceil() as i32;
        self.client
            .send_message()
            .queue_url(&self.retry_queue_url)
            .message_body(body)
            .delay_seconds(seconds)
            .send()
            .await
            .map_err(|e| StoreError::new("sqs:SendMessage", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn dead_letter(&self, body: &str) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::new("sqs:SendMessage", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// Puts received messages off: a message becomes visible again after a delay (at most 12
/// hours), so the queue itself carries a retry with backoff, with no second copy to deduplicate.
pub struct Postponer {
    client: Client,
    queue_url: String,
}

impl Postponer {
    pub fn new(config: &aws_config::SdkConfig, queue_url: String) -> Self {
        Self { client: Client::new(config), queue_url }
    }

    pub async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay.as_secs().clamp(1, 43_200) as i32)
            .send()
            .await
            .map_err(|e| StoreError::new("sqs:ChangeMessageVisibility", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// The payroll chunk queue: a run's chunks sent ten to a `SendMessageBatch`.
pub struct SqsChunks {
    client: Client,
    queue_url: String,
}

impl SqsChunks {
    pub fn new(config: &aws_config::SdkConfig, queue_url: String) -> Self {
        Self { client: Client::new(config), queue_url }
    }
}

#[async_trait]
impl relay_core::ports::ChunkQueue for SqsChunks {
    async fn send_chunks(&self, chunks: &[relay_core::payroll::job::ChunkMessage]) -> Result<(), StoreError> {
        for batch in chunks.chunks(10) {
            let mut entries = Vec::with_capacity(batch.len());
            for chunk in batch {
                let body = serde_json::to_string(chunk).map_err(|e| StoreError::new("encode chunk", e))?;
                let entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("c{}", chunk.chunk))
                    .message_body(body)
                    .build()
                    .map_err(|e| StoreError::new("build entry", e))?;
                entries.push(entry);
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::new("sqs:SendMessageBatch", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            // A partly refused batch is a failure: the run request comes back and sends every
            // chunk again, which is harmless (each is counted once).
            if let Some(failed) = out.failed().first() {
                return Err(StoreError::new(
                    "sqs:SendMessageBatch",
                    format!("{} of {} not sent: {}", out.failed().len(), batch.len(), failed.message().unwrap_or("")),
                ));
            }
        }
        Ok(())
    }
}

/// The provision queue: a tenant's workflow comes back as `{"tenantId": ..., "wake": ...}` after a delay (a
/// VPS installing, an instance not healthy yet, a lease held by another handler). A wait longer
/// than SQS's 15 minutes is cut to 15: the workflow checks its own deadlines when it comes back
/// and waits again, so long waits chain.
pub struct SqsProvisionQueue {
    client: Client,
    queue_url: String,
}

impl SqsProvisionQueue {
    pub fn new(config: &aws_config::SdkConfig, queue_url: String) -> Self {
        Self { client: Client::new(config), queue_url }
    }
}

#[async_trait]
impl relay_core::ports::provision::ProvisionQueue for SqsProvisionQueue {
    async fn resume_later(&self, tenant: &str, wake: Option<&str>, delay: Duration) -> Result<(), StoreError> {
        let body = match wake {
            Some(wake) => serde_json::json!({ "tenantId": tenant, "wake": wake }),
            None => serde_json::json!({ "tenantId": tenant }),
        }
        .to_string();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay.min(MAX_DELAY).as_secs_f64().ceil() as i32)
            .send()
            .await
            .map_err(|e| StoreError::new("sqs:SendMessage", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
