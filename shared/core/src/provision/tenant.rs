//! A tenant: a customer organisation's running instance, from the request that asks for it to
//! the record of every provisioning step. The record is the workflow's only state: each step is
//! checkpointed on it, so a handler killed at any point resumes from the first step not done.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::mail::is_address;
use crate::model::validation::is_identifier;

/// What the Portal's `organization.created` carries (or `POST /v1/tenants`' body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantRequest {
    pub organization_id: String,
    pub name: String,
    /// The tenant's host name under the tenant domain: `{slug}.{TenantDomain}`.
    pub slug: String,
    pub tier: Tier,
    pub deployment_type: DeploymentType,
    pub contact_email: String,
    /// The products the tenant has bought (`recruitiq`, `nexus`, `paylinq`).
    pub products: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Starter,
    Professional,
    Enterprise,
}

impl Tier {
    /// The TransIP product a dedicated tenant of this tier runs on (seed 000 §3.1).
    pub fn vps_product(self) -> &'static str {
        match self {
            Tier::Starter => "vps-bladevps-x2",
            Tier::Professional => "vps-bladevps-x4",
            Tier::Enterprise => "vps-bladevps-x8",
        }
    }

    /// The seats the tier's licence grants.
    pub fn seats(self) -> u32 {
        match self {
            Tier::Starter => 25,
            Tier::Professional => 100,
            Tier::Enterprise => 1000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Professional => "professional",
            Tier::Enterprise => "enterprise",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentType {
    /// A slot on the least-loaded active shared VPS.
    Shared,
    /// A VPS of its own, ordered through TransIP.
    Dedicated,
}

/// The products a tenant can have: each has an application on the tenant's instance.
pub const TENANT_PRODUCTS: &[&str] = &["recruitiq", "nexus", "paylinq"];

impl TenantRequest {
    /// Every field that is wrong, before anything is written.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut wrong = Vec::new();
        // An id of dots alone would be a `.` or `..` segment in an agent's URL.
        if !is_identifier(&self.organization_id) || !self.organization_id.bytes().any(|b| b.is_ascii_alphanumeric()) {
            wrong.push(("organizationId", "1 to 128 letters, digits, -, _, . or :, at least one a letter or digit".to_string()));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            wrong.push(("name", "1 to 200 characters".to_string()));
        }
        if !is_slug(&self.slug) {
            wrong.push((
                "slug",
                "3 to 40 lower-case letters, digits and single hyphens, starting with a letter (it becomes a host name)".into(),
            ));
        }
        if !is_address(&self.contact_email) {
            wrong.push(("contactEmail", "an e-mail address".to_string()));
        }
        let repeated = self.products.iter().enumerate().any(|(i, p)| self.products[..i].contains(p));
        if self.products.is_empty() || repeated || self.products.iter().any(|p| !TENANT_PRODUCTS.contains(&p.as_str())) {
            wrong.push(("products", format!("one or more of {}, each once", TENANT_PRODUCTS.join(", "))));
        }
        wrong
    }
}

/// A DNS label Relay may give a tenant: `acme`, `acme-bv`; not `-acme`, `acme--x`, `Acme`, `1acme`.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=40).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.contains("--")
}

/// The workflow's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Licence,
    Placement,
    Deploy,
    Health,
    Integrations,
    Welcome,
    Active,
}

impl Step {
    pub const ALL: [Step; 7] =
        [Step::Licence, Step::Placement, Step::Deploy, Step::Health, Step::Integrations, Step::Welcome, Step::Active];

    pub fn name(self) -> &'static str {
        match self {
            Step::Licence => "licence",
            Step::Placement => "placement",
            Step::Deploy => "deploy",
            Step::Health => "health",
            Step::Integrations => "integrations",
            Step::Welcome => "welcome",
            Step::Active => "active",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|x| x.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    /// Started and not finished: waiting (for a VPS, for health) or retrying after an error.
    Running,
    Done,
    Failed,
}

/// One step as the operator sees it: when it ran, how often, and its last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    pub step: Step,
    pub status: StepStatus,
    /// How many times the step ran (each wait and each try).
    pub attempts: u32,
    /// Remote errors in a row; the step fails at the workflow's limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the step did or is waiting for ("VPS relay-acme is installing").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl StepState {
    pub fn pending(step: Step) -> Self {
        Self {
            step,
            status: StepStatus::Pending,
            attempts: 0,
            errors: 0,
            started_at: None,
            finished_at: None,
            last_error: None,
            note: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Provisioning,
    Active,
    /// A step failed for good; what it took was released; `POST /v1/tenants/{id}/retry` resumes.
    Failed,
    Deprovisioning,
    Deprovisioned,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a tenant runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub vps_name: String,
    pub deployment_type: DeploymentType,
}

/// The tenant's record: the request, where it runs, and every step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub request: TenantRequest,
    pub status: TenantStatus,
    pub steps: Vec<StepState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// `https://{slug}.{TenantDomain}`.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// How many times the workflow failed (each failure's event has its own id).
    #[serde(default)]
    pub failures: u32,
    /// When a dedicated VPS was ordered (written before the order goes out): once set, the
    /// workflow only looks for the VPS, never orders another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vps_ordered_at: Option<DateTime<Utc>>,
    /// When deprovisioning asked for the dedicated VPS's snapshot (written before asking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_requested_at: Option<DateTime<Utc>>,
    /// Failed, and what it took not yet given back (the release is finished on the next message).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub release_pending: bool,
    /// What deprovisioning waits for or last failed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovision_note: Option<String>,
    /// The continuation the workflow expects next: a message carrying another id while this
    /// one is pending is a stray (a replay, a duplicate, a superseded wait) and does nothing,
    /// so no second polling chain ever starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<Wake>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write: a write names the version it read, so two handlers never both
    /// move the same tenant.
    pub version: u64,
}

/// A continuation message the workflow sent: its id, and when it is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wake {
    pub id: String,
    pub at: DateTime<Utc>,
}

impl Wake {
    /// How late a pending continuation may be before another message may act in its place (it
    /// may have been lost); whichever acts first supersedes the other.
    pub const GRACE_SECONDS: i64 = 30;

    pub fn new(now: DateTime<Utc>, delay: std::time::Duration) -> Self {
        Self { id: uuid::Uuid::new_v4().simple().to_string(), at: now + chrono::Duration::from_std(delay).unwrap_or_default() }
    }

    /// May a message carrying `wake` (none: a request, not a continuation) move the tenant now?
    pub fn admits(pending: Option<&Wake>, wake: Option<&str>, now: DateTime<Utc>) -> bool {
        match pending {
            None => true,
            Some(w) if Some(w.id.as_str()) == wake => true,
            Some(w) => w.at + chrono::Duration::seconds(Self::GRACE_SECONDS) <= now,
        }
    }
}

/// Why the workflow stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub step: Step,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl Tenant {
    pub fn new(request: TenantRequest, url: String, now: DateTime<Utc>) -> Self {
        Self {
            request,
            status: TenantStatus::Provisioning,
            steps: Step::ALL.into_iter().map(StepState::pending).collect(),
            placement: None,
            licence: None,
            url,
            failure: None,
            failures: 0,
            vps_ordered_at: None,
            snapshot_requested_at: None,
            release_pending: false,
            deprovision_note: None,
            wake: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn id(&self) -> &str {
        &self.request.organization_id
    }

    /// The first step not done, if any.
    pub fn next_step(&self) -> Option<Step> {
        self.steps.iter().find(|s| s.status != StepStatus::Done).map(|s| s.step)
    }

    pub fn step(&self, step: Step) -> &StepState {
        &self.steps[step as usize]
    }

    pub fn step_mut(&mut self, step: Step) -> &mut StepState {
        &mut self.steps[step as usize]
    }

    /// The marker that names this tenant's dedicated VPS order in TransIP (the order answers
    /// without the VPS's name, so a resumed workflow finds its VPS by it instead of ordering twice).
    pub fn order_marker(&self) -> String {
        format!("relay-tenant:{}", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_host_names() {
        for ok in ["acme", "acme-bv", "a1b", "x2-y3"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["ac", "-acme", "acme-", "acme--bv", "Acme", "1acme", "ac.me", "acme_bv", &"a".repeat(41)] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn a_request_names_every_wrong_field() {
        let bad = TenantRequest {
            organization_id: "org 1".into(),
            name: " ".into(),
            slug: "A".into(),
            tier: Tier::Starter,
            deployment_type: DeploymentType::Shared,
            contact_email: "nobody".into(),
            products: vec!["crm".into()],
        };
        let fields: Vec<&str> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["organizationId", "name", "slug", "contactEmail", "products"]);
        let unknown_tier = serde_json::from_value::<TenantRequest>(serde_json::json!({
            "organizationId": "org-1", "name": "Acme", "slug": "acme", "tier": "gold", "deploymentType": "shared",
            "contactEmail": "it@acme.example", "products": ["recruitiq"]}));
        assert!(unknown_tier.unwrap_err().to_string().contains("gold"));
    }
}
