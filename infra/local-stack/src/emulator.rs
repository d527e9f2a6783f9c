//! The AWS API emulator: moto's server from the project's virtualenv, on a local port.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct Emulator {
    pub endpoint: String,
    child: Option<tokio::process::Child>,
}

impl Emulator {
    /// Starts moto on `port` and waits until it answers.
    pub async fn start(root: &Path, port: u16, log: &Path) -> Result<Self, String> {
        let python = root.join(".venv/bin/python");
        if !python.exists() {
            return Err(format!("{} is missing: run ./dev setup (./dev up does it for you)", python.display()));
        }
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(python)
            .arg(root.join("infra/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting moto: {e}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let me = Self { endpoint: endpoint.clone(), child: Some(child) };
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(60) {
            if client.get(format!("{endpoint}/moto-api/")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("moto did not answer on {endpoint} within 60 s; see {}", log.display()))
    }

    /// An emulator someone else runs.
    pub fn external(endpoint: String) -> Self {
        Self { endpoint, child: None }
    }

    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}
