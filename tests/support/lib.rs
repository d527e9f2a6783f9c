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
