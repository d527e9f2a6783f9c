//! The deployable artefacts stay true: template.yaml lints clean and builds every function the
//! SAM way, the OpenAPI document lists exactly the routes served, and every sample event in
//! `events/` parses into its function's event type.

use std::collections::BTreeSet;
use std::process::Command;

use relay_e2e::repo_root;
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("YAML")
}

fn functions(t: &Value) -> Vec<(String, Value, Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_string(), r["Properties"].clone(), r["Metadata"].clone()))
        .collect()
}

#[test]
fn cfn_lint_passes() {
    let lint = repo_root().join(".venv/bin/cfn-lint");
    assert!(lint.exists(), "cfn-lint is installed by ./dev setup");
    let out = Command::new(lint).arg(repo_root().join("template.yaml")).output().expect("run cfn-lint");
    assert!(out.status.success(), "cfn-lint:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_function_is_a_cargo_lambda_arm64_al2023_build_of_a_workspace_binary() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    let fns = functions(&t);
    assert!(!fns.is_empty());
    for (id, props, meta) in fns {
        assert_eq!(meta["BuildMethod"], "rust-cargolambda", "{id}");
        let binary = meta["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{id}: BuildProperties.Binary"));
        assert!(
            repo_root().join("target/debug").join(binary).exists() || repo_root().join("functions").join(binary).exists(),
            "{id}: no binary {binary}"
        );
        let runtime = if props["Runtime"].is_null() { &globals["Runtime"] } else { &props["Runtime"] };
        let arch = if props["Architectures"].is_null() { &globals["Architectures"] } else { &props["Architectures"] };
        assert_eq!(runtime, "provided.al2023", "{id}");
        assert_eq!(arch[0], "arm64", "{id}");
    }
}

/// `METHOD /path` for every HttpApi event in the template.
fn served_routes(t: &Value) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for (_, props, _) in functions(t) {
        for (_, event) in props["Events"].as_mapping().into_iter().flatten() {
            if event["Type"] == "HttpApi" {
                let p = &event["Properties"];
                routes.insert(format!(
                    "{} {}",
                    p["Method"].as_str().unwrap_or("ANY").to_uppercase(),
                    p["Path"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    routes
}

/// Whether the template serves `METHOD /path`: a route for that method, or for ANY.
fn serves(routes: &BTreeSet<String>, route: &str) -> bool {
    let (_, path) = route.split_once(' ').unwrap_or_default();
    routes.contains(route) || routes.contains(&format!("ANY {path}"))
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_served() {
    let text = std::fs::read_to_string(repo_root().join("infra/openapi.yaml")).expect("openapi.yaml");
    let doc: Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];
        for (method, _) in item.as_mapping().into_iter().flatten().filter(|(m, _)| m.as_str().is_some_and(|m| METHODS.contains(&m))) {
            documented.insert(format!("{} {}", method.as_str().unwrap_or_default().to_uppercase(), path.as_str().unwrap_or_default()));
        }
    }
    let served = served_routes(&template());
    let paths = |routes: &BTreeSet<String>| -> BTreeSet<String> {
        routes.iter().filter_map(|r| r.split_once(' ')).map(|(_, p)| p.to_string()).collect()
    };
    assert_eq!(paths(&documented), paths(&served), "the same paths");
    for route in &documented {
        assert!(serves(&served, route), "{route} is documented but not served");
    }
    for route in served.iter().filter(|r| !r.starts_with("ANY ")) {
        assert!(documented.contains(route), "{route} is served but not documented");
    }
}

#[test]
fn every_sample_event_parses_into_its_functions_event_type() {
    let t = template();
    let binaries: BTreeSet<String> =
        functions(&t).iter().filter_map(|(_, _, m)| m["BuildProperties"]["Binary"].as_str().map(str::to_string)).collect();
    let routes = served_routes(&t);
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_root().join("events")).expect("events/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let text = std::fs::read_to_string(&path).expect("read");
        let function =
            binaries.iter().find(|b| name.starts_with(&format!("{b}-"))).unwrap_or_else(|| panic!("{name}: name it <binary>-<case>.json"));
        match function.as_str() {
            // HTTP functions take API Gateway v2 requests, for a route the template serves.
            "ingest" | "manage" | "webhook-receive" => {
                let event: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let route = event.route_key.clone().unwrap_or_default();
                assert!(serves(&routes, &route), "{name}: {route} is not a served route");
            }
            // Queue functions take SQS batches whose bodies are EventBridge events.
            "mail" => {
                let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                for r in &event.records {
                    let body: serde_json::Value =
                        serde_json::from_str(r.body.as_deref().unwrap_or("")).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(body["detail"].is_object() && body["source"].is_string(), "{name}: an EventBridge event");
                }
            }
            // Run requests from the bus, the chunks payroll-batch sent itself, or the schedule's tick.
            "payroll-batch" => {
                let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                for r in &event.records {
                    let body: serde_json::Value =
                        serde_json::from_str(r.body.as_deref().unwrap_or("")).unwrap_or_else(|e| panic!("{name}: {e}"));
                    let bus = body["detail"].is_object() && body["detail-type"] == "payroll.run.requested";
                    let chunk = body["payrollRunId"].is_string() && body["chunk"].is_u64();
                    let tick = body["payrollScheduleTick"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
                    assert!(bus || chunk || tick, "{name}: a run request from the bus, a chunk or the schedule's tick");
                }
            }
            // The Portal's organization.created from the bus, or the workflow's own continuation.
            "provision" => {
                let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                for r in &event.records {
                    let body: serde_json::Value =
                        serde_json::from_str(r.body.as_deref().unwrap_or("")).unwrap_or_else(|e| panic!("{name}: {e}"));
                    let bus = body["detail-type"] == "organization.created" && body["source"] == "portal";
                    let resume = body["tenantId"].is_string();
                    assert!(bus || resume, "{name}: organization.created from the bus, or a continuation");
                }
            }
            other => panic!("{name}: no event type known for function {other}; add it here"),
        }
        seen += 1;
    }
    assert!(seen >= 3);
}

/// The template's text with every `${...}` of a `!Sub` filled with a plain word, as
/// CloudFormation would fill it.
fn substituted(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e + 1);
        out.push_str("sub");
        rest = &rest[end..];
    }
    out + rest
}

#[test]
fn the_dashboard_is_json_over_the_metrics_relay_emits_and_shows_what_operators_need() {
    let t = template();
    let body = &t["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"];
    let text = match body {
        Value::Tagged(tagged) => tagged.value.as_str(),
        other => other.as_str(),
    }
    .expect("DashboardBody is a !Sub string");
    let dashboard: serde_json::Value = serde_json::from_str(&substituted(text)).expect("DashboardBody is JSON");
    let emitted = std::fs::read_to_string(repo_root().join("shared/core/src/metrics.rs")).expect("metrics.rs");
    let mut shown = BTreeSet::new();
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        for row in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().expect("a metric row");
            if let Some(expression) = row[0]["expression"].as_str() {
                let name = expression.split("MetricName=\"").nth(1).and_then(|r| r.split('"').next()).expect("a SEARCH by MetricName");
                shown.insert(name.to_string());
                assert!(emitted.contains(&format!("\"{name}\"")), "{name} is not a metric Relay emits");
            } else if row[0].as_str().is_some_and(|ns| ns.starts_with("Relay/")) {
                let name = row[1].as_str().expect("metric name");
                assert!(emitted.contains(&format!("\"{name}\"")), "{name} is not a metric Relay emits");
                shown.insert(name.to_string());
            } else {
                shown.insert(row[1].as_str().expect("metric name").to_string());
            }
        }
    }
    for wanted in [
        "EventsAccepted",
        "EventsRejected",
        "DeliveriesSucceeded",
        "DeliveryAttemptsFailed",
        "DeliveryDuration",
        "RetriesScheduled",
        "ApproximateNumberOfMessagesVisible",
        "WebhooksAccepted",
        "WebhooksRejected",
        "TenantsProvisioned",
        "ProvisioningFailed",
        "StepDuration",
    ] {
        assert!(shown.contains(wanted), "the dashboard shows {wanted}: {shown:?}");
    }
    assert!(text.contains("\"p99\""), "duration percentiles");
}
