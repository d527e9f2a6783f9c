//! Organisation profiles, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::organization::Profile;
use crate::ports::{OrganizationStore, StoreError};

/// Profiles by organisation.
#[derive(Default)]
pub struct MemoryOrganizations {
    profiles: Mutex<HashMap<String, Profile>>,
}

#[async_trait]
impl OrganizationStore for MemoryOrganizations {
    async fn profile(&self, organization_id: &str) -> Result<Profile, StoreError> {
        Ok(lock(&self.profiles).get(organization_id).cloned().unwrap_or_default())
    }
    async fn put_profile(&self, organization_id: &str, profile: &Profile) -> Result<(), StoreError> {
        lock(&self.profiles).insert(organization_id.to_string(), profile.clone());
        Ok(())
    }
}
