//! A shared VPS's deploy agent, over HTTPS: `PUT {agent}/tenants/{id}` with the tenant's `.env`
//! deploys it (again: the same body is the same deployment), `DELETE {agent}/tenants/{id}`
//! takes it off. Every call is signed as Relay signs webhooks (Standard Webhooks: `webhook-id`,
//! `webhook-timestamp`, `webhook-signature`) with the agents' secret, and its body names the
//! action and the agent it is for, so an agent runs only what Relay asked of it: a call replayed
//! at another VPS names another agent, and one replayed later is past the agent's tolerance.
//! Redirects are not followed: the signed headers and the licence go nowhere else.

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
    pub fn new(secret: String) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self { http, secret }
    }

    async fn send(&self, method: reqwest::Method, agent_url: &str, tenant: &str, body: serde_json::Value) -> Result<(), RemoteError> {
        let url = format!("{}/tenants/{tenant}", agent_url.trim_end_matches('/'));
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // A fresh id per call: an agent that drops repeated ids still runs a later re-deploy.
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let timestamp = chrono::Utc::now().timestamp();
        let what = format!("{method} {url}");
        let response = self
            .http
            .request(method, &url)
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
        let body = json!({"action": "deploy", "agent": agent_url, "tenant": tenant, "envFile": env_file});
        self.send(reqwest::Method::PUT, agent_url, tenant, body).await
    }

    async fn remove(&self, agent_url: &str, tenant: &str) -> Result<(), RemoteError> {
        let body = json!({"action": "remove", "agent": agent_url, "tenant": tenant});
        self.send(reqwest::Method::DELETE, agent_url, tenant, body).await
    }
}
