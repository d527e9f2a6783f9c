//! CloudWatch metrics as Embedded Metric Format log lines. Lambda hands every stdout line to
//! CloudWatch Logs, which extracts the metrics from lines in this format: no API call, no added
//! latency, nothing to fail on the request path (and moto cannot serve CloudWatch's current
//! protocol, so this is also the form that works locally). The format is specified at
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.

use relay_core::metrics::{Metric, Metrics};

/// Where finished lines go: stdout in a function, a buffer in tests.
type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// The [`Metrics`] port as EMF lines. Every line carries the `Service` dimension (the function's
/// short name: `ingest`, `deliver`, ...), so each function's metrics are separate.
pub struct EmfMetrics {
    namespace: String,
    service: String,
    sink: Sink,
}

impl EmfMetrics {
    /// Lines to stdout; the namespace from `RELAY_METRICS_NAMESPACE` (template.yaml sets
    /// `Relay/<stage>`), `Relay` when unset.
    pub fn from_env(service: &str) -> Self {
        let namespace = std::env::var("RELAY_METRICS_NAMESPACE").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "Relay".into());
        Self::with_sink(&namespace, service, Box::new(|line| println!("{line}")))
    }

    pub fn with_sink(namespace: &str, service: &str, sink: Sink) -> Self {
        Self { namespace: namespace.into(), service: service.into(), sink }
    }

    /// The EMF line for one report. Written directly rather than through `serde_json::Value`:
    /// ingest writes one per request, and building a map per request cost more CPU than
    /// the rest of the ingest workflow's JSON handling (see `./dev bench`).
    pub fn line(&self, dimensions: &[(&'static str, &str)], metrics: &[Metric], timestamp_ms: i64) -> String {
        use std::fmt::Write;
        // The same metric twice in one report adds up rather than being declared twice.
        let mut totals: Vec<(&'static str, f64, &'static str)> = Vec::with_capacity(metrics.len());
        for m in metrics {
            match totals.iter_mut().find(|(name, _, _)| *name == m.name) {
                Some(t) => t.1 += m.value,
                None => totals.push((m.name, m.value, m.unit.as_str())),
            }
        }
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":{},\"Dimensions\":[[\"Service\"",
            json_str(&self.namespace)
        );
        for (k, _) in dimensions {
            let _ = write!(out, ",{}", json_str(k));
        }
        out.push_str("]],\"Metrics\":[");
        for (i, (name, _, unit)) in totals.iter().enumerate() {
            let _ = write!(out, "{}{{\"Name\":{},\"Unit\":\"{unit}\"}}", if i > 0 { "," } else { "" }, json_str(name));
        }
        let _ = write!(out, "]}}]}},\"Service\":{}", json_str(&self.service));
        for (k, v) in dimensions {
            let _ = write!(out, ",{}:{}", json_str(k), json_str(v));
        }
        for (name, value, _) in &totals {
            let _ = write!(out, ",{}:{}", json_str(name), number(*value));
        }
        out.push('}');
        out
    }
}

/// A JSON string literal (quoted and escaped).
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON number; CloudWatch cannot take NaN or infinities, so those become 0.
fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        // Counts read as counts: `1`, not `1.0`.
        format!("{}", v as i64)
    } else if v.is_finite() {
        serde_json::Number::from_f64(v).map_or_else(|| "0".into(), |n| n.to_string())
    } else {
        "0".into()
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, dimensions: &[(&'static str, &str)], metrics: &[Metric]) {
        if metrics.is_empty() {
            return;
        }
        (self.sink)(&self.line(dimensions, metrics, chrono::Utc::now().timestamp_millis()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_core::metrics::{Unit, DELIVERIES_SUCCEEDED, DELIVERY_DURATION, WEBHOOKS_ACCEPTED};
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Checks a line against the rules of the EMF specification that CloudWatch enforces: one
    /// JSON object, `_aws.Timestamp` in epoch milliseconds, 1 to 30 dimensions per set, up to
    /// 100 metrics, every referenced dimension a string member of the root and every metric a
    /// number member, units from CloudWatch's list.
    fn assert_valid_emf(line: &str) -> Value {
        let doc: Value = serde_json::from_str(line).expect("one JSON object per line");
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "Timestamp in epoch ms: {line}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics array");
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().expect("Namespace");
            assert!(!ns.is_empty() && ns.len() <= 1024 && !ns.starts_with("AWS/"), "{ns}");
            for set in d["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(!set.is_empty() && set.len() <= 30);
                for name in set {
                    let name = name.as_str().expect("dimension name");
                    assert!(doc[name].is_string(), "dimension {name} must be a string member: {line}");
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("metric Name");
                assert!(doc[name].is_number(), "metric {name} must be a number member: {line}");
                let unit = m["Unit"].as_str().unwrap_or("None");
                assert!(["Count", "Milliseconds", "Seconds", "Bytes", "None"].contains(&unit), "{unit}");
            }
        }
        doc
    }

    fn captured() -> (EmfMetrics, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        (EmfMetrics::with_sink("Relay/test", "deliver", Box::new(move |l| sink.lock().unwrap().push(l.to_string()))), lines)
    }

    #[test]
    fn each_report_is_one_valid_emf_line_with_the_service_dimension() {
        let (emf, lines) = captured();
        emf.record(&[], &[Metric::count(DELIVERIES_SUCCEEDED, 1), Metric::millis(DELIVERY_DURATION, Duration::from_millis(42))]);
        emf.record(&[("Provider", "stripe")], &[Metric::count(WEBHOOKS_ACCEPTED, 2)]);
        emf.record(&[], &[]);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 2, "an empty report writes nothing");
        let first = assert_valid_emf(&lines[0]);
        assert_eq!(first["Service"], "deliver");
        assert_eq!(first["DeliveriesSucceeded"], 1.0);
        assert!(lines[0].contains("\"DeliveriesSucceeded\":1") && !lines[0].contains("\"DeliveriesSucceeded\":1.0"), "{}", lines[0]);
        assert_eq!(first["DeliveryDuration"], 42.0);
        assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Relay/test");
        assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service"]]));
        let second = assert_valid_emf(&lines[1]);
        assert_eq!(second["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service", "Provider"]]));
        assert_eq!(second["Provider"], "stripe");
        assert_eq!(second["WebhooksAccepted"], 2.0);
    }

    #[test]
    fn the_same_metric_twice_in_one_report_adds_up_and_is_declared_once() {
        let (emf, _) = captured();
        let line = emf.line(&[], &[Metric::count(DELIVERIES_SUCCEEDED, 1), Metric::count(DELIVERIES_SUCCEEDED, 2)], 1_700_000_000_000);
        let doc = assert_valid_emf(&line);
        assert_eq!(doc["DeliveriesSucceeded"], 3.0);
        // Values are escaped: a stray quote cannot break the line, a NaN cannot make it invalid.
        let odd = emf.line(
            &[("Provider", "a\"b\\c")],
            &[Metric { name: DELIVERY_DURATION, value: f64::NAN, unit: Unit::Milliseconds }],
            1_700_000_000_000,
        );
        let odd = assert_valid_emf(&odd);
        assert_eq!((odd["Provider"].as_str(), odd["DeliveryDuration"].as_f64()), (Some("a\"b\\c"), Some(0.0)));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(), 1);
    }
}
