//! `/v1/dead-letters`: every organisation's exhausted deliveries, their replay and dismissal
//! (operators).

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::reply::Reply;
use serde_json::json;

use crate::http::{method_not_allowed, no_route, page_limit, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::GET, []) => {
            let q = relay_edge::query_map(req);
            let limit = match page_limit(&q) {
                Ok(l) => l,
                Err(p) => return p.into(),
            };
            let cursor = q.get("cursor").map(String::as_str).filter(|c| !c.is_empty());
            reply(manage.dead_letters(cursor, limit).await, |(letters, next)| {
                Reply::json(200, &json!({"deadLetters": letters, "nextCursor": next}))
            })
        }
        (&Method::POST, [event_id, subscription_id, "replay"]) => {
            reply(manage.replay_dead_letter(event_id, subscription_id, Utc::now()).await, |()| {
                Reply::json(202, &json!({"eventId": event_id, "replayedTo": [subscription_id]}))
            })
        }
        (&Method::DELETE, [event_id, subscription_id]) => {
            reply(manage.dismiss_dead_letter(event_id, subscription_id).await, |()| Reply::no_content())
        }
        (_, []) => method_not_allowed(req, &["GET"]),
        (_, [_, _]) => method_not_allowed(req, &["DELETE"]),
        (_, [_, _, "replay"]) => method_not_allowed(req, &["POST"]),
        _ => no_route(),
    }
}
