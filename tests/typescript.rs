//! The products' TypeScript client (clients/typescript) against the local stack, with Node's
//! own test runner: publish and replay with the same key, a 503 retried with the same key
//! (through the fault proxy), a subscription's round trip, and a delivered webhook verified by
//! the official Standard Webhooks package the client re-exports. Its npm packages are pinned in
//! package-lock.json and installed by ./dev setup (`npm ci`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use relay_e2e::{repo_root, stack_behind_proxy, Fault, Stack, StackOptions};

fn client_dir() -> std::path::PathBuf {
    repo_root().join("clients/typescript")
}

fn command(program: &str, args: &[&str], stack: Option<(&Stack, &Path)>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).current_dir(client_dir()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    if let Some((stack, signal)) = stack {
        cmd.env("RELAY_URL", &stack.url)
            .env("RELAY_PRODUCT_KEY", &stack.product_key)
            .env("RELAY_ORG_KEY", &stack.org_key)
            .env("RELAY_ORG_ID", "org-acme")
            .env("RELAY_FAULT_SIGNAL", signal);
    }
    cmd
}

/// Waits for a command (awaited, so the runtime keeps draining the stack's log pipes).
async fn finish(child: tokio::process::Child, what: &str) {
    let out = child.wait_with_output().await.expect(what);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("--- {what} ---\n{text}");
    assert!(out.status.success(), "{what} failed:\n{text}");
}

#[tokio::test]
async fn the_typescript_client_publishes_once_retries_with_its_key_manages_and_verifies() {
    assert!(client_dir().join("node_modules").exists(), "the client's npm packages are installed by ./dev setup");
    finish(command("npm", &["run", "--silent", "build"], None).spawn().expect("npm"), "npm run build").await;

    let (stack, proxy) = stack_behind_proxy(StackOptions::default()).await;
    let signal = stack.state_dir.join("fault-signal");

    // Every PutEvents fails until the client has seen its 503; then its retry goes through.
    proxy.inject("PutEvents", Fault::Fail);
    let retry = command("node", &["--test", "dist/test/retry.test.js"], Some((&stack, &signal))).spawn().expect("node");
    let started = Instant::now();
    while !signal.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "the client never reported a 503");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.clear();
    finish(retry, "node --test retry.test.js").await;

    finish(
        command("node", &["--test", "dist/test/client.test.js"], Some((&stack, &signal))).spawn().expect("node"),
        "node --test client.test.js",
    )
    .await;
}
