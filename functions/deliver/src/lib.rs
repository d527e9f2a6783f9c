//! The deliver function: an SQS handler with partial batch responses. Messages are either
//! EventBridge events from the delivery queue (new events: fan out) or retry messages from the
//! retry queue. An unparseable message goes straight to the DLQ without failing its batch; a
//! store fault fails only its own message, which SQS hands back later (pairs already handled
//! are skipped then).

mod sender;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::Error;
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::s3::S3Blobs;
use relay_aws::sqs::SqsRetries;
use relay_core::delivery::{Deliverer, DeliveryConfig, DeliveryPorts};
use relay_core::mail::request::BusMailer;
use relay_core::model::delivery::{RetryMessage, RetryPolicy};
use relay_core::model::validation::validate_bus_event;
use relay_core::notify::ContactNotifier;
use relay_core::ports::StoreError;
use serde_json::Value;

pub use sender::HttpSender;

pub struct App {
    pub deliverer: Deliverer,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(&sdk, Tables::from_env()?));
        let schedule = std::env::var("RELAY_RETRY_SCHEDULE").unwrap_or_default();
        let policy = if schedule.is_empty() {
            RetryPolicy::default()
        } else {
            RetryPolicy::parse(&schedule).ok_or(ConfigError::Invalid {
                name: "RELAY_RETRY_SCHEDULE",
                expected: "comma-separated seconds",
                value: schedule.clone(),
            })?
        };
        let timeout = Duration::from_secs_f64(config::number("RELAY_SEND_TIMEOUT_MS", 15_000)? as f64 / 1000.0);
        let sender = HttpSender::new(timeout, relay_core::ssrf::loopback_allowed()).map_err(|e| ConfigError::Invalid {
            name: "HTTP client",
            expected: "a client with the SSRF guard",
            value: e.to_string(),
        })?;
        let publisher: Arc<EventBridgePublisher> = Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?));
        let ports = DeliveryPorts {
            subscriptions: store.clone(),
            deliveries: store.clone(),
            events: store.clone(),
            rates: store.clone(),
            retries: Arc::new(SqsRetries::new(
                &sdk,
                config::required("RELAY_RETRY_QUEUE_URL")?,
                config::required("RELAY_DEAD_LETTER_QUEUE_URL")?,
            )),
            sender: Arc::new(sender),
            publisher: publisher.clone(),
            // The disabled-endpoint notice goes the way of every mail: email.requested.
            notifier: Arc::new(ContactNotifier::new(store, Arc::new(BusMailer::new(publisher)))),
            blobs: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYLOAD_BUCKET")?)),
            metrics: Arc::new(EmfMetrics::from_env("deliver")),
        };
        let delivery_config = DeliveryConfig {
            policy,
            disable_after: chrono::Duration::seconds(config::number("RELAY_DISABLE_AFTER_SECONDS", 5 * 24 * 3600)?),
            retention: chrono::Duration::days(config::number("RELAY_EVENT_RETENTION_DAYS", 30)?),
            ..DeliveryConfig::new(config::secret_box()?)
        };
        Ok(Self { deliverer: Deliverer::new(ports, delivery_config) })
    }

    /// Handles one SQS batch; the messages run concurrently.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, Error> {
        self.deliverer.begin_batch().await;
        let outcomes = futures::future::join_all(event.records.iter().map(|m| self.message(m))).await;
        let mut response = SqsBatchResponse::default();
        for (record, outcome) in event.records.iter().zip(outcomes) {
            if let Err(e) = outcome {
                tracing::error!(message_id = record.message_id.as_deref().unwrap_or(""), error = %e, "message failed; SQS will deliver it again");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        Ok(response)
    }

    async fn message(&self, message: &SqsMessage) -> Result<(), StoreError> {
        let body = message.body.as_deref().unwrap_or("");
        let now = Utc::now();
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        match parsed {
            Some(v) if v.get("detail").is_some() => match validate_bus_event(&v["detail"]) {
                Ok(e) => self.deliverer.on_event(&e, now).await.map(|_| ()),
                Err(errors) => {
                    let fields: Vec<String> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
                    tracing::warn!(problems = %fields.join("; "), "an event on the bus is not a valid envelope");
                    self.dead_letter(body, "the event is not a valid envelope").await
                }
            },
            Some(v) if v.get("kind").and_then(Value::as_str) == Some("retry") => match serde_json::from_value::<RetryMessage>(v) {
                Ok(m) => self.deliverer.on_retry(&m, now).await,
                Err(_) => self.dead_letter(body, "malformed retry message").await,
            },
            _ => self.dead_letter(body, "unparseable message").await,
        }
    }

    async fn dead_letter(&self, body: &str, why: &str) -> Result<(), StoreError> {
        tracing::warn!(reason = why, "sending a message to the DLQ");
        self.deliverer.dead_letter(body).await
    }
}

#[cfg(test)]
mod tests;
