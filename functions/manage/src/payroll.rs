//! `/v1/payroll-runs`: Paylinq asks for a payroll run; Paylinq or the organisation sees it.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::model::keys::{ApiKey, KeyKind};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use relay_core::payroll::requests::PayrollApi;

use crate::http::{json_body, method_not_allowed, no_route, reply};

pub(crate) async fn route(api: &PayrollApi, req: &Request, key: &ApiKey, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::POST, []) => {
            let Some(product) = key.product.as_deref().filter(|_| key.kind == KeyKind::Product) else {
                return Problem::new(ProblemKind::Forbidden, "payroll runs are asked for with Paylinq's product key").into();
            };
            match json_body(req) {
                Ok(body) => reply(api.request(product, body, Utc::now()).await, |run| Reply::json(202, &run)),
                Err(p) => p.into(),
            }
        }
        (&Method::GET, [id]) => {
            let query = relay_edge::query_map(req);
            // An organisation sees its own runs; Paylinq (and operators) name the organisation.
            let organization = match (key.kind, key.organization_id.as_deref(), query.get("organizationId")) {
                (KeyKind::Organization, Some(own), asked) if asked.is_none_or(|a| a == own) => own.to_string(),
                (KeyKind::Organization, _, _) => return Problem::new(ProblemKind::NotFound, format!("no payroll run {id}")).into(),
                (_, _, Some(org)) => org.clone(),
                // Run ids are per organisation: without one, there is no such run to find.
                (_, _, None) => {
                    return Problem::new(ProblemKind::NotFound, format!("no payroll run {id}: name its organisation with ?organizationId="))
                        .into()
                }
            };
            if key.kind == KeyKind::Product && key.product.as_deref() != Some("paylinq") {
                return Problem::new(ProblemKind::Forbidden, "payroll runs are Paylinq's: use its product key or the organisation's key")
                    .into();
            }
            reply(api.view(&organization, id).await, |run| Reply::json(200, &run))
        }
        (_, []) => method_not_allowed(req, &["POST"]),
        (_, [_]) => method_not_allowed(req, &["GET"]),
        _ => no_route(),
    }
}
