//! `/v1/integrations` (operators only): the platform's product-to-product integrations.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use serde_json::{json, Value};

use crate::http::{json_body, method_not_allowed, no_route, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::GET, []) => reply(manage.integrations(Utc::now()).await, |list| {
            let views: Vec<Value> = list
                .iter()
                .map(|i| {
                    let mut view = match &i.stored {
                        Some(s) => json!({"source": i.source, "target": i.target, "eventTypes": s.event_types, "enabled": s.enabled, "url": s.url, "configured": true, "disabledReason": s.disabled_reason,
                            "organizations": s.integration.as_ref().and_then(|i| i.organizations.as_ref())}),
                        None => json!({"source": i.source, "target": i.target, "eventTypes": i.seed_types, "enabled": false, "url": null, "configured": false, "disabledReason": null, "organizations": null}),
                    };
                    view["state"] = json!(state_of(i));
                    view["lastDay"] = json!({"delivered": i.activity.delivered, "failed": i.activity.failed});
                    view["lastEvent"] = json!(i.activity.last_event);
                    view
                })
                .collect();
            Reply::json(200, &json!({"integrations": views}))
        }),
        (&Method::PUT, [source, target]) => {
            let body = match json_body(req) {
                Ok(b) => b,
                Err(p) => return p.into(),
            };
            // Only an object of these fields is a body.
            let bad = || {
                Problem::new(
                    ProblemKind::InvalidRequest,
                    "the body must be {\"enabled\": boolean, \"url\": string, \"organizations\": [organisation ids] or null (every organisation)}, any of them",
                )
            };
            let Some(fields) = body.as_object().filter(|o| o.keys().all(|k| k == "enabled" || k == "url" || k == "organizations")) else {
                return bad().into();
            };
            let organizations = match fields.get("organizations") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::Array(ids)) => match ids
                    .iter()
                    .map(|v| v.as_str().filter(|s| relay_core::model::validation::is_identifier(s)).map(str::to_string))
                    .collect::<Option<_>>()
                {
                    Some(set) => Some(Some(set)),
                    None => return bad().into(),
                },
                Some(_) => return bad().into(),
            };
            let enabled = match fields.get("enabled") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return bad().into(),
            };
            let url = match fields.get("url") {
                None | Some(Value::Null) => None,
                Some(Value::String(u)) => Some(u.clone()),
                Some(_) => return bad().into(),
            };
            reply(manage.configure_integration(source, target, enabled, url, organizations, Utc::now()).await, |(sub, secret)| {
                let mut view = json!({"source": source, "target": target, "eventTypes": sub.event_types, "enabled": sub.enabled, "url": sub.url,
                    "organizations": sub.integration.as_ref().and_then(|i| i.organizations.as_ref())});
                if let Some(secret) = secret {
                    view["secret"] = json!(secret);
                }
                Reply::json(200, &view)
            })
        }
        (_, []) => method_not_allowed(req, &["GET"]),
        (_, [_, _]) => method_not_allowed(req, &["PUT"]),
        _ => no_route(),
    }
}

/// One word for an operator's list: `unconfigured`, `off` (switched off, or disabled by Relay:
/// see `disabledReason`), `failing` (on, with failures and no success over the last day), `on`.
fn state_of(i: &relay_core::manage::integrations::IntegrationState) -> &'static str {
    match &i.stored {
        None => "unconfigured",
        Some(s) if !s.enabled => "off",
        Some(_) if i.activity.failed > 0 && i.activity.delivered == 0 => "failing",
        Some(_) => "on",
    }
}
