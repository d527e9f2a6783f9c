//! Payroll's documents checked by independent libraries: the SEPA credit transfer validates
//! against the official pain.001.001.03 XSD (Python's `xmlschema`, with the schema the `sepaxml`
//! package ships) and its control sum and count match the payslips; a payslip PDF's text, as
//! `pypdf` extracts it, shows the figures of its JSON. And a run through the local stack: the
//! payroll-batch binary polling its two queues, moto's S3, DynamoDB and EventBridge.

use std::process::Command;

use relay_core::payroll::compute::{payslip, EmployeeLine, Payslip};
use relay_core::payroll::pdf::{render, Employer};
use relay_core::payroll::rules::RuleTable;
use relay_core::payroll::sepa::{credit_transfer, Debtor, Transfer};
use relay_e2e::{repo_root, Stack, StackOptions};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn tool(args: &[&str]) -> String {
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/python/payroll_tools.py"))
        .args(args)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn table() -> RuleTable {
    RuleTable::parse(&std::fs::read_to_string(repo_root().join("rules/payroll/nl-2025.json")).expect("table")).expect("parses")
}

/// Six employees at different incomes (the ones `shared/core/src/payroll/compute.rs` works out by hand).
fn payslips() -> Vec<Payslip> {
    let t = table();
    let lines = [
        json!({"employeeId": "e1", "name": "Anna de Vries", "email": "anna@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "2000.00", "pensionScheme": "none", "taxCreditApplied": true}),
        json!({"employeeId": "e2", "name": "Zoë Ørsted-Müller", "email": "zoe@example.nl", "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX", "grossPay": "4000.00", "pensionScheme": "basic", "taxCreditApplied": true}),
        json!({"employeeId": "e3", "name": "Bram Jansen & Zn <b>", "email": "bram@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "8000.00", "pensionScheme": "none", "taxCreditApplied": true}),
        json!({"employeeId": "e4", "name": "Chris Bakker", "email": "chris@example.nl", "iban": "BE68539007547034", "grossPay": "1000.00", "allowances": "50.00", "deductions": "25.00", "pensionScheme": "none", "taxCreditApplied": false}),
        json!({"employeeId": "e5", "name": "Dana Visser", "email": "dana@example.nl", "iban": "GB82WEST12345698765432", "grossPay": "12500.00", "pensionScheme": "basic", "taxCreditApplied": true}),
        json!({"employeeId": "e6", "name": "Eva Smit", "email": "eva@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "800.00", "pensionScheme": "none", "taxCreditApplied": true}),
    ];
    lines
        .iter()
        .map(|l| {
            let line: EmployeeLine = serde_json::from_value(l.clone()).expect("line");
            payslip(&line, &t, "2025-11", format!("run-1-{}", line.employee_id)).expect("paid")
        })
        .collect()
}

#[test]
fn the_sepa_file_validates_against_the_official_xsd_and_its_sums_match_the_payslips() {
    let slips = payslips();
    let transfers: Vec<Transfer> = slips
        .iter()
        .map(|p| Transfer {
            end_to_end_id: p.payslip_id.clone(),
            amount: p.net_pay,
            name: p.name.clone(),
            iban: p.iban.clone(),
            bic: p.bic.clone(),
            remittance: format!("Salary {} {}", p.period, p.employee_id),
        })
        .collect();
    let debtor = Debtor { name: "Acme Uitzend B.V.".into(), iban: "NL91ABNA0417164300".into(), bic: Some("ABNANL2A".into()) };
    let xml = credit_transfer(
        "run-1",
        "2025-11-24T10:00:00Z".parse().expect("time"),
        chrono::NaiveDate::from_ymd_opt(2025, 11, 25).expect("date"),
        &debtor,
        &transfers,
    );
    let file = std::env::temp_dir().join(format!("relay-sepa-{}.xml", std::process::id()));
    std::fs::write(&file, &xml).expect("write");
    let report: Value = serde_json::from_str(&tool(&["sepa", file.to_str().expect("path")])).expect("json");
    let net: Decimal = slips.iter().map(|p| p.net_pay).sum();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["nbOfTxs"], json!(["6", "6"]));
    assert_eq!(report["ctrlSum"], json!([net.to_string(), net.to_string()]));
    assert_eq!(report["amounts"], net.to_string(), "the transfers add up to the control sum");
    assert_eq!(net.to_string(), "18274.13", "1917.00 + 3046.67 + 5042.07 + 648.89 + 6819.50 + 800.00");
    assert!(xml.contains("<Nm>Zoe Orsted-Muller</Nm>") && xml.contains("<Nm>Bram Jansen   Zn  b</Nm>"), "transliterated, never escaped");

    // A file the XSD refuses is reported as such (the validator can fail).
    let broken = xml.replace("<ChrgBr>SLEV</ChrgBr>", "<ChrgBr>NOPE</ChrgBr>");
    std::fs::write(&file, broken).expect("write");
    let report: Value = serde_json::from_str(&tool(&["sepa", file.to_str().expect("path")])).expect("json");
    assert_eq!(report["valid"], false, "{report}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_payslip_pdf_shows_the_figures_of_its_json() {
    for p in payslips() {
        let pdf = render(&p, &Employer { name: "Acme Uitzend B.V.", pay_date: "2025-11-25" });
        let file = std::env::temp_dir().join(format!("relay-payslip-{}-{}.pdf", std::process::id(), p.employee_id));
        std::fs::write(&file, &pdf).expect("write");
        let text = tool(&["pdf-text", file.to_str().expect("path")]);
        let _ = std::fs::remove_file(&file);
        for figure in [p.gross, p.pension, p.wage_tax, p.net_pay, p.employer_cost] {
            assert!(text.contains(&format!("{figure:.2}")), "{} shows {figure:.2}:\n{text}", p.employee_id);
        }
        for part in ["Payslip 2025-11", "Net pay", "Wage tax", p.employee_id.as_str(), p.iban.as_str()] {
            assert!(text.contains(part), "{part} in:\n{text}");
        }
        if p.employee_id == "e2" {
            assert!(text.contains("Zoë Ørsted-Müller") && text.contains("€ 3046.67"), "Latin-1 and the euro sign come through:\n{text}");
        }
    }
}

const PAYROLL_BUCKET: &str = "relay-local-payroll-123456789012-us-east-1";

async fn s3(stack: &Stack) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.aws().await).force_path_style(true).build())
}

async fn object(s3: &aws_sdk_s3::Client, key: &str) -> Option<Vec<u8>> {
    let out = s3.get_object().bucket(PAYROLL_BUCKET).key(key).send().await.ok()?;
    Some(out.body.collect().await.ok()?.into_bytes().to_vec())
}

/// Uploads the test input (`input_lines`) to `key` in the payroll bucket, as Paylinq would.
async fn upload_input(s3: &aws_sdk_s3::Client, key: &str) {
    s3.put_object().bucket(PAYROLL_BUCKET).key(key).body(input_lines().into_bytes().into()).send().await.expect("upload");
}

/// The payroll table's run item, read as the API will (its status and progress).
async fn run_item(stack: &Stack, run_id: &str) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    let key = std::collections::HashMap::from([
        ("pk".to_string(), aws_sdk_dynamodb::types::AttributeValue::S(format!("RUN#org-acme#{run_id}"))),
        ("sk".to_string(), aws_sdk_dynamodb::types::AttributeValue::S("RUN".into())),
    ]);
    ddb.get_item().table_name("relay-local-payroll").set_key(Some(key)).send().await.ok()?.item
}

/// One API call with `key`: the status and the JSON body (`null` when there is none).
async fn call(stack: &Stack, key: &str, method: reqwest::Method, path: String, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{}{path}", stack.url)).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("api");
    (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
}

/// The six hand-computed employees, a malformed line and an employee on two lines, as JSON lines.
fn input_lines() -> String {
    let mut lines: Vec<String> = Vec::new();
    for (i, p) in payslips().iter().enumerate() {
        lines.push(
            json!({"employeeId": p.employee_id, "name": p.name, "email": p.email, "iban": p.iban, "bic": p.bic,
            "grossPay": p.gross_pay.to_string(), "allowances": p.allowances.to_string(), "deductions": p.deductions.to_string(),
            "pensionScheme": p.pension_scheme, "taxCreditApplied": p.employee_id != "e4"})
            .to_string(),
        );
        if i == 2 {
            lines.push("{\"employeeId\": \"broken".into());
        }
    }
    let twice = json!({"employeeId": "e7", "name": "Finn Mol", "email": "finn@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "3000.00", "pensionScheme": "none", "taxCreditApplied": true});
    lines.push(twice.to_string());
    lines.push(twice.to_string());
    lines.join("\n")
}

#[tokio::test]
async fn a_run_put_on_the_bus_is_paid_once_through_the_local_stack_with_a_valid_bank_file() {
    let env = vec![("RELAY_PAYROLL_CHUNK_SIZE".to_string(), "3".to_string())];
    let stack = Stack::start(StackOptions { function_env: env, ..StackOptions::default() }).await;
    let s3 = s3(&stack).await;
    upload_input(&s3, "inputs/org-acme/2025-11.jsonl").await;
    let request = json!({"eventId": uuid::Uuid::new_v4(), "eventType": "payroll.run.requested", "eventVersion": "1.0", "sourceProduct": "paylinq",
        "organizationId": "org-acme", "timestamp": chrono::Utc::now(),
        "payload": {"payrollRunId": "run-e2e", "period": "2025-11", "input": "inputs/org-acme/2025-11.jsonl", "payDate": "2025-11-25",
                    "employer": {"name": "Acme Uitzend B.V.", "iban": "NL91ABNA0417164300", "bic": "ABNANL2A"}}});
    stack.put_on_bus(Some("relay-local"), "paylinq", "payroll.run.requested", &request).await;
    // The same request again, through the API (Paylinq retrying): one run.
    stack.add_product_key("rk_prod_test_paylinq", "paylinq").await;
    let mut body = request["payload"].clone();
    body["organizationId"] = json!("org-acme");
    let api = |key: &'static str, method: reqwest::Method, path: String, body: Option<Value>| call(&stack, key, method, path, body);
    let (status, asked) = api("rk_prod_test_paylinq", reqwest::Method::POST, "/v1/payroll-runs".into(), Some(body.clone())).await;
    assert_eq!(status, 202, "{asked}");
    let (status, _) = api(relay_e2e::stack::PRODUCT_KEY, reqwest::Method::POST, "/v1/payroll-runs".into(), Some(body.clone())).await;
    assert_eq!(status, 403, "RecruitIQ's key does not run payrolls");

    let started = std::time::Instant::now();
    let item = loop {
        if let Some(item) = run_item(&stack, "run-e2e").await {
            if item.get("status").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("completed") && item.contains_key("announced") {
                break item;
            }
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the run did not complete");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let n = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).cloned().unwrap_or_default();
    assert_eq!(
        (n("chunksTotal"), n("chunksDone"), n("employeesTotal"), n("employeesDone")),
        ("3".into(), "3".into(), "9".into(), "9".into())
    );
    let totals: Value = serde_json::from_str(item["totals"].as_s().expect("totals")).expect("json");
    assert_eq!((totals["employees"].as_u64(), totals["net"].as_str()), (Some(6), Some("18274.13")));

    let prefix = "runs/org-acme/run-e2e/";
    let sepa = object(&s3, &format!("{prefix}sepa.xml")).await.expect("sepa.xml");
    let file = std::env::temp_dir().join(format!("relay-e2e-sepa-{}.xml", std::process::id()));
    std::fs::write(&file, &sepa).expect("write");
    let report: Value = serde_json::from_str(&tool(&["sepa", file.to_str().expect("path")])).expect("json");
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        (report["valid"].as_bool(), report["transactions"].as_u64(), report["amounts"].as_str()),
        (Some(true), Some(6), Some("18274.13")),
        "{report}"
    );

    let run_report: Value = serde_json::from_slice(&object(&s3, &format!("{prefix}report.json")).await.expect("report")).expect("json");
    let reasons: Vec<&str> = run_report["rejected"].as_array().expect("rejected").iter().filter_map(|r| r["reason"].as_str()).collect();
    assert_eq!(reasons.len(), 3, "{run_report}");
    assert!(reasons[0].starts_with("not an employee record") && reasons[1].contains("none of them is paid"), "{reasons:?}");

    let pdf = object(&s3, &format!("{prefix}payslips/e2.pdf")).await.expect("e2's payslip");
    let json_slip: Value = serde_json::from_slice(&object(&s3, &format!("{prefix}payslips/e2.json")).await.expect("json")).expect("json");
    let file = std::env::temp_dir().join(format!("relay-e2e-payslip-{}.pdf", std::process::id()));
    std::fs::write(&file, &pdf).expect("write");
    let text = tool(&["pdf-text", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(&file);
    for field in ["gross", "pension", "wageTax", "netPay"] {
        let figure = json_slip[field].as_str().expect("amount");
        assert!(text.contains(figure), "{field} {figure} in:\n{text}");
    }
    // The run through the API: the organisation sees it, with links that fetch its files.
    let (status, run) = api(relay_e2e::stack::ORG_KEY, reqwest::Method::GET, "/v1/payroll-runs/run-e2e".into(), None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        (run["status"].as_str(), run["totals"]["net"].as_str(), run["progress"]["chunksDone"].as_u64()),
        (Some("completed"), Some("18274.13"), Some(3))
    );
    assert_eq!(run["rejected"].as_array().map(Vec::len), Some(3));
    let link = run["links"]["sepa"].as_str().expect("a link to the bank file");
    assert!(link.contains("X-Amz-Expires=900"), "{link}");
    let fetched = reqwest::get(link).await.expect("fetch").bytes().await.expect("bytes");
    assert_eq!(fetched.as_ref(), sepa.as_slice(), "the link serves the bank file");
    let mut other = body.clone();
    other["period"] = json!("2025-12");
    assert_eq!(
        api("rk_prod_test_paylinq", reqwest::Method::POST, "/v1/payroll-runs".into(), Some(other)).await.0,
        409,
        "one id, one request"
    );
    let (status, replay) = api("rk_prod_test_paylinq", reqwest::Method::POST, "/v1/payroll-runs".into(), Some(body)).await;
    assert_eq!((status, replay["status"].as_str()), (202, Some("completed")), "{replay}");
    assert_eq!(api("rk_org_other", reqwest::Method::GET, "/v1/payroll-runs/run-e2e".into(), None).await.0, 401);

    // After the run is complete, each paid employee gets one e-mail (through the mail function
    // and SES) whose link fetches their payslip.
    let mail = relay_e2e::wait_for_mail(&stack, "zoe@example.nl", "Your payslip for 2025-11").await;
    let text = mail["text"].as_str().expect("text part");
    assert!(text.contains("€ 3046.67"), "{text}");
    let link = text.split_whitespace().find(|w| w.starts_with("http")).expect("a link in the mail");
    let pdf = reqwest::get(link).await.expect("fetch").bytes().await.expect("bytes");
    assert!(pdf.starts_with(b"%PDF"), "the mail's link serves the payslip");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let payslip_mails = relay_e2e::sent_mails(&stack)
        .await
        .into_iter()
        .filter(|m| m["subject"].as_str().is_some_and(|s| s.starts_with("Your payslip")))
        .count();
    assert_eq!(payslip_mails, 6, "one mail per paid employee, though the run was asked for twice");
    assert!(stack.iam_denials().is_empty(), "every call granted by template.yaml: {:?}", stack.iam_denials());
}

#[tokio::test]
async fn a_chunk_that_crashes_half_way_is_redelivered_and_nothing_is_paid_or_counted_twice() {
    let env = vec![("RELAY_PAYROLL_CHUNK_SIZE".to_string(), "3".to_string())];
    let (stack, proxy) =
        relay_e2e::stack_behind_proxy(StackOptions { function_env: env, visibility_timeout_secs: Some(2), ..StackOptions::default() })
            .await;
    let s3 = s3(&stack).await;
    upload_input(&s3, "inputs/org-acme/crash.jsonl").await;
    // Every write that carries e5's payslip id (e5 is the last of chunk 2) fails: chunk 2
    // crashes after writing e3's and e4's payslips, again and again, until the fault is lifted.
    proxy.inject("S3:PUTObject", relay_e2e::Fault::FailWhenBodyHas("run-crash-e5"));
    let request = json!({"eventId": uuid::Uuid::new_v4(), "eventType": "payroll.run.requested", "eventVersion": "1.0", "sourceProduct": "paylinq",
        "organizationId": "org-acme", "timestamp": chrono::Utc::now(),
        "payload": {"payrollRunId": "run-crash", "period": "2025-11", "input": "inputs/org-acme/crash.jsonl", "payDate": "2025-11-25",
                    "employer": {"name": "Acme Uitzend B.V.", "iban": "NL91ABNA0417164300"}}});
    stack.put_on_bus(Some("relay-local"), "paylinq", "payroll.run.requested", &request).await;

    let limit = std::time::Duration::from_secs(60);
    let progress = |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, k: &str| {
        item.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0)
    };
    let started = std::time::Instant::now();
    loop {
        let item = run_item(&stack, "run-crash").await;
        if item.as_ref().is_some_and(|i| progress(i, "chunksDone") == 2) {
            break;
        }
        assert!(started.elapsed() < limit, "chunks 1 and 3 never finished: {item:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // Let chunk 2 fail at least once more (redelivered every 2 s), then lift the fault.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(progress(&run_item(&stack, "run-crash").await.expect("run"), "chunksDone"), 2, "a crashed chunk is not counted");
    proxy.clear();

    let started = std::time::Instant::now();
    let item = loop {
        let item = run_item(&stack, "run-crash").await.expect("run");
        if item.contains_key("announced") {
            break item;
        }
        assert!(started.elapsed() < limit, "the run did not complete after the fault was lifted: {item:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!((progress(&item, "chunksDone"), progress(&item, "employeesDone")), (3, 9), "every chunk counted once");
    let totals: Value = serde_json::from_str(item["totals"].as_s().expect("totals")).expect("json");
    assert_eq!((totals["employees"].as_u64(), totals["net"].as_str()), (Some(6), Some("18274.13")), "totals unchanged by the crash");
    let sepa = String::from_utf8(object(&s3, "runs/org-acme/run-crash/sepa.xml").await.expect("sepa")).expect("utf-8");
    assert_eq!(sepa.matches("<CdtTrfTxInf>").count(), 6, "each employee paid once");
    assert_eq!(sepa.matches("Dana Visser").count(), 1);
    assert_eq!(stack.metric_total("payroll-batch", "EmployeesPaid", 6.0, limit).await, 6.0);
    assert_eq!(stack.metric_total("payroll-batch", "PayrollRunsCompleted", 1.0, limit).await, 1.0);
    assert_eq!(stack.metric_total("payroll-batch", "EmployeesRejected", 3.0, limit).await, 3.0, "the malformed line and both of e7's");
}

/// What EventBridge Scheduler sends to the payroll queue at `at`: the target input of
/// template.yaml's schedule, with the scheduled time filled in.
fn scheduler_tick(at: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    let template: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let schedule = &template["Resources"]["PayrollMonthlySchedule"]["Properties"];
    let target = format!("{:?}", schedule["Target"]["Arn"]);
    assert!(target.contains("GetAtt") && target.contains("PayrollQueue.Arn"), "the tick goes to the payroll queue: {target}");
    let input = schedule["Target"]["Input"].as_str().expect("the schedule's input");
    assert!(input.contains("<aws.scheduler.scheduled-time>"), "{input}");
    input.replace("<aws.scheduler.scheduled-time>", at)
}

#[tokio::test]
async fn the_monthly_schedule_asks_for_the_run_once_its_input_is_there_and_the_runs_are_listed() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.add_product_key("rk_prod_test_paylinq", "paylinq").await;
    let paylinq = "rk_prod_test_paylinq";
    let schedule = json!({"requestDay": 20, "payDay": 31, "ruleTable": "nl-2025", "firstPeriod": "2025-11",
        "employer": {"name": "Acme Uitzend B.V.", "iban": "NL91ABNA0417164300", "bic": "ABNANL2A"}});
    let put = |key: &'static str, body: Value| call(&stack, key, reqwest::Method::PUT, "/v1/payroll-schedules/org-acme".into(), Some(body));
    let (status, kept) = put(paylinq, schedule.clone()).await;
    assert_eq!((status, kept["firstPeriod"].as_str()), (200, Some("2025-11")), "{kept}");
    let mut late = schedule.clone();
    late["payDay"] = json!(19);
    let (status, problem) = put(paylinq, late).await;
    assert_eq!(status, 400, "paid before it is asked for: {problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("payDay"), "{problem}");
    assert_eq!(put(relay_e2e::stack::ORG_KEY, schedule.clone()).await.0, 403, "an organisation does not set its own payroll");

    // The tick before the upload: due, and waiting for the input.
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let tick =
        |at: &'static str| sqs.send_message().queue_url(stack.queue_url("relay-local-payroll")).message_body(scheduler_tick(at)).send();
    tick("2025-11-20T05:00:00Z").await.expect("tick");
    let schedules = |key: &'static str| call(&stack, key, reqwest::Method::GET, "/v1/payroll-schedules".into(), None);
    let started = std::time::Instant::now();
    let waiting = loop {
        let (_, list) = schedules(paylinq).await;
        let mine = list["payrollSchedules"].as_array().and_then(|a| a.iter().find(|s| s["organizationId"] == "org-acme")).cloned();
        if let Some(last) = mine.as_ref().map(|s| s["lastTick"].clone()).filter(|t| !t.is_null()) {
            break last;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the tick was not handled: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!((waiting["outcome"].as_str(), waiting["payrollRunId"].as_str()), (Some("waiting"), Some("scheduled-2025-11")), "{waiting}");
    assert!(run_item(&stack, "scheduled-2025-11").await.is_none(), "no run without its input");

    // Uploaded: the next tick asks for the run, which is paid; a tick repeated asks for nothing.
    upload_input(&s3(&stack).await, "inputs/org-acme/2025-11.jsonl").await;
    tick("2025-11-21T05:00:00Z").await.expect("tick");
    tick("2025-11-21T05:00:00Z").await.expect("the same tick again");
    let started = std::time::Instant::now();
    while !run_item(&stack, "scheduled-2025-11").await.is_some_and(|i| i.contains_key("announced")) {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the scheduled run did not complete");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    tick("2025-11-22T05:00:00Z").await.expect("tick");
    let limit = std::time::Duration::from_secs(30);
    assert_eq!(stack.metric_total("payroll-batch", "PayrollRunsCompleted", 1.0, limit).await, 1.0);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await; // the later ticks handled
    assert_eq!(
        stack.metric_total("payroll-batch", "PayrollRunsCompleted", 1.0, limit).await,
        1.0,
        "one run, though three ticks found the month due"
    );
    assert_eq!(stack.metric_total("payroll-batch", "EmployeesPaid", 6.0, limit).await, 6.0, "each employee paid once");

    // The runs, listed: the organisation sees its own, Paylinq every organisation's.
    let (status, page) = call(&stack, relay_e2e::stack::ORG_KEY, reqwest::Method::GET, "/v1/payroll-runs".into(), None).await;
    assert_eq!(status, 200, "{page}");
    let runs = page["payrollRuns"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{page}");
    let run = &runs[0];
    assert_eq!(
        (run["payrollRunId"].as_str(), run["status"].as_str(), run["payDate"].as_str(), run["totals"]["net"].as_str()),
        (Some("scheduled-2025-11"), Some("completed"), Some("2025-11-30"), Some("18274.13")),
        "paid on the month's last day: {run}"
    );
    let (_, all) = call(&stack, paylinq, reqwest::Method::GET, "/v1/payroll-runs?organizationId=org-acme&limit=1".into(), None).await;
    assert_eq!(all["payrollRuns"][0]["payrollRunId"], "scheduled-2025-11", "{all}");
    let (status, _) =
        call(&stack, relay_e2e::stack::ORG_KEY, reqwest::Method::GET, "/v1/payroll-runs?organizationId=org-other".into(), None).await;
    assert_eq!(status, 404, "another organisation's runs are not there for an organisation key");
    let (_, list) = schedules(relay_e2e::stack::ORG_KEY).await;
    assert_eq!(list["payrollSchedules"][0]["lastTick"]["outcome"], "requested", "{list}");
    assert_eq!(list["payrollSchedules"][0]["nextRequest"]["input"].as_str().map(|i| i.starts_with("inputs/org-acme/")), Some(true));
    assert!(stack.iam_denials().is_empty(), "every call granted by template.yaml: {:?}", stack.iam_denials());
}
