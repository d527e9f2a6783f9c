//! An organisation's incoming webhook sources: register (secrets sealed before they are
//! stored), list, look up, delete.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{not_found, oldest_first, owned, unavailable, Manage};
use crate::model::ids;
use crate::model::problem::Problem;
use crate::model::source::SealedSource;
use crate::webhooks::sources;

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
}
