//! The webhook-receive function: `{GET,POST} /webhooks/{provider}/{sourceId}`. The HTTP edge of
//! [`relay_core::webhooks::receive`]: it hands over the exact raw bytes (API Gateway's base64
//! already undone by `lambda_http`), the headers and the query, and answers with the reply.

mod mollie;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::{Body, Error, Request, Response};
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::s3::S3Blobs;
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::webhooks::receive::{Receiver, ReceiverConfig, ReceiverPorts};
use relay_core::webhooks::InboundRequest;
use relay_edge::to_response;

pub use mollie::MollieApi;

/// The largest webhook body accepted (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct App {
    pub receiver: Receiver,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(&sdk, Tables::from_env()?));
        let receiver_config = ReceiverConfig {
            dedupe_secs: config::number("RELAY_WEBHOOK_DEDUPE_SECONDS", 7 * 24 * 3600)?,
            source_cache: Duration::from_secs(config::number("RELAY_SOURCE_CACHE_SECONDS", 60)? as u64),
            mollie_base_url: std::env::var("RELAY_MOLLIE_API_BASE")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "https://api.mollie.com".into()),
            max_body_bytes: MAX_BODY_BYTES,
            request_retention_secs: config::number("RELAY_EVENT_RETENTION_DAYS", 30)? * 24 * 3600,
            noise_retention_secs: config::number("RELAY_REFUSED_REQUEST_RETENTION_HOURS", 24)? * 3600,
            noise_per_minute: config::number("RELAY_REFUSED_REQUESTS_PER_MINUTE", 60)? as u32,
            ..ReceiverConfig::new(config::secret_box()?)
        };
        let ports = ReceiverPorts {
            sources: store.clone(),
            dedupe: store.clone(),
            publisher: Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?)),
            archive: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_ARCHIVE_BUCKET")?)),
            payloads: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYLOAD_BUCKET")?)),
            payments: Arc::new(MollieApi::default()),
            limiter: store.clone(),
            requests: store,
            metrics: Arc::new(EmfMetrics::from_env("webhook-receive")),
        };
        Ok(Self { receiver: Receiver::new(ports, receiver_config) })
    }

    /// Handles one request. Never fails: every error is a problem document.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Error> {
        let path = relay_edge::path(&req);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let reply = match parts.as_slice() {
            ["webhooks", provider, source_id] => {
                // The size limit is the receiver's, so a refused oversized call is logged too.
                let inbound = InboundRequest {
                    method: req.method().as_str().to_string(),
                    headers: relay_edge::header_map(req.headers()),
                    query: relay_edge::query_map(&req),
                    body: req.body().to_vec(),
                };
                self.receiver.receive(provider, source_id, &inbound, Utc::now(), relay_edge::deadline_ms(&req)).await
            }
            _ => Problem::new(ProblemKind::NotFound, format!("no route {path}")).into(),
        };
        Ok(to_response(reply))
    }
}

#[cfg(test)]
mod tests;
