//! SQS event source mappings, as Lambda runs them: long-poll the queue, gather up to the batch
//! size within the batching window, invoke the function with an `SqsEvent`, then delete what
//! succeeded. With `ReportBatchItemFailures` only the listed items stay; a failed invocation
//! leaves the whole batch to reappear after the visibility timeout, and the queue's own
//! redrive policy moves repeat failures to the DLQ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::body::Bytes;
use tokio::sync::Semaphore;

use crate::functions::QueueSource;
use crate::runtime::FunctionPool;

pub async fn run(source: QueueSource, pool: Arc<FunctionPool>, sqs: aws_sdk_sqs::Client, region: String) {
    let permits = Arc::new(Semaphore::new(source.max_concurrency.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let batch = gather(&source, &sqs).await;
        if batch.is_empty() {
            drop(permit);
            continue;
        }
        let (source, pool, sqs, region) = (source.clone(), pool.clone(), sqs.clone(), region.clone());
        tokio::spawn(async move {
            process(&source, &pool, &sqs, &region, batch).await;
            drop(permit);
        });
    }
}

/// Receives up to the batch size, waiting at most the batching window once something arrived.
async fn gather(source: &QueueSource, sqs: &aws_sdk_sqs::Client) -> Vec<aws_sdk_sqs::types::Message> {
    let mut batch = Vec::new();
    let started = Instant::now();
    loop {
        let want = (source.batch_size - batch.len()).min(10) as i32;
        let wait = if batch.is_empty() { 1 } else { 0 };
        match sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(want)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
        {
            Ok(out) => {
                let got = out.messages.unwrap_or_default();
                let empty = got.is_empty();
                batch.extend(got);
                if batch.len() >= source.batch_size || (empty && !batch.is_empty()) || started.elapsed() >= source.batching_window {
                    return batch;
                }
                if empty {
                    return batch;
                }
            }
            Err(e) => {
                tracing::warn!(queue = %source.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "ReceiveMessage failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return batch;
            }
        }
    }
}

async fn process(
    source: &QueueSource,
    pool: &Arc<FunctionPool>,
    sqs: &aws_sdk_sqs::Client,
    region: &str,
    batch: Vec<aws_sdk_sqs::types::Message>,
) {
    let records: Vec<SqsMessage> = batch.iter().map(|m| to_record(m, &source.queue_arn, region)).collect();
    let mut event = SqsEvent::default();
    event.records = records;
    let payload = match serde_json::to_vec(&event) {
        Ok(p) => Bytes::from(p),
        Err(e) => {
            tracing::error!(error = %e, "could not encode the SQS event");
            return;
        }
    };
    let failed: Vec<String> = match pool.invoke(payload).await {
        Ok(result) if source.report_batch_item_failures => {
            match serde_json::from_slice::<SqsBatchResponse>(&result) {
                Ok(r) => r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
                // An unreadable response counts as a failure of the whole batch, as in Lambda.
                Err(_) if result.as_ref() == b"null" || result.is_empty() => Vec::new(),
                Err(_) => batch.iter().filter_map(|m| m.message_id.clone()).collect(),
            }
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(function = %source.function, error = %e, size = batch.len(), "batch failed; messages return after the visibility timeout");
            return;
        }
    };
    let done: Vec<&aws_sdk_sqs::types::Message> =
        batch.iter().filter(|m| !m.message_id.as_ref().is_some_and(|id| failed.contains(id))).collect();
    for chunk in done.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).set_receipt_handle(m.receipt_handle.clone()).build().ok()
            })
            .collect();
        if let Err(e) = sqs.delete_message_batch().queue_url(&source.queue_url).set_entries(Some(entries)).send().await {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "DeleteMessageBatch failed; the messages will be delivered again");
        }
    }
}

fn to_record(m: &aws_sdk_sqs::types::Message, arn: &str, region: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id.clone();
    r.receipt_handle = m.receipt_handle.clone();
    r.body = m.body.clone();
    r.md5_of_body = m.md5_of_body.clone();
    r.md5_of_message_attributes = m.md5_of_message_attributes.clone();
    r.attributes = m.attributes.clone().unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
    r.event_source = Some("aws:sqs".into());
    r.event_source_arn = Some(arn.to_string());
    r.aws_region = Some(region.to_string());
    r
}
