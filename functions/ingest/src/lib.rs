//! The ingest function: the HTTP edge of [`relay_core::ingest`]. It authenticates, enforces size
//! and media type, parses JSON, and turns the domain's [`Reply`] into an API Gateway response.
//! Every check that can fail runs before anything is written.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::s3::S3Blobs;
use relay_core::auth::Authenticator;
use relay_core::ingest::{Ingest, IngestConfig, IngestPorts, RequestContext};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use relay_edge::{header, json_body, to_response};

/// The largest body `POST /v1/events` accepts.
pub const MAX_SINGLE_BYTES: usize = 1024 * 1024;
/// The largest body `POST /v1/events/batch` accepts (under Lambda's 6 MB synchronous limit).
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// The function's dependencies, built once per instance.
pub struct App {
    pub auth: Authenticator,
    pub ingest: Ingest,
}

impl App {
    /// Builds the AWS adapters from the environment template.yaml sets.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(&sdk, Tables::from_env()?));
        let ingest_config = IngestConfig {
            idempotency_ttl_secs: config::number("RELAY_IDEMPOTENCY_TTL_SECONDS", 3 * 24 * 3600)?,
            retention_secs: config::number("RELAY_EVENT_RETENTION_DAYS", 30)? * 24 * 3600,
            inline_payload_limit: config::number("RELAY_INLINE_PAYLOAD_LIMIT_BYTES", 200 * 1024)? as usize,
            event_id_key: config::derived_key("relay:event-ids")?,
            ..IngestConfig::default()
        };
        let ports = IngestPorts {
            idempotency: store.clone(),
            events: store.clone(),
            publisher: Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?)),
            blobs: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYLOAD_BUCKET")?)),
            metrics: Arc::new(EmfMetrics::from_env("ingest")),
        };
        Ok(Self {
            auth: Authenticator::new(store, Duration::from_secs(config::number("RELAY_KEY_CACHE_SECONDS", 60)? as u64)),
            ingest: Ingest::new(ports, ingest_config),
        })
    }

    /// Handles one API Gateway request. Never fails: every error is a problem document.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Error> {
        let path = req.raw_http_path();
        let path = path.trim_end_matches('/');
        let reply = match (req.method(), path) {
            (&Method::GET, "/health") => Reply::json(200, &serde_json::json!({"status": "ok"})),
            (&Method::POST, "/v1/events") => self.post(&req, false).await,
            (&Method::POST, "/v1/events/batch") => self.post(&req, true).await,
            (method, "/health") => Reply::method_not_allowed(method.as_str(), &["GET"]),
            (method, "/v1/events") => Reply::method_not_allowed(method.as_str(), &["GET", "POST"]),
            (method, "/v1/events/batch") => Reply::method_not_allowed(method.as_str(), &["POST"]),
            _ => Problem::new(ProblemKind::NotFound, format!("no route {path}")).into(),
        };
        Ok(to_response(reply))
    }

    async fn post(&self, req: &Request, batch: bool) -> Reply {
        let reply = self.checked_post(req, batch).await;
        self.ingest.measure(&reply, batch);
        reply
    }

    async fn checked_post(&self, req: &Request, batch: bool) -> Reply {
        let headers = req.headers();
        let caller = match self.auth.authenticate(header(headers, "authorization")).await {
            Ok(k) => k,
            Err(p) => return p.into(),
        };
        let limit = if batch { MAX_BATCH_BYTES } else { MAX_SINGLE_BYTES };
        let value = match json_body(req, limit, "Send large payloads in smaller events or use the batch endpoint") {
            Ok(v) => v,
            Err(p) => return p.into(),
        };
        let idempotency_key = match relay_edge::idempotency_key(headers) {
            Ok(k) => k,
            Err(p) => return p.into(),
        };
        let ctx = RequestContext { idempotency_key, now: Utc::now(), deadline_ms: relay_edge::deadline_ms(req) };
        if batch {
            self.ingest.ingest_batch(&caller, &value, ctx).await
        } else {
            self.ingest.ingest_one(&caller, &value, ctx).await
        }
    }
}

#[cfg(test)]
mod tests;
