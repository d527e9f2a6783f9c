//! Starts `relay-local` (built by `./dev test` before the tests run) with its own emulator and
//! ports, waits for its ready line, and stops it on drop.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::Value;
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Default)]
pub struct StackOptions {
    /// Extra environment for every function (`RELAY_LOCAL_ENV`).
    pub function_env: Vec<(String, String)>,
    /// Where the functions send AWS calls instead of the emulator (a fault proxy).
    pub function_aws_endpoint: Option<String>,
    /// The emulator's port (chosen by the caller when a proxy must know it in advance).
    pub moto_port: Option<u16>,
    /// Leave the queues unpolled, to read what the bus delivered to them directly.
    pub no_pollers: bool,
    /// Every queue's visibility timeout, to see failed messages come back quickly.
    pub visibility_timeout_secs: Option<u32>,
    /// Template parameters (`RELAY_LOCAL_PARAMS`): the hosting stand-in a test runs itself.
    pub params: Vec<(String, String)>,
}

pub struct Stack {
    pub url: String,
    pub aws_endpoint: String,
    pub product_key: String,
    pub org_key: String,
    pub state_dir: PathBuf,
    child: tokio::process::Child,
}

pub const PRODUCT_KEY: &str = "rk_prod_test_recruitiq";
pub const ORG_KEY: &str = "rk_org_test_acme";
pub const ADMIN_KEY: &str = "rk_admin_test_ops";

impl Stack {
    /// Starts a stack on free ports. A stack that exits before it is ready (another test took
    /// a port between `free_port` and the bind) is started again on new ports, twice at most.
    pub async fn start(opts: StackOptions) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&opts).await {
                Ok(stack) => return stack,
                Err(e) => last = e,
            }
        }
        panic!("relay-local did not become ready; stderr:\n{last}");
    }

    /// One try at starting a stack; its stderr if it exits before it is ready.
    pub async fn try_start(opts: &StackOptions) -> Result<Self, String> {
        let root = crate::repo_root();
        let port = crate::free_port();
        let moto_port = opts.moto_port.unwrap_or_else(crate::free_port);
        let state_dir = std::env::temp_dir().join(format!("relay-e2e-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&state_dir).expect("state dir");
        // RELAY_LOCAL_LAUNCHER: another build of relay-local (the load driver runs the release one).
        let bin = std::env::var_os("RELAY_LOCAL_LAUNCHER").map_or_else(|| root.join("target/debug/relay-local"), std::path::PathBuf::from);
        assert!(bin.exists(), "{} is missing: run the tests with ./dev test (it builds the binaries first)", bin.display());
        let env: Vec<String> = opts.function_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.env("RELAY_ROOT", &root)
            .env("RELAY_LOCAL_PORT", port.to_string())
            .env("RELAY_LOCAL_MOTO_PORT", moto_port.to_string())
            .env("RELAY_LOCAL_STATE_DIR", &state_dir)
            .env("RELAY_LOCAL_PRODUCT_KEY", PRODUCT_KEY)
            .env("RELAY_LOCAL_ORG_KEY", ORG_KEY)
            .env("RELAY_LOCAL_ORG_ID", "org-acme")
            .env("RELAY_LOCAL_ADMIN_KEY", ADMIN_KEY)
            .env("RELAY_LOCAL_NO_POLLERS", if opts.no_pollers { "true" } else { "false" })
            .env("RELAY_LOCAL_ENV", env.join(";"))
            .env("RELAY_LOCAL_PARAMS", opts.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .env_remove("RELAY_LOCAL_AWS_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(e) = &opts.function_aws_endpoint {
            cmd.env("RELAY_LOCAL_FUNCTION_AWS_ENDPOINT", e);
        }
        match opts.visibility_timeout_secs {
            Some(v) => cmd.env("RELAY_LOCAL_VISIBILITY_TIMEOUT_SECONDS", v.to_string()),
            None => cmd.env_remove("RELAY_LOCAL_VISIBILITY_TIMEOUT_SECONDS"),
        };
        let mut child = cmd.spawn().expect("start relay-local");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log_path = state_dir.join("stack.log");
        let mut log = tokio::fs::File::create(&log_path).await.expect("log file");
        let mut err_log = tokio::fs::File::create(state_dir.join("stack.err.log")).await.expect("log file");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = err_log.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut url = None;
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    let _ = log.write_all(format!("{line}\n").as_bytes()).await;
                    if let Some(u) = line.strip_prefix("RELAY_LOCAL_READY ") {
                        url = Some(u.trim().to_string());
                        break;
                    }
                }
                Ok(_) => break,
                Err(_) => continue,
            }
        }
        let Some(url) = url else {
            // Let the stderr task write what the process said last.
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Err(std::fs::read_to_string(state_dir.join("stack.err.log")).unwrap_or_default());
        };
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        Ok(Self {
            url,
            aws_endpoint: format!("http://127.0.0.1:{moto_port}"),
            product_key: PRODUCT_KEY.into(),
            org_key: ORG_KEY.into(),
            state_dir,
            child,
        })
    }

    /// SDK configuration for talking to the stack's emulator directly.
    pub async fn aws(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// Puts one entry on an EventBridge bus of the emulator, as a product (or SES) would, and
    /// checks it was taken. `bus`: `None` for the account's default bus.
    pub async fn put_on_bus(&self, bus: Option<&str>, source: &str, detail_type: &str, detail: &serde_json::Value) {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .set_event_bus_name(bus.map(str::to_string))
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = aws_sdk_eventbridge::Client::new(&self.aws().await).put_events().entries(entry).send().await.expect("put events");
        assert_eq!(out.failed_entry_count, 0, "the bus refused the entry");
    }

    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/123456789012/{name}", self.aws_endpoint)
    }

    /// Receives (and deletes) messages from a queue until it has been quiet for `quiet`.
    pub async fn drain(&self, queue: &str, quiet: Duration) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.aws().await);
        let url = self.queue_url(queue);
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            let got = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(0).send().await.expect("receive");
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            last = Instant::now();
            for m in msgs {
                out.push(serde_json::from_str(m.body.as_deref().unwrap_or("null")).unwrap_or(Value::Null));
                let _ = sqs.delete_message().queue_url(&url).set_receipt_handle(m.receipt_handle).send().await;
            }
        }
        out
    }

    /// Stores another organisation's API key the way relay-admin does: by hash.
    pub async fn add_org_key(&self, key: &str, organization_id: &str) {
        self.add_key(key, "organization", "organizationId", organization_id).await;
    }

    /// A product key publishing as `product` (the stack makes RecruitIQ's).
    pub async fn add_product_key(&self, key: &str, product: &str) {
        self.add_key(key, "product", "product", product).await;
    }

    async fn add_key(&self, key: &str, kind: &str, field: &str, value: &str) {
        use aws_sdk_dynamodb::types::AttributeValue::{Bool, S};
        let hash: String = sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        aws_sdk_dynamodb::Client::new(&self.aws().await)
            .put_item()
            .table_name("relay-local-config")
            .item("pk", S(format!("KEY#{hash}")))
            .item("sk", S("KEY".into()))
            .item("kind", S(kind.into()))
            .item(field, S(value.into()))
            .item("name", S(value.into()))
            .item("createdAt", S("2026-01-01T00:00:00Z".into()))
            .item("disabled", Bool(false))
            .send()
            .await
            .expect("store key");
    }

    /// The sum of one CloudWatch metric over the Embedded Metric Format lines a function wrote to
    /// its stdout (which the stack passes through to its own), waiting up to `limit` for it to
    /// reach `at_least` (log lines travel through two pipes).
    pub async fn metric_total(&self, service: &str, name: &str, at_least: f64, limit: Duration) -> f64 {
        let deadline = Instant::now() + limit;
        loop {
            let log = std::fs::read_to_string(self.state_dir.join("stack.log")).unwrap_or_default();
            let total: f64 = log
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|d| d["_aws"]["CloudWatchMetrics"].is_array() && d["Service"] == service)
                .filter(|d| {
                    // Counted only if the line also declares it as a metric, as CloudWatch requires.
                    d["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().is_some_and(|ms| ms.iter().any(|m| m["Name"] == name))
                })
                .filter_map(|d| d[name].as_f64())
                .sum();
            if total >= at_least || Instant::now() > deadline {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many items a table holds.
    pub async fn count(&self, table: &str) -> usize {
        let ddb = aws_sdk_dynamodb::Client::new(&self.aws().await);
        ddb.scan().table_name(table).send().await.expect("scan").items.unwrap_or_default().len()
    }

    /// `POST path` with the product key and optional idempotency key.
    pub async fn post(&self, path: &str, body: &str, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.product_key))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.expect("request")
    }
}

impl Stack {
    /// The calls the stack's IAM gate refused (lines `RELAY_LOCAL_IAM_DENIED {json}`).
    pub fn iam_denials(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir.join("stack.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("RELAY_LOCAL_IAM_DENIED "))
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect()
    }

    /// Every distinct AWS call the functions made, as the IAM gate named it.
    pub fn iam_calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir.join("iam-calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Stack {
    /// Stops the stack as a person or a process manager would (`INT` as Ctrl-C, or `TERM`) and
    /// answers everything it and its functions printed, once the process has exited and its
    /// output has drained.
    pub async fn stop(mut self, signal: &str) -> String {
        let pid = self.child.id().expect("the stack is running");
        let _ = std::process::Command::new("kill").args([format!("-{signal}"), pid.to_string()]).status();
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        assert!(exited.is_ok(), "relay-local did not exit within 30 s of SIG{signal}");
        let read = |state_dir: &PathBuf| {
            let out = std::fs::read_to_string(state_dir.join("stack.log")).unwrap_or_default();
            out + &std::fs::read_to_string(state_dir.join("stack.err.log")).unwrap_or_default()
        };
        // The output travels through pipes the function processes held too: wait until it stops growing.
        let mut seen = read(&self.state_dir);
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = read(&self.state_dir);
            if now.len() == seen.len() {
                break;
            }
            seen = now;
        }
        seen
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Every end-to-end test also checks IAM: a call that template.yaml does not grant would
        // fail in AWS, so it fails the test that made it (unless that test already failed).
        if !std::thread::panicking() {
            let denied = self.iam_denials();
            assert!(denied.is_empty(), "template.yaml does not grant calls the functions made: {denied:#?}");
        }
        // SIGTERM lets the stack stop its functions; the emulator exits with its parent.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
}
