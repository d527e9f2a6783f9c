//! The payroll routes' keys and checks: who may set a schedule, what a schedule must say, and
//! who sees which runs and schedules.

use relay_core::payroll::job::{RunRecord, RunRequest, RunStatus};
use relay_core::ports::PayrollRuns;
use serde_json::json;

use super::{world, ADMIN, ORG_1, ORG_2, PAYLINQ, PRODUCT};

fn schedule() -> serde_json::Value {
    json!({"requestDay": 20, "payDay": 25, "ruleTable": "nl-2025", "employer": {"name": "Acme B.V.", "iban": "NL91ABNA0417164300"}})
}

#[tokio::test]
async fn paylinq_and_operators_set_schedules_that_say_what_is_wrong_and_organisations_see_only_their_own() {
    let w = world().await;
    let (status, kept) = w.call("PUT", "/v1/payroll-schedules/org-1", PAYLINQ, Some(schedule())).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(
        (kept["organizationId"].as_str(), kept["nextRequest"]["input"].as_str().map(|i| i.starts_with("inputs/org-1/"))),
        (Some("org-1"), Some(true))
    );
    assert!(kept["firstPeriod"].as_str().is_some_and(|p| p.len() == 7), "settled when left out: {kept}");
    assert_eq!(w.call("PUT", "/v1/payroll-schedules/org-2", ADMIN, Some(schedule())).await.0, 200);
    let mut explicit = schedule();
    explicit["firstPeriod"] = json!("2025-11");
    assert_eq!(w.call("PUT", "/v1/payroll-schedules/org-1", PAYLINQ, Some(explicit)).await.0, 200);
    let (_, again) = w.call("PUT", "/v1/payroll-schedules/org-1", PAYLINQ, Some(schedule())).await;
    assert_eq!(again["firstPeriod"], "2025-11", "replacing a schedule keeps its first period: {again}");

    for (key, status) in [(ORG_1, 403), (PRODUCT, 403), ("rk_org_nobody", 401)] {
        assert_eq!(w.call("PUT", "/v1/payroll-schedules/org-1", key, Some(schedule())).await.0, status, "{key}");
    }
    let refused = |field: &str, value: serde_json::Value| {
        let mut body = schedule();
        body[field] = value;
        body
    };
    for (body, says) in [
        (refused("requestDay", json!(29)), "requestDay"),
        (refused("payDay", json!(10)), "payDay"),
        (refused("ruleTable", json!("de-2025")), "no rule table"),
        (refused("firstPeriod", json!("2025-13")), "firstPeriod"),
        (refused("organizationId", json!("org-1")), "path"),
        (refused("employer", json!({"name": "Acme", "iban": "NL91ABNA0417164301"})), "iban"),
    ] {
        let (status, problem) = w.call("PUT", "/v1/payroll-schedules/org-1", PAYLINQ, Some(body)).await;
        assert_eq!(status, 400, "{problem}");
        assert!(problem["detail"].as_str().unwrap_or("").contains(says), "{says}: {problem}");
    }
    assert_eq!(w.call("PUT", "/v1/payroll-schedules/org%201", PAYLINQ, Some(schedule())).await.0, 400);
    // A new schedule's first month is next month (2026 or later): no table of that year is built in here.
    let (status, problem) = w.call("PUT", "/v1/payroll-schedules/org-9", PAYLINQ, Some(refused("ruleTable", json!(null)))).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("no rule table nl-20"), "{problem}");

    let (_, all) = w.call("GET", "/v1/payroll-schedules", PAYLINQ, None).await;
    assert_eq!(all["payrollSchedules"].as_array().map(Vec::len), Some(2));
    let (_, own) = w.call("GET", "/v1/payroll-schedules", ORG_1, None).await;
    assert_eq!(
        own["payrollSchedules"].as_array().map(|a| a.iter().map(|s| s["organizationId"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("org-1")])
    );
    assert_eq!(w.call("GET", "/v1/payroll-schedules?organizationId=org-2", ORG_1, None).await.0, 404);
    assert_eq!(w.call("GET", "/v1/payroll-schedules", PRODUCT, None).await.0, 403);

    assert_eq!(w.call("DELETE", "/v1/payroll-schedules/org-2", ORG_2, None).await.0, 403, "an organisation does not stop its payroll");
    assert_eq!(w.call("DELETE", "/v1/payroll-schedules/org-2", ADMIN, None).await.0, 204);
    assert_eq!(w.call("DELETE", "/v1/payroll-schedules/org-2", ADMIN, None).await.0, 404);
    let (status, _) = w.call("GET", "/v1/payroll-schedules/org-1", PAYLINQ, None).await;
    assert_eq!(status, 405);
}

/// A run of `org` recorded `minutes` after the first.
async fn run(w: &super::World, org: &str, id: &str, minutes: i64) {
    let request: RunRequest = serde_json::from_value(json!({"payrollRunId": id, "organizationId": org, "period": "2025-11",
        "input": format!("inputs/{org}/2025-11.jsonl"), "payDate": "2025-11-25", "employer": {"name": "Acme B.V.", "iban": "NL91ABNA0417164300"}}))
    .unwrap();
    let created_at = "2025-11-20T05:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap() + chrono::Duration::minutes(minutes);
    let record = RunRecord {
        request,
        status: RunStatus::Running,
        input_copy: String::new(),
        chunks_total: 1,
        chunks_done: 0,
        employees_total: 1,
        employees_done: 0,
        reason: None,
        totals: None,
        created_at,
        completed_at: None,
        announced: false,
    };
    assert!(w.payroll_runs.create_run(&record).await.unwrap());
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["payrollRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}", r["organizationId"].as_str().unwrap(), r["payrollRunId"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_an_organisation_sees_only_its_own() {
    let w = world().await;
    run(&w, "org-1", "a", 0).await;
    run(&w, "org-2", "b", 1).await;
    run(&w, "org-1", "c", 2).await;
    let (status, own) = w.call("GET", "/v1/payroll-runs", ORG_1, None).await;
    assert_eq!((status, ids(&own)), (200, vec!["org-1/c".to_string(), "org-1/a".to_string()]), "{own}");
    let (_, all) = w.call("GET", "/v1/payroll-runs", PAYLINQ, None).await;
    assert_eq!(ids(&all), ["org-1/c", "org-2/b", "org-1/a"]);
    let (_, page) = w.call("GET", "/v1/payroll-runs?limit=2", ADMIN, None).await;
    assert_eq!(ids(&page), ["org-1/c", "org-2/b"]);
    let cursor = page["nextCursor"].as_str().expect("more").to_string();
    let (_, rest) = w.call("GET", &format!("/v1/payroll-runs?limit=2&cursor={cursor}"), ADMIN, None).await;
    assert_eq!((ids(&rest), rest["nextCursor"].clone()), (vec!["org-1/a".to_string()], json!(null)));
    // org-2's place in the platform's list, handed to org-1's list: refused, nothing shown.
    let (status, _) = w.call("GET", &format!("/v1/payroll-runs?cursor={cursor}"), ORG_1, None).await;
    assert_eq!(status, 400, "a cursor of another organisation's list");

    for (key, status) in [(ORG_1, 200), (PAYLINQ, 200), (ADMIN, 200), (PRODUCT, 403)] {
        let (got, page) = w.call("GET", "/v1/payroll-runs", key, None).await;
        assert_eq!(got, status, "{key}: {page}");
    }
    assert_eq!(w.call("GET", "/v1/payroll-runs?organizationId=org-2", ORG_1, None).await.0, 404);
    assert_eq!(w.call("GET", "/v1/payroll-runs?organizationId=", ADMIN, None).await.0, 400);
    assert_eq!(w.call("GET", "/v1/payroll-runs?limit=0", ADMIN, None).await.0, 400);
    assert_eq!(w.call("GET", "/v1/payroll-runs?cursor=nonsense", ADMIN, None).await.0, 400, "a cursor that is no run's place");
    let manual = json!({"payrollRunId": "scheduled-2025-11", "organizationId": "org-1", "period": "2025-11", "input": "inputs/org-1/2025-11.jsonl",
        "payDate": "2025-11-25", "employer": {"name": "Acme B.V.", "iban": "NL91ABNA0417164300"}});
    let (status, problem) = w.call("POST", "/v1/payroll-runs", PAYLINQ, Some(manual)).await;
    assert_eq!(status, 400, "the schedule's ids are the schedule's: {problem}");
}
