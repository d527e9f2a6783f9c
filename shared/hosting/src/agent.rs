//! A shared VPS's deploy agent, over HTTP: `PUT {agent}/tenants/{id}` with the tenant's `.env`
//! deploys it (again: the same body is the same deployment), `DELETE {agent}/tenants/{id}`
//! takes it off. Every call is signed as Relay signs webhooks (Standard Webhooks: `webhook-id`,
//! `webhook-timestamp`, `webhook-signature`) with the agents' shared secret, so an agent runs
//! only what Relay asked for, and refuses a replay older than its tolerance.

use std::time::Duration;

use async_trait::async_trait;
use relay_core::ports::provision::{DeployAgent, RemoteError};
use relay_core::signing::signature_header;
use serde_json::json;

pub struct HttpDeployAgent {
    http: reqwest::Client,
    /// `whsec_...`, shared with the agents.
    secret: String,
}

impl HttpDeployAgent {
    pub fn new(http: reqwest::Client, secret: String) -> Self {
        Self { http, secret }
    }

    async fn send(&self, method: reqwest::Method, agent_url: &str, tenant: &str, body: Vec<u8>) -> Result<(), RemoteError> {
        let url = format!("{}/tenants/{tenant}", agent_url.trim_end_matches('/'));
        let id = format!("{}-{tenant}", method.as_str().to_ascii_lowercase());
        let timestamp = chrono::Utc::now().timestamp();
        let what = format!("{method} {url}");
        let response = self
            .http
            .request(method, &url)
            .timeout(Duration::from_secs(30))
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature_header(&id, timestamp, &body, &[&self.secret]))
            .body(body)
            .send()
            .await
            .map_err(|e| RemoteError::transient(format!("{what}: {e}")))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            404 if what.starts_with("DELETE") => Ok(()), // not there: nothing to take off
            408 | 429 | 500..=599 => Err(RemoteError::transient(format!("{what}: {status}"))),
            _ => Err(RemoteError::permanent(format!("{what}: {status}"))),
        }
    }
}

#[async_trait]
impl DeployAgent for HttpDeployAgent {
    async fn deploy(&self, agent_url: &str, tenant: &str, env_file: &str) -> Result<(), RemoteError> {
        let body = serde_json::to_vec(&json!({"tenant": tenant, "envFile": env_file})).unwrap_or_default();
        self.send(reqwest::Method::PUT, agent_url, tenant, body).await
    }

    async fn remove(&self, agent_url: &str, tenant: &str) -> Result<(), RemoteError> {
        self.send(reqwest::Method::DELETE, agent_url, tenant, Vec::new()).await
    }
}
