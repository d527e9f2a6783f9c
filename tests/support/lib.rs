//! Test support for the end-to-end tests and the benchmarks: start the local stack on free
//! ports, talk to its emulator, and put a fault-injecting, request-counting proxy between the
//! functions and the emulator.

pub mod proxy;
pub mod receiver;
pub mod stack;

pub use proxy::{stack_behind_proxy, Exchange, Fault, FaultProxy};
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

/// The e-mails SES sent (moto lists them), in the order sent, each parsed by Python's `email`
/// package (`tests/python/mail_tools.py`): from, to, cc, bcc, reply_to, subject, text, html.
pub async fn sent_mails(stack: &Stack) -> Vec<serde_json::Value> {
    let out = tokio::process::Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/python/mail_tools.py"))
        .args(["sent", &stack.aws_endpoint])
        .output()
        .await
        .expect("python");
    assert!(out.status.success(), "mail_tools.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The first mail sent to `to` whose subject starts with `subject`, waiting up to 30 s.
pub async fn wait_for_mail(stack: &Stack, to: &str, subject: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let mail = sent_mails(stack).await.into_iter().find(|m| {
            m["to"].as_array().is_some_and(|t| t.iter().any(|a| a == to)) && m["subject"].as_str().is_some_and(|s| s.starts_with(subject))
        });
        if let Some(m) = mail {
            return m;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "no mail to {to} starting {subject:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The contact-verification code mailed to `to` (waits for the mail).
pub async fn verification_code(stack: &Stack, to: &str) -> String {
    let mail = wait_for_mail(stack, to, "Confirm this address").await;
    let body = mail["text"].as_str().unwrap_or_default();
    body.split("hours: ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_default().to_string()
}
