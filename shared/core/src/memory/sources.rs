//! Webhook sources, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::source::SealedSource;
use crate::ports::{SourceLookup, SourceStore, StoreError};

/// Sources by id.
#[derive(Default)]
pub struct MemorySources {
    sources: Mutex<HashMap<String, SealedSource>>,
}

#[async_trait]
impl SourceLookup for MemorySources {
    async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError> {
        Ok(lock(&self.sources).get(id).cloned())
    }
}

#[async_trait]
impl SourceStore for MemorySources {
    async fn put_source(&self, source: &SealedSource) -> Result<(), StoreError> {
        lock(&self.sources).insert(source.id.clone(), source.clone());
        Ok(())
    }
    async fn list_sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, StoreError> {
        let all = lock(&self.sources);
        Ok(all.values().filter(|s| s.organization_id == organization_id).cloned().collect())
    }
    async fn delete_source(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut all = lock(&self.sources);
        let owned = all.get(id).is_some_and(|s| s.organization_id == organization_id);
        if owned {
            all.remove(id);
        }
        Ok(owned)
    }
}
