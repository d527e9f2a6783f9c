//! `/v1/emails` and `/v1/email-suppressions`: asking for mail (product keys), reading what
//! became of it (the sending product, the organisation it was sent for, operators), and the
//! suppression list (operators). The rules live in [`relay_core::mail`].

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Request;
use relay_core::mail::log::{MailRecords, Viewer};
use relay_core::mail::request::MailIntake;
use relay_core::model::keys::{ApiKey, KeyKind};
use relay_core::model::mail::Sender;
use relay_core::model::mail_log::{MailMessage, MailRecipients, Suppression};
use relay_core::model::problem::{Problem, ProblemKind};
use relay_core::model::reply::Reply;
use serde_json::{json, Value};

use crate::http::{method_not_allowed, no_route, page_limit, reply};

/// The largest `POST /v1/emails` body: a mail's parts given directly fit, with room to spare.
pub const MAX_EMAIL_BODY_BYTES: usize = 256 * 1024;

pub(crate) async fn route(intake: &MailIntake, records: &MailRecords, req: &Request, caller: &ApiKey, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::POST, []) => {
            let body = match relay_edge::json_body(req, MAX_EMAIL_BODY_BYTES, "Send large content as a template with data") {
                Ok(b) => b,
                Err(p) => return p.into(),
            };
            let key = match relay_edge::idempotency_key(req.headers()) {
                Ok(k) => k,
                Err(p) => return p.into(),
            };
            intake.request(caller, &body, key, Utc::now(), relay_edge::deadline_ms(req)).await
        }
        (&Method::GET, [id]) => {
            let Ok(id) = id.parse() else {
                return Problem::new(ProblemKind::NotFound, "no such message: message ids are UUIDs").into();
            };
            let viewer = match (caller.kind, caller.product.as_deref(), caller.organization_id.as_deref()) {
                (KeyKind::Admin, _, _) => Viewer::Operator,
                (KeyKind::Organization, _, Some(org)) => Viewer::Organization(org),
                (KeyKind::Product, Some(p), _) => match Sender::of_product(p) {
                    Some(s) => Viewer::Product(s),
                    None => return Problem::new(ProblemKind::NotFound, format!("no message {id}")).into(),
                },
                _ => return Problem::new(ProblemKind::Forbidden, "this key may not read the mail log").into(),
            };
            reply(records.message(id, viewer, Utc::now().timestamp()).await, |(m, r)| Reply::json(200, &message_view(&m, r.as_ref())))
        }
        (_, []) => method_not_allowed(req, &["POST"]),
        (_, [_]) => method_not_allowed(req, &["GET"]),
        _ => no_route(),
    }
}

pub(crate) async fn suppressions(records: &MailRecords, req: &Request, rest: &[&str]) -> Reply {
    match (req.method(), rest) {
        (&Method::GET, []) => {
            let query = relay_edge::query_map(req);
            let limit = match page_limit(&query) {
                Ok(l) => l as usize,
                Err(p) => return p.into(),
            };
            let cursor = query.get("cursor").filter(|c| !c.is_empty()).map(String::as_str);
            reply(records.suppressions(cursor, limit).await, |(entries, next)| {
                Reply::json(200, &json!({"suppressions": entries.iter().map(suppression_view).collect::<Vec<_>>(), "nextCursor": next}))
            })
        }
        (&Method::DELETE, [address]) => {
            let address = percent_decode(address);
            reply(records.unsuppress(&address).await, |()| Reply::no_content())
        }
        (_, []) => method_not_allowed(req, &["GET"]),
        (_, [_]) => method_not_allowed(req, &["DELETE"]),
        _ => no_route(),
    }
}

/// A message as the API shows it: its status and history; its addresses only within their
/// retention (`recipients` is null after).
fn message_view(m: &MailMessage, recipients: Option<&MailRecipients>) -> Value {
    json!({
        "messageId": m.id,
        "organizationId": m.organization_id,
        "sender": m.sender,
        "template": m.template,
        "tags": m.tags,
        "status": m.status,
        "reason": m.reason,
        "attempts": m.attempts,
        "nextAttemptAt": m.next_attempt_at,
        "recipientCount": m.recipient_count,
        "suppressedRecipients": m.suppressed_recipients,
        "recipients": recipients.map(|r| json!({"to": r.recipients.to, "cc": r.recipients.cc, "bcc": r.recipients.bcc, "replyTo": r.reply_to})),
        "providerMessageId": m.provider_message_id,
        "createdAt": m.created_at,
        "updatedAt": m.updated_at,
        "history": m.history,
    })
}

fn suppression_view(s: &Suppression) -> Value {
    json!({"address": s.address, "reason": s.reason, "suppressedAt": s.suppressed_at, "messageId": s.message_id, "detail": s.detail})
}

/// `%40` and friends in a path segment (API Gateway hands the raw path); `+` stays a plus.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
