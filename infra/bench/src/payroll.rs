//! A payroll run of many employees through a local stack (release builds): asked for through
//! the API, computed by payroll-batch in chunks of 500, mailed through the mail function. It
//! reports employees per second, payroll-batch's CPU per employee and employees per CPU-second
//! (what one chunk worker computes), AWS requests per employee by operation up to the run's
//! completion (counted by the proxy between the functions and the emulator; the e-mails that
//! follow are the mail function's), and the peak memory of a payroll-batch process (`VmHWM`;
//! goal: a chunk of 500 in under 128 MB).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use relay_e2e::{stack_behind_proxy, StackOptions};
use serde_json::json;

use crate::load::process;

const BUCKET: &str = "relay-local-payroll-123456789012-us-east-1";

pub struct PayrollFigures {
    pub employees: usize,
    pub wall: Duration,
    pub cpu_ms_per_employee: f64,
    pub employees_per_cpu_second: f64,
    pub requests_per_employee: f64,
    pub by_operation: String,
    pub peak_rss_mb: f64,
    pub net_total: String,
}

/// `n` employees at incomes from €1,000 to about €13,000 a month, a tenth of them in the
/// pension scheme, every hundredth without credits.
fn input(n: usize) -> String {
    let ibans = ["NL91ABNA0417164300", "DE89370400440532013000", "BE68539007547034", "GB82WEST12345698765432"];
    (0..n)
        .map(|i| {
            json!({"employeeId": format!("e{i:06}"), "name": format!("Employee {i}"), "email": format!("e{i}@example.nl"),
                   "iban": ibans[i % ibans.len()], "grossPay": format!("{}.{:02}", 1000 + (i * 37) % 12000, i % 100),
                   "pensionScheme": if i % 10 == 0 { "basic" } else { "none" }, "taxCreditApplied": i % 100 != 0})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// payroll-batch's processes: their CPU ticks and peak resident memory (kB), by pid.
fn sample(seen: &mut HashMap<u32, (u64, u64)>) {
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Some((comm, _, ticks)) = process(&entry.path()) else { continue };
        if comm != "payroll-batch" {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let e = seen.entry(pid).or_default();
        *e = (e.0.max(ticks), e.1.max(hwm));
    }
}

pub async fn run(employees: usize) -> Result<PayrollFigures, String> {
    let env = vec![("RELAY_PAYROLL_CHUNK_SIZE".to_string(), "500".to_string())];
    let (stack, proxy) = stack_behind_proxy(StackOptions { function_env: env, ..StackOptions::default() }).await;
    let sdk = stack.aws().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.put_object()
        .bucket(BUCKET)
        .key("inputs/org-bench/2025-11.jsonl")
        .body(input(employees).into_bytes().into())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    stack.add_product_key("rk_bench_paylinq", "paylinq").await;
    let mut seen = HashMap::new();
    sample(&mut seen);
    let before: HashMap<u32, u64> = seen.iter().map(|(p, (t, _))| (*p, *t)).collect();
    proxy.reset_counts();
    let started = Instant::now();
    let body = json!({"payrollRunId": "bench", "organizationId": "org-bench", "period": "2025-11", "input": "inputs/org-bench/2025-11.jsonl",
                      "payDate": "2025-11-25", "employer": {"name": "Bench B.V.", "iban": "NL91ABNA0417164300", "bic": "ABNANL2A"}});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/payroll-runs", stack.url))
        .bearer_auth("rk_bench_paylinq")
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != 202 {
        return Err(format!("POST /v1/payroll-runs answered {}", resp.status()));
    }
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let key = HashMap::from([
        ("pk".to_string(), AttributeValue::S("RUN#org-bench#bench".into())),
        ("sk".to_string(), AttributeValue::S("RUN".into())),
    ]);
    let limit = Duration::from_secs(60 * 60);
    let item = loop {
        sample(&mut seen);
        let item =
            ddb.get_item().table_name("relay-local-payroll").set_key(Some(key.clone())).send().await.map_err(|e| e.to_string())?.item;
        if let Some(item) = item.filter(|i| i.contains_key("announced")) {
            break item;
        }
        if started.elapsed() > limit {
            return Err("the run did not complete within an hour".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let wall = started.elapsed();
    sample(&mut seen);
    // Counted when the run completes: payroll-batch's calls, the API's, and deliver's for the
    // payslip events. The e-mails go out after, at SES's send rate (14 a second by default: 12
    // minutes for 10,000), and are the mail function's cost, measured in its own right.
    let ticks: u64 = seen.iter().map(|(pid, (t, _))| t - before.get(pid).copied().unwrap_or(0).min(*t)).sum();
    let cpu_ms = ticks as f64 * 1000.0 / 100.0;
    let peak_kb = seen.values().map(|(_, h)| *h).max().unwrap_or(0);
    let counts = proxy.counts();
    let total: usize = counts.values().sum();
    let by_operation: BTreeMap<String, f64> = counts.iter().map(|(op, n)| (op.clone(), *n as f64 / employees as f64)).collect();
    let totals: serde_json::Value =
        item.get("totals").and_then(|v| v.as_s().ok()).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    Ok(PayrollFigures {
        employees,
        wall,
        cpu_ms_per_employee: cpu_ms / employees as f64,
        employees_per_cpu_second: employees as f64 / (cpu_ms / 1000.0).max(0.001),
        requests_per_employee: total as f64 / employees as f64,
        by_operation: by_operation.iter().map(|(op, n)| format!("{op} {n:.2}")).collect::<Vec<_>>().join(", "),
        peak_rss_mb: peak_kb as f64 / 1024.0,
        net_total: totals["net"].as_str().unwrap_or("").to_string(),
    })
}
