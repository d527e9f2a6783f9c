//! Test support for the end-to-end tests and the benchmarks: start the local stack on free
//! ports, talk to its emulator, and put a fault-injecting, request-counting proxy between the
//! functions and the emulator.

pub mod proxy;
pub mod receiver;
pub mod stack;

pub use proxy::{stack_behind_proxy, Fault, FaultProxy};
pub use stack::{Stack, StackOptions};

/// The repository root (the tests crate lives in `tests/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(|p| p.to_path_buf()).unwrap_or_default()
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// `POST url` with `headers` and a raw body (a provider calling a webhook URL); the status and
/// the JSON answer (null if none).
pub async fn post_raw(url: &str, headers: &[(&str, String)], body: &str) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().post(url).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("post");
    (resp.status().as_u16(), resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// The e-mails SES sent (moto lists them), newest last.
pub async fn sent_mails(stack: &Stack) -> Vec<serde_json::Value> {
    let url = format!("{}/moto-api/data.json", stack.aws_endpoint);
    let data: serde_json::Value = reqwest::get(url).await.expect("moto").json().await.expect("json");
    data["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

/// The contact-verification code mailed to `to` (waits for the mail).
pub async fn verification_code(stack: &Stack, to: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let mail = sent_mails(stack).await.into_iter().rev().find(|m| {
            m["destinations"]["ToAddresses"][0] == to && m["subject"].as_str().is_some_and(|s| s.starts_with("Confirm this address"))
        });
        if let Some(m) = mail {
            let body = m["body"].as_str().unwrap_or_default();
            let code = body.split("hours: ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_default();
            return code.to_string();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "no verification mail to {to}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
