//! `/v1/stats/deliveries`: the organisation's deliveries per hour over the last day.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::stats::HOURS;
use relay_core::manage::Manage;
use relay_core::model::reply::Reply;
use serde_json::json;

use crate::http::{method_not_allowed, no_route, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, org: &str, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::GET, ["deliveries"]) => {
            reply(manage.delivery_stats(org, Utc::now()).await, |hours| Reply::json(200, &json!({"hours": hours, "hoursCovered": HOURS})))
        }
        (_, ["deliveries"]) => method_not_allowed(req, &["GET"]),
        _ => no_route(),
    }
}
