//! An SQS batch handled a message at a time, as the queue functions that work through one
//! message's worth of CPU or calls (payroll-batch, provision) do: a message whose handling
//! fails is reported back (`ReportBatchItemFailures`) and comes back after its visibility
//! timeout; the others are deleted.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

pub async fn one_at_a_time<'a, F, Fut, E>(event: &'a SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        if let Err(e) = handle(record).await {
            tracing::error!(message_id = record.message_id.as_deref().unwrap_or(""), error = %e, "message failed; SQS will deliver it again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
