//! The payroll routes' keys and checks: who may set a schedule, what a schedule must say, and
//! who sees which runs and schedules.

use serde_json::json;

use super::{world, ADMIN, ORG_1, ORG_2, PAYLINQ, PRODUCT};

fn schedule() -> serde_json::Value {
    json!({"requestDay": 20, "payDay": 25, "employer": {"name": "Acme B.V.", "iban": "NL91ABNA0417164300"}})
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

#[tokio::test]
async fn runs_are_listed_to_whoever_may_see_them() {
    let w = world().await;
    for (key, status) in [(ORG_1, 200), (PAYLINQ, 200), (ADMIN, 200), (PRODUCT, 403)] {
        let (got, page) = w.call("GET", "/v1/payroll-runs", key, None).await;
        assert_eq!(got, status, "{key}: {page}");
    }
    assert_eq!(w.call("GET", "/v1/payroll-runs?organizationId=org-2", ORG_1, None).await.0, 404);
    assert_eq!(w.call("GET", "/v1/payroll-runs?organizationId=org-1", ORG_1, None).await.0, 200);
    assert_eq!(w.call("GET", "/v1/payroll-runs?limit=0", ADMIN, None).await.0, 400);
    assert_eq!(w.call("GET", "/v1/payroll-runs?cursor=nonsense", ADMIN, None).await.0, 400, "a cursor that is no run's place");
}
