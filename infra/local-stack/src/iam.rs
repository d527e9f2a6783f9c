//! The IAM gate: every AWS request a function makes passes through here on its way to the
//! emulator, is named as IAM names it (action, resource ARN, DynamoDB leading keys, SES sender)
//! and is checked against that function's `Policies` in template.yaml. A call the policies do not
//! grant is refused the way AWS refuses it (AccessDenied), so a missing grant fails locally
//! exactly where it would fail in a deployment; moto itself enforces no IAM.
//!
//! Each function signs with its own access key id (its function name), which is how the gate
//! tells the callers apart. It also applies the service limits moto does not enforce (a
//! PutEvents entry over 256 KB). Every distinct call is written to `iam-calls.jsonl` in the
//! state directory, and every refusal to stdout as a `RELAY_LOCAL_IAM_DENIED {json}` line.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value as Json};

use crate::template::{Template, TemplateError, ACCOUNT_ID};

/// EventBridge's limit on one PutEvents request, all its entries together.
pub const MAX_EVENT_ENTRY_BYTES: usize = 256 * 1024;

/// One call as IAM sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub action: String,
    pub resource: String,
    /// DynamoDB: the partition key values the request touches (`dynamodb:LeadingKeys`).
    pub leading_keys: Vec<String>,
    /// SES: the sender (`ses:FromAddress`).
    pub from_address: Option<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Json,
}

/// Every function's statements, by the access key id it signs with (its function name).
#[derive(Debug, Clone, Default)]
pub struct Policies {
    by_function: HashMap<String, Vec<Statement>>,
    /// DynamoDB table name -> its partition key attribute.
    hash_keys: HashMap<String, String>,
    region: String,
}

impl Policies {
    pub fn from_template(t: &Template) -> Result<Self, TemplateError> {
        let mut out = Policies { region: t.region.clone(), ..Policies::default() };
        for r in t.of_kind("AWS::DynamoDB::Table") {
            let props = t.resolve(&r.properties)?;
            let hash = props["KeySchema"].as_array().into_iter().flatten().find(|k| k["KeyType"] == "HASH");
            if let Some(attr) = hash.and_then(|k| k["AttributeName"].as_str()) {
                out.hash_keys.insert(t.physical[&r.logical_id].name.clone(), attr.to_string());
            }
        }
        for r in t.of_kind("AWS::Serverless::Function") {
            let props = t.resolve(&t.function_properties(r))?;
            let mut statements = Vec::new();
            for policy in props["Policies"].as_array().into_iter().flatten() {
                for s in policy["Statement"].as_array().into_iter().flatten() {
                    let list = |v: &Json| match v {
                        Json::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                        Json::String(s) => vec![s.clone()],
                        _ => Vec::new(),
                    };
                    statements.push(Statement {
                        allow: s["Effect"] != "Deny",
                        actions: list(&s["Action"]),
                        resources: list(&s["Resource"]),
                        condition: s["Condition"].clone(),
                    });
                }
            }
            out.by_function.insert(t.physical[&r.logical_id].name.clone(), statements);
        }
        Ok(out)
    }

    /// Is `call` granted to `function`? An explicit Deny wins; no Allow means denied.
    pub fn allows(&self, function: &str, call: &Call) -> bool {
        let Some(statements) = self.by_function.get(function) else { return false };
        let applies = |s: &Statement| {
            s.actions.iter().any(|a| wildcard(a, &call.action))
                && s.resources.iter().any(|r| wildcard(r, &call.resource))
                && conditions_hold(&s.condition, call)
        };
        !statements.iter().any(|s| !s.allow && applies(s)) && statements.iter().any(|s| s.allow && applies(s))
    }

    /// Names the calls one request makes (a transaction or a batch is several).
    pub fn calls(&self, method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> Vec<Call> {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let (region, account) = (&self.region, ACCOUNT_ID);
        let call = |action: String, resource: String| Call { action, resource, leading_keys: Vec::new(), from_address: None };
        if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
            let table_arn = |t: &str| format!("arn:aws:dynamodb:{region}:{account}:table/{t}");
            let keyed = |action: &str, table: &str, item: &Json, index: Option<&str>| {
                let mut c = call(
                    format!("dynamodb:{action}"),
                    match index {
                        Some(i) => format!("{}/index/{i}", table_arn(table)),
                        None => table_arn(table),
                    },
                );
                c.leading_keys = self.hash_keys.get(table).and_then(|k| attr_text(&item[k])).into_iter().collect();
                c
            };
            return match op {
                "TransactWriteItems" => json["TransactItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        [
                            ("Put", "PutItem", "Item"),
                            ("Update", "UpdateItem", "Key"),
                            ("Delete", "DeleteItem", "Key"),
                            ("ConditionCheck", "ConditionCheckItem", "Key"),
                        ]
                        .into_iter()
                        .find_map(|(k, action, key)| i.get(k).map(|x| keyed(action, x["TableName"].as_str().unwrap_or(""), &x[key], None)))
                        // An item of a kind the gate does not know is named so no policy grants it.
                        .unwrap_or_else(|| call("dynamodb:UnknownTransactItem".into(), table_arn("unknown")))
                    })
                    .collect(),
                "BatchWriteItem" => json["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .flat_map(|(table, reqs)| {
                        reqs.as_array().into_iter().flatten().map(move |r| {
                            let item = r.pointer("/PutRequest/Item").or_else(|| r.pointer("/DeleteRequest/Key")).unwrap_or(&Json::Null);
                            (table.clone(), item.clone())
                        })
                    })
                    .map(|(table, item)| keyed("BatchWriteItem", &table, &item, None))
                    .collect(),
                "BatchGetItem" => json["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .flat_map(|(table, req)| req["Keys"].as_array().into_iter().flatten().map(move |k| (table.clone(), k.clone())))
                    .map(|(table, key)| keyed("BatchGetItem", &table, &key, None))
                    .collect(),
                "Query" => {
                    let table = json["TableName"].as_str().unwrap_or("");
                    let index = json["IndexName"].as_str();
                    let mut c = keyed("Query", table, &Json::Null, index);
                    if index.is_none() {
                        c.leading_keys = self.hash_keys.get(table).and_then(|k| query_key(&json, k)).into_iter().collect();
                    }
                    vec![c]
                }
                _ => {
                    let table = json["TableName"].as_str().unwrap_or("");
                    let item = if op == "PutItem" { &json["Item"] } else { &json["Key"] };
                    vec![keyed(op, table, item, None)]
                }
            };
        }
        if let Some(op) = target.strip_prefix("AmazonSQS.") {
            let name = json["QueueUrl"].as_str().and_then(|u| u.rsplit('/').next()).unwrap_or("");
            // IAM authorizes a batch call with its single action's permission (there is no
            // sqs:SendMessageBatch action to grant).
            let op = op.strip_suffix("Batch").unwrap_or(op);
            return vec![call(format!("sqs:{op}"), format!("arn:aws:sqs:{region}:{account}:{name}"))];
        }
        if let Some(op) = target.strip_prefix("AWSEvents.") {
            let buses: BTreeSet<String> = json["Entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["EventBusName"].as_str().unwrap_or("default").rsplit('/').next().unwrap_or("default").to_string())
                .collect();
            return buses
                .into_iter()
                .map(|b| call(format!("events:{op}"), format!("arn:aws:events:{region}:{account}:event-bus/{b}")))
                .collect();
        }
        if let Some(op) = target.strip_prefix("AmazonSSM.") {
            let name = json["Name"].as_str().unwrap_or("").trim_start_matches('/');
            return vec![call(format!("ssm:{op}"), format!("arn:aws:ssm:{region}:{account}:parameter/{name}"))];
        }
        if path.starts_with("/v2/email/outbound-emails") {
            // The identity is the bare address of `Name <address>`; a configuration set is a
            // second resource the send must be granted.
            let from = json["FromEmailAddress"].as_str().unwrap_or("");
            let address = match (from.find('<'), from.rfind('>')) {
                (Some(a), Some(b)) if a < b => from[a + 1..b].trim().to_string(),
                _ => from.trim().to_string(),
            };
            let mut c = call("ses:SendEmail".into(), format!("arn:aws:ses:{region}:{account}:identity/{address}"));
            c.from_address = Some(address);
            let mut calls = vec![c];
            if let Some(set) = json["ConfigurationSetName"].as_str() {
                calls.push(call("ses:SendEmail".into(), format!("arn:aws:ses:{region}:{account}:configuration-set/{set}")));
            }
            return calls;
        }
        // S3, path-style: /bucket or /bucket/key.
        let trimmed = path.trim_start_matches('/');
        let (bucket, key) = trimmed.split_once('/').map_or((trimmed, ""), |(b, k)| (b, k));
        let action = match (method, key.is_empty()) {
            ("GET" | "HEAD", true) => "s3:ListBucket",
            ("GET" | "HEAD", false) => "s3:GetObject",
            ("PUT" | "POST", false) => "s3:PutObject",
            ("DELETE", false) => "s3:DeleteObject",
            _ => "s3:Unknown",
        };
        let resource = if key.is_empty() { format!("arn:aws:s3:::{bucket}") } else { format!("arn:aws:s3:::{bucket}/{key}") };
        vec![call(action.into(), resource)]
    }
}

/// IAM's wildcard match: `*` any run, `?` one character; case-insensitive for actions.
fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        // IAM's escapes for a literal `*`, `?` and `$`.
        for (escape, literal) in [(&b"${*}"[..], b'*'), (&b"${?}"[..], b'?'), (&b"${$}"[..], b'$')] {
            if p.starts_with(escape) {
                return t.first() == Some(&literal) && go(&p[escape.len()..], &t[1..]);
            }
        }
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// The condition operators Relay's policies use. An operator or key the gate does not know
/// makes the statement not apply, so an unchecked condition can never widen a grant.
fn conditions_hold(condition: &Json, call: &Call) -> bool {
    let Some(ops) = condition.as_object() else { return true };
    ops.iter().all(|(op, keys)| {
        keys.as_object().into_iter().flatten().all(|(key, wanted)| {
            let wanted: Vec<&str> = match wanted {
                Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
                Json::String(s) => vec![s.as_str()],
                _ => Vec::new(),
            };
            let values: Vec<&str> = match key.as_str() {
                "dynamodb:LeadingKeys" => call.leading_keys.iter().map(String::as_str).collect(),
                "ses:FromAddress" => call.from_address.iter().map(String::as_str).collect(),
                _ => return false,
            };
            let like = |v: &str| wanted.iter().any(|w| wildcard(w, v));
            let equals = |v: &str| wanted.contains(&v);
            match op.as_str() {
                // Every value must match, and there must be at least one: a request whose keys the
                // gate could not read is not let through by an empty "for all".
                "ForAllValues:StringLike" => !values.is_empty() && values.iter().all(|v| like(v)),
                "ForAllValues:StringEquals" => !values.is_empty() && values.iter().all(|v| equals(v)),
                "StringLike" => !values.is_empty() && values.iter().all(|v| like(v)),
                "StringEquals" => !values.is_empty() && values.iter().all(|v| equals(v)),
                _ => false,
            }
        })
    })
}

/// A DynamoDB attribute value as text (`{"S": "x"}` or `{"N": "1"}`).
fn attr_text(v: &Json) -> Option<String> {
    v.get("S").or_else(|| v.get("N")).and_then(Json::as_str).map(str::to_string)
}

/// The partition key value a Query names: `<key> = :v` (or `#n = :v`) in its key condition.
fn query_key(q: &Json, hash_key: &str) -> Option<String> {
    let expr = q["KeyConditionExpression"].as_str()?;
    let names = &q["ExpressionAttributeNames"];
    expr.split(" AND ").find_map(|clause| {
        let (lhs, rhs) = clause.split_once('=')?;
        let lhs = lhs.trim();
        let attr = if lhs.starts_with('#') { names[lhs].as_str()? } else { lhs };
        (attr == hash_key).then(|| attr_text(&q["ExpressionAttributeValues"][rhs.trim()]))?
    })
}

/// A PutEvents request's size when it is over EventBridge's limit (which counts all entries of
/// the request together). Sized as AWS sizes an entry: Source, DetailType, Detail and Resources
/// bytes, plus 14 for the time.
pub fn oversized_request(body: &[u8]) -> Option<usize> {
    let json: Json = serde_json::from_slice(body).ok()?;
    let total: usize = json["Entries"]
        .as_array()?
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().map_or(0, str::len);
            let resources: usize = e["Resources"].as_array().into_iter().flatten().filter_map(Json::as_str).map(str::len).sum();
            14 + text("Source") + text("DetailType") + text("Detail") + resources
        })
        .sum();
    (total > MAX_EVENT_ENTRY_BYTES).then_some(total)
}

struct Gate {
    upstream: String,
    policies: Policies,
    log: PathBuf,
    seen: Mutex<BTreeSet<(String, String, String, bool)>>,
    client: reqwest::Client,
    /// moto backs a transaction up by copying its tables and restores the copy when the
    /// transaction fails; a write that lands in between is lost (a second idempotency lock
    /// could then be granted). DynamoDB's transactions are atomic, so the gate makes moto's so:
    /// a conditional transaction runs alone, other DynamoDB writes run beside each other.
    transactions: tokio::sync::RwLock<()>,
}

/// Starts the gate in front of `upstream`; returns its URL.
pub async fn start(upstream: String, policies: Policies, state_dir: &std::path::Path) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("IAM gate: {e}"))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let log = state_dir.join("iam-calls.jsonl");
    let _ = std::fs::remove_file(&log);
    let gate = Arc::new(Gate {
        upstream,
        policies,
        log,
        seen: Mutex::default(),
        client: reqwest::Client::new(),
        transactions: tokio::sync::RwLock::new(()),
    });
    let app = axum::Router::new().fallback(handle).with_state(gate);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// The access key id a request was signed with (`Credential=<id>/...`).
fn caller(headers: &HeaderMap, query: &str) -> String {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let from_query = query.split('&').find_map(|p| p.strip_prefix("X-Amz-Credential=")).unwrap_or("");
    let credential = auth.split("Credential=").nth(1).unwrap_or(from_query);
    credential.split(['/', '%']).next().unwrap_or("").to_string()
}

async fn handle(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, 64 * 1024 * 1024).await else {
        return Response::builder().status(StatusCode::BAD_REQUEST).body(Body::empty()).unwrap_or_default();
    };
    let function = caller(&parts.headers, parts.uri.query().unwrap_or(""));
    let calls = gate.policies.calls(parts.method.as_str(), parts.uri.path(), &parts.headers, &bytes);
    if calls.is_empty() {
        // A request the gate cannot name is refused: it could be a call no policy grants.
        let unknown = Call {
            action: parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("unknown").to_string(),
            resource: parts.uri.path().to_string(),
            leading_keys: Vec::new(),
            from_address: None,
        };
        gate.note(&function, &unknown, false);
        return denied(&parts.headers, &function, &unknown);
    }
    for call in &calls {
        let allowed = gate.policies.allows(&function, call);
        gate.note(&function, call, allowed);
        if !allowed {
            return denied(&parts.headers, &function, call);
        }
    }
    if calls.iter().any(|c| c.action == "events:PutEvents") {
        if let Some(size) = oversized_request(&bytes) {
            let message =
                format!("Total size of the entries in the request is over the limit: {size} bytes; the limit is {MAX_EVENT_ENTRY_BYTES}");
            return json_error(StatusCode::BAD_REQUEST, "ValidationException", &message);
        }
    }
    // Only a transaction that can fail its conditions ever restores moto's copy, so only that
    // one runs alone; unconditional ones (deliver's attempt records) run side by side.
    let transaction = parts.headers.get("x-amz-target").is_some_and(|t| t == "DynamoDB_20120810.TransactWriteItems");
    let conditional = transaction && bytes.windows(b"ConditionExpression".len()).any(|w| w == b"ConditionExpression");
    let writes = calls.iter().any(|c| {
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"]
            .contains(&c.action.as_str())
    });
    let _exclusive = if conditional { Some(gate.transactions.write().await) } else { None };
    let _shared = if writes && !conditional { Some(gate.transactions.read().await) } else { None };
    relay_local::forward::forward(&gate.client, &gate.upstream, &parts, bytes).await
}

impl Gate {
    /// Records each distinct (function, action, resource) once, and every refusal.
    fn note(&self, function: &str, call: &Call, allowed: bool) {
        let entry = json!({"function": function, "action": call.action, "resource": call.resource, "leadingKeys": call.leading_keys, "allowed": allowed});
        if !allowed {
            println!("RELAY_LOCAL_IAM_DENIED {entry}");
        }
        // Leading keys vary per request; one line per key prefix (up to '#' or ':', or `*` for a
        // bare id) is enough, so the file stays small under load.
        let shape =
            call.leading_keys.iter().map(|k| k.split_once(['#', ':']).map_or("*", |(prefix, _)| prefix)).collect::<Vec<_>>().join(",");
        let fresh = self
            .seen
            .lock()
            .map(|mut s| s.insert((function.to_string(), call.action.clone(), format!("{}|{shape}", call.resource), allowed)))
            .unwrap_or(false);
        if fresh {
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&self.log) {
                let _ = writeln!(f, "{entry}");
            }
        }
    }
}

fn denied(headers: &HeaderMap, function: &str, call: &Call) -> Response {
    let message = format!(
        "User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{function}/{function} is not authorized to perform: {} on resource: {} because no identity-based policy allows the {} action",
        call.action, call.resource, call.action
    );
    if headers.contains_key("x-amz-target") || call.action.starts_with("ses:") {
        let kind = if call.action.starts_with("sqs:") { "AccessDenied" } else { "AccessDeniedException" };
        return json_error(StatusCode::FORBIDDEN, kind, &message);
    }
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>{message}</Message></Error>");
    Response::builder().status(StatusCode::FORBIDDEN).header("content-type", "application/xml").body(Body::from(xml)).unwrap_or_default()
}

fn json_error(status: StatusCode, kind: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .header("x-amzn-query-error", format!("{kind};Sender"))
        .body(Body::from(json!({"__type": kind, "message": message, "Message": message}).to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies() -> (Policies, Template) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let params = HashMap::from([
            ("Stage".to_string(), "local".to_string()),
            // The two parameters without a default; relay-local fills them from its stand-in.
            ("TransipLogin".to_string(), "relay-local".to_string()),
            ("LicencePublicKey".to_string(), "x".repeat(43)),
        ]);
        let t = Template::load(&root, "us-east-1", &params).expect("template.yaml");
        (Policies::from_template(&t).expect("policies"), t)
    }

    fn ddb(op: &str, body: Json) -> (HeaderMap, Vec<u8>) {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", format!("DynamoDB_20120810.{op}").parse().unwrap());
        (h, body.to_string().into_bytes())
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("dynamodb:*", "dynamodb:GetItem"));
        assert!(wildcard("SUB#*", "SUB#sub_1"));
        assert!(!wildcard("SUB#*", "KEY#abc"));
        assert!(wildcard("arn:aws:s3:::b/payloads/*", "arn:aws:s3:::b/payloads/org/1.json"));
        assert!(!wildcard("arn:aws:s3:::b/payloads/*", "arn:aws:s3:::b/webhooks/x"));
        assert!(wildcard("ORG#${*}", "ORG#*"));
        assert!(!wildcard("ORG#${*}", "ORG#a"), "a literal star, not a wildcard");
    }

    /// The calls found missing or too wide by the attack on the local stack, checked against
    /// template.yaml: deliver reads the failing-since mark; deliver may not write API keys;
    /// webhook-receive may not delete ingest's locks.
    #[test]
    fn the_template_grants_what_deliver_reads_and_nothing_on_api_keys() {
        let (p, _) = policies();
        let deliveries = json!({"TableName": "relay-local-deliveries", "Key": {"eventId": {"S": "health:sub_1"}, "sk": {"S": "HEALTH"}}});
        let (h, b) = ddb("GetItem", deliveries);
        let calls = p.calls("POST", "/", &h, &b);
        assert!(p.allows("relay-local-deliver", &calls[0]), "{calls:?}");

        let key_item = json!({"TableName": "relay-local-config", "Item": {"pk": {"S": "KEY#abc"}, "sk": {"S": "KEY"}}});
        let (h, b) = ddb("PutItem", key_item);
        let calls = p.calls("POST", "/", &h, &b);
        assert!(!p.allows("relay-local-deliver", &calls[0]));
        assert!(!p.allows("relay-local-manage", &calls[0]));

        let lock = json!({"TableName": "relay-local-idempotency", "Key": {"id": {"S": "product:recruitiq#k"}}});
        let (h, b) = ddb("DeleteItem", lock);
        assert!(!p.allows("relay-local-webhook-receive", &p.calls("POST", "/", &h, &b)[0]));
        let claim = json!({"TableName": "relay-local-idempotency", "Key": {"id": {"S": "webhook:src_1#evt"}}});
        let (h, b) = ddb("DeleteItem", claim);
        assert!(p.allows("relay-local-webhook-receive", &p.calls("POST", "/", &h, &b)[0]));
    }

    #[test]
    fn a_query_names_its_partition_key_and_a_transaction_each_item() {
        let (p, _) = policies();
        let (h, b) = ddb(
            "Query",
            json!({"TableName": "relay-local-config", "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                   "ExpressionAttributeValues": {":pk": {"S": "ORG#org-1"}, ":prefix": {"S": "SUB#"}}}),
        );
        assert_eq!(p.calls("POST", "/", &h, &b)[0].leading_keys, vec!["ORG#org-1".to_string()]);
        let (h, b) = ddb(
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"TableName": "relay-local-config", "Item": {"pk": {"S": "SUB#s"}}}},
                                     {"Delete": {"TableName": "relay-local-config", "Key": {"pk": {"S": "ORG#o"}}}}]}),
        );
        let calls = p.calls("POST", "/", &h, &b);
        assert_eq!(calls.iter().map(|c| c.action.as_str()).collect::<Vec<_>>(), ["dynamodb:PutItem", "dynamodb:DeleteItem"]);
    }

    #[test]
    fn an_oversized_bus_request_is_found() {
        let big = "x".repeat(MAX_EVENT_ENTRY_BYTES);
        let body =
            json!({"Entries": [{"Source": "a", "DetailType": "b", "Detail": "{}"}, {"Source": "a", "DetailType": "b", "Detail": big}]});
        assert!(oversized_request(body.to_string().as_bytes()).is_some());
        // Two entries each under the limit, over it together.
        let half = "x".repeat(150 * 1024);
        let two =
            json!({"Entries": [{"Source": "a", "DetailType": "b", "Detail": half}, {"Source": "a", "DetailType": "b", "Detail": half}]});
        assert!(oversized_request(two.to_string().as_bytes()).is_some());
        let small = json!({"Entries": [{"Source": "a", "DetailType": "b", "Detail": "{}"}]});
        assert_eq!(oversized_request(small.to_string().as_bytes()), None);
    }
}
