//! The mail function: an SQS handler with partial batch responses around
//! [`relay_core::mail::send`]. A message to try again later (throttled, over the send rate) is
//! made visible again after its backoff and reported failed, so the queue carries the retry; a
//! store fault fails only its own message, which SQS hands back after the visibility timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::Error;
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::ses::SesTransport;
use relay_aws::sqs::Postponer;
use relay_core::mail::send::{Handled, MailConfig, MailPorts, Postman};
use relay_core::model::mail::Sender;

pub struct App {
    pub postman: Postman,
    pub queue: Postponer,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(&sdk, Tables::from_env()?));
        let mut from = BTreeMap::new();
        for (sender, var) in [
            (Sender::Recruitiq, "RELAY_MAIL_FROM_RECRUITIQ"),
            (Sender::Paylinq, "RELAY_MAIL_FROM_PAYLINQ"),
            (Sender::Nexus, "RELAY_MAIL_FROM_NEXUS"),
            (Sender::System, "RELAY_MAIL_FROM_SYSTEM"),
        ] {
            from.insert(sender, config::required(var)?);
        }
        let ports = MailPorts {
            log: store.clone(),
            suppressions: store.clone(),
            transport: Arc::new(SesTransport::new(&sdk, std::env::var("RELAY_MAIL_CONFIGURATION_SET").ok())),
            rates: store,
            publisher: Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?)),
            metrics: Arc::new(EmfMetrics::from_env("mail")),
        };
        let mail_config = MailConfig {
            from,
            retention: config::mail_retention()?,
            send_rate_per_second: config::number("RELAY_MAIL_SEND_RATE", 14)?.clamp(1, 10_000) as u32,
            max_attempts: config::number("RELAY_MAIL_MAX_ATTEMPTS", 8)?.clamp(1, 50) as u32,
            first_backoff: Duration::from_secs(config::number("RELAY_MAIL_FIRST_BACKOFF_SECONDS", 5)?.max(1) as u64),
            // The mail queue's maxReceiveCount (template.yaml) less a margin.
            last_receive: config::number("RELAY_MAIL_LAST_RECEIVE", 45)?.max(1) as u32,
            ..MailConfig::default()
        };
        Ok(Self { postman: Postman::new(ports, mail_config), queue: Postponer::new(&sdk, config::required("RELAY_MAIL_QUEUE_URL")?) })
    }

    /// Handles one SQS batch; the messages run concurrently.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, Error> {
        let outcomes = futures::future::join_all(event.records.iter().map(|m| self.message(m))).await;
        let mut response = SqsBatchResponse::default();
        for (record, failed) in event.records.iter().zip(outcomes) {
            if failed {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        Ok(response)
    }

    /// `true` when the message must come back.
    async fn message(&self, message: &SqsMessage) -> bool {
        let body = message.body.as_deref().unwrap_or("");
        let receives = message.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        match self.postman.handle(body, Utc::now(), receives).await {
            Ok(Handled::Done) => false,
            Ok(Handled::RetryIn(delay)) => {
                if let Some(receipt) = message.receipt_handle.as_deref() {
                    if let Err(e) = self.queue.postpone(receipt, delay).await {
                        tracing::warn!(error = %e, "could not postpone the message; it returns after the visibility timeout");
                    }
                }
                true
            }
            Err(e) => {
                tracing::error!(message_id = message.message_id.as_deref().unwrap_or(""), error = %e, "message failed; SQS will deliver it again");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
