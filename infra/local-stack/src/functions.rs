//! What template.yaml says about each function: its binary, environment, limits, HTTP routes
//! and SQS event sources. Adding a function to the template is all it takes to run it locally.

use std::path::Path;
use std::time::Duration;

use crate::runtime::FunctionSpec;
use crate::template::{json_scalar, Template, TemplateError};

/// An HTTP API route served by a function.
#[derive(Debug, Clone)]
pub struct Route {
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// API Gateway path template: `/v1/subscriptions/{id}`, `/files/{proxy+}`.
    pub path: String,
    pub function: String,
}

/// An SQS event source mapping.
#[derive(Debug, Clone)]
pub struct QueueSource {
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
    pub max_concurrency: usize,
    pub function: String,
}

pub struct Functions {
    pub specs: Vec<FunctionSpec>,
    pub routes: Vec<Route>,
    pub queues: Vec<QueueSource>,
}

/// Reads every `AWS::Serverless::Function`. `extra_env` is added to (and overrides) each
/// function's environment: the emulator endpoint, credentials and local opt-ins.
pub fn read(t: &Template, bin_dir: &Path, extra_env: &[(String, String)], max_instances: usize) -> Result<Functions, TemplateError> {
    let mut out = Functions { specs: Vec::new(), routes: Vec::new(), queues: Vec::new() };
    for r in t.of_kind("AWS::Serverless::Function") {
        let props = t.resolve(&t.function_properties(r))?;
        let metadata = t.resolve(&r.metadata)?;
        let binary = metadata["BuildProperties"]["Binary"].as_str().map(str::to_string).ok_or_else(|| {
            TemplateError::Resolve(format!("{}: Metadata.BuildProperties.Binary names the cargo binary; it is missing", r.logical_id))
        })?;
        let mut env: Vec<(String, String)> =
            props["Environment"]["Variables"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), json_scalar(v))).collect();
        if props["LoggingConfig"]["LogFormat"] == "JSON" {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        }
        for (k, v) in extra_env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let name = t.physical[&r.logical_id].name.clone();
        let seconds = |key: &str, default: u64| props.get(key).map(json_scalar).and_then(|v| v.parse().ok()).unwrap_or(default);
        out.specs.push(FunctionSpec {
            name: name.clone(),
            binary: bin_dir.join(&binary),
            env,
            timeout: Duration::from_secs(seconds("Timeout", 3)),
            memory_mb: seconds("MemorySize", 128),
            max_instances,
        });
        for (_, event) in props["Events"].as_object().into_iter().flatten() {
            let p = &event["Properties"];
            match event["Type"].as_str() {
                Some("HttpApi") => out.routes.push(Route {
                    method: p["Method"].as_str().unwrap_or("ANY").to_ascii_uppercase(),
                    path: p["Path"].as_str().unwrap_or("/").to_string(),
                    function: name.clone(),
                }),
                Some("SQS") => {
                    let arn = json_scalar(&p["Queue"]);
                    let url = t.physical.values().find(|ph| ph.arn == arn).and_then(|ph| ph.url.clone()).ok_or_else(|| {
                        TemplateError::Resolve(format!("{}: SQS event source {arn} is not a queue of this template", r.logical_id))
                    })?;
                    let responses = p["FunctionResponseTypes"].as_array().cloned().unwrap_or_default();
                    out.queues.push(QueueSource {
                        queue_url: url,
                        queue_arn: arn,
                        batch_size: p.get("BatchSize").map(json_scalar).and_then(|v| v.parse().ok()).unwrap_or(10),
                        batching_window: Duration::from_secs(
                            p.get("MaximumBatchingWindowInSeconds").map(json_scalar).and_then(|v| v.parse().ok()).unwrap_or(0),
                        ),
                        report_batch_item_failures: responses.iter().any(|v| v == "ReportBatchItemFailures"),
                        max_concurrency: p["ScalingConfig"]["MaximumConcurrency"].as_u64().map(|v| v as usize).unwrap_or(max_instances),
                        function: name.clone(),
                    });
                }
                Some(other) => {
                    tracing::warn!(function = %name, event_type = other, "event source type not emulated locally")
                }
                None => {}
            }
        }
    }
    Ok(out)
}

/// Matches a request path against a route template; returns the path parameters.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut params = Vec::new();
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            if i >= p.len() || p[i].is_empty() {
                return None;
            }
            params.push((name.to_string(), p[i..].join("/")));
            return Some(params);
        }
        let actual = p.get(i)?;
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if actual.is_empty() {
                return None;
            }
            params.push((name.to_string(), (*actual).to_string()));
        } else if seg != actual {
            return None;
        }
    }
    (t.len() == p.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::match_path;

    #[test]
    fn path_templates() {
        assert_eq!(match_path("/v1/events", "/v1/events"), Some(vec![]));
        assert_eq!(match_path("/v1/events", "/v1/events/"), Some(vec![]));
        assert_eq!(match_path("/v1/events", "/v1/events/x"), None);
        assert_eq!(match_path("/v1/events/{id}", "/v1/events/abc"), Some(vec![("id".into(), "abc".into())]));
        assert_eq!(match_path("/v1/events/{id}", "/v1/events/"), None);
        assert_eq!(
            match_path("/webhooks/{provider}/{sourceId}", "/webhooks/stripe/s1"),
            Some(vec![("provider".into(), "stripe".into()), ("sourceId".into(), "s1".into())])
        );
        assert_eq!(match_path("/files/{proxy+}", "/files/a/b"), Some(vec![("proxy".into(), "a/b".into())]));
    }
}
