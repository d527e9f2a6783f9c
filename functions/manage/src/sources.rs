//! `/v1/sources`: an organisation's incoming webhook sources.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::reply::Reply;
use relay_core::webhooks::sources::public_view;
use serde_json::{json, Value};

use crate::http::{json_body, method_not_allowed, no_route, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, org: &str, rest: &[&str]) -> Reply {
    // The URL to give the provider is shown on the host the caller reached.
    let base = relay_edge::public_base_url(req);
    match (req.method(), rest) {
        (&Method::POST, []) => {
            let body = match json_body(req) {
                Ok(b) => b,
                Err(p) => return p.into(),
            };
            reply(manage.register_source(org, &body, Utc::now()).await, |s| Reply::json(201, &public_view(&s, &base)))
        }
        (&Method::GET, []) => reply(manage.sources(org).await, |list| {
            let views: Vec<Value> = list.iter().map(|s| public_view(s, &base)).collect();
            Reply::json(200, &json!({"sources": views}))
        }),
        (&Method::GET, [id]) => reply(manage.source(org, id).await, |s| Reply::json(200, &public_view(&s, &base))),
        (&Method::DELETE, [id]) => reply(manage.delete_source(org, id).await, |()| Reply::no_content()),
        (_, [] | [_]) => method_not_allowed(req),
        _ => no_route(),
    }
}
