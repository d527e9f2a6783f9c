//! API keys, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::keys::ApiKey;
use crate::ports::{KeyStore, KeyWriter, StoreError};

/// Keys by hash.
#[derive(Default)]
pub struct MemoryKeys {
    keys: Mutex<HashMap<String, ApiKey>>,
}

#[async_trait]
impl KeyStore for MemoryKeys {
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(lock(&self.keys).get(key_hash).cloned())
    }
}

#[async_trait]
impl KeyWriter for MemoryKeys {
    async fn put_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        lock(&self.keys).insert(key_hash.to_string(), key.clone());
        Ok(())
    }
}
