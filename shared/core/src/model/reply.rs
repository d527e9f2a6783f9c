//! What an HTTP workflow answers: status, body and the headers that matter. Every HTTP function's
//! edge turns it into an API Gateway response (`relay-edge`), so the domain never sees one.

use serde::Serialize;

use crate::model::idempotency::StoredResponse;
use crate::model::problem::{Problem, CONTENT_TYPE as PROBLEM_CONTENT_TYPE};

/// What the handler sends back: status, JSON body and the headers that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// `Idempotent-Replayed: true`.
    pub replayed: bool,
    pub retry_after: Option<u64>,
    /// `Allow`: the methods a path takes, on a 405.
    pub allow: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        let body = serde_json::to_string(body).unwrap_or_default();
        Self { status, body, content_type: "application/json", replayed: false, retry_after: None, allow: None }
    }

    /// A stored response replayed for a repeated idempotent request.
    pub fn replay(stored: StoredResponse) -> Self {
        let content_type = if stored.status >= 400 { PROBLEM_CONTENT_TYPE } else { "application/json" };
        Self { status: stored.status, body: stored.body, content_type, replayed: true, retry_after: None, allow: None }
    }
}

impl Reply {
    /// `405 Method Not Allowed` for `method`, with the methods the path takes in `Allow` (RFC 9110
    /// §15.5.6).
    pub fn method_not_allowed(method: &str, allow: &[&str]) -> Self {
        let list = allow.join(", ");
        let detail = format!("{method} is not supported here; this path takes {list}");
        Self { allow: Some(list), ..Problem::new(crate::model::problem::ProblemKind::MethodNotAllowed, detail).into() }
    }

    /// `204 No Content`.
    pub fn no_content() -> Self {
        Self { status: 204, body: String::new(), content_type: "application/json", replayed: false, retry_after: None, allow: None }
    }
}

impl From<Problem> for Reply {
    fn from(p: Problem) -> Self {
        let body = p.to_json();
        Self { status: p.status, body, content_type: PROBLEM_CONTENT_TYPE, replayed: false, retry_after: p.retry_after, allow: None }
    }
}
