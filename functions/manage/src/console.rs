//! `/console`: the single-page console (`console/` at the top of the repository), built into
//! the binary so it works offline and on the local stack with nothing else deployed. The page
//! holds no secret and needs no key: it asks for one and then calls the public API like any
//! client. Its Content-Security-Policy allows only these files and same-origin API calls (no
//! inline script or style, no other origin, no framing), so an event payload shown on the page
//! can never run as code.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use relay_edge::to_response;

const INDEX: &str = include_str!("../../../console/index.html");
const SCRIPT: &str = include_str!("../../../console/app.js");
const STYLE: &str = include_str!("../../../console/app.css");

/// Same-origin script, style and API calls only; inline SVG charts are built through the DOM.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /console`, `/console/`, `/console/app.js`, `/console/app.css`.
pub(crate) fn serve(req: &Request, rest: &[&str]) -> Response<Body> {
    let file = match rest {
        [] | [""] | ["index.html"] => Some((INDEX, "text/html; charset=utf-8")),
        ["app.js"] => Some((SCRIPT, "text/javascript; charset=utf-8")),
        ["app.css"] => Some((STYLE, "text/css; charset=utf-8")),
        _ => None,
    };
    let Some((body, content_type)) = file else {
        return to_response(Problem::new(ProblemKind::NotFound, "the console has no such file").into());
    };
    if req.method() != Method::GET {
        return to_response(Reply::method_not_allowed(req.method().as_str(), &["GET"]));
    }
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        // Small files, always checked again: a deploy is seen at the next load.
        .header("cache-control", "no-cache")
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
