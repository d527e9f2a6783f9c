//! The TransIP client against OpenSSL and a local server in TransIP's shape: its login
//! signature verifies with `openssl dgst -sha512 -verify` (an independent implementation of
//! RSA-SHA512), a token is reused until it is refused, and answers map to the workflow's
//! transient and permanent errors. The deploy agent's signature verifies as a webhook's.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use relay_core::ports::provision::{DeployAgent, HostingProvider, VpsOrder};
use serde_json::{json, Value};

use super::agent::HttpDeployAgent;
use super::transip::{TransIp, TransIpConfig};

/// A fresh RSA key, PKCS#8 PEM, and its public key, from OpenSSL.
fn keypair(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let private = dir.join("key.pem");
    let public = dir.join("pub.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&private)
        .status()
        .expect("openssl");
    assert!(ok.success());
    let ok = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&private).arg("-out").arg(&public).status().expect("openssl");
    assert!(ok.success());
    (std::fs::read_to_string(&private).unwrap(), public)
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-hosting-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn client(base_url: String, pem: String) -> TransIp {
    let config = TransIpConfig {
        base_url,
        login: "relay-test".into(),
        private_key_pem: pem,
        operating_system: "ubuntu-24.04".into(),
        availability_zone: "ams0".into(),
    };
    TransIp::new(config).expect("key")
}

#[test]
fn the_login_signature_verifies_with_openssl_and_the_key_is_never_printed() {
    let dir = tempdir("sig");
    let (pem, public) = keypair(&dir);
    let transip = client("http://127.0.0.1:1".into(), pem.clone());
    let body = br#"{"login":"relay-test","nonce":"0123456789abcdef"}"#;
    let signature = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, transip.sign(body)).unwrap();
    std::fs::write(dir.join("body"), body).unwrap();
    std::fs::write(dir.join("sig"), &signature).unwrap();
    let verify = |file: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha512", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(dir.join("sig"))
            .arg(dir.join(file))
            .output()
            .expect("openssl")
    };
    let out = verify("body");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    std::fs::write(dir.join("other"), b"{\"login\":\"someone-else\"}").unwrap();
    assert!(!verify("other").status.success(), "the signature covers the body");
    assert!(!format!("{transip:?}").contains("PRIVATE"), "Debug never shows the key");
    assert!(TransIp::new(TransIpConfig {
        base_url: String::new(),
        login: String::new(),
        private_key_pem: "not a key".into(),
        operating_system: String::new(),
        availability_zone: String::new()
    })
    .is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[derive(Default)]
struct Seen {
    logins: usize,
    /// Each login's body and `Signature` header, as received.
    signed: Vec<(String, String)>,
    /// Answer the next VPS read with this status once.
    fail_next: Option<u16>,
    orders: Vec<Value>,
    tokens: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

async fn auth(State(seen): State<Shared>, headers: HeaderMap, body: String) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().unwrap();
    let Some(signature) = headers.get("signature").and_then(|v| v.to_str().ok()) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no signature"})));
    };
    seen.signed.push((body.clone(), signature.to_string()));
    seen.logins += 1;
    (StatusCode::CREATED, Json(json!({"token": format!("token-{}", seen.logins)})))
}

fn bearer(headers: &HeaderMap) -> String {
    headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

async fn list(State(seen): State<Shared>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().unwrap();
    seen.tokens.push(bearer(&headers));
    // The first token is revoked after its first use: the client must log in again.
    if bearer(&headers) == "Bearer token-1" && seen.tokens.len() > 1 {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "token revoked"})));
    }
    let vpss: Vec<Value> = seen
        .orders
        .iter()
        .enumerate()
        .map(|(i, o)| json!({"name": format!("relay-vps{}", i + 1), "description": o["description"], "status": "installing", "isLocked": false}))
        .collect();
    (StatusCode::OK, Json(json!({"vpss": vpss})))
}

async fn order(State(seen): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    seen.lock().unwrap().orders.push(body);
    StatusCode::CREATED
}

async fn one(State(seen): State<Shared>, Path(name): Path<String>) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().unwrap();
    if let Some(status) = seen.fail_next.take() {
        return (StatusCode::from_u16(status).unwrap(), Json(json!({"error": "try later"})));
    }
    if name != "relay-vps1" {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "VPS not found"})));
    }
    (
        StatusCode::OK,
        Json(json!({"vps": {"name": name, "description": "x", "status": "running", "isLocked": false, "ipAddress": "198.51.100.7"}})),
    )
}

#[tokio::test]
async fn the_client_logs_in_once_orders_finds_and_reads_vpss_in_transips_shape() {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/v6/auth", post(auth))
        .route("/v6/vps", get(list).post(order))
        .route("/v6/vps/{name}", get(one))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempdir("api");
    let (pem, public) = keypair(&dir);
    let transip = client(base, pem);
    let cloud_init = "#cloud-config\nhostname: acme\n";
    let order_of = VpsOrder {
        product: "vps-bladevps-x4".into(),
        hostname: "acme".into(),
        description: "relay-tenant:org-acme".into(),
        cloud_init: cloud_init.into(),
    };
    transip.order_vps(&order_of).await.unwrap();
    let sent = seen.lock().unwrap().orders[0].clone();
    assert_eq!((sent["productName"].as_str(), sent["installFlavour"].as_str()), (Some("vps-bladevps-x4"), Some("cloudinit")));
    let install = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sent["base64InstallText"].as_str().unwrap()).unwrap();
    assert_eq!(install, cloud_init.as_bytes());

    // The token is reused, then refused: the client logs in again once and goes on.
    let found = transip.find_vps("relay-tenant:org-acme").await.unwrap().expect("found by its marker");
    assert_eq!(found.name, "relay-vps1");
    assert!(transip.find_vps("relay-tenant:org-other").await.unwrap().is_none());
    assert!(transip.find_vps("relay-tenant:org-acm").await.unwrap().is_none(), "a marker is matched whole, never as a prefix");
    assert_eq!(seen.lock().unwrap().logins, 2, "one login, and one more after the token was revoked");
    // Each login as the server received it verifies with the account's public key (OpenSSL).
    for (i, (body, signature)) in seen.lock().unwrap().signed.iter().enumerate() {
        let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature).unwrap();
        std::fs::write(dir.join(format!("login-{i}")), body).unwrap();
        std::fs::write(dir.join(format!("login-{i}.sig")), sig).unwrap();
        let out = Command::new("openssl")
            .args(["dgst", "-sha512", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(dir.join(format!("login-{i}.sig")))
            .arg(dir.join(format!("login-{i}")))
            .output()
            .expect("openssl");
        assert!(out.status.success(), "login {i}: {body}");
        assert!(body.contains("\"login\":\"relay-test\"") && body.contains("\"nonce\""), "{body}");
    }

    let vps = transip.vps("relay-vps1").await.unwrap();
    assert_eq!((vps.status.as_str(), vps.ip.as_deref()), ("running", Some("198.51.100.7")));
    seen.lock().unwrap().fail_next = Some(503);
    assert!(transip.vps("relay-vps1").await.unwrap_err().transient, "a 503 is tried again");
    seen.lock().unwrap().fail_next = Some(429);
    assert!(transip.vps("relay-vps1").await.unwrap_err().transient, "a 429 is tried again");
    assert!(!transip.vps("relay-vps9").await.unwrap_err().transient, "a 404 is not");
    let _ = std::fs::remove_dir_all(dir);
}

/// What the agent stand-in received: (tenant, headers, body) per call.
type Calls = Arc<Mutex<Vec<(String, HeaderMap, String)>>>;

#[tokio::test]
async fn the_deploy_agent_is_called_signed_as_a_webhook() {
    let received: Calls = Arc::default();
    let app = Router::new()
        .route(
            "/deploy/tenants/{tenant}",
            axum::routing::put(|State(r): State<Calls>, Path(t): Path<String>, h: HeaderMap, b: String| async move {
                r.lock().unwrap().push((t, h, b));
                StatusCode::NO_CONTENT
            })
            .delete(|| async { StatusCode::NOT_FOUND }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/deploy", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let secret = relay_core::signing::new_secret();
    let agent = HttpDeployAgent::new(secret.clone());
    agent.deploy(&base, "org-acme", "LICENCE=\"x\"\n").await.unwrap();
    agent.remove(&base, "org-acme").await.expect("a tenant not there is taken off already");
    let (tenant, headers, body) = received.lock().unwrap()[0].clone();
    assert_eq!(tenant, "org-acme");
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    let ts: i64 = h("webhook-timestamp").parse().unwrap();
    assert_eq!(h("webhook-signature"), relay_core::signing::signature_header(&h("webhook-id"), ts, body.as_bytes(), &[&secret]));
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (sent["envFile"].as_str(), sent["action"].as_str(), sent["agent"].as_str()),
        (Some("LICENCE=\"x\"\n"), Some("deploy"), Some(base.as_str()))
    );
    assert!(agent.deploy("http://127.0.0.1:1/deploy", "org-acme", "").await.unwrap_err().transient, "unreachable: try again");
}
