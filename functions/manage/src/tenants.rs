//! `/v1/tenants` and `/v1/vps` (operators only): tenants provisioned, retried and taken down,
//! and the VPS fleet they run on; `/v1/licence-key` (no key: it is public) publishes what a
//! tenant's application verifies its licence with. The rules live in
//! [`relay_core::provision::requests`]; the workflow itself runs in the provision function.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use relay_core::provision::requests::TenantApi;
use serde_json::Value;

use crate::http::{json_body, method_not_allowed, no_route, page_limit, reply};

pub(crate) async fn tenants(api: &TenantApi, req: &Request, rest: &[&str]) -> Reply {
    let now = Utc::now();
    match (req.method(), rest) {
        (&Method::POST, []) => match json_body(req) {
            Ok(body) => reply(api.create(body, now).await, |tenant| Reply::json(202, &tenant)),
            Err(p) => p.into(),
        },
        (&Method::GET, []) => {
            let query = relay_edge::query_map(req);
            let limit = match page_limit(&query) {
                Ok(l) => l,
                Err(p) => return p.into(),
            };
            let cursor = query.get("cursor").map(String::as_str).filter(|c| !c.is_empty());
            reply(api.list(cursor, limit).await, |page| Reply::json(200, &page))
        }
        (&Method::GET, [id]) => reply(api.get(id).await, |tenant| Reply::json(200, &tenant)),
        (&Method::DELETE, [id]) => reply(api.deprovision(id, now).await, |tenant| Reply::json(202, &tenant)),
        (&Method::POST, [id, "retry"]) => match retry_options(req) {
            Ok(reorder) => reply(api.retry(id, reorder, now).await, |tenant| Reply::json(202, &tenant)),
            Err(p) => p.into(),
        },
        (_, []) => method_not_allowed(req, &["GET", "POST"]),
        (_, [_]) => method_not_allowed(req, &["GET", "DELETE"]),
        (_, [_, "retry"]) => method_not_allowed(req, &["POST"]),
        _ => no_route(),
    }
}

/// A retry's body is optional: none, or `{"reorder": boolean}`.
fn retry_options(req: &Request) -> Result<bool, Problem> {
    if req.body().is_empty() {
        return Ok(false);
    }
    let bad = || Problem::new(ProblemKind::InvalidRequest, "the body must be empty or {\"reorder\": boolean}");
    match json_body(req)? {
        Value::Object(o) if o.keys().all(|k| k == "reorder") => match o.get("reorder") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad()),
        },
        _ => Err(bad()),
    }
}

pub(crate) async fn fleet(api: &TenantApi, req: &Request, rest: &[&str]) -> Reply {
    let now = Utc::now();
    match (req.method(), rest) {
        (&Method::GET, []) => reply(api.fleet().await, |fleet| Reply::json(200, &fleet)),
        (&Method::POST, []) => match json_body(req) {
            Ok(body) => reply(api.register_vps(body, now).await, |vps| Reply::json(201, &vps)),
            Err(p) => p.into(),
        },
        (&Method::PUT, [name, "health"]) => match json_body(req) {
            Ok(body) => reply(api.report_health(name, body, now).await, |usage| Reply::json(200, &usage)),
            Err(p) => p.into(),
        },
        (&Method::POST, [name, "drain"]) => reply(api.set_draining(name, true).await, |vps| Reply::json(200, &vps)),
        (&Method::DELETE, [name, "drain"]) => reply(api.set_draining(name, false).await, |vps| Reply::json(200, &vps)),
        (_, []) => method_not_allowed(req, &["GET", "POST"]),
        (_, [_, "health"]) => method_not_allowed(req, &["PUT"]),
        (_, [_, "drain"]) => method_not_allowed(req, &["POST", "DELETE"]),
        _ => no_route(),
    }
}

pub(crate) fn licence_key(api: &TenantApi, req: &Request) -> Reply {
    match *req.method() {
        Method::GET => Reply::json(200, &api.licence_key()),
        _ => method_not_allowed(req, &["GET"]),
    }
}
