//! The HTTP edge shared by every API Gateway function: reading headers, the caller's key and
//! the invocation deadline from a `lambda_http` request, and turning the domain's [`Reply`]
//! into a response; and ([`sqs`]) an SQS batch handled a message at a time with partial batch
//! failures. Kept apart so `relay-core` never sees a Lambda type.

pub mod sqs;

use std::collections::BTreeMap;

use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use serde_json::Value;

/// One header as text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every header, lower-cased, repeated values joined with `,` (as API Gateway does).
pub fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_ascii_lowercase())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// The query string parameters (first value of each).
pub fn query_map(req: &Request) -> BTreeMap<String, String> {
    let q = req.query_string_parameters();
    q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The path without the stage, without a trailing slash.
pub fn path(req: &Request) -> String {
    req.raw_http_path().trim_end_matches('/').to_string()
}

/// The invocation deadline (epoch ms), when the runtime gives one.
pub fn deadline_ms(req: &Request) -> Option<i64> {
    req.lambda_context_ref().map(|c| c.deadline as i64).filter(|d| *d > 0)
}

/// The base URL callers reached this API on (`RELAY_PUBLIC_URL` wins when set).
pub fn public_base_url(req: &Request) -> String {
    if let Some(url) = std::env::var("RELAY_PUBLIC_URL").ok().filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_string();
    }
    let host = header(req.headers(), "host").unwrap_or("localhost");
    let local = host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
    format!("{}://{host}", if local { "http" } else { "https" })
}

/// The domain's reply as an API Gateway response.
pub fn to_response(reply: Reply) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", reply.content_type);
    if reply.replayed {
        builder = builder.header("idempotent-replayed", "true");
    }
    if let Some(secs) = reply.retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    if let Some(allow) = &reply.allow {
        builder = builder.header("allow", allow.as_str());
    }
    let body = if reply.status == 204 { Body::Empty } else { Body::Text(reply.body) };
    builder.body(body).unwrap_or_else(|_| Response::new(Body::Empty))
}

/// True for `application/json` and `application/*+json`, with any parameters.
pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The body of a JSON route, checked in the order every route answers: at most `limit` bytes
/// (413, with `hint` after the sizes), a JSON media type (415), valid JSON (400).
pub fn json_body(req: &Request, limit: usize, hint: &str) -> Result<Value, Problem> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > limit {
        let detail = format!("the body is {} bytes; the limit is {limit}", body.len());
        return Err(Problem::new(ProblemKind::PayloadTooLarge, if hint.is_empty() { detail } else { format!("{detail}. {hint}") }));
    }
    if !is_json(header(req.headers(), "content-type")) {
        return Err(Problem::new(ProblemKind::UnsupportedMediaType, "send JSON with 'Content-Type: application/json'"));
    }
    serde_json::from_slice(body).map_err(|e| Problem::new(ProblemKind::MalformedJson, format!("the body is not valid JSON: {e}")))
}

/// The request's `Idempotency-Key` (IETF draft; `x-idempotency-key` is a synonym). When both
/// are sent, Idempotency-Key is the key and the other must still be well-formed, so a malformed
/// header is never ignored. The draft sends the key as a structured-field string (`"abc"`);
/// plain tokens work too.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    match (header(headers, "idempotency-key"), header(headers, "x-idempotency-key")) {
        (Some(a), Some(b)) => {
            if let Err(msg) = relay_core::model::idempotency::scoped_key("", unquote(b)) {
                return Err(Problem::new(ProblemKind::InvalidRequest, format!("x-idempotency-key: {msg}")));
            }
            Ok(Some(unquote(a)))
        }
        (a, b) => Ok(a.or(b).map(unquote)),
    }
}

fn unquote(key: &str) -> &str {
    let k = key.trim();
    k.strip_prefix('"').and_then(|k| k.strip_suffix('"')).filter(|inner| !inner.is_empty()).unwrap_or(k)
}
