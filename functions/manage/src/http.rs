//! The HTTP helpers every resource's routes share. Every route checks the request (key, body)
//! before it looks anything up, so a malformed request costs no read beyond the (cached) key
//! check and answers the same whether or not the resource exists.

use lambda_http::Request;
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use serde_json::Value;

/// The largest management request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A management request's JSON body.
pub(crate) fn json_body(req: &Request) -> Result<Value, Problem> {
    relay_edge::json_body(req, MAX_BODY_BYTES, "")
}

/// The answer of a use case: `ok` rendered, or its problem.
pub(crate) fn reply<T>(result: Result<T, Problem>, ok: impl FnOnce(T) -> Reply) -> Reply {
    result.map_or_else(Reply::from, ok)
}

/// A known path with a method it does not take: 405, with the methods it does take in `Allow`.
pub(crate) fn method_not_allowed(req: &Request, allow: &[&str]) -> Reply {
    Reply::method_not_allowed(req.method().as_str(), allow)
}

/// A listing's `limit` (1 to 100, 50 when left out).
pub(crate) fn page_limit(query: &std::collections::BTreeMap<String, String>) -> Result<u32, Problem> {
    match query.get("limit").map(|l| l.parse::<u32>()) {
        None => Ok(50),
        Some(Ok(l)) if (1..=100).contains(&l) => Ok(l),
        Some(_) => Err(Problem::new(ProblemKind::InvalidRequest, "limit must be 1 to 100")),
    }
}

/// An optional query parameter that must be one of `names` (parsed by `parse`).
pub(crate) fn one_of<T>(
    query: &std::collections::BTreeMap<String, String>,
    name: &str,
    names: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Problem> {
    match query.get(name) {
        None => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .ok_or_else(|| Problem::new(ProblemKind::InvalidRequest, format!("{name} must be one of {}", names.join(", ")))),
    }
}

pub(crate) fn no_route() -> Reply {
    Problem::new(ProblemKind::NotFound, "no such route").into()
}
