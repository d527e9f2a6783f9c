//! Fault injection for the local stack's tests, off unless `RELAY_LOCAL_FAULT_EXIT_AFTER` names
//! steps by tenant (`org-a:licence+placement,org-b:welcome`; `*` for every tenant): the process
//! exits the moment a checkpoint marking one of them done has landed, before the next step
//! starts, holding the tenant's lease and leaving its message unanswered. That is a handler killed between two steps, as a Lambda timeout or
//! an out-of-memory kill would leave it; the message comes back after its visibility timeout.
//! It wraps the tenant store (the one place a checkpoint is written), so the workflow itself
//! carries no test hook. The local stack sets it only when a test asks for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use relay_core::ports::provision::TenantStore;
use relay_core::ports::StoreError;
use relay_core::provision::tenant::{Step, StepStatus, Tenant};

pub struct ExitAfterSteps {
    inner: Arc<dyn TenantStore>,
    /// By tenant (`*`: any): the steps after whose checkpoint the process exits.
    steps: HashMap<String, Vec<Step>>,
    /// By tenant: the steps seen done when this process last read or wrote it.
    seen: Mutex<HashMap<String, Vec<Step>>>,
}

impl ExitAfterSteps {
    /// From the variable's value; `None` when it names no step.
    pub fn from_list(inner: Arc<dyn TenantStore>, list: &str) -> Option<Self> {
        let steps: HashMap<String, Vec<Step>> = list
            .split(',')
            .filter_map(|entry| entry.split_once(':'))
            .map(|(tenant, steps)| (tenant.trim().to_string(), steps.split('+').filter_map(|s| Step::parse(s.trim())).collect()))
            .collect();
        (steps.values().any(|s: &Vec<Step>| !s.is_empty())).then(|| Self { inner, steps, seen: Mutex::new(HashMap::new()) })
    }

    fn exits_after(&self, tenant: &str, step: Step) -> bool {
        [tenant, "*"].iter().any(|t| self.steps.get(*t).is_some_and(|s| s.contains(&step)))
    }

    fn done(tenant: &Tenant) -> Vec<Step> {
        tenant.steps.iter().filter(|s| s.status == StepStatus::Done).map(|s| s.step).collect()
    }

    fn note(&self, tenant: &Tenant) -> Vec<Step> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let before = seen.insert(tenant.id().to_string(), Self::done(tenant)).unwrap_or_default();
        Self::done(tenant).into_iter().filter(|s| !before.contains(s)).collect()
    }
}

#[async_trait]
impl TenantStore for ExitAfterSteps {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        self.inner.create_tenant(tenant).await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let tenant = self.inner.get_tenant(id).await?;
        if let Some(t) = &tenant {
            self.note(t);
        }
        Ok(tenant)
    }

    async fn save_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        let saved = self.inner.save_tenant(tenant).await?;
        if saved {
            if let Some(step) = self.note(tenant).into_iter().find(|s| self.exits_after(tenant.id(), *s)) {
                // One write, so lines of instances exiting at once do not interleave.
                let line = format!("RELAY_LOCAL_FAULT exiting after {} of {} was checkpointed\n", step.name(), tenant.id());
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                std::process::exit(70);
            }
        }
        Ok(saved)
    }

    async fn list_tenants(&self, cursor: Option<&str>, limit: u32) -> Result<(Vec<Tenant>, Option<String>), StoreError> {
        self.inner.list_tenants(cursor, limit).await
    }

    async fn lease(&self, id: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.lease(id, holder, until, now).await
    }

    async fn release_lease(&self, id: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(id, holder).await
    }
}
