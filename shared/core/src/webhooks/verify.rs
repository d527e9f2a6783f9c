//! One verifier per provider scheme. Each works on the exact raw bytes received, compares
//! signatures in constant time (`Mac::verify_slice`), checks timestamps against a tolerance in
//! both directions, and only then parses the body. A verifier has no side effects.

use base64::Engine;
use serde_json::{json, Value};

use super::{InboundRequest, Provider, Source, Verified};
use crate::crypto::{hmac_sha256, hmac_sha256_matches, sha256_hex, sha256_hex_of};
use crate::signing::standard_webhooks_key;

/// Stripe's and Standard Webhooks' default tolerance.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(String),
    #[error("no signature matches")]
    BadSignature,
    #[error("the timestamp is {age} s away from now; the tolerance is {tolerance} s")]
    Stale { age: i64, tolerance: i64 },
    #[error("{0}")]
    Malformed(String),
}

/// What a request turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A genuine event.
    Verified(Verified),
    /// Mollie's classic callback: only a payment id; its state must be fetched from Mollie.
    Confirm { payment_id: String },
    /// A handshake to answer with this JSON (LinkedIn's `challengeCode`).
    Challenge(Value),
}

/// Verifies `req` against `source` at `now` (Unix seconds).
pub fn verify(source: &Source, req: &InboundRequest, now: i64) -> Result<Outcome, VerifyError> {
    let tolerance = source.options.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECS);
    match source.provider {
        Provider::Stripe => stripe(source.secret.as_bytes(), req, now, tolerance).map(Outcome::Verified),
        Provider::StandardWebhooks | Provider::Svix => standard_webhooks(&source.secret, req, now, tolerance).map(Outcome::Verified),
        Provider::Github => github(source.secret.as_bytes(), req).map(Outcome::Verified),
        Provider::Checkr => checkr(source.secret.as_bytes(), req).map(Outcome::Verified),
        Provider::Linkedin => linkedin(source.secret.as_bytes(), req),
        Provider::Mollie => mollie(source, req),
        Provider::Hmac => custom_hmac(source, req, now, tolerance).map(Outcome::Verified),
    }
}

fn header<'a>(req: &'a InboundRequest, name: &str) -> Result<&'a str, VerifyError> {
    req.header(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| VerifyError::MissingHeader(name.to_string()))
}

fn fresh(timestamp: i64, now: i64, tolerance: i64) -> Result<(), VerifyError> {
    let age = now - timestamp;
    if age.abs() > tolerance {
        return Err(VerifyError::Stale { age, tolerance });
    }
    Ok(())
}

fn json_body(req: &InboundRequest) -> Result<Value, VerifyError> {
    serde_json::from_slice(&req.body).map_err(|e| VerifyError::Malformed(format!("the body is not JSON: {e}")))
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_string)
}

fn body_digest(req: &InboundRequest) -> String {
    sha256_hex(&req.body)
}

/// The duplicate id of a scheme without a signed id: the digest of the signed content.
fn body_dedupe_id(req: &InboundRequest, signed_timestamp: Option<&str>) -> String {
    let digest = match signed_timestamp {
        Some(ts) => sha256_hex_of(&[ts.as_bytes(), b".", &req.body]),
        None => sha256_hex(&req.body),
    };
    format!("sha256:{digest}")
}

/// An RFC 3339 time field of a signed body, as Unix seconds.
fn time_field(v: &Value, name: &str) -> Option<i64> {
    v.get(name).and_then(Value::as_str).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp())
}

/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` over `"{t}.{body}"`, keyed with
/// the endpoint secret as bytes. Any `v1` may match (secret rolling sends several).
pub fn stripe(secret: &[u8], req: &InboundRequest, now: i64, tolerance: i64) -> Result<Verified, VerifyError> {
    let value = header(req, "stripe-signature")?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| VerifyError::Malformed("Stripe-Signature has no timestamp".into()))?;
    if signatures.is_empty() {
        return Err(VerifyError::BadSignature);
    }
    let t_text = t.to_string();
    if !signatures.iter().any(|s| hmac_sha256_matches(secret, &[t_text.as_bytes(), b".", &req.body], s)) {
        return Err(VerifyError::BadSignature);
    }
    fresh(t, now, tolerance)?;
    let body = json_body(req)?;
    let id = str_field(&body, "id").ok_or_else(|| VerifyError::Malformed("the event has no id".into()))?;
    Ok(Verified {
        dedupe_id: id.clone(),
        provider_event_id: id,
        provider_type: str_field(&body, "type").unwrap_or_else(|| "event".into()),
        data: body.pointer("/data/object").cloned().unwrap_or(body),
        signed_at: Some(t),
    })
}

/// Standard Webhooks (and Svix): `webhook-id`, `webhook-timestamp`, `webhook-signature` (or the
/// `svix-` names) over `"{id}.{timestamp}.{body}"`, keyed with the base64 part of `whsec_...`;
/// the signature header holds space-separated `v1,<base64>` entries, any of which may match.
pub fn standard_webhooks(secret: &str, req: &InboundRequest, now: i64, tolerance: i64) -> Result<Verified, VerifyError> {
    let prefix = if req.header("webhook-id").is_some() || req.header("svix-id").is_none() { "webhook" } else { "svix" };
    let id = header(req, &format!("{prefix}-id"))?;
    let ts_text = header(req, &format!("{prefix}-timestamp"))?;
    let signatures = header(req, &format!("{prefix}-signature"))?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| VerifyError::Malformed(format!("{prefix}-timestamp is not a Unix timestamp")))?;
    let key = standard_webhooks_key(secret).ok_or_else(|| VerifyError::Malformed("the source secret is not a whsec_ key".into()))?;
    let ok = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|sig| hmac_sha256_matches(&key, &[id.as_bytes(), b".", ts_text.trim().as_bytes(), b".", &req.body], &sig));
    if !ok {
        return Err(VerifyError::BadSignature);
    }
    fresh(ts, now, tolerance)?;
    let body = json_body(req)?;
    Ok(Verified {
        provider_event_id: id.to_string(),
        dedupe_id: id.to_string(),
        provider_type: str_field(&body, "type").unwrap_or_else(|| "event".into()),
        data: body.get("data").cloned().unwrap_or(body),
        signed_at: Some(ts),
    })
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body; `X-GitHub-Event` (with the
/// payload's `action`) is the type. GitHub signs only the body, so duplicates are recognised by
/// the body's digest: `X-GitHub-Delivery` is kept for correlation only. A captured request
/// replayed with a new delivery id or event name is the same body, so it is a duplicate.
pub fn github(secret: &[u8], req: &InboundRequest) -> Result<Verified, VerifyError> {
    let value = header(req, "x-hub-signature-256")?;
    let sig = value.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()).ok_or(VerifyError::BadSignature)?;
    if !hmac_sha256_matches(secret, &[&req.body], &sig) {
        return Err(VerifyError::BadSignature);
    }
    let delivery = header(req, "x-github-delivery")?.to_string();
    let event = req.header("x-github-event").unwrap_or("event").to_string();
    let body = json_body(req)?;
    let provider_type = match str_field(&body, "action") {
        Some(action) => format!("{event}.{action}"),
        None => event,
    };
    Ok(Verified { provider_event_id: delivery, provider_type, data: body, dedupe_id: body_dedupe_id(req, None), signed_at: None })
}

/// Checkr: `X-Checkr-Signature`, the hex HMAC-SHA256 of the body keyed with the API key.
pub fn checkr(secret: &[u8], req: &InboundRequest) -> Result<Verified, VerifyError> {
    let sig = hex::decode(header(req, "x-checkr-signature")?.trim()).map_err(|_| VerifyError::BadSignature)?;
    if !hmac_sha256_matches(secret, &[&req.body], &sig) {
        return Err(VerifyError::BadSignature);
    }
    let body = json_body(req)?;
    let id = str_field(&body, "id").unwrap_or_else(|| body_digest(req));
    Ok(Verified {
        dedupe_id: id.clone(),
        provider_event_id: id,
        provider_type: str_field(&body, "type").unwrap_or_else(|| "event".into()),
        signed_at: time_field(&body, "created_at"),
        data: body.pointer("/data/object").cloned().unwrap_or(body),
    })
}

/// LinkedIn: `GET ?challengeCode=...` is answered with the code and its HMAC (the endpoint
/// validation handshake); `POST` carries `X-LI-Signature: [hmacsha256=]<hex>` over the body.
///
/// The handshake signs a caller-chosen string with the same key and scheme a POST is checked
/// with, so it must never sign anything a POST would accept: LinkedIn documents the code as a
/// type-4 UUID, so only a canonical UUID v4 is answered, and a POST body must be a JSON object
/// (which starts with `{`, never with a hex digit). Either rule alone closes the oracle.
pub fn linkedin(secret: &[u8], req: &InboundRequest) -> Result<Outcome, VerifyError> {
    if req.method.eq_ignore_ascii_case("GET") {
        let code = req
            .query
            .get("challengeCode")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| VerifyError::Malformed("challengeCode is missing".into()))?;
        if !is_uuid_v4(code) {
            return Err(VerifyError::Malformed("challengeCode must be a UUID v4, as LinkedIn sends".into()));
        }
        let response = hex::encode(hmac_sha256(secret, &[code.as_bytes()]));
        return Ok(Outcome::Challenge(json!({"challengeCode": code, "challengeResponse": response})));
    }
    let value = header(req, "x-li-signature")?;
    let sig = hex::decode(value.trim().strip_prefix("hmacsha256=").unwrap_or(value.trim())).map_err(|_| VerifyError::BadSignature)?;
    if !hmac_sha256_matches(secret, &[&req.body], &sig) {
        return Err(VerifyError::BadSignature);
    }
    let body = json_body(req)?;
    if !body.is_object() {
        return Err(VerifyError::Malformed("a LinkedIn notification is a JSON object".into()));
    }
    let id = str_field(&body, "notificationId").or_else(|| str_field(&body, "id")).unwrap_or_else(|| body_digest(req));
    Ok(Outcome::Verified(Verified {
        dedupe_id: id.clone(),
        provider_event_id: id,
        provider_type: str_field(&body, "type").unwrap_or_else(|| "notification".into()),
        data: body,
        signed_at: None,
    }))
}

/// A canonical (lower-case, hyphenated) UUID of version 4, variant RFC 4122.
fn is_uuid_v4(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::parse_str(text).is_ok_and(|u| u.get_version_num() == 4 && u.hyphenated().to_string() == text)
}

/// Mollie: a classic callback is an unsigned form body `id=tr_...`, trusted only after the
/// payment is fetched from Mollie's API; a next-generation call is signed with
/// `X-Mollie-Signature: sha256=<hex>` and verified when the source has a signing secret.
pub fn mollie(source: &Source, req: &InboundRequest) -> Result<Outcome, VerifyError> {
    if let Some(signing) = &source.options.signing_secret {
        if let Some(value) = req.header("x-mollie-signature") {
            let sig = value.trim().strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()).ok_or(VerifyError::BadSignature)?;
            if !hmac_sha256_matches(signing.as_bytes(), &[&req.body], &sig) {
                return Err(VerifyError::BadSignature);
            }
            let body = json_body(req)?;
            let id = str_field(&body, "id").unwrap_or_else(|| body_digest(req));
            return Ok(Outcome::Verified(Verified {
                dedupe_id: id.clone(),
                provider_event_id: id,
                provider_type: str_field(&body, "type").unwrap_or_else(|| "event".into()),
                signed_at: time_field(&body, "createdAt"),
                data: body.pointer("/_embedded/entity").cloned().unwrap_or(body),
            }));
        }
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| VerifyError::Malformed("the body is not a form".into()))?;
    let id = text
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| VerifyError::Malformed("the body has no id=".into()))?;
    let valid =
        id.len() <= 64 && id.strip_prefix("tr_").is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid {
        return Err(VerifyError::Malformed("id must be a Mollie payment id (tr_...)".into()));
    }
    Ok(Outcome::Confirm { payment_id: id })
}

/// Any HMAC sender (a database trigger, an in-house service): configurable header, hex or
/// base64, optional prefix, optional timestamp header (then `"{ts}.{body}"` is signed).
pub fn custom_hmac(source: &Source, req: &InboundRequest, now: i64, tolerance: i64) -> Result<Verified, VerifyError> {
    let o = &source.options;
    let name = o.signature_header.clone().unwrap_or_else(|| "x-webhook-signature".into()).to_ascii_lowercase();
    let value = header(req, &name)?.trim();
    let value = match &o.signature_prefix {
        Some(p) => value.strip_prefix(p.as_str()).ok_or(VerifyError::BadSignature)?,
        None => value,
    };
    let sig = match o.encoding.as_deref() {
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(value).map_err(|_| VerifyError::BadSignature)?,
        _ => hex::decode(value).map_err(|_| VerifyError::BadSignature)?,
    };
    let (ok, signed) = match &o.timestamp_header {
        Some(ts_name) => {
            let ts_text = header(req, &ts_name.to_ascii_lowercase())?.trim().to_string();
            let ts: i64 = ts_text.parse().map_err(|_| VerifyError::Malformed(format!("{ts_name} is not a Unix timestamp")))?;
            let ok = hmac_sha256_matches(source.secret.as_bytes(), &[ts_text.as_bytes(), b".", &req.body], &sig);
            if ok {
                fresh(ts, now, tolerance)?;
            }
            (ok, Some((ts, ts_text)))
        }
        None => (hmac_sha256_matches(source.secret.as_bytes(), &[&req.body], &sig), None),
    };
    if !ok {
        return Err(VerifyError::BadSignature);
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&req.body)}));
    // The id header is not signed: it names the delivery for correlation, but duplicates are
    // recognised by the signed content (timestamp and body), which a replay cannot change.
    let dedupe_id = body_dedupe_id(req, signed.as_ref().map(|(_, t)| t.as_str()));
    let id = o.id_header.as_deref().and_then(|h| req.header(h)).map(str::to_string).unwrap_or_else(|| dedupe_id.clone());
    Ok(Verified {
        provider_event_id: id,
        provider_type: str_field(&body, "type").or_else(|| str_field(&body, "event")).unwrap_or_else(|| "event".into()),
        data: body,
        dedupe_id,
        signed_at: signed.map(|(ts, _)| ts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac_sha256 as sign;
    use crate::webhooks::SourceOptions;

    fn source(provider: Provider, secret: &str) -> Source {
        Source {
            id: "src_1".into(),
            organization_id: "org".into(),
            provider,
            secret: secret.into(),
            options: SourceOptions::default(),
            created_at: chrono::Utc::now(),
        }
    }

    fn request(headers: &[(&str, &str)], body: &str) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            headers: headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect(),
            query: Default::default(),
            body: body.as_bytes().to_vec(),
        }
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn stripe_scheme_accepts_any_v1_and_rejects_tampering_staleness_and_missing_header() {
        let body = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1"}}}"#;
        let sig = hex::encode(sign(b"whsec_test", &[format!("{NOW}.").as_bytes(), body.as_bytes()]));
        let hdr = format!("t={NOW},v1=deadbeef,v1={sig},v0=abc");
        let s = source(Provider::Stripe, "whsec_test");
        let v = match verify(&s, &request(&[("Stripe-Signature", &hdr)], body), NOW + 10) {
            Ok(Outcome::Verified(v)) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!((v.provider_event_id.as_str(), v.provider_type.as_str()), ("evt_1", "payment_intent.succeeded"));
        assert_eq!(v.data["id"], "pi_1");
        assert_eq!(verify(&s, &request(&[("Stripe-Signature", &hdr)], &body.replace("pi_1", "pi_2")), NOW), Err(VerifyError::BadSignature));
        assert_eq!(
            verify(&source(Provider::Stripe, "other"), &request(&[("Stripe-Signature", &hdr)], body), NOW),
            Err(VerifyError::BadSignature)
        );
        assert!(matches!(verify(&s, &request(&[("Stripe-Signature", &hdr)], body), NOW + 301), Err(VerifyError::Stale { .. })));
        assert!(matches!(verify(&s, &request(&[], body), NOW), Err(VerifyError::MissingHeader(_))));
    }

    #[test]
    fn standard_webhooks_scheme() {
        let key = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef0123456789abcdef");
        let secret = format!("whsec_{key}");
        let body = r#"{"type":"user.created","data":{"id":"u1"}}"#;
        let sig = base64::engine::general_purpose::STANDARD
            .encode(sign(b"0123456789abcdef0123456789abcdef", &[format!("msg_1.{NOW}.").as_bytes(), body.as_bytes()]));
        let sigs = format!("v1,bm9wZQ== v1,{sig}");
        let ts = NOW.to_string();
        let s = source(Provider::StandardWebhooks, &secret);
        for prefix in ["webhook", "svix"] {
            let hdrs = [
                (format!("{prefix}-id"), "msg_1".to_string()),
                (format!("{prefix}-timestamp"), ts.clone()),
                (format!("{prefix}-signature"), sigs.clone()),
            ];
            let refs: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert!(
                matches!(verify(&s, &request(&refs, body), NOW), Ok(Outcome::Verified(ref v)) if v.provider_event_id == "msg_1" && v.data["id"] == "u1"),
                "{prefix}"
            );
            assert!(matches!(verify(&s, &request(&refs, body), NOW - 400), Err(VerifyError::Stale { .. })));
        }
    }

    #[test]
    fn github_checkr_linkedin_and_hmac() {
        let body = r#"{"action":"opened","id":"x"}"#;
        let hex_sig = hex::encode(sign(b"s3cret", &[body.as_bytes()]));
        let gh = format!("sha256={hex_sig}");
        let r = request(&[("X-Hub-Signature-256", &gh), ("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "pull_request")], body);
        assert!(
            matches!(verify(&source(Provider::Github, "s3cret"), &r, NOW), Ok(Outcome::Verified(ref v)) if v.provider_type == "pull_request.opened" && v.provider_event_id == "d-1")
        );
        assert_eq!(verify(&source(Provider::Github, "wrong"), &r, NOW), Err(VerifyError::BadSignature));

        let r = request(&[("X-Checkr-Signature", &hex_sig)], body);
        assert!(matches!(verify(&source(Provider::Checkr, "s3cret"), &r, NOW), Ok(Outcome::Verified(_))));

        let li = format!("hmacsha256={hex_sig}");
        assert!(matches!(
            verify(&source(Provider::Linkedin, "s3cret"), &request(&[("X-LI-Signature", &li)], body), NOW),
            Ok(Outcome::Verified(_))
        ));
        let mut challenge = request(&[], "");
        challenge.method = "GET".into();
        let code = "890e4665-4dfe-4ab1-b689-ed553bceeed0";
        challenge.query.insert("challengeCode".into(), code.into());
        let expected = hex::encode(sign(b"s3cret", &[code.as_bytes()]));
        assert_eq!(
            verify(&source(Provider::Linkedin, "s3cret"), &challenge, NOW),
            Ok(Outcome::Challenge(json!({"challengeCode": code, "challengeResponse": expected})))
        );

        let mut s = source(Provider::Hmac, "s3cret");
        assert!(matches!(verify(&s, &request(&[("X-Webhook-Signature", &hex_sig)], body), NOW), Ok(Outcome::Verified(_))));
        s.options.encoding = Some("base64".into());
        s.options.timestamp_header = Some("X-Timestamp".into());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sign(b"s3cret", &[format!("{NOW}.").as_bytes(), body.as_bytes()]));
        let ts = NOW.to_string();
        assert!(matches!(
            verify(&s, &request(&[("X-Webhook-Signature", &b64), ("X-Timestamp", &ts)], body), NOW),
            Ok(Outcome::Verified(_))
        ));
        assert!(matches!(
            verify(&s, &request(&[("X-Webhook-Signature", &b64), ("X-Timestamp", &ts)], body), NOW + 1000),
            Err(VerifyError::Stale { .. })
        ));
    }

    #[test]
    fn mollie_classic_needs_confirmation_and_next_gen_is_verified() {
        let s = source(Provider::Mollie, "test_apikey");
        assert_eq!(verify(&s, &request(&[], "id=tr_WDqYK6vllg"), NOW), Ok(Outcome::Confirm { payment_id: "tr_WDqYK6vllg".into() }));
        assert!(matches!(verify(&s, &request(&[], "id=../../admin"), NOW), Err(VerifyError::Malformed(_))));
        let mut signed = s.clone();
        signed.options.signing_secret = Some("sign".into());
        let body = r#"{"id":"event_1","type":"payment-link.paid","_embedded":{"entity":{"id":"pl_1"}}}"#;
        let sig = format!("sha256={}", hex::encode(sign(b"sign", &[body.as_bytes()])));
        assert!(
            matches!(verify(&signed, &request(&[("X-Mollie-Signature", &sig)], body), NOW), Ok(Outcome::Verified(ref v)) if v.data["id"] == "pl_1")
        );
        assert_eq!(verify(&signed, &request(&[("X-Mollie-Signature", "sha256=00")], body), NOW), Err(VerifyError::BadSignature));
    }

    #[test]
    fn the_linkedin_handshake_signs_nothing_a_post_would_accept() {
        let s = source(Provider::Linkedin, "s3cret");
        let forged = r#"{"type":"JOB_APPLICATION","notificationId":"forged"}"#;
        // The attack: ask the handshake to sign the body, then POST it with that signature.
        let mut get = request(&[], "");
        get.method = "GET".into();
        for code in [forged, "abc", "890E4665-4DFE-4AB1-B689-ED553BCEEED0", "890e4665-4dfe-1ab1-b689-ed553bceeed0", "12345"] {
            get.query.insert("challengeCode".into(), code.into());
            assert!(matches!(verify(&s, &get, NOW), Err(VerifyError::Malformed(_))), "{code} was signed");
        }
        // Even a signed body that is not an object (a UUID is no JSON object) is refused.
        for body in ["890e4665-4dfe-4ab1-b689-ed553bceeed0", "12345", "\"x\""] {
            let sig = hex::encode(sign(b"s3cret", &[body.as_bytes()]));
            assert!(verify(&s, &request(&[("X-LI-Signature", &sig)], body), NOW).is_err(), "{body} was accepted");
        }
    }

    #[test]
    fn duplicates_are_recognised_by_what_the_signature_covers() {
        let body = r#"{"action":"opened","id":"x"}"#;
        let gh = format!("sha256={}", hex::encode(sign(b"s3cret", &[body.as_bytes()])));
        let s = source(Provider::Github, "s3cret");
        let first = request(&[("X-Hub-Signature-256", &gh), ("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "pull_request")], body);
        let replay = request(&[("X-Hub-Signature-256", &gh), ("X-GitHub-Delivery", "d-2"), ("X-GitHub-Event", "issues")], body);
        let id = |r: &InboundRequest, s: &Source| match verify(s, r, NOW) {
            Ok(Outcome::Verified(v)) => v.dedupe_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(id(&first, &s), id(&replay, &s), "new unsigned headers make no new delivery");

        let mut h = source(Provider::Hmac, "s3cret");
        h.options.id_header = Some("X-Delivery".into());
        let sig = hex::encode(sign(b"s3cret", &[body.as_bytes()]));
        let a = request(&[("X-Webhook-Signature", &sig), ("X-Delivery", "1")], body);
        let b = request(&[("X-Webhook-Signature", &sig), ("X-Delivery", "2")], body);
        assert_eq!(id(&a, &h), id(&b, &h));

        let checkr = r#"{"id":"e_1","type":"report.completed","created_at":"2023-11-14T22:13:20Z"}"#;
        let sig = hex::encode(sign(b"s3cret", &[checkr.as_bytes()]));
        match verify(&source(Provider::Checkr, "s3cret"), &request(&[("X-Checkr-Signature", &sig)], checkr), NOW) {
            Ok(Outcome::Verified(v)) => assert_eq!(v.signed_at, Some(NOW)),
            other => panic!("{other:?}"),
        }
    }
}
