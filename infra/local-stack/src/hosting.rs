//! The hosting side of provisioning, stood in for on loopback: what the provision function
//! talks to when it runs in the local stack or its tests.
//!
//! - **TransIP's REST API v6** (`/v6/...`): `POST /v6/auth` checks the login's `Signature`
//!   (RSA-SHA512, PKCS#1 v1.5, over the exact body) with the account's *public* key and answers
//!   a token; every other call needs that token as its bearer. A VPS ordered with `POST /v6/vps`
//!   is `installing` for a number of reads and then `running`; a read can be made to answer a
//!   503 once. Start, stop, snapshot and cancel work as TransIP documents them.
//! - **Deploy agents** (`/agents/{vps}/tenants/{id}`): `PUT` deploys a tenant's `.env`, `DELETE`
//!   takes it off, each only with a valid Standard Webhooks signature (checked here with HMAC,
//!   independently of Relay's signing code) and a body naming this agent.
//! - **Tenants' health** (`GET /health/{slug}`): 200 once the tenant is deployed on an agent or
//!   its dedicated VPS runs; 503 before.
//! - `GET /_standin`: what happened, as JSON (orders, VPSs, deployments, refused signatures).
//!
//! The keys are the local stack's own, checked in beside this file: never a real account's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{json, Value};

/// The local stack's TransIP account key (PKCS#8 PEM): seeded as the provision function's
/// SecureString parameter. Local only.
pub const LOCAL_TRANSIP_PRIVATE_KEY: &str = include_str!("../keys/transip-local.pem");
/// Its public key, which the stand-in checks logins with.
pub const LOCAL_TRANSIP_PUBLIC_KEY: &str = include_str!("../keys/transip-local.pub.pem");
pub const LOCAL_TRANSIP_LOGIN: &str = "relay-local";
/// The local licence signing key (an Ed25519 seed, base64). Local only.
pub const LOCAL_LICENCE_SEED: &str = "CGpf3WJqnojNOSBc6ul0UZyk3tZSlRVvalgv3DP7l+w=";
/// The local deploy agents' secret. Local only.
pub const LOCAL_AGENT_SECRET: &str = "whsec_bG9jYWwtZGVwbG95LWFnZW50LXNlY3JldC0xMjM0NQ==";

/// How the stand-in behaves; tests change it while it runs.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Reads of a new VPS that answer `installing` before it is `running`.
    pub reads_until_running: usize,
    /// The n-th read of any VPS (1-based) answers 503 once; 0: never.
    pub transient_on_read: usize,
    /// Health checks answer 503 until this many were asked (on top of being deployed).
    pub unhealthy_checks: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self { reads_until_running: 3, transient_on_read: 2, unhealthy_checks: 1 }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StandInVps {
    pub name: String,
    pub product: String,
    pub hostname: String,
    pub description: String,
    pub status: String,
    pub reads: usize,
    pub cloud_init: String,
    pub snapshots: Vec<String>,
    pub cancelled: bool,
}

#[derive(Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub logins: usize,
    pub refused_logins: usize,
    pub orders: usize,
    pub vps_reads: usize,
    pub transient_answers: usize,
    pub vpss: Vec<StandInVps>,
    /// By agent, then tenant: its `.env`.
    pub deployments: BTreeMap<String, BTreeMap<String, String>>,
    pub deploy_calls: usize,
    pub removals: usize,
    pub refused_agent_calls: usize,
    pub health_checks: BTreeMap<String, usize>,
}

struct Inner {
    behaviour: Behaviour,
    record: Record,
    tokens: Vec<String>,
}

#[derive(Clone)]
pub struct HostingStandIn {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    login_key: Arc<VerifyingKey<sha2::Sha512>>,
    agent_secret: Arc<String>,
}

impl HostingStandIn {
    /// Serves on `127.0.0.1:port` (0: any free port) with the local keys.
    pub async fn start(port: u16, behaviour: Behaviour) -> Result<Self, String> {
        let public = rsa::PublicKey::from_public_key_pem(LOCAL_TRANSIP_PUBLIC_KEY).map_err(|e| format!("stand-in key: {e}"))?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| format!("hosting stand-in cannot listen on port {port}: {e}"))?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let standin = Self {
            url,
            inner: Arc::new(Mutex::new(Inner { behaviour, record: Record::default(), tokens: Vec::new() })),
            login_key: Arc::new(VerifyingKey::new(public)),
            agent_secret: Arc::new(LOCAL_AGENT_SECRET.to_string()),
        };
        let app = Router::new()
            .route("/v6/auth", post(auth))
            .route("/v6/vps", any(vps_list_or_order))
            .route("/v6/vps/{name}", any(vps_one))
            .route("/v6/vps/{name}/snapshots", post(snapshot))
            .route("/agents/{vps}/tenants/{tenant}", put(deploy).delete(remove))
            .route("/health/{slug}", get(health))
            .route("/_standin", get(report))
            .with_state(standin.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(standin)
    }

    /// A shared VPS's deploy agent URL here.
    pub fn agent_url(&self, vps: &str) -> String {
        format!("{}/agents/{vps}", self.url)
    }

    /// The health URL template the provision function fills in.
    pub fn health_url(&self) -> String {
        format!("{}/health/{{slug}}", self.url)
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// What happened so far.
    pub fn record(&self) -> Value {
        json!(self.lock().record)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn auth(State(s): State<HostingStandIn>, headers: HeaderMap, body: Bytes) -> Response {
    let signed = headers
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|sig| Signature::try_from(sig.as_slice()).ok())
        .is_some_and(|sig| s.login_key.verify(&body, &sig).is_ok());
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = s.lock();
    let well_formed = request["login"] == LOCAL_TRANSIP_LOGIN && request["nonce"].as_str().is_some_and(|n| n.len() >= 6);
    if !signed || !well_formed {
        inner.record.refused_logins += 1;
        return error(StatusCode::UNAUTHORIZED, "Invalid signature or login");
    }
    inner.record.logins += 1;
    let token = format!("local-token-{}", uuid::Uuid::new_v4().simple());
    inner.tokens.push(token.clone());
    (StatusCode::CREATED, Json(json!({"token": token}))).into_response()
}

/// The bearer of a TransIP call is a token this stand-in issued.
fn authorised(s: &HostingStandIn, headers: &HeaderMap) -> bool {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|b| s.lock().tokens.iter().any(|t| t == b))
}

fn vps_json(v: &StandInVps) -> Value {
    json!({"name": v.name, "description": v.description, "productName": v.product, "operatingSystem": "ubuntu-24.04",
           "status": v.status, "isLocked": false, "ipAddress": "127.0.0.1", "availabilityZone": "ams0"})
}

async fn vps_list_or_order(State(s): State<HostingStandIn>, method: axum::http::Method, headers: HeaderMap, body: Bytes) -> Response {
    if !authorised(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Your access token is invalid");
    }
    let mut inner = s.lock();
    match method {
        axum::http::Method::GET => {
            let list: Vec<Value> = inner.record.vpss.iter().filter(|v| !v.cancelled).map(vps_json).collect();
            Json(json!({"vpss": list})).into_response()
        }
        axum::http::Method::POST => {
            let order: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (Some(product), Some(hostname)) = (order["productName"].as_str(), order["hostname"].as_str()) else {
                return error(StatusCode::NOT_ACCEPTABLE, "productName and hostname are required");
            };
            if !["vps-bladevps-x2", "vps-bladevps-x4", "vps-bladevps-x8"].contains(&product) {
                return error(StatusCode::NOT_ACCEPTABLE, &format!("Product '{product}' does not exist"));
            }
            let cloud_init = order["base64InstallText"].as_str().and_then(|t| STANDARD.decode(t).ok()).unwrap_or_default();
            inner.record.orders += 1;
            let name = format!("{LOCAL_TRANSIP_LOGIN}-vps{}", inner.record.orders);
            inner.record.vpss.push(StandInVps {
                name,
                product: product.into(),
                hostname: hostname.into(),
                description: order["description"].as_str().unwrap_or("").into(),
                status: "installing".into(),
                reads: 0,
                cloud_init: String::from_utf8_lossy(&cloud_init).into_owned(),
                snapshots: Vec::new(),
                cancelled: false,
            });
            StatusCode::CREATED.into_response()
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

async fn vps_one(
    State(s): State<HostingStandIn>,
    Path(name): Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorised(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Your access token is invalid");
    }
    let mut guard = s.lock();
    let inner = &mut *guard;
    let Some(vps) = inner.record.vpss.iter_mut().find(|v| v.name == name && !v.cancelled) else {
        return error(StatusCode::NOT_FOUND, &format!("VPS with name '{name}' not found"));
    };
    match method {
        axum::http::Method::GET => {
            inner.record.vps_reads += 1;
            if inner.record.vps_reads == inner.behaviour.transient_on_read {
                inner.record.transient_answers += 1;
                return error(StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable");
            }
            vps.reads += 1;
            if vps.status == "installing" && vps.reads > inner.behaviour.reads_until_running {
                vps.status = "running".into();
            }
            Json(json!({"vps": vps_json(vps)})).into_response()
        }
        axum::http::Method::PATCH => {
            let action: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match action["action"].as_str() {
                Some("start") => vps.status = "running".into(),
                Some("stop") => vps.status = "stopped".into(),
                _ => return error(StatusCode::NOT_ACCEPTABLE, "action must be start, stop, reset or handover"),
            }
            StatusCode::NO_CONTENT.into_response()
        }
        axum::http::Method::DELETE => {
            vps.cancelled = true;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

async fn snapshot(State(s): State<HostingStandIn>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorised(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Your access token is invalid");
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = s.lock();
    match inner.record.vpss.iter_mut().find(|v| v.name == name && !v.cancelled) {
        Some(vps) => {
            vps.snapshots.push(request["description"].as_str().unwrap_or("").to_string());
            StatusCode::CREATED.into_response()
        }
        None => error(StatusCode::NOT_FOUND, &format!("VPS with name '{name}' not found")),
    }
}

/// A Standard Webhooks signature (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`) with the
/// agents' secret, and a body that names this agent and tenant.
fn agent_call_valid(s: &HostingStandIn, headers: &HeaderMap, body: &[u8], agent: &str, tenant: &str, action: &str) -> bool {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    let Some(key) = s.agent_secret.strip_prefix("whsec_").and_then(|k| STANDARD.decode(k).ok()) else { return false };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else { return false };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let signed = header("webhook-signature").split(' ').any(|sig| sig == expected);
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let names_us = request["agent"] == format!("{}/agents/{agent}", s.url) && request["tenant"] == tenant && request["action"] == action;
    fresh && signed && names_us
}

async fn deploy(
    State(s): State<HostingStandIn>,
    Path((agent, tenant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !agent_call_valid(&s, &headers, &body, &agent, &tenant, "deploy") {
        s.lock().record.refused_agent_calls += 1;
        return error(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = s.lock();
    inner.record.deploy_calls += 1;
    let env = request["envFile"].as_str().unwrap_or("").to_string();
    inner.record.deployments.entry(agent).or_default().insert(tenant, env);
    StatusCode::OK.into_response()
}

async fn remove(
    State(s): State<HostingStandIn>,
    Path((agent, tenant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !agent_call_valid(&s, &headers, &body, &agent, &tenant, "remove") {
        s.lock().record.refused_agent_calls += 1;
        return error(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let mut inner = s.lock();
    inner.record.removals += 1;
    match inner.record.deployments.get_mut(&agent).and_then(|d| d.remove(&tenant)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn health(State(s): State<HostingStandIn>, Path(slug): Path<String>) -> Response {
    let mut inner = s.lock();
    let host = format!("TENANT_HOST='{slug}.");
    let deployed = inner.record.deployments.values().flat_map(|d| d.values()).any(|env| env.contains(&host))
        || inner.record.vpss.iter().any(|v| v.hostname == slug && v.status == "running" && !v.cancelled);
    let asked = {
        let n = inner.record.health_checks.entry(slug).or_default();
        *n += 1;
        *n
    };
    match deployed && asked > inner.behaviour.unhealthy_checks {
        true => Json(json!({"status": "ok"})).into_response(),
        false => error(StatusCode::SERVICE_UNAVAILABLE, "starting"),
    }
}

async fn report(State(s): State<HostingStandIn>) -> Response {
    Json(s.record()).into_response()
}
