//! Passing one HTTP request on to the emulator and its answer back: what the local stack's IAM
//! gate does once it has allowed a call, and what the tests' fault proxy does once it has
//! decided not to inject a fault. One copy, so the two cannot drift (which headers are dropped,
//! what an unreachable upstream answers).

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): a proxy never
/// passes them on. moto's server answers `Connection: close`; passed on, it made every
/// function open a new connection for every AWS call, which AWS never asks for (issue 16: a
/// fifth of a function's CPU per event went to connecting).
const HOP_BY_HOP: [&str; 7] = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// Sends the request (`parts` and its whole `body`) to `upstream` (scheme, host and port) and
/// answers its response, or 502 if the upstream could not be reached.
pub async fn forward(client: &reqwest::Client, upstream: &str, parts: &Parts, body: Bytes) -> Response {
    let url = format!("{upstream}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut out = client.request(parts.method.clone(), url).body(body);
    let named = connection_scoped(&parts.headers);
    for (k, v) in &parts.headers {
        // The client sets its own Host and Content-Length for the new connection.
        if k != "host" && k != "content-length" && !HOP_BY_HOP.contains(&k.as_str()) && !named.contains(&k.as_str().to_string()) {
            out = out.header(k, v);
        }
    }
    match out.send().await {
        Ok(resp) => {
            let mut builder = Response::builder().status(resp.status());
            let named = connection_scoped(resp.headers());
            for (k, v) in resp.headers() {
                // The body is passed on whole, so its framing is the new response's.
                if k != "content-length" && !HOP_BY_HOP.contains(&k.as_str()) && !named.contains(&k.as_str().to_string()) {
                    builder = builder.header(k, v);
                }
            }
            builder.body(Body::from(resp.bytes().await.unwrap_or_default())).unwrap_or_default()
        }
        Err(_) => Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::empty()).unwrap_or_default(),
    }
}

/// The headers a `Connection` header names, which are connection-scoped too (RFC 9110 §7.6.1).
fn connection_scoped(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}
