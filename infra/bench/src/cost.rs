//! What an event costs on AWS's price list, from the requests that actually crossed the proxy:
//! DynamoDB capacity units computed from item sizes by DynamoDB's published sizing rules (the
//! emulator does not report consumed capacity truthfully), requests per service, and Lambda
//! GB-seconds from the functions' measured CPU plus the AWS latencies they would wait on.
//!
//! Sizing rules (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>):
//! an item's size is the sum of its attribute names' and values' sizes; a string or binary is
//! its length in bytes, a number about one byte per two significant digits plus one, a boolean
//! or null one byte, a list or map three bytes plus one per element plus its elements. A write
//! takes one unit per started KB of the item (two in a transaction), a read half a unit per
//! started 4 KB eventually consistent, one strongly consistent. Known gaps: a put that replaces
//! a larger item is billed on the larger one (this counts the new one); a query is billed on
//! every item it reads before its filter (this counts the items returned).

use std::collections::BTreeMap;

use relay_e2e::Exchange;
use serde_json::Value;

use crate::prices::*;

/// The size DynamoDB bills an item (a wire-format `{"name": {"S": ...}}` map) at.
pub fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
}

fn value_size(v: &Value) -> usize {
    let Some((kind, x)) = v.as_object().and_then(|m| m.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => x.as_str().map_or(0, str::len),
        "B" => x.as_str().map_or(0, |b| b.len() * 3 / 4),
        "N" => number_size(x.as_str().unwrap_or("0")),
        "BOOL" | "NULL" => 1,
        "SS" => x.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(str::len).sum()),
        "NS" => x.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(number_size).sum()),
        "BS" => x.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(|b| b.len() * 3 / 4).sum()),
        "L" => 3 + x.as_array().map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum()),
        "M" => 3 + x.as_object().map_or(0, |m| m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum()),
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

fn read_units(size: usize, consistent: bool) -> f64 {
    size.div_ceil(4096).max(1) as f64 * if consistent { 1.0 } else { 0.5 }
}

/// What a run's requests add up to.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub wru: f64,
    pub rru: f64,
    /// Write and read units per table and operation (`events PutItem`).
    pub units_by: BTreeMap<String, (f64, f64)>,
    /// Requests per service and operation (`dynamodb:PutItem`).
    pub requests: BTreeMap<String, f64>,
    /// EventBridge events billed (64 KB chunks of the entries put).
    pub eventbridge_events: f64,
    pub sqs_requests: f64,
    pub s3_put: f64,
    pub s3_get: f64,
    /// Milliseconds each function (by the access key id it signs with: its physical name in
    /// the local stack) would wait on these calls in AWS (see `prices::LATENCY_MS_*`).
    pub aws_wait_ms: BTreeMap<String, f64>,
}

impl Tally {
    /// The waits of the function built from `binary`, whose calls are signed with its name
    /// (template.yaml names each `relay-<stage>-<binary>`).
    pub fn waits_of(&self, binary: &str) -> f64 {
        let suffix = format!("-{binary}");
        self.aws_wait_ms.iter().filter(|(caller, _)| caller.ends_with(&suffix)).map(|(_, ms)| ms).sum()
    }
}

/// Adds up the DynamoDB units, the requests and the waits of what crossed the proxy.
pub fn tally(exchanges: &[Exchange]) -> Tally {
    let mut t = Tally::default();
    for x in exchanges {
        *t.requests.entry(format!("{}:{}", x.service, x.operation)).or_default() += 1.0;
        *t.aws_wait_ms.entry(x.caller.clone()).or_default() += match x.service {
            "dynamodb" => LATENCY_MS_DYNAMODB,
            "eventbridge" => LATENCY_MS_EVENTBRIDGE,
            "sqs" => LATENCY_MS_SQS,
            "s3" => LATENCY_MS_S3,
            _ => 0.0,
        };
        let r = &x.request;
        let (wru0, rru0) = (t.wru, t.rru);
        match x.service {
            "dynamodb" => {
                let stored = |i: usize| x.stored_items.get(i).map_or(0, |(_, item)| item_size(item));
                match x.operation.as_str() {
                    "PutItem" => t.wru += write_units(item_size(&r["Item"])),
                    "UpdateItem" | "DeleteItem" => t.wru += write_units(stored(0)),
                    "BatchWriteItem" => {
                        for reqs in r["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                            for w in reqs.as_array().into_iter().flatten() {
                                t.wru += write_units(w.pointer("/PutRequest/Item").map_or(0, item_size));
                            }
                        }
                    }
                    "TransactWriteItems" => {
                        let mut unsized_index = 0;
                        for action in r["TransactItems"].as_array().into_iter().flatten() {
                            let size = if let Some(put) = action.get("Put") {
                                item_size(&put["Item"])
                            } else if action.get("Update").is_some() || action.get("Delete").is_some() {
                                unsized_index += 1;
                                stored(unsized_index - 1)
                            } else {
                                0
                            };
                            t.wru += 2.0 * write_units(size);
                        }
                    }
                    "GetItem" => t.rru += read_units(item_size(&x.response["Item"]), r["ConsistentRead"] == true),
                    "Query" => {
                        let size: usize = x.response["Items"].as_array().into_iter().flatten().map(item_size).sum();
                        t.rru += read_units(size, r["ConsistentRead"] == true);
                    }
                    "BatchGetItem" => {
                        for (table, req) in r["RequestItems"].as_object().into_iter().flatten() {
                            let consistent = req["ConsistentRead"] == true;
                            let found = x.response["Responses"][table].as_array().cloned().unwrap_or_default();
                            let asked = req["Keys"].as_array().map_or(0, Vec::len);
                            t.rru += found.iter().map(|i| read_units(item_size(i), consistent)).sum::<f64>();
                            // A key not found still takes the smallest read.
                            t.rru += asked.saturating_sub(found.len()) as f64 * read_units(0, consistent);
                        }
                    }
                    _ => {}
                }
                let table = r["TableName"].as_str().map(short_table).unwrap_or_else(|| tables_of(r));
                let e = t.units_by.entry(format!("{table} {}", x.operation)).or_default();
                e.0 += t.wru - wru0;
                e.1 += t.rru - rru0;
            }
            "eventbridge" => {
                for e in r["Entries"].as_array().into_iter().flatten() {
                    let size = e.to_string().len();
                    t.eventbridge_events += size.div_ceil(64 * 1024).max(1) as f64;
                }
            }
            "sqs" => {
                t.sqs_requests += x.request_bytes.div_ceil(64 * 1024).max(1) as f64;
            }
            "s3" => {
                if x.operation.starts_with("S3:GET") || x.operation.starts_with("S3:HEAD") {
                    t.s3_get += 1.0;
                } else {
                    t.s3_put += 1.0;
                }
            }
            _ => {}
        }
    }
    t
}

/// `relay-local-events` -> `events`.
fn short_table(name: &str) -> String {
    name.rsplit('-').next().unwrap_or(name).to_string()
}

/// The tables a multi-table request (a transaction, a batch) touches.
fn tables_of(r: &Value) -> String {
    let mut names: Vec<String> = r["TransactItems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_object().and_then(|o| o.values().next()).and_then(|x| x["TableName"].as_str()).map(short_table))
        .chain(r["RequestItems"].as_object().into_iter().flat_map(|m| m.keys().map(|k| short_table(k))))
        .collect();
    names.dedup();
    names.join("+")
}

/// One scenario's bill per event, by service, in dollars per million events.
#[derive(Debug, Clone)]
pub struct Bill {
    pub lines: Vec<(&'static str, f64, String)>,
}

impl Bill {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.1).sum()
    }
}

/// What happened per event in a scenario, besides what crossed the proxy.
pub struct Usage {
    pub events: f64,
    /// API Gateway requests (an HTTP call to Relay).
    pub api_requests: f64,
    /// Lambda invocations over the run.
    pub invocations: f64,
    /// Each function's own CPU in milliseconds over the run, and its memory size in the
    /// template, by logical id.
    pub functions: BTreeMap<String, Function>,
    /// Webhooks sent to endpoints (their answer is waited on).
    pub deliveries: f64,
    /// SQS requests no function makes but the run causes: EventBridge's SendMessage to a rule's
    /// queue, and Lambda's polling (a receive and a delete per batch of ten).
    pub sqs_requests: f64,
    /// Bytes the functions wrote to their logs (CloudWatch Logs ingests them, and Lambda's own
    /// lines per invocation, which the bill adds).
    pub log_bytes: f64,
}

/// One function as the bill sees it.
#[derive(Debug, Clone, Default)]
pub struct Function {
    /// Its binary (the process name its CPU was read under).
    pub binary: String,
    pub memory_mb: f64,
    pub cpu_ms: f64,
}

/// Dollars per million events, by service, with how each line was reached.
pub fn bill(t: &Tally, u: &Usage) -> Bill {
    let per = |x: f64| x / u.events;
    let (mut lambda_dollars, mut billed_ms) = (per(u.invocations) * LAMBDA_PER_MILLION_REQUESTS, 0.0);
    let platform_log_bytes = u.invocations * PLATFORM_LOG_BYTES_PER_INVOCATION;
    let mut sizes = Vec::new();
    for (id, f) in u.functions.iter().filter(|(_, f)| f.cpu_ms > 0.0 || t.waits_of(&f.binary) > 0.0) {
        let (dollars, ms) = lambda_at(t, u, id, f.memory_mb);
        lambda_dollars += dollars;
        billed_ms += ms;
        sizes.push(format!("{} {ms:.0} ms at {:.0} MB", f.binary, f.memory_mb));
    }
    let lines = vec![
        (
            "DynamoDB",
            per(t.wru) * DYNAMODB_PER_MILLION_WRU + per(t.rru) * DYNAMODB_PER_MILLION_RRU,
            format!("{:.2} WRU + {:.2} RRU per event", per(t.wru), per(t.rru)),
        ),
        ("API Gateway", per(u.api_requests) * API_GATEWAY_HTTP_PER_MILLION, format!("{:.2} requests", per(u.api_requests))),
        ("EventBridge", per(t.eventbridge_events) * EVENTBRIDGE_PER_MILLION_EVENTS, format!("{:.2} events", per(t.eventbridge_events))),
        (
            "SQS",
            per(t.sqs_requests + u.sqs_requests) * SQS_PER_MILLION_REQUESTS,
            format!("{:.2} requests ({:.2} by the functions)", per(t.sqs_requests + u.sqs_requests), per(t.sqs_requests)),
        ),
        ("Lambda", lambda_dollars, format!("{:.2} invocations, {billed_ms:.1} ms ({})", per(u.invocations), sizes.join(", "))),
        (
            "S3",
            per(t.s3_put) * S3_PER_THOUSAND_PUT * 1000.0 + per(t.s3_get) * S3_PER_THOUSAND_GET * 1000.0,
            format!("{:.2} PUT + {:.2} GET", per(t.s3_put), per(t.s3_get)),
        ),
        (
            "CloudWatch Logs",
            per(u.log_bytes + platform_log_bytes) / 1e9 * CLOUDWATCH_LOGS_PER_GB * 1e6,
            format!("{:.0} bytes ({:.0} of them Lambda's own lines)", per(u.log_bytes + platform_log_bytes), per(platform_log_bytes)),
        ),
    ];
    Bill { lines }
}

/// Function `id`'s Lambda duration in dollars per million events, and its billed
/// milliseconds per event, at `memory_mb`. Lambda gives a function CPU in proportion to its
/// memory (one vCPU at [`LAMBDA_MB_PER_VCPU`]), so the CPU it spent here on a whole core
/// stretches by that ratio; its waits on AWS and on endpoints (deliver's) do not. Waits are
/// summed as if every call were made one after another: an upper bound where a function
/// overlaps them (a batch's event writes, 25 at a time).
pub fn lambda_at(t: &Tally, u: &Usage, id: &str, memory_mb: f64) -> (f64, f64) {
    let per = |x: f64| x / u.events;
    let f = u.functions.get(id).cloned().unwrap_or_default();
    let endpoint_ms = if f.binary == "deliver" { u.deliveries * LATENCY_MS_ENDPOINT } else { 0.0 };
    let cpu_ms = per(f.cpu_ms) * (LAMBDA_MB_PER_VCPU / memory_mb).max(1.0);
    let billed_ms = cpu_ms + per(t.waits_of(&f.binary) + endpoint_ms);
    (billed_ms / 1000.0 * memory_mb / 1024.0 * LAMBDA_ARM_PER_GB_SECOND * 1e6, billed_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The worked examples of DynamoDB's sizing page, and the unit rules.
    #[test]
    fn sizes_and_units_follow_the_published_rules() {
        assert_eq!(item_size(&json!({"id": {"S": "abc"}})), 5);
        assert_eq!(item_size(&json!({"n": {"N": "12345"}})), 1 + 4);
        assert_eq!(item_size(&json!({"b": {"BOOL": true}})), 2);
        assert_eq!(item_size(&json!({"l": {"L": [{"S": "ab"}, {"N": "1"}]}})), 1 + 3 + (1 + 2) + (1 + 2));
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(100, true), 1.0);
    }
}
