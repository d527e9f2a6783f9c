//! An organisation's incoming webhook sources: register (secrets sealed before they are
//! stored), list, look up, delete; and what each one received.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{not_found, oldest_first, owned, unavailable, Manage};
use crate::model::ids;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::request::{RequestQuery, SourceRequest};
use crate::model::source::SealedSource;
use crate::webhooks::sources;

/// An accepted call as the provider sent it (headers that carry credentials were never kept).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRequest {
    pub method: String,
    pub headers: serde_json::Map<String, Value>,
    pub query: serde_json::Map<String, Value>,
    /// The body: text as it came, or base64 when it was not UTF-8 (`encoding`).
    pub body: String,
    /// `utf8` or `base64`.
    pub encoding: String,
}

impl Manage {
    /// Checks a registration body and stores the source, its secrets sealed.
    pub async fn register_source(&self, organization_id: &str, body: &Value, now: DateTime<Utc>) -> Result<SealedSource, Problem> {
        let sealed = sources::register(body, organization_id, ids::new_source_id(), now, &self.config.secrets)?;
        self.ports.sources.put_source(&sealed).await.map_err(|e| {
            tracing::error!(error = %e, "storing a source failed");
            Problem::unavailable("Relay could not store the source; retry", 2)
        })?;
        tracing::info!(source_id = %sealed.id, provider = %sealed.provider, organization_id, "source registered");
        Ok(sealed)
    }

    /// The organisation's sources, oldest first.
    pub async fn sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, Problem> {
        Ok(oldest_first(self.ports.sources.list_sources(organization_id).await.map_err(unavailable)?))
    }

    pub async fn source(&self, organization_id: &str, id: &str) -> Result<SealedSource, Problem> {
        owned(self.ports.sources.get_source(id).await.map_err(unavailable)?, organization_id, id)
    }

    pub async fn delete_source(&self, organization_id: &str, id: &str) -> Result<(), Problem> {
        match self.ports.sources.delete_source(organization_id, id).await.map_err(unavailable)? {
            true => Ok(()),
            false => Err(not_found("source", id)),
        }
    }

    /// A page of what the source received, newest first. `query.source_id` must be the
    /// organisation's.
    pub async fn source_requests(
        &self,
        organization_id: &str,
        query: &RequestQuery,
    ) -> Result<(Vec<SourceRequest>, Option<String>), Problem> {
        self.source(organization_id, &query.source_id).await?;
        self.ports.requests.list_requests(query).await.map_err(|e| match e.operation {
            "cursor" => Problem::new(ProblemKind::InvalidRequest, e.message),
            _ => unavailable(e),
        })
    }

    /// One call the source received.
    pub async fn source_request(
        &self,
        organization_id: &str,
        source_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<SourceRequest, Problem> {
        self.source(organization_id, source_id).await?;
        let entry = self.ports.requests.get_request(source_id, id, now.timestamp()).await.map_err(unavailable)?;
        entry.filter(|e| e.organization_id == organization_id).ok_or_else(|| not_found("request", id))
    }

    /// An accepted call's raw request, from the archive.
    pub async fn source_request_body(
        &self,
        organization_id: &str,
        source_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<RawRequest, Problem> {
        let entry = self.source_request(organization_id, source_id, id, now).await?;
        let Some(key) = entry.archive_key else {
            return Err(Problem::new(ProblemKind::NotFound, format!("request {id} was not accepted, so its body was not kept")));
        };
        let bytes = self.ports.archive.get_blob(&key).await.map_err(unavailable)?;
        let gone = || Problem::new(ProblemKind::NotFound, format!("the body of request {id} is no longer kept"));
        let record: Value = bytes.and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(gone)?;
        let text = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let map = |name: &str| record.get(name).and_then(Value::as_object).cloned().unwrap_or_default();
        Ok(RawRequest {
            method: text("method"),
            headers: map("headers"),
            query: map("query"),
            body: text("body"),
            encoding: text("bodyEncoding"),
        })
    }
}
