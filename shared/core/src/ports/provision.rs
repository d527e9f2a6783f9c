//! The provision function's ports: the tenants and the fleet (stores), the hosting provider,
//! a shared VPS's deploy agent, a tenant's health check, its integrations and the queue a
//! waiting workflow comes back through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::provision::fleet::{Usage, Vps, VpsStatus};
use crate::provision::tenant::Tenant;

/// Tenants and their workflow state (the tenants table).
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Records a new tenant and reserves its slug (a host name is one tenant's, for good); false
    /// if one with its id exists already, or another tenant has its slug (nothing is written).
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError>;
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    /// Writes `tenant` (whose `version` was bumped from the one read) only over the version it
    /// read; false when another write came first.
    async fn save_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError>;
    /// Every tenant, newest first, a page at a time (`cursor` from the previous page).
    async fn list_tenants(&self, cursor: Option<&str>, limit: u32) -> Result<(Vec<Tenant>, Option<String>), StoreError>;
    /// Takes the tenant's workflow lease for `holder` until `until` (if it is free, expired, or
    /// already `holder`'s): one handler moves a tenant at a time.
    async fn lease(&self, id: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError>;
    async fn release_lease(&self, id: &str, holder: &str) -> Result<(), StoreError>;
}

/// The VPS fleet (the tenants table's VPS items).
#[async_trait]
pub trait FleetStore: Send + Sync {
    /// Adds a VPS; false if one with its name exists.
    async fn add_vps(&self, vps: &Vps) -> Result<bool, StoreError>;
    async fn get_vps(&self, name: &str) -> Result<Option<Vps>, StoreError>;
    async fn list_vps(&self) -> Result<Vec<Vps>, StoreError>;
    /// Takes a slot on a shared VPS for `tenant` in one conditional write: only while the VPS
    /// is active, below its `maxTenants`, and the tenant not on it yet.
    async fn take_slot(&self, vps: &str, tenant: &str) -> Result<bool, StoreError>;
    /// Gives the tenant's slot back; false if it held none there.
    async fn release_slot(&self, vps: &str, tenant: &str) -> Result<bool, StoreError>;
    async fn report_usage(&self, vps: &str, usage: &Usage) -> Result<bool, StoreError>;
    async fn set_vps_status(&self, vps: &str, status: VpsStatus) -> Result<bool, StoreError>;
    async fn remove_vps(&self, vps: &str) -> Result<(), StoreError>;
}

/// Why the hosting provider, a deploy agent or a tenant's instance did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// Worth trying again (a timeout, a 5xx, a 429); otherwise the request itself is wrong.
    pub transient: bool,
    /// What was asked about does not exist there (404): a VPS gone already.
    pub gone: bool,
    pub message: String,
}

impl RemoteError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self { transient: true, gone: false, message: message.into() }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { transient: false, gone: false, message: message.into() }
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self { transient: false, gone: true, message: message.into() }
    }
}

/// A VPS as the hosting provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderVps {
    pub name: String,
    /// `created`, `installing`, `running`, `stopped`, `paused`.
    pub status: String,
    /// An action runs on it: wait, do not act.
    pub locked: bool,
    pub ip: Option<String>,
    pub description: String,
}

/// What ordering a dedicated VPS needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpsOrder {
    pub product: String,
    pub hostname: String,
    /// Carries the tenant's order marker, by which a resumed workflow finds the VPS.
    pub description: String,
    pub cloud_init: String,
}

/// The hosting provider (TransIP's REST API v6).
#[async_trait]
pub trait HostingProvider: Send + Sync {
    /// Orders a VPS; the provider does not answer its name (find it by the order's marker).
    async fn order_vps(&self, order: &VpsOrder) -> Result<(), RemoteError>;
    /// The VPS whose description is exactly `marker`, if one was ordered.
    async fn find_vps(&self, marker: &str) -> Result<Option<ProviderVps>, RemoteError>;
    async fn vps(&self, name: &str) -> Result<ProviderVps, RemoteError>;
    async fn start_vps(&self, name: &str) -> Result<(), RemoteError>;
    async fn stop_vps(&self, name: &str) -> Result<(), RemoteError>;
    async fn snapshot_vps(&self, name: &str, description: &str) -> Result<(), RemoteError>;
    async fn cancel_vps(&self, name: &str) -> Result<(), RemoteError>;
}

/// A shared VPS's deploy agent: puts a tenant's application on it, or takes it off. Both are
/// idempotent on the agent's side (keyed by the tenant).
#[async_trait]
pub trait DeployAgent: Send + Sync {
    async fn deploy(&self, agent_url: &str, tenant: &str, env_file: &str) -> Result<(), RemoteError>;
    async fn remove(&self, agent_url: &str, tenant: &str) -> Result<(), RemoteError>;
}

/// Asks a tenant's instance whether it is healthy (`GET {url}`: 2xx is healthy).
#[async_trait]
pub trait HealthProbe: Send + Sync {
    async fn check(&self, url: &str) -> Result<(), RemoteError>;
}

/// Switches a tenant's organisation's product integrations on.
#[async_trait]
pub trait TenantIntegrations: Send + Sync {
    /// Switches on `pairs` (source, target) for the organisation; doing it again changes nothing.
    /// Answers what became of each pair, for the step's note.
    async fn switch_on(&self, organization_id: &str, pairs: &[(&str, &str)]) -> Result<Vec<String>, StoreError>;
}

/// The provision queue, for a workflow that waits (a VPS installing, an instance not healthy
/// yet): the tenant comes back after `delay` (at most 15 minutes; longer waits chain), the
/// message carrying `wake`, the id of the continuation the tenant expects (see
/// [`crate::provision::tenant::Wake`]).
#[async_trait]
pub trait ProvisionQueue: Send + Sync {
    async fn resume_later(&self, tenant: &str, wake: Option<&str>, delay: std::time::Duration) -> Result<(), StoreError>;
}
