//! TransIP's REST API v6 as Relay's [`HostingProvider`].
//!
//! Login (`POST /v6/auth`): a JSON body with the account's login and a fresh nonce, signed
//! RSA-SHA512 (PKCS#1 v1.5) with the account's private key, the signature base64 in the
//! `Signature` header; TransIP answers a token that is sent as the bearer until it expires. The
//! signature covers the exact bytes sent, so the body is serialised once and signed as sent.
//! The key never leaves this struct and is never logged (its `Debug` says so).
//!
//! Ordering a VPS answers 201 without the VPS's name: the order carries the tenant's marker
//! in its description, and [`HostingProvider::find_vps`] lists the account's VPSs for it.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use relay_core::ports::provision::{HostingProvider, ProviderVps, RemoteError, VpsOrder};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha512;
use tokio::sync::Mutex;

/// How long a token is asked for, and how long before its end a new one is fetched.
const TOKEN_LIFETIME: &str = "30 minutes";
const TOKEN_REUSE: Duration = Duration::from_secs(25 * 60);

pub struct TransIpConfig {
    /// `https://api.transip.nl` (the API's paths start with `/v6`).
    pub base_url: String,
    pub login: String,
    /// The account's private key, PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    pub private_key_pem: String,
    /// `ubuntu-24.04`: what a dedicated VPS is installed with.
    pub operating_system: String,
    /// `ams0`.
    pub availability_zone: String,
}

pub struct TransIp {
    http: reqwest::Client,
    base: String,
    login: String,
    key: SigningKey<Sha512>,
    operating_system: String,
    availability_zone: String,
    token: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl std::fmt::Debug for TransIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransIp").field("base", &self.base).field("login", &self.login).field("key", &"(private)").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransIpSetupError {
    #[error("the TransIP private key is not an RSA key in PEM (PKCS#8 or PKCS#1)")]
    BadKey,
    #[error("no HTTP client: {0}")]
    Http(String),
}

impl TransIp {
    /// A client with its own HTTP connection pool: 30 s per call, no redirects followed (a
    /// bearer token goes to TransIP's host only).
    pub fn new(config: TransIpConfig) -> Result<Self, TransIpSetupError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TransIpSetupError::Http(e.to_string()))?;
        let pem = config.private_key_pem.trim();
        let key = rsa::PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| TransIpSetupError::BadKey)?;
        Ok(Self {
            http,
            base: config.base_url.trim_end_matches('/').to_string(),
            login: config.login,
            key: SigningKey::<Sha512>::new(key),
            operating_system: config.operating_system,
            availability_zone: config.availability_zone,
            token: Mutex::new(None),
        })
    }

    /// The `Signature` header's value for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.key.sign(body).to_bytes())
    }

    /// A token, fetched with a signed login when there is none or it is about to end.
    async fn token(&self, now: DateTime<Utc>) -> Result<String, RemoteError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if *until > now {
                return Ok(token.clone());
            }
        }
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let body = serde_json::to_vec(&json!({
            "login": self.login, "nonce": nonce, "read_only": false, "expiration_time": TOKEN_LIFETIME,
            "label": format!("relay {nonce}"), "global_key": true,
        }))
        .unwrap_or_default();
        let signature = self.sign(&body);
        let response = self
            .http
            .post(format!("{}/v6/auth", self.base))
            .header("content-type", "application/json")
            .header("Signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| RemoteError::transient(format!("TransIP login: {e}")))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(classify("TransIP login", status.as_u16(), &answer));
        }
        let token = answer["token"].as_str().ok_or_else(|| RemoteError::permanent("TransIP login answered no token"))?.to_string();
        *cached = Some((token.clone(), now + chrono::Duration::from_std(TOKEN_REUSE).unwrap_or_default()));
        Ok(token)
    }

    /// One authenticated call; a 401 (a token revoked early) logs in again once.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, RemoteError> {
        for attempt in 0..2 {
            let token = self.token(Utc::now()).await?;
            let mut request = self.http.request(method.clone(), format!("{}/v6{path}", self.base)).bearer_auth(token);
            if let Some(b) = &body {
                request = request.json(b);
            }
            let what = format!("TransIP {method} {path}");
            let response = request.send().await.map_err(|e| RemoteError::transient(format!("{what}: {e}")))?;
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            if status == 401 && attempt == 0 {
                *self.token.lock().await = None;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(classify(&what, status, &answer));
            }
            return Ok(answer);
        }
        Err(RemoteError::permanent("TransIP refused a fresh token"))
    }
}

/// 429, 5xx: try again; any other refusal: the request itself is wrong.
fn classify(what: &str, status: u16, answer: &Value) -> RemoteError {
    let detail = answer["error"].as_str().unwrap_or("");
    let message = format!("{what}: {status} {detail}").trim_end().to_string();
    match status {
        429 | 500..=599 => RemoteError::transient(message),
        404 => RemoteError::gone(message),
        _ => RemoteError::permanent(message),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vps {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    is_locked: bool,
    #[serde(default)]
    ip_address: Option<String>,
}

impl From<Vps> for ProviderVps {
    fn from(v: Vps) -> Self {
        ProviderVps { name: v.name, status: v.status, locked: v.is_locked, ip: v.ip_address, description: v.description }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, v: Value) -> Result<T, RemoteError> {
    serde_json::from_value(v).map_err(|e| RemoteError::transient(format!("TransIP answered an unexpected {what}: {e}")))
}

#[async_trait]
impl HostingProvider for TransIp {
    async fn order_vps(&self, order: &VpsOrder) -> Result<(), RemoteError> {
        let body = json!({
            "productName": order.product, "operatingSystem": self.operating_system, "availabilityZone": self.availability_zone,
            "hostname": order.hostname, "description": order.description, "installFlavour": "cloudinit",
            "base64InstallText": STANDARD.encode(&order.cloud_init),
        });
        self.call(reqwest::Method::POST, "/vps", Some(body)).await.map(|_| ())
    }

    async fn find_vps(&self, marker: &str) -> Result<Option<ProviderVps>, RemoteError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            vpss: Vec<Vps>,
        }
        let list: List = parse("VPS list", self.call(reqwest::Method::GET, "/vps", None).await?)?;
        // Exactly: `relay-tenant:org-1` must never find `relay-tenant:org-10`'s VPS.
        Ok(list.vpss.into_iter().find(|v| v.description == marker).map(Into::into))
    }

    async fn vps(&self, name: &str) -> Result<ProviderVps, RemoteError> {
        #[derive(Deserialize)]
        struct One {
            vps: Vps,
        }
        let one: One = parse("VPS", self.call(reqwest::Method::GET, &format!("/vps/{name}"), None).await?)?;
        Ok(one.vps.into())
    }

    async fn start_vps(&self, name: &str) -> Result<(), RemoteError> {
        self.call(reqwest::Method::PATCH, &format!("/vps/{name}"), Some(json!({"action": "start"}))).await.map(|_| ())
    }

    async fn stop_vps(&self, name: &str) -> Result<(), RemoteError> {
        self.call(reqwest::Method::PATCH, &format!("/vps/{name}"), Some(json!({"action": "stop"}))).await.map(|_| ())
    }

    async fn snapshot_vps(&self, name: &str, description: &str) -> Result<(), RemoteError> {
        let body = json!({"description": description, "shouldStartVps": false});
        self.call(reqwest::Method::POST, &format!("/vps/{name}/snapshots"), Some(body)).await.map(|_| ())
    }

    async fn cancel_vps(&self, name: &str) -> Result<(), RemoteError> {
        self.call(reqwest::Method::DELETE, &format!("/vps/{name}"), Some(json!({"endTime": "immediately"}))).await.map(|_| ())
    }
}
