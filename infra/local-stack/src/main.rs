//! `relay-local`: the whole of Relay on one machine, with no AWS account and no Docker.
//!
//! 1. starts moto (the AWS API emulator) from the project's virtualenv;
//! 2. creates every table, queue, bus, archive, rule and bucket by reading template.yaml;
//! 3. serves every HttpApi route of every function on 127.0.0.1, invoking the real function
//!    binaries through a local Lambda Runtime API;
//! 4. polls every SQS event source and invokes its function as Lambda would;
//! 5. stands in for the hosting side of provisioning (TransIP's API, deploy agents, tenants'
//!    health: `relay_local::hosting`) and seeds the provision function's secrets in SSM;
//! 6. seeds a demo product key and organisation key, prints a banner, and runs until Ctrl-C.
//!
//! Settings (environment): RELAY_LOCAL_PORT (3000), RELAY_LOCAL_MOTO_PORT (4566),
//! RELAY_LOCAL_AWS_ENDPOINT (use a running emulator), RELAY_LOCAL_FUNCTION_AWS_ENDPOINT (what the
//! functions talk to, e.g. a fault-injecting proxy), RELAY_LOCAL_PRODUCT_KEY / _PRODUCT,
//! RELAY_LOCAL_ORG_KEY / _ORG_ID, RELAY_LOCAL_ADMIN_KEY, RELAY_LOCAL_NO_POLLERS, RELAY_LOCAL_PARAMS ("Name=value,..." template parameters),
//! RELAY_LOCAL_ENV ("NAME=value;..." extra function environment), RELAY_LOCAL_BIN_DIR,
//! RELAY_LOCAL_MAX_INSTANCES (10 per function), RELAY_LOCAL_STATE_DIR (.relay-local),
//! RELAY_LOCAL_HOSTING_PORT (the hosting stand-in's; any free port when unset).

mod emulator;
mod functions;
mod gateway;
mod iam;
mod poller;
mod provision;
mod runtime;
mod template;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use relay_core::model::keys::{self, ApiKey, KeyKind};
use relay_core::ports::KeyWriter;

const REGION: &str = "us-east-1";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn pairs(value: &str, sep: char) -> Vec<(String, String)> {
    value.split(sep).filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RELAY_LOCAL_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    if let Err(e) = run().await {
        eprintln!("relay-local: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let root = PathBuf::from(env_or("RELAY_ROOT", "."));
    let port: u16 = env_or("RELAY_LOCAL_PORT", "3000").parse().map_err(|_| "RELAY_LOCAL_PORT must be a port number")?;
    let moto_port: u16 = env_or("RELAY_LOCAL_MOTO_PORT", "4566").parse().map_err(|_| "RELAY_LOCAL_MOTO_PORT must be a port number")?;
    let state_dir = PathBuf::from(env_or("RELAY_LOCAL_STATE_DIR", &root.join(".relay-local").display().to_string()));
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let bin_dir = PathBuf::from(env_or("RELAY_LOCAL_BIN_DIR", &root.join("target/debug").display().to_string()));
    let max_instances: usize =
        env_or("RELAY_LOCAL_MAX_INSTANCES", "10").parse().map_err(|_| "RELAY_LOCAL_MAX_INSTANCES must be a number")?;

    // Credentials the emulator accepts; set before any SDK client is built.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", REGION);

    eprintln!("relay-local: starting the AWS emulator (moto) and provisioning template.yaml: a few seconds");
    let mut emulator = match std::env::var("RELAY_LOCAL_AWS_ENDPOINT") {
        Ok(e) if !e.is_empty() => emulator::Emulator::external(e),
        _ => emulator::Emulator::start(&root, moto_port, &state_dir.join("moto.log")).await?,
    };
    let result = serve(&root, port, &emulator.endpoint, &bin_dir, max_instances, &state_dir).await;
    emulator.stop().await;
    result
}

async fn serve(
    root: &std::path::Path,
    port: u16,
    aws_endpoint: &str,
    bin_dir: &std::path::Path,
    max_instances: usize,
    state_dir: &std::path::Path,
) -> Result<(), String> {
    let mut params: HashMap<String, String> = pairs(&env_or("RELAY_LOCAL_PARAMS", ""), ',').into_iter().collect();
    params.entry("Stage".into()).or_insert_with(|| "local".into());
    // Provisioning talks to the hosting stand-in unless RELAY_LOCAL_PARAMS points it elsewhere.
    let hosting_port: u16 =
        env_or("RELAY_LOCAL_HOSTING_PORT", "0").parse().map_err(|_| "RELAY_LOCAL_HOSTING_PORT must be a port number")?;
    let hosting = relay_local::hosting::HostingStandIn::start(hosting_port, Default::default()).await?;
    params.entry("TransipApiBase".into()).or_insert_with(|| hosting.url.clone());
    params.entry("TransipLogin".into()).or_insert_with(|| relay_local::hosting::LOCAL_TRANSIP_LOGIN.into());
    params.entry("TenantHealthUrl".into()).or_insert_with(|| hosting.health_url());
    let licence =
        relay_core::provision::licence::LicenceKey::from_base64(relay_local::hosting::LOCAL_LICENCE_SEED).map_err(|e| e.to_string())?;
    params.entry("LicencePublicKey".into()).or_insert_with(|| licence.public_key());
    let mut template = template::Template::load(&root.join("template.yaml"), REGION, &params).map_err(|e| e.to_string())?;

    std::env::set_var("AWS_ENDPOINT_URL", aws_endpoint);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let clients = provision::Clients::new(&sdk);
    provision::provision(&mut template, &clients).await.map_err(|e| e.to_string())?;
    seed_secrets(&sdk, &params["Stage"]).await?;

    // Every function reaches AWS through the IAM gate, which holds each call to the function's
    // policies in template.yaml (moto enforces none).
    let function_endpoint = env_or("RELAY_LOCAL_FUNCTION_AWS_ENDPOINT", aws_endpoint);
    let policies = iam::Policies::from_template(&template).map_err(|e| e.to_string())?;
    let gate = iam::start(function_endpoint, policies, state_dir).await?;
    let mut extra_env = vec![
        ("AWS_ENDPOINT_URL".to_string(), gate),
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
        ("AWS_REGION".to_string(), REGION.to_string()),
        ("AWS_DEFAULT_REGION".to_string(), REGION.to_string()),
        // The local stack's receivers live on loopback: the SSRF guard's local-only opt-in.
        ("RELAY_ALLOW_LOOPBACK".to_string(), "true".to_string()),
        // A stand-in VPS installs in seconds: poll it and the tenant's health often.
        ("RELAY_VPS_POLL_SECONDS".to_string(), "2".to_string()),
        ("RELAY_HEALTH_FIRST_WAIT_SECONDS".to_string(), "1".to_string()),
    ];
    if let Ok(level) = std::env::var("RUST_LOG") {
        extra_env.push(("RUST_LOG".into(), level));
    }
    extra_env.extend(pairs(&env_or("RELAY_LOCAL_ENV", ""), ';'));
    let mut fns = functions::read(&template, bin_dir, &extra_env, max_instances).map_err(|e| e.to_string())?;
    // Each function signs with its own access key id, its name: how the gate tells them apart.
    for spec in &mut fns.specs {
        spec.env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID");
        spec.env.push(("AWS_ACCESS_KEY_ID".into(), spec.name.clone()));
    }
    let pools: HashMap<String, Arc<runtime::FunctionPool>> =
        fns.specs.iter().map(|s| (s.name.clone(), runtime::FunctionPool::new(s.clone()))).collect();

    let keys = seed_keys(&template, &sdk).await?;

    // RELAY_LOCAL_NO_POLLERS=true leaves the queues to the caller (tests that read what the bus
    // delivered to a queue themselves).
    let poll = std::env::var("RELAY_LOCAL_NO_POLLERS").map_or(true, |v| v != "true");
    for source in fns.queues.clone().into_iter().filter(|_| poll) {
        let pool = pools.get(&source.function).cloned().ok_or("an SQS source names an unknown function")?;
        tokio::spawn(poller::run(source, pool, clients.sqs.clone(), REGION.to_string()));
    }

    let gw = Arc::new(gateway::Gateway { routes: fns.routes.clone(), pools: pools.clone() });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e} (set RELAY_LOCAL_PORT)"))?;
    banner(port, aws_endpoint, &fns, &keys, &hosting.url);
    let app = gateway::router(gw).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await;
    // Functions first, while their Runtime API servers still stand; then the emulator (dropped
    // with the process).
    for pool in pools.values() {
        pool.shutdown().await;
    }
    eprintln!("relay-local: stopped");
    served.map_err(|e| e.to_string())
}

/// The provision function's SecureString parameters, with the local stack's own keys (kept
/// when they exist: a test may have put its own).
async fn seed_secrets(sdk: &aws_config::SdkConfig, stage: &str) -> Result<(), String> {
    use relay_local::hosting::{LOCAL_AGENT_SECRET, LOCAL_LICENCE_SEED, LOCAL_TRANSIP_PRIVATE_KEY};
    let ssm = aws_sdk_ssm::Client::new(sdk);
    for (name, value) in [
        ("transip-private-key", LOCAL_TRANSIP_PRIVATE_KEY),
        ("licence-signing-key", LOCAL_LICENCE_SEED),
        ("deploy-agent-secret", LOCAL_AGENT_SECRET),
    ] {
        let put = ssm
            .put_parameter()
            .name(format!("/relay/{stage}/provision/{name}"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await;
        if let Err(e) = put {
            if !e.as_service_error().is_some_and(|e| e.is_parameter_already_exists()) {
                return Err(format!("seeding SSM parameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)));
            }
        }
    }
    Ok(())
}

struct SeededKeys {
    product: String,
    product_name: String,
    org: String,
    org_id: String,
    admin: String,
}

/// Paylinq's demo product key (the README's payroll curl).
const PAYLINQ_DEMO_KEY: &str = "rk_paylinq_local_demo";

/// Stores the demo keys (hashed, like any key) so the banner's curl works at once.
async fn seed_keys(t: &template::Template, sdk: &aws_config::SdkConfig) -> Result<SeededKeys, String> {
    let table = |id: &str| t.physical.get(id).map(|p| p.name.clone()).ok_or(format!("template.yaml has no {id}"));
    let store = relay_aws::dynamo::DynamoStore::new(sdk, relay_aws::dynamo::Tables { config: table("ConfigTable")?, ..Default::default() });
    let seeded = SeededKeys {
        product: env_or("RELAY_LOCAL_PRODUCT_KEY", "rk_prod_local_demo"),
        product_name: env_or("RELAY_LOCAL_PRODUCT", "recruitiq"),
        org: env_or("RELAY_LOCAL_ORG_KEY", "rk_org_local_demo"),
        org_id: env_or("RELAY_LOCAL_ORG_ID", "org-demo"),
        admin: env_or("RELAY_LOCAL_ADMIN_KEY", "rk_admin_local_demo"),
    };
    let now = chrono::Utc::now();
    let product = ApiKey {
        kind: KeyKind::Product,
        product: Some(seeded.product_name.clone()),
        organization_id: None,
        name: "local demo product key".into(),
        created_at: now,
        disabled: false,
    };
    let org = ApiKey {
        kind: KeyKind::Organization,
        product: None,
        organization_id: Some(seeded.org_id.clone()),
        name: "local demo organisation key".into(),
        created_at: now,
        disabled: false,
    };
    store.put_key(&keys::hash(&seeded.product), &product).await.map_err(|e| e.to_string())?;
    // Paylinq's, for the payroll runs (POST /v1/payroll-runs takes Paylinq's key only).
    let paylinq = ApiKey { product: Some("paylinq".into()), name: "local demo Paylinq key".into(), ..product.clone() };
    store.put_key(&keys::hash(PAYLINQ_DEMO_KEY), &paylinq).await.map_err(|e| e.to_string())?;
    store.put_key(&keys::hash(&seeded.org), &org).await.map_err(|e| e.to_string())?;
    let admin = ApiKey {
        kind: KeyKind::Admin,
        product: None,
        organization_id: None,
        name: "local operator".into(),
        created_at: now,
        disabled: false,
    };
    store.put_key(&keys::hash(&seeded.admin), &admin).await.map_err(|e| e.to_string())?;
    Ok(seeded)
}

fn banner(port: u16, aws: &str, fns: &functions::Functions, keys: &SeededKeys, hosting: &str) {
    let url = format!("http://127.0.0.1:{port}");
    let mut routes: Vec<String> = fns.routes.iter().map(|r| format!("{} {} -> {}", r.method, r.path, r.function)).collect();
    routes.sort();
    let queues: Vec<String> = fns.queues.iter().map(|q| format!("{} -> {}", q.queue_url, q.function)).collect();
    println!(
        "\nRelay local stack is up.\n\n  API            {url}\n  AWS emulator   {aws} (moto; AWS_ENDPOINT_URL={aws} for the aws CLI/SDKs)\n  product key    {} (publishes as {})\n  org key        {} (organisation {})\n  operator key   {} (integrations, dead letters, mail suppressions)\n  Paylinq key    {PAYLINQ_DEMO_KEY} (payroll runs)\n  console        {url}/console\n  hosting        {hosting} (stands in for TransIP, deploy agents and tenants' health; {hosting}/_standin shows what it was asked)\n  mail sent      {aws}/moto-api/data.json (ses.RawMessage: what SES would have delivered)\n\n  routes\n    {}\n  queue pollers\n    {}\n\n  try:\n    curl -sS {url}/v1/events \\\n      -H 'authorization: Bearer {}' -H 'content-type: application/json' -H 'idempotency-key: demo-1' \\\n      -d '{{\"eventType\":\"candidate.hired\",\"organizationId\":\"{}\",\"payload\":{{\"candidateId\":\"cand-1\",\"jobId\":\"job-1\",\"startDate\":\"2026-12-01\"}}}}'\n\n  Ctrl-C stops everything.\nRELAY_LOCAL_READY {url}",
        keys.product,
        keys.product_name,
        keys.org,
        keys.org_id,
        keys.admin,
        routes.join("\n    "),
        if queues.is_empty() { "(none)".to_string() } else { queues.join("\n    ") },
        keys.product,
        keys.org_id,
    );
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return ctrl_c.await.unwrap_or(()),
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
