//! The provision function: an SQS handler with partial batch responses around
//! [`relay_core::provision::workflow`]. The provision queue carries two kinds of message:
//! - `organization.created` from the Portal, as the bus delivers it (an EventBridge event whose
//!   `detail` is Relay's envelope): the tenant is recorded once and moved as far as it goes;
//! - `{"tenantId": "..."}`, the workflow's own continuations (a VPS installing, an instance not
//!   healthy yet, an operator's retry or deprovisioning): the tenant is moved on.
//!
//! A message fails, and comes back, when a store, the bus or the queue failed (after five
//! tries it waits in the provision dead-letter queue under an alarm). A message that can never
//! be handled (not one of the two, a request that is not valid, a slug another tenant has) is
//! put in that dead-letter queue at once, with the reason, having changed nothing.
//!
//! The secrets (TransIP's private key, the licence signing key, the deploy agents' secret) are
//! SSM `SecureString` parameters, read once at cold start and never logged.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::Error;
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::tenants::DynamoTenants;
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::s3::S3Blobs;
use relay_aws::sqs::{SqsProvisionQueue, SqsRetries};
use relay_aws::ssm::Parameters;
use relay_core::ports::RetryQueue;
use relay_core::provision::integrations::SubscriptionIntegrations;
use relay_core::provision::licence::{LicenceKey, LicencePublicKey};
use relay_core::provision::tenant::TenantRequest;
use relay_core::provision::workflow::{ProvisionConfig, ProvisionError, ProvisionPorts, Provisioner};
use relay_hosting::agent::HttpDeployAgent;
use relay_hosting::probe::HttpHealthProbe;
use relay_hosting::transip::{TransIp, TransIpConfig};
use serde_json::Value;

pub struct App {
    pub provisioner: Provisioner,
    /// The provision dead-letter queue, for messages that can never be handled.
    pub dead_letters: Arc<dyn RetryQueue>,
}

fn seconds(name: &'static str, default: i64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(config::number(name, default)?.max(1) as u64))
}

fn invalid(name: &'static str, expected: &'static str, value: impl ToString) -> ConfigError {
    ConfigError::Invalid { name, expected, value: value.to_string() }
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let parameters = Parameters::new(&sdk);
        let licence = LicenceKey::from_base64(&parameters.secret("RELAY_LICENCE_KEY_PARAMETER").await?)
            .map_err(|_| invalid("RELAY_LICENCE_KEY_PARAMETER", "a parameter holding a 32-byte Ed25519 seed, base64", "(not shown)"))?;
        // The key the API publishes must be this key's: a mismatch would issue licences no
        // tenant can verify, so the function refuses to start instead.
        let published = config::required("RELAY_LICENCE_PUBLIC_KEY")?;
        if LicencePublicKey::from_base64(&published).ok() != Some(licence.public()) {
            return Err(invalid("RELAY_LICENCE_PUBLIC_KEY", "the public key of the licence signing key", published));
        }
        let provider = TransIp::new(TransIpConfig {
            base_url: config::required("RELAY_TRANSIP_API_BASE")?,
            login: config::required("RELAY_TRANSIP_LOGIN")?,
            private_key_pem: parameters.secret("RELAY_TRANSIP_KEY_PARAMETER").await?,
            operating_system: config::required("RELAY_TRANSIP_OPERATING_SYSTEM")?,
            availability_zone: config::required("RELAY_TRANSIP_AVAILABILITY_ZONE")?,
        })
        .map_err(|e| invalid("RELAY_TRANSIP_KEY_PARAMETER", "a parameter holding an RSA private key, PEM", e))?;
        let agent = HttpDeployAgent::new(parameters.secret("RELAY_AGENT_SECRET_PARAMETER").await?);

        let tenants = Arc::new(DynamoTenants::new(&sdk, config::required("RELAY_TENANTS_TABLE")?));
        let tenant_store: Arc<dyn relay_core::ports::provision::TenantStore> = match std::env::var("RELAY_LOCAL_FAULT_EXIT_AFTER")
            .ok()
            .and_then(|list| fault::ExitAfterSteps::from_list(tenants.clone(), &list))
        {
            Some(faulty) => Arc::new(faulty),
            None => tenants.clone(),
        };
        let subscriptions =
            Arc::new(DynamoStore::new(&sdk, Tables { config: config::required("RELAY_CONFIG_TABLE")?, ..Default::default() }));
        let ports = ProvisionPorts {
            tenants: tenant_store,
            fleet: tenants,
            provider: Arc::new(provider),
            agent: Arc::new(agent),
            probe: Arc::new(HttpHealthProbe::new()),
            files: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_TENANT_FILES_BUCKET")?)),
            integrations: Arc::new(SubscriptionIntegrations::new(subscriptions)),
            bus: Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?)),
            queue: Arc::new(SqsProvisionQueue::new(&sdk, config::required("RELAY_PROVISION_QUEUE_URL")?)),
            metrics: Arc::new(EmfMetrics::from_env("provision")),
        };
        let settings = ProvisionConfig {
            tenant_domain: config::required("RELAY_TENANT_DOMAIN")?,
            health_url: config::required("RELAY_TENANT_HEALTH_URL")?,
            image: config::required("RELAY_TENANT_IMAGE")?,
            certificate_email: config::required("RELAY_CERTIFICATE_EMAIL")?,
            licence: Arc::new(licence),
            vps_poll: seconds("RELAY_VPS_POLL_SECONDS", 60)?,
            vps_deadline: seconds("RELAY_VPS_DEADLINE_SECONDS", 3600)?,
            health_first_wait: seconds("RELAY_HEALTH_FIRST_WAIT_SECONDS", 10)?,
            health_deadline: seconds("RELAY_HEALTH_DEADLINE_SECONDS", 1800)?,
            max_attempts: config::number("RELAY_PROVISION_MAX_ATTEMPTS", 5)?.clamp(1, 100) as u32,
            lease: seconds("RELAY_PROVISION_LEASE_SECONDS", 180)?,
        };
        let dead_letters = Arc::new(SqsRetries::new(&sdk, String::new(), config::required("RELAY_PROVISION_DLQ_URL")?));
        Ok(Self { provisioner: Provisioner::new(ports, settings), dead_letters })
    }

    /// Handles one SQS batch, a message at a time.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, Error> {
        Ok(relay_edge::sqs::one_at_a_time(&event, |record| self.message(record)).await)
    }

    async fn message(&self, message: &SqsMessage) -> Result<(), ProvisionError> {
        let body = message.body.as_deref().unwrap_or("");
        let outcome = match Message::parse(body) {
            Ok(Message::Continue(id, wake)) => self.provisioner.advance(&id, wake.as_deref(), Utc::now()).await,
            Ok(Message::Create(request)) => self.provisioner.request(*request, Utc::now()).await,
            Err(why) => Err(ProvisionError::Refused(why)),
        };
        match outcome {
            Ok(tenant) => {
                tracing::info!(tenant = tenant.id(), status = relay_core::provision::workflow::status_name(tenant.status), "tenant moved");
                Ok(())
            }
            Err(ProvisionError::Refused(why)) => {
                // Acknowledged means kept: a request that cannot be provisioned (a bad or
                // conflicting organization.created) waits for a person in the dead-letter queue,
                // under its alarm, instead of vanishing: as it came, so a redrive after a fix
                // sends it as it was; the reason is in this log line.
                tracing::error!(reason = %why, message_id = message.message_id.as_deref().unwrap_or(""), "a message that can never be handled goes to the provision dead-letter queue");
                self.dead_letters.dead_letter(body).await.map_err(ProvisionError::Store)
            }
            Err(e) => Err(e),
        }
    }
}

/// What a provision queue message asks for.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// `organization.created`: record the tenant and start.
    Create(Box<TenantRequest>),
    /// A continuation (the tenant, and the continuation's id; none from an old message or a
    /// person): move the tenant on.
    Continue(String, Option<String>),
}

/// The fields of `organization.created`'s payload that make a tenant request (any others the
/// Portal adds are not Relay's business).
const REQUEST_FIELDS: [&str; 6] = ["name", "slug", "tier", "deploymentType", "contactEmail", "products"];

impl Message {
    pub fn parse(body: &str) -> Result<Self, String> {
        let body: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(id) = body.get("tenantId") {
            let wake = match body.get("wake") {
                None | Some(Value::Null) => None,
                Some(Value::String(w)) => Some(w.clone()),
                Some(_) => return Err("wake is not a string".into()),
            };
            return id.as_str().map(|id| Message::Continue(id.to_string(), wake)).ok_or_else(|| "tenantId is not a string".into());
        }
        let Some(envelope) = body.get("detail") else { return Err("neither an event nor a continuation".into()) };
        if envelope["eventType"] != "organization.created" {
            return Err(format!("an event of type {} is not provisioning's", envelope["eventType"]));
        }
        // The envelope's organisation is the one that counts: the Portal's key published it.
        let organization = envelope["organizationId"].as_str().ok_or("organization.created without an organizationId")?;
        let payload = envelope["payload"].as_object().ok_or("organization.created without a payload")?;
        if payload.get("organizationId").is_some_and(|p| p != organization) {
            return Err(format!("organization.created for {organization} whose payload names another organisation"));
        }
        let mut request = serde_json::Map::new();
        request.insert("organizationId".into(), organization.into());
        for field in REQUEST_FIELDS {
            if let Some(v) = payload.get(field) {
                request.insert(field.into(), v.clone());
            }
        }
        let request: TenantRequest =
            serde_json::from_value(Value::Object(request)).map_err(|e| format!("organization.created for {organization}: {e}"))?;
        Ok(Message::Create(Box::new(request)))
    }
}

mod fault;
#[cfg(test)]
mod tests;
