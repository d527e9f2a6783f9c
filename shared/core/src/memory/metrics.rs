//! Metrics, recorded to be asserted on.

use std::sync::Mutex;

use crate::metrics::{Metric, Metrics};

/// One reported metric with the dimensions it was reported under.
type Recorded = (Vec<(String, String)>, Metric);

/// Keeps every reported metric, to assert what a workflow counted.
#[derive(Default)]
pub struct RecordedMetrics {
    recorded: Mutex<Vec<Recorded>>,
}

impl RecordedMetrics {
    /// The sum of a metric over every report, whatever its dimensions.
    pub fn total(&self, name: &str) -> f64 {
        self.sum(name, |_| true)
    }

    /// The sum of a metric over the reports carrying this dimension value.
    pub fn total_where(&self, name: &str, dimension: &str, value: &str) -> f64 {
        self.sum(name, |dims| dims.iter().any(|(k, v)| k == dimension && v == value))
    }

    fn sum(&self, name: &str, dimensions_match: impl Fn(&[(String, String)]) -> bool) -> f64 {
        self.recorded
            .lock()
            .map(|r| r.iter().filter(|(dims, m)| m.name == name && dimensions_match(dims)).map(|(_, m)| m.value).sum())
            .unwrap_or(0.0)
    }
}

impl Metrics for RecordedMetrics {
    fn record(&self, dimensions: &[(&'static str, &str)], metrics: &[Metric]) {
        let dims: Vec<(String, String)> = dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Ok(mut r) = self.recorded.lock() {
            r.extend(metrics.iter().map(|m| (dims.clone(), *m)));
        }
    }
}
