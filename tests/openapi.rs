//! The API tells the truth: Schemathesis (pinned in the project's virtualenv) runs every check,
//! every phase (examples, coverage, fuzzing, and the stateful phase that follows the document's
//! links from a created resource to its reads, changes and deletion) against the local stack,
//! once per kind of key. Any status, header, body or validation rule of the server that the
//! document does not describe fails this test, and so does a method a path does not take that
//! is not answered 405 with `Allow`. The few exceptions a schema cannot express are written
//! down, with why, in tests/schemathesis/schemathesis.toml.
//!
//! `RELAY_FUZZ_SEED` and `RELAY_FUZZ_EXAMPLES` widen a run by hand (the defaults keep the test
//! repeatable and under a minute per key).

use relay_e2e::stack::ADMIN_KEY;
use relay_e2e::{repo_root, Stack, StackOptions};

/// Runs Schemathesis with `key`. Awaited, never blocking: the test's runtime must keep draining
/// the stack's log pipes while it runs, or the stack stalls on a full pipe.
async fn schemathesis(stack: &Stack, key: &str) -> (bool, String) {
    let seed = std::env::var("RELAY_FUZZ_SEED").unwrap_or_else(|_| "20261124".into());
    let examples = std::env::var("RELAY_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = tokio::process::Command::new(repo_root().join(".venv/bin/schemathesis"))
        .current_dir(repo_root().join("tests/schemathesis"))
        .args(["run", repo_root().join("infra/openapi.yaml").to_str().unwrap_or_default()])
        .args(["--url", &stack.url, "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", &examples, "--seed", &seed, "--no-color", "--suppress-health-check", "all"])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .output()
        .await
        .expect("schemathesis is installed by ./dev setup");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn the_server_does_exactly_what_the_openapi_document_says_for_every_kind_of_key() {
    // No pollers: the fuzzer's subscriptions point at made-up hosts; what is under test is the
    // HTTP API, and deliveries would only add noise (and outbound connection attempts).
    let stack = Stack::start(StackOptions { no_pollers: true, ..StackOptions::default() }).await;
    let mut failed = Vec::new();
    for (kind, key) in
        [("product", stack.product_key.clone()), ("organisation", stack.org_key.clone()), ("operator", ADMIN_KEY.to_string())]
    {
        let (ok, report) = schemathesis(&stack, &key).await;
        let summary: String = report.lines().skip_while(|l| !l.contains("SUMMARY")).collect::<Vec<_>>().join("\n");
        eprintln!("--- {kind} key ---\n{summary}");
        assert!(report.contains("Stateful"), "the stateful phase ran:\n{report}");
        assert!(!report.contains("Server error"), "no 5xx:\n{report}");
        if !ok {
            failed.push(format!("=== with the {kind} key ===\n{report}"));
        }
    }
    assert!(failed.is_empty(), "the server and infra/openapi.yaml disagree:\n{}", failed.join("\n"));
}
