//! The manage function: the organisation-scoped management API. An organisation key sees and
//! changes only its own organisation; anything else answers 404 exactly as if it did not exist.
//!
//! Routes: `POST/GET /v1/sources`, `GET/DELETE /v1/sources/{id}` (incoming webhook sources).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_core::auth::Authenticator;
use relay_core::ingest::Reply;
use relay_core::keys::{ApiKey, KeyKind};
use relay_core::ports::{KeyStore, SourceStore};
use relay_core::problem::{Problem, ProblemKind};
use relay_core::secrets::SecretBox;
use relay_core::webhooks::sources;
use relay_edge::{header, is_json, to_response};
use serde_json::{json, Value};

/// The largest management request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct App<S> {
    pub auth: Authenticator<S>,
    pub store: S,
    pub secrets: SecretBox,
}

impl App<Arc<DynamoStore>> {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(
            &sdk,
            Tables {
                idempotency: config::required("RELAY_IDEMPOTENCY_TABLE")?,
                events: config::required("RELAY_EVENTS_TABLE")?,
                config: config::required("RELAY_CONFIG_TABLE")?,
            },
        ));
        let key = config::required("RELAY_SECRETS_KEY")?;
        let secrets = SecretBox::from_base64(&key).map_err(|_| ConfigError::Invalid {
            name: "RELAY_SECRETS_KEY",
            expected: "32 bytes, base64",
            value: "(hidden)".into(),
        })?;
        let ttl = Duration::from_secs(config::number("RELAY_KEY_CACHE_SECONDS", 60)? as u64);
        Ok(Self { auth: Authenticator::new(store.clone(), ttl), store, secrets })
    }
}

impl<S: KeyStore + SourceStore> App<S> {
    /// Handles one request. Never fails: every error is a problem document.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Error> {
        let path = relay_edge::path(&req);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let reply = match (req.method(), parts.as_slice()) {
            (_, ["v1", "sources", ..]) => match self.organisation(&req).await {
                Ok(org) => self.sources(&req, &org, &parts[2..]).await,
                Err(p) => p.into(),
            },
            _ => Problem::new(ProblemKind::NotFound, format!("no route {path}")).into(),
        };
        Ok(to_response(reply))
    }

    /// The caller's organisation; only organisation keys manage an organisation's resources.
    async fn organisation(&self, req: &Request) -> Result<String, Problem> {
        let key: ApiKey = self.auth.authenticate(header(req.headers(), "authorization")).await?;
        match (key.kind, key.organization_id) {
            (KeyKind::Organization, Some(org)) => Ok(org),
            _ => Err(Problem::new(ProblemKind::Forbidden, "use an organisation key: sources belong to an organisation")),
        }
    }

    async fn sources(&self, req: &Request, org: &str, rest: &[&str]) -> Reply {
        let base = relay_edge::public_base_url(req);
        match (req.method(), rest) {
            (&Method::POST, []) => {
                let body = match json_body(req) {
                    Ok(b) => b,
                    Err(p) => return p.into(),
                };
                let sealed = match sources::register(&body, org, sources::new_id(), Utc::now(), &self.secrets) {
                    Ok(s) => s,
                    Err(p) => return p.into(),
                };
                if let Err(e) = self.store.put_source(&sealed).await {
                    tracing::error!(error = %e, "storing a source failed");
                    return Problem::unavailable("Relay could not store the source; retry", 2).into();
                }
                tracing::info!(source_id = %sealed.id, provider = %sealed.provider, organization_id = org, "source registered");
                Reply::json(201, &sources::public_view(&sealed, &base))
            }
            (&Method::GET, []) => match self.store.list_sources(org).await {
                Ok(mut list) => {
                    list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
                    let views: Vec<Value> = list.iter().map(|s| sources::public_view(s, &base)).collect();
                    Reply::json(200, &json!({"sources": views}))
                }
                Err(e) => unavailable(e),
            },
            (&Method::GET, [id]) => match self.store.get_source(id).await {
                Ok(Some(s)) if s.organization_id == org => Reply::json(200, &sources::public_view(&s, &base)),
                Ok(_) => not_found(id),
                Err(e) => unavailable(e),
            },
            (&Method::DELETE, [id]) => match self.store.delete_source(org, id).await {
                Ok(true) => {
                    Reply { status: 204, body: String::new(), content_type: "application/json", replayed: false, retry_after: None }
                }
                Ok(false) => not_found(id),
                Err(e) => unavailable(e),
            },
            (_, [] | [_]) => Problem::new(ProblemKind::MethodNotAllowed, format!("{} is not supported here", req.method())).into(),
            _ => Problem::new(ProblemKind::NotFound, "no such route").into(),
        }
    }
}

fn json_body(req: &Request) -> Result<Value, Problem> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(ProblemKind::PayloadTooLarge, format!("the body is {} bytes; the limit is {MAX_BODY_BYTES}", body.len())));
    }
    if !is_json(header(req.headers(), "content-type")) {
        return Err(Problem::new(ProblemKind::UnsupportedMediaType, "send JSON with 'Content-Type: application/json'"));
    }
    serde_json::from_slice(body).map_err(|e| Problem::new(ProblemKind::MalformedJson, format!("the body is not valid JSON: {e}")))
}

fn not_found(id: &str) -> Reply {
    Problem::new(ProblemKind::NotFound, format!("no source {id} in your organisation")).into()
}

fn unavailable(e: relay_core::ports::StoreError) -> Reply {
    tracing::error!(error = %e, "store failed");
    Problem::unavailable("Relay could not reach its store; retry", 2).into()
}
