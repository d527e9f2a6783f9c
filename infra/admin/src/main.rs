//! `relay-admin`: operator commands. Keys are printed once and stored only as SHA-256 hashes.
//!
//!   relay-admin keys create --kind product --product recruitiq [--name NAME]
//!   relay-admin keys create --kind organization --org ORG_ID [--name NAME]
//!   relay-admin keys create --kind admin --name NAME
//!   relay-admin keys revoke KEY
//!
//! Reads RELAY_CONFIG_TABLE (the stack's ConfigTableName output) and the usual AWS settings;
//! `./dev admin ...` points both at the local stack.

use relay_aws::config;
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_core::model::catalogue::PRODUCTS;
use relay_core::model::keys::{self, ApiKey, KeyKind};
use relay_core::ports::{KeyStore, KeyWriter};

const USAGE: &str = "usage:
  relay-admin keys create --kind product --product <recruitiq|nexus|paylinq|portal> [--name NAME]
  relay-admin keys create --kind organization --org <ORG_ID> [--name NAME]
  relay-admin keys create --kind admin --name NAME
  relay-admin keys revoke <KEY>";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args).await {
        eprintln!("relay-admin: {e}\n\n{USAGE}");
        std::process::exit(2);
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

async fn store() -> Result<DynamoStore, String> {
    let sdk = config::load().await.map_err(|e| e.to_string())?;
    let table = config::required("RELAY_CONFIG_TABLE").map_err(|e| e.to_string())?;
    // Only the config table is used by key commands.
    Ok(DynamoStore::new(&sdk, Tables { config: table, ..Tables::default() }))
}

async fn run(args: &[String]) -> Result<(), String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["keys", "create", ..] => {
            let kind: KeyKind = flag(args, "--kind").ok_or("--kind is required")?.parse()?;
            let product = flag(args, "--product").map(str::to_string);
            let org = flag(args, "--org").map(str::to_string);
            match kind {
                KeyKind::Product if !product.as_deref().is_some_and(|p| PRODUCTS.contains(&p)) => {
                    return Err(format!("--product must be one of {}", PRODUCTS.join(", ")));
                }
                KeyKind::Organization if org.as_deref().is_none_or(str::is_empty) => {
                    return Err("--org is required for organisation keys".into())
                }
                _ => {}
            }
            let name = flag(args, "--name").map(str::to_string).unwrap_or_else(|| format!("{kind:?} key").to_lowercase());
            let key = keys::generate(kind);
            let record = ApiKey { kind, product, organization_id: org, name, created_at: chrono::Utc::now(), disabled: false };
            store().await?.put_key(&keys::hash(&key), &record).await.map_err(|e| e.to_string())?;
            println!("{key}");
            eprintln!("stored as {} ({}). This is the only time the key is shown.", &keys::hash(&key)[..12], record.principal());
            Ok(())
        }
        ["keys", "revoke", key] => {
            let s = store().await?;
            let hash = keys::hash(key);
            let mut record = s.find_key(&hash).await.map_err(|e| e.to_string())?.ok_or("no such key")?;
            record.disabled = true;
            s.put_key(&hash, &record).await.map_err(|e| e.to_string())?;
            eprintln!(
                "revoked {} ({}); warm instances stop accepting it within their key cache time (60 s)",
                &hash[..12],
                record.principal()
            );
            Ok(())
        }
        _ => Err("unknown command".into()),
    }
}
