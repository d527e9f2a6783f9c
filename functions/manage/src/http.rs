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

pub(crate) fn no_route() -> Reply {
    Problem::new(ProblemKind::NotFound, "no such route").into()
}
