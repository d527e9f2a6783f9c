//! The provision function's ports in memory: tenants with their lease, the fleet (a slot taken
//! under one lock, as DynamoDB's conditional write takes it), and scripted stand-ins for the
//! hosting provider, deploy agents and a tenant's health check that count what they were asked.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::guard::lock;
use crate::ports::provision::{
    DeployAgent, FleetStore, HealthProbe, HostingProvider, ProviderVps, ProvisionQueue, RemoteError, TenantIntegrations, TenantStore,
    VpsOrder,
};
use crate::ports::StoreError;
use crate::provision::fleet::{Usage, Vps, VpsStatus};
use crate::provision::tenant::Tenant;

/// A tenant's lease: who holds it, until when.
type Lease = Option<(String, DateTime<Utc>)>;

/// Tenants by id, each with its lease (holder, until). `fail_saves_at` fails the n-th save
/// (counting from 1) once: a handler killed before its checkpoint.
#[derive(Default)]
pub struct MemoryTenants {
    pub tenants: Mutex<BTreeMap<String, (Tenant, Lease)>>,
    pub saves: AtomicUsize,
    pub fail_saves_at: AtomicUsize,
}

#[async_trait]
impl TenantStore for MemoryTenants {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        let mut all = lock(&self.tenants);
        let slug_taken = all.values().any(|(t, _)| t.request.slug == tenant.request.slug);
        if all.contains_key(tenant.id()) || slug_taken {
            return Ok(false);
        }
        all.insert(tenant.id().to_string(), (tenant.clone(), None));
        Ok(true)
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(lock(&self.tenants).get(id).map(|(t, _)| t.clone()))
    }

    async fn save_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        let n = self.saves.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_saves_at.load(Ordering::SeqCst) {
            return Err(StoreError::new("save_tenant", "killed before the checkpoint"));
        }
        let mut all = lock(&self.tenants);
        match all.get_mut(tenant.id()) {
            Some((stored, _)) if stored.version + 1 == tenant.version => {
                *stored = tenant.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_tenants(&self, cursor: Option<&str>, limit: u32) -> Result<(Vec<Tenant>, Option<String>), StoreError> {
        let mut all: Vec<Tenant> = lock(&self.tenants).values().map(|(t, _)| t.clone()).collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id().cmp(b.id())));
        let start = cursor.and_then(|c| all.iter().position(|t| t.id() == c)).map_or(0, |i| i + 1);
        let page: Vec<Tenant> = all.iter().skip(start).take(limit as usize).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| page.last().map(|t| t.id().to_string())).flatten();
        Ok((page, next))
    }

    async fn lease(&self, id: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut all = lock(&self.tenants);
        let Some((_, lease)) = all.get_mut(id) else { return Ok(false) };
        match lease {
            Some((h, u)) if h != holder && *u > now => Ok(false),
            _ => {
                *lease = Some((holder.to_string(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, id: &str, holder: &str) -> Result<(), StoreError> {
        if let Some((_, lease)) = lock(&self.tenants).get_mut(id) {
            if lease.as_ref().is_some_and(|(h, _)| h == holder) {
                *lease = None;
            }
        }
        Ok(())
    }
}

/// The fleet by VPS name.
#[derive(Default)]
pub struct MemoryFleet {
    pub vps: Mutex<BTreeMap<String, Vps>>,
}

#[async_trait]
impl FleetStore for MemoryFleet {
    async fn add_vps(&self, vps: &Vps) -> Result<bool, StoreError> {
        let mut all = lock(&self.vps);
        if all.contains_key(&vps.name) {
            return Ok(false);
        }
        all.insert(vps.name.clone(), vps.clone());
        Ok(true)
    }

    async fn get_vps(&self, name: &str) -> Result<Option<Vps>, StoreError> {
        Ok(lock(&self.vps).get(name).cloned())
    }

    async fn list_vps(&self) -> Result<Vec<Vps>, StoreError> {
        Ok(lock(&self.vps).values().cloned().collect())
    }

    async fn take_slot(&self, vps: &str, tenant: &str) -> Result<bool, StoreError> {
        let mut all = lock(&self.vps);
        match all.get_mut(vps) {
            Some(v)
                if v.status == VpsStatus::Active && (v.tenants.len() as u32) < v.max_tenants && !v.tenants.iter().any(|t| t == tenant) =>
            {
                v.tenants.push(tenant.to_string());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_slot(&self, vps: &str, tenant: &str) -> Result<bool, StoreError> {
        let mut all = lock(&self.vps);
        let Some(v) = all.get_mut(vps) else { return Ok(false) };
        let before = v.tenants.len();
        v.tenants.retain(|t| t != tenant);
        Ok(v.tenants.len() < before)
    }

    async fn report_usage(&self, vps: &str, usage: &Usage) -> Result<bool, StoreError> {
        Ok(lock(&self.vps).get_mut(vps).map(|v| v.usage = Some(usage.clone())).is_some())
    }

    async fn set_vps_status(&self, vps: &str, status: VpsStatus) -> Result<bool, StoreError> {
        Ok(lock(&self.vps).get_mut(vps).map(|v| v.status = status).is_some())
    }

    async fn remove_vps(&self, vps: &str) -> Result<(), StoreError> {
        lock(&self.vps).remove(vps);
        Ok(())
    }
}

/// A hosting provider that installs a VPS in `polls_to_run` reads after its order, answers
/// the `transient_on_read`-th read with a 5xx once, and leaves a new order out of the first
/// `list_lag` listings (as a provider's list catches up).
#[derive(Default)]
pub struct ScriptedProvider {
    pub orders: Mutex<Vec<VpsOrder>>,
    /// By name: (the VPS, reads so far).
    pub vps: Mutex<HashMap<String, (ProviderVps, usize)>>,
    /// By name: listings that left the VPS out so far.
    pub unlisted: Mutex<HashMap<String, usize>>,
    pub polls_to_run: usize,
    pub transient_on_read: usize,
    pub list_lag: usize,
    pub reads: AtomicUsize,
    pub actions: Mutex<Vec<String>>,
}

#[async_trait]
impl HostingProvider for ScriptedProvider {
    async fn order_vps(&self, order: &VpsOrder) -> Result<(), RemoteError> {
        let mut orders = lock(&self.orders);
        orders.push(order.clone());
        let name = format!("relay-vps{}", orders.len());
        let vps = ProviderVps {
            name: name.clone(),
            status: "created".into(),
            locked: false,
            ip: Some("198.51.100.7".into()),
            description: order.description.clone(),
        };
        lock(&self.vps).insert(name, (vps, 0));
        Ok(())
    }

    async fn find_vps(&self, marker: &str) -> Result<Option<ProviderVps>, RemoteError> {
        let found = lock(&self.vps).values().find(|(v, _)| v.description == marker).map(|(v, _)| v.clone());
        let Some(vps) = found else { return Ok(None) };
        let mut unlisted = lock(&self.unlisted);
        let left_out = unlisted.entry(vps.name.clone()).or_default();
        if *left_out < self.list_lag {
            *left_out += 1;
            return Ok(None);
        }
        Ok(Some(vps))
    }

    async fn vps(&self, name: &str) -> Result<ProviderVps, RemoteError> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.transient_on_read {
            return Err(RemoteError::transient("503 Service Unavailable"));
        }
        let mut all = lock(&self.vps);
        let Some((vps, reads)) = all.get_mut(name) else { return Err(RemoteError::gone("404 no such VPS")) };
        *reads += 1;
        if vps.status != "stopped" {
            vps.status = if *reads >= self.polls_to_run { "running".into() } else { "installing".into() };
        }
        Ok(vps.clone())
    }

    async fn start_vps(&self, name: &str) -> Result<(), RemoteError> {
        lock(&self.actions).push(format!("start {name}"));
        if let Some((v, reads)) = lock(&self.vps).get_mut(name) {
            v.status = "installing".into();
            *reads = 0;
        }
        Ok(())
    }

    async fn stop_vps(&self, name: &str) -> Result<(), RemoteError> {
        lock(&self.actions).push(format!("stop {name}"));
        if let Some((v, _)) = lock(&self.vps).get_mut(name) {
            v.status = "stopped".into();
        }
        Ok(())
    }

    async fn snapshot_vps(&self, name: &str, _description: &str) -> Result<(), RemoteError> {
        lock(&self.actions).push(format!("snapshot {name}"));
        Ok(())
    }

    async fn cancel_vps(&self, name: &str) -> Result<(), RemoteError> {
        lock(&self.actions).push(format!("cancel {name}"));
        lock(&self.vps).remove(name);
        Ok(())
    }
}

/// Deploy agents, recording each call as `deploy <tenant>` or `remove <tenant>`.
#[derive(Default)]
pub struct RecordingAgent {
    pub calls: Mutex<Vec<String>>,
}

#[async_trait]
impl DeployAgent for RecordingAgent {
    async fn deploy(&self, _agent_url: &str, tenant: &str, _env_file: &str) -> Result<(), RemoteError> {
        lock(&self.calls).push(format!("deploy {tenant}"));
        Ok(())
    }

    async fn remove(&self, _agent_url: &str, tenant: &str) -> Result<(), RemoteError> {
        lock(&self.calls).push(format!("remove {tenant}"));
        Ok(())
    }
}

/// A tenant's instance that is unhealthy for its first `unhealthy` checks (`usize::MAX`: never healthy).
#[derive(Default)]
pub struct ScriptedProbe {
    pub unhealthy: AtomicUsize,
    pub checks: AtomicUsize,
}

#[async_trait]
impl HealthProbe for ScriptedProbe {
    async fn check(&self, _url: &str) -> Result<(), RemoteError> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst);
        match n < self.unhealthy.load(Ordering::SeqCst) {
            true => Err(RemoteError::transient("502 Bad Gateway")),
            false => Ok(()),
        }
    }
}

/// Integrations switched on, by organisation.
#[derive(Default)]
pub struct MemoryTenantIntegrations {
    pub on: Mutex<BTreeMap<String, Vec<String>>>,
}

#[async_trait]
impl TenantIntegrations for MemoryTenantIntegrations {
    async fn switch_on(&self, organization_id: &str, pairs: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        let mut on = lock(&self.on);
        let list = on.entry(organization_id.to_string()).or_default();
        for (s, t) in pairs {
            let name = format!("{s}->{t}");
            if !list.contains(&name) {
                list.push(name);
            }
        }
        Ok(pairs.iter().map(|(s, t)| format!("{s} → {t}: switched on")).collect())
    }
}

/// Tenants to come back to, with their delays, in order; and each message's wake id.
#[derive(Default)]
pub struct MemoryProvisionQueue {
    pub resumes: Mutex<Vec<(String, Duration)>>,
    pub wakes: Mutex<Vec<Option<String>>>,
}

impl MemoryProvisionQueue {
    /// The messages sent since the last take: tenant and delay.
    pub fn take(&self) -> Vec<(String, Duration)> {
        self.take_messages().into_iter().map(|(t, _, d)| (t, d)).collect()
    }

    /// The messages sent since the last take, with their wake ids.
    pub fn take_messages(&self) -> Vec<(String, Option<String>, Duration)> {
        let (resumes, wakes) = (std::mem::take(&mut *lock(&self.resumes)), std::mem::take(&mut *lock(&self.wakes)));
        resumes.into_iter().zip(wakes.into_iter().chain(std::iter::repeat(None))).map(|((t, d), w)| (t, w, d)).collect()
    }

    /// Puts a message (back) on the queue, as SQS hands back one that failed.
    pub fn push(&self, tenant: &str, wake: Option<String>, delay: Duration) {
        let (mut resumes, mut wakes) = (lock(&self.resumes), lock(&self.wakes));
        wakes.resize(resumes.len(), None);
        resumes.push((tenant.to_string(), delay));
        wakes.push(wake);
    }
}

#[async_trait]
impl ProvisionQueue for MemoryProvisionQueue {
    async fn resume_later(&self, tenant: &str, wake: Option<&str>, delay: Duration) -> Result<(), StoreError> {
        self.push(tenant, wake.map(str::to_string), delay);
        Ok(())
    }
}

/// The workflow's settings in tests: a tenant domain of `tenants.example`, RFC 8032's first seed
/// as the licence key, the production waits and deadlines.
pub fn provision_config() -> crate::provision::workflow::ProvisionConfig {
    crate::provision::workflow::ProvisionConfig {
        tenant_domain: "tenants.example".into(),
        health_url: "https://{slug}.{domain}/health".into(),
        image: "ghcr.io/recruitiq/tenant:1.4.2".into(),
        certificate_email: "ops@example.com".into(),
        licence: std::sync::Arc::new(crate::provision::licence::LicenceKey::from_base64(TEST_LICENCE_SEED).expect("RFC 8032's seed")),
        vps_poll: Duration::from_secs(30),
        vps_deadline: Duration::from_secs(3600),
        health_first_wait: Duration::from_secs(5),
        health_deadline: Duration::from_secs(1200),
        max_attempts: 5,
        lease: Duration::from_secs(360),
    }
}

/// RFC 8032 §7.1's first seed (base64), the tests' licence key.
pub const TEST_LICENCE_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
