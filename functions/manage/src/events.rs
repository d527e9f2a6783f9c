//! `/v1/events`: listing an organisation's events, one event with its attempts, replay.

use chrono::{DateTime, Utc};
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::manage::Manage;
use relay_core::model::envelope::EventEnvelope;
use relay_core::model::event::{DeliveryFilter, EventQuery};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use serde_json::{json, Value};

use crate::http::{json_body, method_not_allowed, no_route, one_of, page_limit, reply};

pub(crate) async fn route(manage: &Manage, req: &Request, org: &str, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::GET, []) => list(manage, req, org).await,
        (&Method::GET, [id]) => {
            reply(manage.event(org, id).await, |detail| Reply::json(200, &json!({"event": detail.event, "deliveries": detail.deliveries})))
        }
        (&Method::POST, [id, "replay"]) => {
            let only = match req.body().as_ref() {
                [] => None,
                _ => match json_body(req) {
                    Ok(v) if v.is_object() => match v.get("subscriptionId") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(_) => return Problem::new(ProblemKind::InvalidRequest, "subscriptionId must be a string").into(),
                    },
                    Ok(_) => return Problem::new(ProblemKind::InvalidRequest, "the body must be a JSON object").into(),
                    Err(p) => return p.into(),
                },
            };
            reply(manage.replay(org, id, only.as_deref(), Utc::now()).await, |(event_id, replayed)| {
                Reply::json(202, &json!({"eventId": event_id, "replayedTo": replayed}))
            })
        }
        (_, []) => method_not_allowed(req, &["GET", "POST"]),
        (_, [_]) => method_not_allowed(req, &["GET"]),
        (_, [_, "replay"]) => method_not_allowed(req, &["POST"]),
        _ => no_route(),
    }
}

/// `GET /v1/events?type=&source=&deliveryState=&from=&to=&limit=&cursor=`: newest first, a page
/// at a time.
async fn list(manage: &Manage, req: &Request, org: &str) -> Reply {
    let q = relay_edge::query_map(req);
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, Problem> {
        q.get(name)
            .map(|v| DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)))
            .transpose()
            .map_err(|_| Problem::new(ProblemKind::InvalidRequest, format!("{name} must be an RFC 3339 date-time")))
    };
    let (from, to) = match (time("from"), time("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(p), _) | (_, Err(p)) => return p.into(),
    };
    let (limit, delivery) = match (page_limit(&q), one_of(&q, "deliveryState", &DeliveryFilter::NAMES, DeliveryFilter::parse)) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(p), _) | (_, Err(p)) => return p.into(),
    };
    if q.get("type").is_some_and(|t| !relay_core::model::validation::is_event_type(t)) {
        return Problem::new(ProblemKind::InvalidRequest, "type must be an event type such as candidate.hired").into();
    }
    if q.get("source").is_some_and(|s| !relay_core::model::validation::is_source_name(s)) {
        return Problem::new(ProblemKind::InvalidRequest, "source must be a product or provider name such as recruitiq or stripe").into();
    }
    let query = EventQuery {
        organization_id: org.to_string(),
        event_type: q.get("type").cloned(),
        source: q.get("source").cloned(),
        delivery,
        from,
        to,
        cursor: q.get("cursor").filter(|c| !c.is_empty()).cloned(),
        limit,
    };
    reply(manage.list_events(&query).await, |(events, next)| {
        let items: Vec<Value> = events
            .iter()
            .map(|(e, summary)| json!({"event": listed(&e.envelope), "receivedAt": e.received_at, "deliveries": summary}))
            .collect();
        Reply::json(200, &json!({"events": items, "nextCursor": next}))
    })
}

/// An event in a listing: a payload stored by reference is left out (its size is shown), never
/// the storage reference itself; `GET /v1/events/{id}` shows it whole.
fn listed(e: &EventEnvelope) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let (Some(r), Some(o)) = (&e.payload_ref, v.as_object_mut()) {
        o.remove("payloadRef");
        o.insert("payloadSize".into(), json!(r.size));
    }
    v
}
