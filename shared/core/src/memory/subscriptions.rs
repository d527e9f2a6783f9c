//! Subscriptions, in memory, with the adapter's versioned conditional write.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::subscription::Subscription;
use crate::ports::{StoreError, SubscriptionStore};

/// Subscriptions by id.
#[derive(Default)]
pub struct MemorySubscriptions {
    subscriptions: Mutex<HashMap<String, Subscription>>,
}

impl MemorySubscriptions {
    /// Stores `sub` as it is, whatever is there (test set-up).
    pub fn insert(&self, sub: Subscription) {
        lock(&self.subscriptions).insert(sub.id.clone(), sub);
    }
}

#[async_trait]
impl SubscriptionStore for MemorySubscriptions {
    async fn put_subscription(&self, sub: &Subscription, expected: Option<u64>) -> Result<bool, StoreError> {
        let mut all = lock(&self.subscriptions);
        let current = all.get(&sub.id).map(|s| s.version);
        if current != expected {
            return Ok(false);
        }
        all.insert(sub.id.clone(), sub.clone());
        Ok(true)
    }
    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(lock(&self.subscriptions).get(id).cloned())
    }
    async fn list_subscriptions(&self, organization_id: &str) -> Result<Vec<Subscription>, StoreError> {
        Ok(lock(&self.subscriptions).values().filter(|s| s.organization_id == organization_id).cloned().collect())
    }
    async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut all = lock(&self.subscriptions);
        let owned = all.get(id).is_some_and(|s| s.organization_id == organization_id);
        if owned {
            all.remove(id);
        }
        Ok(owned)
    }
}
