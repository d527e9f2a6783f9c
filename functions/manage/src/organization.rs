//! `/v1/organization`: the contact address operational e-mails go to, used only once the code
//! mailed to it comes back (`POST /v1/organization/contact/verify`).

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::organization::Profile;
use relay_core::model::reply::Reply;
use serde_json::{json, Value};

use crate::http::{json_body, method_not_allowed, no_route, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, org: &str, rest: &[&str]) -> Reply {
    let now = Utc::now();
    let view = |p: &Profile| json!({"organizationId": org, "contactEmail": p.contact_email, "pendingContactEmail": p.pending.as_ref().map(|p| &p.email)});
    match (req.method(), rest) {
        (&Method::GET, []) => reply(manage.profile(org).await, |p| Reply::json(200, &view(&p))),
        (&Method::PUT, []) => {
            let email = match json_body(req) {
                Ok(b) => b.get("contactEmail").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string(),
                Err(p) => return p.into(),
            };
            reply(manage.request_contact(org, &email, now).await, |p| Reply::json(202, &view(&p)))
        }
        (&Method::POST, ["contact", "verify"]) => {
            let code = match json_body(req) {
                Ok(b) => b.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
                Err(p) => return p.into(),
            };
            reply(manage.verify_contact(org, &code, now).await, |p| Reply::json(200, &view(&p)))
        }
        (_, []) => method_not_allowed(req, &["GET", "PUT"]),
        (_, ["contact", "verify"]) => method_not_allowed(req, &["POST"]),
        _ => no_route(),
    }
}
