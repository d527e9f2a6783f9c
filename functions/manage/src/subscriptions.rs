//! `/v1/subscriptions`: an organisation's outgoing webhook endpoints.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::problem::{Problem, ProblemField, ProblemKind};
use relay_core::model::reply::Reply;
use relay_core::model::subscription::{Changes, Subscription};
use serde_json::{json, Value};

use crate::http::{json_body, method_not_allowed, no_route, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, org: &str, rest: &[&str]) -> Reply {
    let now = Utc::now();
    match (req.method(), rest) {
        (&Method::POST, []) => {
            let changes = match checked_changes(req).await {
                Ok(c) => c,
                Err(p) => return p.into(),
            };
            reply(manage.create_subscription(org, changes, now).await, |(sub, secret)| {
                let mut view = sub.view();
                view["secret"] = json!(secret);
                Reply::json(201, &view)
            })
        }
        (&Method::GET, []) => reply(manage.subscriptions(org).await, |list| {
            Reply::json(200, &json!({"subscriptions": list.iter().map(Subscription::view).collect::<Vec<_>>()}))
        }),
        (&Method::GET, [id]) => reply(manage.subscription(org, id).await, |s| Reply::json(200, &s.view())),
        (&Method::PATCH, [id]) => {
            let changes = match checked_changes(req).await {
                Ok(c) => c,
                Err(p) => return p.into(),
            };
            reply(manage.update_subscription(org, id, &changes, now).await, |s| Reply::json(200, &s.view()))
        }
        (&Method::DELETE, [id]) => reply(manage.delete_subscription(org, id).await, |()| Reply::no_content()),
        (&Method::POST, [id, "secret", "rotate"]) => reply(manage.rotate_secret(org, id, now).await, |(secret, until)| {
            Reply::json(200, &json!({"secret": secret, "previousSecretsValidUntil": until}))
        }),
        (&Method::POST, [id, "recover"]) => {
            let since = match json_body(req)
                .map(|b| b.get("since").and_then(Value::as_str).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
            {
                Ok(Some(t)) => t.with_timezone(&Utc),
                Ok(None) => return Problem::new(ProblemKind::InvalidRequest, "since (an RFC 3339 date-time) is required").into(),
                Err(p) => return p.into(),
            };
            reply(manage.recover(org, id, since, now).await, |recovered| Reply::json(202, &json!({"recovered": recovered})))
        }
        (&Method::POST, [id, "test"]) => reply(manage.send_test(org, id, now).await, |event_id| {
            Reply::json(202, &json!({"eventId": event_id, "eventType": "relay.test"}))
        }),
        (_, []) => method_not_allowed(req, &["GET", "POST"]),
        (_, [_]) => method_not_allowed(req, &["GET", "PATCH", "DELETE"]),
        (_, [_, "secret", "rotate"] | [_, "recover"] | [_, "test"]) => method_not_allowed(req, &["POST"]),
        _ => no_route(),
    }
}

/// The body's changes, with the endpoint's host name checked to resolve publicly.
async fn checked_changes(req: &Request) -> Result<Changes, Problem> {
    let changes = json_body(req).and_then(|b| Changes::parse(&b))?;
    resolves_publicly(changes.url.as_deref()).await?;
    Ok(changes)
}

/// The SSRF guard at registration for host names: every address the name resolves to must be
/// public (IP literals were checked when the body was parsed; send time checks again, since
/// DNS can change). A name that does not resolve (yet) is accepted: its deliveries fail and are
/// retried in the attempt log, where they can be seen, and the API's answer to a well-formed
/// URL never depends on the state of someone else's DNS.
async fn resolves_publicly(url: Option<&str>) -> Result<(), Problem> {
    let Some(url) = url.and_then(|u| url::Url::parse(u).ok()) else { return Ok(()) };
    let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
    let port = url.port_or_known_default().unwrap_or(443);
    let refused = |detail: String| {
        let mut p = Problem::new(ProblemKind::InvalidRequest, format!("url is refused: {detail}"));
        p.errors = vec![ProblemField { field: "url".into(), message: detail }];
        p
    };
    let Ok(addrs) = tokio::net::lookup_host((host, port)).await else { return Ok(()) };
    let allow = relay_core::ssrf::loopback_allowed();
    for a in addrs {
        relay_core::ssrf::check_ip(a.ip(), allow)
            .map_err(|e| refused(format!("{host} resolves to an address that is not public ({e})")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::resolves_publicly;

    #[tokio::test]
    async fn a_host_name_that_resolves_inward_is_refused_at_registration() {
        // Without the local stack's loopback opt-in, as in a deployment.
        assert!(std::env::var("RELAY_ALLOW_LOOPBACK").is_err());
        let p = resolves_publicly(Some("http://localhost:8080/hook")).await.expect_err("localhost resolves to loopback");
        assert_eq!(p.errors[0].field, "url");
        assert!(resolves_publicly(Some("http://127.0.0.1:8080/hook")).await.is_ok(), "IP literals are checked by Changes::parse instead");
        assert!(resolves_publicly(None).await.is_ok());
    }
}
