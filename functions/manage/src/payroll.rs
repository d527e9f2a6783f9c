//! `/v1/payroll-runs` and `/v1/payroll-schedules`: Paylinq asks for payroll runs and sets
//! organisations' monthly schedules; Paylinq, operators and the organisation itself see them.
//!
//! Who sees what: an organisation key sees only its own organisation's runs and schedule (any
//! other answers 404, as if it did not exist); Paylinq's product key and operator keys see every
//! organisation's; another product's key sees nothing of payroll.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::model::keys::{ApiKey, KeyKind};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use relay_core::payroll::requests::PayrollApi;

use crate::http::{json_body, method_not_allowed, no_route, page_limit, reply};

/// Whose payroll a key may see: one organisation, or (Paylinq, operators) every one.
enum Scope {
    Own(String),
    All,
}

fn scope(key: &ApiKey) -> Result<Scope, Problem> {
    match (key.kind, key.organization_id.as_deref(), key.product.as_deref()) {
        (KeyKind::Organization, Some(own), _) => Ok(Scope::Own(own.to_string())),
        (KeyKind::Admin, _, _) | (KeyKind::Product, _, Some("paylinq")) => Ok(Scope::All),
        _ => Err(Problem::new(
            ProblemKind::Forbidden,
            "payroll is Paylinq's: use its product key, an operator key or the organisation's key",
        )),
    }
}

impl Scope {
    /// The organisation a request is about: `asked` (`?organizationId=` or the path), which an
    /// organisation key may only name as its own. `None`: every organisation.
    fn organisation(&self, asked: Option<&str>, what: &str) -> Result<Option<String>, Problem> {
        match (self, asked) {
            (Scope::Own(own), None) => Ok(Some(own.clone())),
            (Scope::Own(own), Some(a)) if a == own => Ok(Some(own.clone())),
            (Scope::Own(_), Some(_)) => Err(Problem::new(ProblemKind::NotFound, format!("no {what}"))),
            (Scope::All, asked) => Ok(asked.map(str::to_string)),
        }
    }

    /// Changing payroll (asking for a run, setting a schedule) is Paylinq's and the operators'.
    fn may_change(&self) -> Result<(), Problem> {
        match self {
            Scope::All => Ok(()),
            Scope::Own(_) => Err(Problem::new(ProblemKind::Forbidden, "payroll is changed with Paylinq's product key or an operator key")),
        }
    }
}

pub(crate) async fn runs(api: &PayrollApi, req: &Request, key: &ApiKey, rest: &[&str]) -> Reply {
    let scope = match scope(key) {
        Ok(s) => s,
        Err(p) => return p.into(),
    };
    let query = relay_edge::query_map(req);
    let asked = query.get("organizationId").map(String::as_str);
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
        (&Method::GET, []) => {
            let limit = match page_limit(&query) {
                Ok(l) => l,
                Err(p) => return p.into(),
            };
            let cursor = query.get("cursor").map(String::as_str).filter(|c| !c.is_empty());
            match scope.organisation(asked, "payroll runs of that organisation") {
                Ok(org) => reply(api.list(org.as_deref(), cursor, limit).await, |page| Reply::json(200, &page)),
                Err(p) => p.into(),
            }
        }
        (&Method::GET, [id]) => match scope.organisation(asked, &format!("payroll run {id}")) {
            Ok(Some(org)) => reply(api.view(&org, id).await, |run| Reply::json(200, &run)),
            // Run ids are per organisation: without one, there is no such run to find.
            Ok(None) => {
                Problem::new(ProblemKind::NotFound, format!("no payroll run {id}: name its organisation with ?organizationId=")).into()
            }
            Err(p) => p.into(),
        },
        (_, []) => method_not_allowed(req, &["GET", "POST"]),
        (_, [_]) => method_not_allowed(req, &["GET"]),
        _ => no_route(),
    }
}

pub(crate) async fn schedules(api: &PayrollApi, req: &Request, key: &ApiKey, rest: &[&str]) -> Reply {
    let scope = match scope(key) {
        Ok(s) => s,
        Err(p) => return p.into(),
    };
    let query = relay_edge::query_map(req);
    match (req.method(), rest) {
        (&Method::GET, []) => match scope.organisation(query.get("organizationId").map(String::as_str), "payroll schedule") {
            Ok(org) => reply(api.schedules(org.as_deref(), Utc::now()).await, |list| Reply::json(200, &list)),
            Err(p) => p.into(),
        },
        (&Method::PUT, [org]) => match scope.may_change().and_then(|()| json_body(req)) {
            Ok(body) => reply(api.put_schedule(org, body, Utc::now()).await, |schedule| Reply::json(200, &schedule)),
            Err(p) => p.into(),
        },
        (&Method::DELETE, [org]) => match scope.may_change() {
            Ok(()) => reply(api.delete_schedule(org).await, |()| Reply::no_content()),
            Err(p) => p.into(),
        },
        (_, []) => method_not_allowed(req, &["GET"]),
        (_, [_]) => method_not_allowed(req, &["PUT", "DELETE"]),
        _ => no_route(),
    }
}
