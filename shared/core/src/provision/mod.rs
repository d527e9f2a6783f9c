//! Tenant provisioning: a customer organisation from `organization.created` to a running,
//! healthy instance, as a workflow of checkpointed, idempotent steps (seed 000 §3).
//!
//! - [`tenant`]: the request, the tenant's record and its steps.
//! - [`licence`]: the Ed25519-signed licence a tenant's application verifies offline.
//! - [`cloud_init`]: the tenant's cloud-config and `.env`.
//! - [`fleet`]: the VPS fleet, which shared VPS takes the next tenant, and its statistics.
//! - [`workflow`]: the workflow over ports: the lease, checkpoints, waits, failure and release.
//! - [`steps`]: what each step does, and deprovisioning.
//! - [`integrations`]: the integrations step's adapter over the subscription store.
//! - [`requests`]: the operator API's use cases (tenants, retry, deprovisioning, the fleet, the
//!   licence key), which queue work for the workflow and never run a step themselves.

pub mod cloud_init;
pub mod fleet;
pub mod integrations;
pub mod licence;
pub mod requests;
pub mod steps;
pub mod tenant;
pub mod workflow;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod tests;
