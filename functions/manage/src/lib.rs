//! The manage function: the organisation-scoped management API. An organisation key sees and
//! changes only its own organisation; anything else answers 404 exactly as if it did not exist.
//!
//! One file per resource, each with its routes: [`subscriptions`] (outgoing webhooks, with
//! secret rotation, recovery and test sends), [`sources`] (incoming webhook sources),
//! [`events`] (listing, inspection and replay), [`organization`] (the contact address) and
//! [`integrations`] (the platform's product integrations, operator keys only) and [`emails`]
//! (mail requests, the message log, the suppression list), [`stats`] (deliveries per hour) and
//! [`console`] (the web console's files, served without a key) and [`dead_letters`] (every
//! organisation's exhausted deliveries, operator keys only) and [`payroll`] (payroll runs and
//! monthly schedules: Paylinq asks for and sets them, Paylinq, operators and the organisation
//! see them) and [`tenants`] (tenants provisioned and taken down, the VPS fleet, operator keys
//! only; the licence key, public). The rules live
//! in [`relay_core::manage`]; these files only read HTTP and render views, with the helpers
//! they share in `http.rs`.

mod console;
mod dead_letters;
mod emails;
mod events;
mod http;
mod integrations;
mod organization;
mod payroll;
mod sources;
mod stats;
mod subscriptions;
mod tenants;

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Error, Request, Response};
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::payroll::DynamoPayroll;
use relay_aws::dynamo::tenants::DynamoTenants;
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::eventbridge::EventBridgePublisher;
use relay_aws::metrics::EmfMetrics;
use relay_aws::s3::S3Blobs;
use relay_aws::sqs::{SqsProvisionQueue, SqsRetries};
use relay_core::auth::Authenticator;
use relay_core::mail::log::MailRecords;
use relay_core::mail::request::{BusMailer, IntakeConfig, IntakePorts, MailIntake};
use relay_core::manage::{Manage, ManageConfig, ManagePorts};
use relay_core::model::keys::KeyKind;
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::payroll::requests::{PayrollApi, PayrollApiPorts};
use relay_core::payroll::rules;
use relay_core::provision::licence::LicencePublicKey;
use relay_core::provision::requests::{TenantApi, TenantApiPorts};
use relay_edge::{header, to_response};

pub struct App {
    pub auth: Authenticator,
    pub manage: Manage,
    pub intake: MailIntake,
    pub records: MailRecords,
    pub payroll: PayrollApi,
    pub tenants: TenantApi,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(&sdk, Tables::from_env()?));
        let publisher = Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?));
        let ports = ManagePorts {
            subscriptions: store.clone(),
            sources: store.clone(),
            events: store.clone(),
            deliveries: store.clone(),
            organizations: store.clone(),
            retries: Arc::new(SqsRetries::new(&sdk, config::required("RELAY_RETRY_QUEUE_URL")?, String::new())),
            mailer: Arc::new(BusMailer::new(publisher.clone())),
            blobs: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYLOAD_BUCKET")?)),
            requests: store.clone(),
            archive: Arc::new(S3Blobs::new(&sdk, config::required("RELAY_ARCHIVE_BUCKET")?)),
        };
        let manage_config = ManageConfig {
            rotation_overlap: chrono::Duration::seconds(config::number("RELAY_SECRET_ROTATION_OVERLAP_SECONDS", 24 * 3600)?),
            ..ManageConfig::new(config::secret_box()?)
        };
        let key_cache = Duration::from_secs(config::number("RELAY_KEY_CACHE_SECONDS", 60)? as u64);
        let intake_config = IntakeConfig {
            idempotency_ttl_secs: config::number("RELAY_IDEMPOTENCY_TTL_SECONDS", 3 * 24 * 3600)?,
            id_key: config::derived_key("relay:email-ids")?,
            retention: config::mail_retention()?,
            ..IntakeConfig::default()
        };
        let intake = MailIntake::new(
            IntakePorts { idempotency: store.clone(), log: store.clone(), publisher, metrics: Arc::new(EmfMetrics::from_env("manage")) },
            intake_config,
        );
        let records = MailRecords { log: store.clone(), suppressions: store.clone() };
        let payroll_bucket = Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYROLL_BUCKET")?));
        let payroll_table = Arc::new(DynamoPayroll::new(&sdk, config::required("RELAY_PAYROLL_TABLE")?));
        let payroll = PayrollApi::new(
            PayrollApiPorts {
                runs: payroll_table.clone(),
                schedules: payroll_table,
                bus: Arc::new(EventBridgePublisher::new(&sdk, config::required("RELAY_EVENT_BUS_NAME")?)),
                reader: payroll_bucket.clone(),
                links: payroll_bucket,
            },
            rules::built_in()
                .map_err(|e| ConfigError::Invalid { name: "rules/payroll", expected: "valid rule tables", value: e.to_string() })?
                .into_iter()
                .map(|t| t.id)
                .collect(),
        );
        let tenants_table = Arc::new(DynamoTenants::new(&sdk, config::required("RELAY_TENANTS_TABLE")?));
        let published = config::required("RELAY_LICENCE_PUBLIC_KEY")?;
        let licence = LicencePublicKey::from_base64(&published).map_err(|_| ConfigError::Invalid {
            name: "RELAY_LICENCE_PUBLIC_KEY",
            expected: "an Ed25519 public key, 32 bytes base64url",
            value: published,
        })?;
        let tenants = TenantApi::new(
            TenantApiPorts {
                tenants: tenants_table.clone(),
                fleet: tenants_table,
                queue: Arc::new(SqsProvisionQueue::new(&sdk, config::required("RELAY_PROVISION_QUEUE_URL")?)),
            },
            config::required("RELAY_TENANT_DOMAIN")?,
            licence,
        );
        Ok(Self {
            auth: Authenticator::new(store, key_cache),
            manage: Manage::new(ports, manage_config),
            intake,
            records,
            payroll,
            tenants,
        })
    }

    /// Handles one request. Never fails: every error is a problem document.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Error> {
        let path = relay_edge::path(&req);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let reply = match parts.as_slice() {
            ["console", rest @ ..] => return Ok(console::serve(&req, rest)),
            ["v1", "sources", rest @ ..] => match self.organization_of(&req, "sources belong").await {
                Ok(org) => sources::route(&self.manage, &req, &org, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "subscriptions", rest @ ..] => match self.organization_of(&req, "subscriptions belong").await {
                Ok(org) => subscriptions::route(&self.manage, &req, &org, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "events", rest @ ..] => match self.organization_of(&req, "events belong").await {
                Ok(org) => events::route(&self.manage, &req, &org, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "stats", rest @ ..] => match self.organization_of(&req, "delivery statistics belong").await {
                Ok(org) => stats::route(&self.manage, &req, &org, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "organization", rest @ ..] => match self.organization_of(&req, "the profile belongs").await {
                Ok(org) => organization::route(&self.manage, &req, &org, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "emails", rest @ ..] => match self.auth.authenticate(header(req.headers(), "authorization")).await {
                Ok(caller) => emails::route(&self.intake, &self.records, &req, &caller, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "email-suppressions", rest @ ..] => match self.require_operator(&req, "the suppression list is kept by").await {
                Ok(()) => emails::suppressions(&self.records, &req, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "dead-letters", rest @ ..] => match self.require_operator(&req, "dead letters are handled by").await {
                Ok(()) => dead_letters::route(&self.manage, &req, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "payroll-runs", rest @ ..] => match self.auth.authenticate(header(req.headers(), "authorization")).await {
                Ok(key) => payroll::runs(&self.payroll, &req, &key, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "payroll-schedules", rest @ ..] => match self.auth.authenticate(header(req.headers(), "authorization")).await {
                Ok(key) => payroll::schedules(&self.payroll, &req, &key, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "tenants", rest @ ..] => match self.require_operator(&req, "tenants are provisioned by").await {
                Ok(()) => tenants::tenants(&self.tenants, &req, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "vps", rest @ ..] => match self.require_operator(&req, "the VPS fleet is managed by").await {
                Ok(()) => tenants::fleet(&self.tenants, &req, rest).await,
                Err(p) => p.into(),
            },
            ["v1", "licence-key"] => tenants::licence_key(&self.tenants, &req),
            ["v1", "integrations", rest @ ..] => match self.require_operator(&req, "integrations are managed by").await {
                Ok(()) => integrations::route(&self.manage, &req, rest).await,
                Err(p) => p.into(),
            },
            _ => Problem::new(ProblemKind::NotFound, format!("no route {path}")).into(),
        };
        Ok(to_response(reply))
    }

    /// The guard of every organisation route: the caller's organisation, from an organisation
    /// key (`what` names what the route manages, for the 403: "sources belong").
    async fn organization_of(&self, req: &Request, what: &str) -> Result<String, Problem> {
        let key = self.auth.authenticate(header(req.headers(), "authorization")).await?;
        match (key.kind, key.organization_id) {
            (KeyKind::Organization, Some(org)) => Ok(org),
            _ => Err(Problem::new(ProblemKind::Forbidden, format!("use an organisation key: {what} to an organisation"))),
        }
    }

    /// The guard of the operator routes: an admin key.
    async fn require_operator(&self, req: &Request, what: &str) -> Result<(), Problem> {
        let key = self.auth.authenticate(header(req.headers(), "authorization")).await?;
        match key.kind {
            KeyKind::Admin => Ok(()),
            _ => Err(Problem::new(ProblemKind::Forbidden, format!("{what} the platform's operators (admin keys)"))),
        }
    }
}

#[cfg(test)]
mod tests;
