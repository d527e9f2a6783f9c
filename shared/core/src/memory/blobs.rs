//! The blob store, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::ports::{BlobExists, BlobReader, BlobWriter, StoreError};

/// Blobs in a map.
#[derive(Default)]
pub struct MemoryBlobs {
    pub blobs: Mutex<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl BlobWriter for MemoryBlobs {
    fn bucket(&self) -> &str {
        "memory"
    }
    async fn put_blob(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
        lock(&self.blobs).insert(key.to_string(), bytes);
        Ok(())
    }
}

#[async_trait]
impl BlobReader for MemoryBlobs {
    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.blobs).get(key).cloned())
    }
}

/// A link that names the key and its lifetime (there is nothing to sign in memory).
#[async_trait]
impl crate::ports::LinkSigner for MemoryBlobs {
    async fn link(&self, key: &str, valid_for: std::time::Duration) -> Result<String, StoreError> {
        Ok(format!("memory://{key}?expires={}", valid_for.as_secs()))
    }
}

#[async_trait]
impl BlobExists for MemoryBlobs {
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.blobs).contains_key(key))
    }
}
