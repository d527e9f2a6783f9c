//! `/v1/sources`: an organisation's incoming webhook sources.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::reply::Reply;
use relay_core::model::request::{RequestOutcome, RequestQuery, SourceRequest};
use relay_core::webhooks::sources::public_view;
use serde_json::{json, Value};

use crate::http::{json_body, method_not_allowed, no_route, one_of, page_limit, reply};

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
        (&Method::GET, [id, "requests"]) => requests(manage, req, org, id).await,
        (&Method::GET, [id, "requests", rid]) => {
            reply(manage.source_request(org, id, rid, Utc::now()).await, |e| Reply::json(200, &request_view(&e)))
        }
        (&Method::GET, [id, "requests", rid, "body"]) => {
            reply(manage.source_request_body(org, id, rid, Utc::now()).await, |raw| Reply::json(200, &raw))
        }
        (_, []) => method_not_allowed(req, &["GET", "POST"]),
        (_, [_]) => method_not_allowed(req, &["GET", "DELETE"]),
        (_, [_, "requests"] | [_, "requests", _] | [_, "requests", _, "body"]) => method_not_allowed(req, &["GET"]),
        _ => no_route(),
    }
}

/// `GET /v1/sources/{id}/requests?outcome=&limit=&cursor=`: newest first, a page at a time.
async fn requests(manage: &Manage, req: &Request, org: &str, source_id: &str) -> Reply {
    let q = relay_edge::query_map(req);
    let (limit, outcome) = match (page_limit(&q), one_of(&q, "outcome", &RequestOutcome::NAMES, RequestOutcome::parse)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(p), _) | (_, Err(p)) => return p.into(),
    };
    let query = RequestQuery {
        source_id: source_id.to_string(),
        outcome,
        cursor: q.get("cursor").filter(|c| !c.is_empty()).cloned(),
        limit,
        now: Utc::now().timestamp(),
    };
    reply(manage.source_requests(org, &query).await, |(entries, next)| {
        let items: Vec<Value> = entries.iter().map(request_view).collect();
        Reply::json(200, &json!({"requests": items, "nextCursor": next}))
    })
}

/// One call as the API shows it: whether its raw body can be fetched, never where it is kept.
fn request_view(e: &SourceRequest) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("hasBody".into(), json!(e.archive_key.is_some()));
    }
    v
}
