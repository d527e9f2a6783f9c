//! The HTTP API on localhost: turns each request into an API Gateway v2 (payload format 2.0)
//! event, invokes the routed function, and turns its result back into HTTP, as API Gateway does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value as Json};

use crate::functions::{match_path, Route};
use crate::runtime::{FunctionPool, InvokeError};

/// API Gateway's own limit on a request body.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub struct Gateway {
    pub routes: Vec<Route>,
    pub pools: HashMap<String, Arc<FunctionPool>>,
}

pub fn router(gateway: Arc<Gateway>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(gateway)
}

async fn handle(State(gw): State<Arc<Gateway>>, ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let Some((route, params)) = find_route(&gw.routes, &method, &path) else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(pool) = gw.pools.get(&route.function) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };

    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(v.split(';').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let (body_text, is_base64) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&body), true),
    };
    let now = chrono::Utc::now();
    let route_key = format!("{} {}", route.method, route.path);
    let event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "cookies": if cookies.is_empty() { Json::Null } else { json!(cookies) },
        "headers": headers,
        "queryStringParameters": if query.is_empty() { Json::Null } else { json!(query) },
        "pathParameters": if params.is_empty() { Json::Null } else { json!(params.into_iter().collect::<BTreeMap<_, _>>()) },
        "requestContext": {
            "accountId": crate::template::ACCOUNT_ID,
            "apiId": "local",
            "domainName": headers.get("host").cloned().unwrap_or_else(|| "localhost".into()),
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": if body.is_empty() { Json::Null } else { json!(body_text) },
        "isBase64Encoded": is_base64,
    });

    match pool.invoke(Bytes::from(event.to_string())).await {
        Ok(result) => to_http(&result),
        Err(InvokeError::Timeout(_)) => plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Err(e) => {
            tracing::error!(function = %route.function, error = %e, "invocation failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The most specific route wins: exact paths, then parameters, then greedy; a method over ANY.
fn find_route<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<(&'a Route, Vec<(String, String)>)> {
    let mut candidates: Vec<(&Route, Vec<(String, String)>)> = routes
        .iter()
        .filter(|r| r.method == method || r.method == "ANY")
        .filter_map(|r| match_path(&r.path, path).map(|p| (r, p)))
        .collect();
    candidates.sort_by_key(|(r, p)| (r.path.contains("+}"), p.len(), r.method == "ANY"));
    candidates.into_iter().next()
}

/// API Gateway's reading of a payload-2.0 function result.
fn to_http(result: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Json>(result) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    if v.get("statusCode").is_none() {
        // A bare value: API Gateway answers 200 with it as JSON.
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap_or_default();
    }
    let status = v["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::builder().status(status);
    for (k, val) in v["headers"].as_object().into_iter().flatten() {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(crate::template::json_scalar(val))) {
            resp = resp.header(name, value);
        }
    }
    for (k, vals) in v["multiValueHeaders"].as_object().into_iter().flatten() {
        for val in vals.as_array().into_iter().flatten() {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(crate::template::json_scalar(val))) {
                resp = resp.header(name, value);
            }
        }
    }
    for c in v["cookies"].as_array().into_iter().flatten() {
        if let Ok(value) = HeaderValue::try_from(crate::template::json_scalar(c)) {
            resp = resp.header("set-cookie", value);
        }
    }
    let body = match (v["body"].as_str(), v["isBase64Encoded"].as_bool()) {
        (Some(b), Some(true)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    resp.body(Body::from(body)).unwrap_or_default()
}

fn plain(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(json!({"message": message}).to_string()))
        .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("a%20b+c%2F"), "a b c/");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn the_most_specific_route_wins() {
        let r = |m: &str, p: &str| Route { method: m.into(), path: p.into(), function: p.into() };
        let routes = vec![r("ANY", "/{proxy+}"), r("GET", "/v1/events/{id}"), r("GET", "/v1/events/batch"), r("POST", "/v1/events")];
        assert_eq!(find_route(&routes, "GET", "/v1/events/batch").map(|x| x.0.path.as_str()), Some("/v1/events/batch"));
        assert_eq!(find_route(&routes, "GET", "/v1/events/x").map(|x| x.0.path.as_str()), Some("/v1/events/{id}"));
        assert_eq!(find_route(&routes, "DELETE", "/v1/events").map(|x| x.0.path.as_str()), Some("/{proxy+}"));
    }
}
