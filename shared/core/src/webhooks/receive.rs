//! Receiving one webhook: find the source, verify, recognise duplicates, publish the internal
//! event, archive the raw request. Nothing is written before the request is proved genuine,
//! except one entry in the source's request log: every call to a known source is logged with
//! what Relay made of it, and the calls a sender can make at will (refused, duplicate) are
//! capped per source per minute and kept only briefly.
//!
//! AWS requests per accepted webhook on a warm instance: one conditional claim (DynamoDB), one
//! PutEvents, one PutObject (the archive). The archive is written last and doubles as the
//! "done" marker: a duplicate that finds an earlier claim checks for the archive, so a
//! delivery whose first attempt died half-way is processed again instead of being lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::verify::{self, Outcome, VerifyError};
use super::{mapping, sources, InboundRequest, Provider, Source, Verified};
use crate::metrics::{self, Metrics};
use crate::model::envelope::EventEnvelope;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::reply::Reply;
use crate::model::request::{new_request_id, RequestOutcome, SourceRequest};
use crate::ports::{
    window_start, BlobArchive, BlobWriter, Claim, DedupeStore, EventPublisher, PaymentLookup, RateLimiter, RequestRecorder, SourceLookup,
};
use crate::secrets::SecretBox;

/// Headers never archived: credentials a sender might include.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-api-key", "x-amz-security-token"];

/// Mollie look-ups per second per source, unless configured otherwise.
pub const DEFAULT_MOLLIE_LOOKUPS_PER_SECOND: u32 = 5;

/// How webhook-receive behaves: read from the environment by the function, defaults for tests.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Opens the sources' sealed signing secrets.
    pub secrets: SecretBox,
    /// How long a delivery id is remembered for duplicate detection.
    pub dedupe_secs: i64,
    /// How long a claim holds when the runtime gives no deadline.
    pub default_hold_ms: i64,
    /// How long a source is cached per instance (deletions take effect within this).
    pub source_cache: Duration,
    /// Mollie's API (`RELAY_MOLLIE_API_BASE`; a local stand-in in tests).
    pub mollie_base_url: String,
    /// Payment look-ups per second per source, across every instance: an unsigned callback
    /// costs Relay a call to Mollie with the organisation's key, so a flood cannot turn Relay
    /// into someone's Mollie client or burn the organisation's API quota.
    pub mollie_lookups_per_second: u32,
    /// How long a "paid" answer is reused for the same payment (per instance).
    pub mollie_cache: Duration,
    /// Payloads larger than this travel by reference, as ingest's do.
    pub inline_payload_limit: usize,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// How long the log keeps an accepted, handshake, ignored or failed call (as events).
    pub request_retention_secs: i64,
    /// How long the log keeps a refused or duplicate call.
    pub noise_retention_secs: i64,
    /// Refused and duplicate calls logged per source per minute, across every instance.
    pub noise_per_minute: u32,
}

impl ReceiverConfig {
    /// The defaults, with the key that opens the sources' secrets.
    pub fn new(secrets: SecretBox) -> Self {
        Self {
            secrets,
            dedupe_secs: 7 * 24 * 3600,
            default_hold_ms: 30_000,
            source_cache: Duration::from_secs(60),
            mollie_base_url: "https://api.mollie.com".into(),
            mollie_lookups_per_second: DEFAULT_MOLLIE_LOOKUPS_PER_SECOND,
            mollie_cache: Duration::from_secs(30),
            inline_payload_limit: crate::model::envelope::DEFAULT_INLINE_PAYLOAD_LIMIT,
            max_body_bytes: 1024 * 1024,
            request_retention_secs: 30 * 24 * 3600,
            noise_retention_secs: 24 * 3600,
            noise_per_minute: 60,
        }
    }
}

/// What webhook-receive talks to, each built once per instance by the function.
#[derive(Clone)]
pub struct ReceiverPorts {
    pub sources: Arc<dyn SourceLookup>,
    /// Claims each provider delivery id, so a provider's retry is recognised.
    pub dedupe: Arc<dyn DedupeStore>,
    pub publisher: Arc<dyn EventPublisher>,
    /// The raw-request archive (written last: it marks a delivery done).
    pub archive: Arc<dyn BlobArchive>,
    /// Where payloads too large for the bus go (the payload bucket deliver reads from).
    pub payloads: Arc<dyn BlobWriter>,
    /// Mollie's API, to confirm a classic (unsigned) callback.
    pub payments: Arc<dyn PaymentLookup>,
    /// Caps Mollie look-ups and logged noise per source, across every instance.
    pub limiter: Arc<dyn RateLimiter>,
    /// Each source's request log.
    pub requests: Arc<dyn RequestRecorder>,
    pub metrics: Arc<dyn Metrics>,
}

/// The receive workflow: one incoming webhook from lookup to archive.
pub struct Receiver {
    ports: ReceiverPorts,
    config: ReceiverConfig,
    cache: Mutex<HashMap<String, (Option<Source>, Instant)>>,
    /// Mollie look-ups by payment id: the answer and when it was fetched.
    lookups: Mutex<HashMap<String, (Option<Value>, Instant)>>,
    /// Sources whose noise cap this instance saw reached, by the minute it was reached in: the
    /// rest of that minute's flood costs no AWS call at all.
    saturated: Mutex<HashMap<String, i64>>,
}

/// What Relay made of one call to a known source, for its request log.
struct Note {
    outcome: RequestOutcome,
    reason: Option<String>,
    event: Option<(Uuid, String)>,
    archive_key: Option<String>,
}

impl Note {
    fn new(outcome: RequestOutcome, reason: impl Into<Option<String>>) -> Self {
        Self { outcome, reason: reason.into(), event: None, archive_key: None }
    }

    fn of(mut self, envelope: &EventEnvelope) -> Self {
        self.event = Some((envelope.event_id, envelope.event_type.clone()));
        self
    }

    /// A reply Relay made up for a problem of its own (5xx) is a failure; any other, a refusal.
    fn from_reply(reply: &Reply, reason: &str) -> Self {
        let outcome = if reply.status >= 500 { RequestOutcome::Failed } else { RequestOutcome::Refused };
        Self::new(outcome, reason.to_string())
    }
}

fn problem(kind: ProblemKind, detail: impl Into<String>) -> Reply {
    Problem::new(kind, detail).into()
}

impl Receiver {
    pub fn new(ports: ReceiverPorts, config: ReceiverConfig) -> Self {
        Self { ports, config, cache: Mutex::default(), lookups: Mutex::default(), saturated: Mutex::default() }
    }

    fn count(&self, provider: Provider, metric: &'static str) {
        self.ports.metrics.increment(&[("Provider", provider.slug())], metric);
    }

    /// Handles `{GET,POST} /webhooks/{provider}/{source_id}`.
    pub async fn receive(
        &self,
        provider: &str,
        source_id: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
        deadline_ms: Option<i64>,
    ) -> Reply {
        let unknown = || problem(ProblemKind::NotFound, format!("no {provider} source {source_id}"));
        let Some(provider) = Provider::parse(provider) else { return unknown() };
        let source = match self.source(source_id).await {
            Ok(Some(s)) if s.provider == provider => s,
            Ok(_) => return unknown(),
            Err(reply) => return reply,
        };
        let (reply, note) = self.process(&source, req, now, deadline_ms).await;
        self.log(&source, req, &reply, note, now).await;
        reply
    }

    /// One call to a known source: the reply, and what the log should say about it.
    async fn process(&self, source: &Source, req: &InboundRequest, now: DateTime<Utc>, deadline_ms: Option<i64>) -> (Reply, Note) {
        let provider = source.provider;
        let source_id = source.id.as_str();
        let refused = |reply: Reply, reason: &str| (reply, Note::new(RequestOutcome::Refused, reason.to_string()));
        // LinkedIn validates an endpoint with a GET; every other provider only POSTs, so a GET
        // names a handshake resource that does not exist for it (404, as the API describes).
        let allow: &[&str] = if provider == Provider::Linkedin { &["GET", "POST"] } else { &["POST"] };
        if req.method.eq_ignore_ascii_case("GET") && provider != Provider::Linkedin {
            let detail = format!("{} sources take POST only; GET is LinkedIn's endpoint validation", provider.slug());
            return refused(problem(ProblemKind::NotFound, detail.clone()), &detail);
        }
        if !allow.iter().any(|m| req.method.eq_ignore_ascii_case(m)) {
            let reason = format!("{} on a source that takes {}", req.method, allow.join(" and "));
            return refused(Reply::method_not_allowed(&req.method, allow), &reason);
        }
        if req.body.len() > self.config.max_body_bytes {
            let detail = format!("the body is {} bytes; the limit is {}", req.body.len(), self.config.max_body_bytes);
            return refused(problem(ProblemKind::PayloadTooLarge, detail.clone()), &detail);
        }

        let verified = match verify::verify(source, req, now.timestamp()) {
            Ok(Outcome::Verified(v)) => v,
            Ok(Outcome::Challenge(answer)) => return (Reply::json(200, &answer), Note::new(RequestOutcome::Handshake, None)),
            Ok(Outcome::Confirm { payment_id }) => match self.confirm_mollie(source, &payment_id, now).await {
                Ok(Some(v)) => v,
                Ok(None) => {
                    let reason = format!("Mollie does not report payment {payment_id} as paid; nothing published");
                    return (Reply::json(200, &json!({"received": true, "published": false})), Note::new(RequestOutcome::Ignored, reason));
                }
                Err((reply, reason)) => {
                    let note = Note::from_reply(&reply, &reason);
                    return (reply, note);
                }
            },
            Err(e) => {
                tracing::warn!(source_id, provider = provider.slug(), reason = %e, "webhook refused");
                self.count(provider, metrics::WEBHOOKS_REJECTED);
                let kind = if matches!(e, VerifyError::Malformed(_)) { ProblemKind::InvalidRequest } else { ProblemKind::Unauthenticated };
                let mut p = Problem::new(kind, format!("the webhook could not be verified: {e}"));
                if kind == ProblemKind::Unauthenticated {
                    p.title = "Webhook signature verification failed".into();
                }
                return refused(p.into(), &e.to_string());
            }
        };

        if let Some(at) = verified.signed_at {
            if now.timestamp() - at > self.config.dedupe_secs {
                self.count(provider, metrics::WEBHOOKS_REJECTED);
                let reason = "the webhook is older than the duplicate window, so it cannot be told from a replay; it was not published";
                return refused(problem(ProblemKind::InvalidRequest, reason), reason);
            }
        }
        let event_id = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("relay:webhook:{}:{}", source.id, verified.dedupe_id).as_bytes());
        let dedupe_key = format!("webhook:{}#{}", source.id, verified.dedupe_id);
        let archive_key = format!("webhooks/{}/{}/{}.json", source.organization_id, source.id, event_id);
        let now_ms = now.timestamp_millis();
        let hold = deadline_ms.unwrap_or(now_ms + self.config.default_hold_ms);
        let failed = |doing: &str, e: &dyn std::fmt::Display| {
            let reply = self.unavailable(doing, &e.to_string());
            (reply, Note::new(RequestOutcome::Failed, format!("Relay failed {doing}; the provider's retry will be processed")))
        };
        let duplicate = |reason: Option<String>| Note {
            event: Some((event_id, mapping::internal_type(provider, &verified.provider_type))),
            ..Note::new(RequestOutcome::Duplicate, reason)
        };

        let claim = match self.ports.dedupe.claim(&dedupe_key, hold, now.timestamp() + self.config.dedupe_secs, now_ms).await {
            Ok(c) => c,
            Err(e) => return failed("claiming the delivery", &e),
        };
        if claim != Claim::Fresh {
            // Seen before. The archive is written last, so it tells a finished delivery from
            // one still running (held) or one whose attempt died (reclaimed: process it now).
            match self.ports.archive.blob_exists(&archive_key).await {
                Ok(true) => {
                    self.count(provider, metrics::WEBHOOKS_DUPLICATE);
                    let reply = Reply::json(200, &json!({"received": true, "duplicate": true, "eventId": event_id}));
                    return (reply, duplicate(None));
                }
                Ok(false) if claim == Claim::Held => {
                    let mut p = Problem::new(ProblemKind::RequestInProgress, "this delivery is being processed; retry later");
                    p.retry_after = Some(5);
                    return (p.into(), duplicate(Some("an earlier call of this delivery was still being processed".into())));
                }
                Ok(false) => tracing::warn!(source_id, "an earlier attempt at this delivery did not finish; processing it again"),
                Err(e) => return failed("checking for a duplicate", &e),
            }
        }

        let envelope = EventEnvelope {
            event_id,
            event_type: mapping::internal_type(provider, &verified.provider_type),
            event_version: "1.0".into(),
            source_product: provider.slug().to_string(),
            organization_id: source.organization_id.clone(),
            timestamp: now,
            correlation_id: Some(verified.provider_event_id.clone()),
            payload: Some(payload(source, &verified)),
            payload_ref: None,
        };
        // A bus entry holds 256 KB: a larger payload goes to the payload bucket first, by
        // reference, exactly as ingest does; deliver sends it inline.
        let (envelope, large) = envelope.offload_if_large(self.config.inline_payload_limit, self.ports.payloads.bucket());
        if let Some((key, bytes)) = large {
            if let Err(e) = self.ports.payloads.put_blob(&key, bytes, "application/json").await {
                let _ = self.ports.dedupe.forget(&dedupe_key).await;
                let (reply, note) = failed("storing the payload", &e);
                return (reply, note.of(&envelope));
            }
        }
        if let Some(Err(e)) = self.ports.publisher.publish(std::slice::from_ref(&envelope)).await.into_iter().next() {
            let _ = self.ports.dedupe.forget(&dedupe_key).await;
            let (reply, note) = failed("publishing the event", &e);
            return (reply, note.of(&envelope));
        }
        let archive = archive_record(source, &verified, &envelope, req, now);
        if let Err(e) = self.ports.archive.put_blob(&archive_key, archive, "application/json").await {
            // The event is on the bus; without the archive a provider retry publishes it again
            // under the same eventId, which consumers deduplicate.
            let _ = self.ports.dedupe.forget(&dedupe_key).await;
            let (reply, note) = failed("archiving the request", &e);
            return (reply, note.of(&envelope));
        }
        tracing::info!(event_id = %event_id, event_type = %envelope.event_type, source_id, provider = provider.slug(), "webhook accepted");
        self.count(provider, metrics::WEBHOOKS_ACCEPTED);
        let reply = Reply::json(200, &json!({"received": true, "eventId": event_id, "eventType": envelope.event_type}));
        (reply, Note { archive_key: Some(archive_key), ..Note::new(RequestOutcome::Accepted, None).of(&envelope) })
    }

    /// Writes the call to the source's request log. Noise (refused, duplicate) takes a slot of
    /// the source's per-minute cap first; a log entry that cannot be written is counted and
    /// skipped, never a reason to answer the provider differently.
    async fn log(&self, source: &Source, req: &InboundRequest, reply: &Reply, note: Note, now: DateTime<Utc>) {
        let noise = note.outcome.is_noise();
        if noise && !self.noise_slot(&source.id, now).await {
            self.count(source.provider, metrics::WEBHOOK_REQUESTS_NOT_LOGGED);
            return;
        }
        let keep = if noise { self.config.noise_retention_secs } else { self.config.request_retention_secs };
        let (event_id, event_type) = note.event.map_or((None, None), |(id, t)| (Some(id), Some(t)));
        let entry = SourceRequest {
            id: new_request_id(now),
            source_id: source.id.clone(),
            organization_id: source.organization_id.clone(),
            received_at: now,
            method: req.method.to_ascii_uppercase(),
            outcome: note.outcome,
            status: reply.status,
            reason: note.reason,
            event_id,
            event_type,
            size: req.body.len() as u64,
            archive_key: note.archive_key,
            expires_at: now.timestamp() + keep,
        };
        if let Err(e) = self.ports.requests.record_request(&entry).await {
            tracing::warn!(source_id = %source.id, error = %e, "the request log entry could not be written");
            self.count(source.provider, metrics::WEBHOOK_REQUESTS_NOT_LOGGED);
        }
    }

    /// One slot of the source's noise cap for the current minute. Once this instance has seen
    /// the cap reached, the rest of the minute is refused without asking the store.
    async fn noise_slot(&self, source_id: &str, now: DateTime<Utc>) -> bool {
        let minute = window_start(now, 60);
        if self.saturated.lock().ok().and_then(|s| s.get(source_id).copied()) == Some(minute) {
            return false;
        }
        let key = format!("requests:{source_id}");
        match self.ports.limiter.take_rate_slot(&key, self.config.noise_per_minute, 60, now).await {
            Ok(true) => true,
            Ok(false) => {
                if let Ok(mut s) = self.saturated.lock() {
                    s.retain(|_, m| *m == minute);
                    s.insert(source_id.to_string(), minute);
                }
                false
            }
            Err(e) => {
                tracing::warn!(source_id, error = %e, "the request log cap could not be checked; not logging");
                false
            }
        }
    }

    async fn source(&self, id: &str) -> Result<Option<Source>, Reply> {
        if let Some((s, at)) = self.cache.lock().ok().and_then(|c| c.get(id).cloned()) {
            if at.elapsed() < self.config.source_cache {
                return Ok(s);
            }
        }
        let sealed = self.ports.sources.get_source(id).await.map_err(|e| self.unavailable("loading the source", &e.to_string()))?;
        let source = match sealed {
            Some(s) => Some(sources::open(&s, &self.config.secrets).map_err(|e| {
                tracing::error!(source_id = id, error = %e, "a stored source could not be opened");
                problem(ProblemKind::Internal, "the source's secret could not be read")
            })?),
            None => None,
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id.to_string(), (source.clone(), Instant::now()));
        }
        Ok(source)
    }

    /// Looks the payment up at Mollie. `Err`: the reply, and the reason for the request log.
    async fn confirm_mollie(&self, source: &Source, payment_id: &str, now: DateTime<Utc>) -> Result<Option<Verified>, (Reply, String)> {
        let cache_key = format!("{}#{payment_id}", source.id);
        let cached = self.lookups.lock().ok().and_then(|c| c.get(&cache_key).cloned());
        let payment = match cached {
            Some((payment, at)) if at.elapsed() < self.config.mollie_cache => payment,
            _ => {
                let slot = self
                    .ports
                    .limiter
                    .take_rate_slot(&format!("mollie:{}", source.id), self.config.mollie_lookups_per_second, 1, now)
                    .await
                    .map_err(|e| {
                        (self.unavailable("limiting Mollie look-ups", &e.to_string()), "Relay failed limiting Mollie look-ups".into())
                    })?;
                if !slot {
                    let reason = "too many unsigned Mollie callbacks for this source; retry later";
                    let mut p = Problem::new(ProblemKind::TooManyRequests, reason);
                    p.retry_after = Some(2);
                    return Err((p.into(), reason.into()));
                }
                // The API base is the operator's setting, never a source's: Relay fetches from it.
                let payment = self.ports.payments.payment(&self.config.mollie_base_url, &source.secret, payment_id).await.map_err(|e| {
                    (self.unavailable("confirming the payment with Mollie", &e), "Mollie could not be asked about the payment".into())
                })?;
                // Only a paid answer is reused: "paid" is final, while an open or unknown payment
                // may be paid a moment later, and Mollie's callback for that must be looked up.
                let paid = payment.as_ref().is_some_and(|p| p.get("status").and_then(Value::as_str) == Some("paid"));
                if let Ok(mut c) = self.lookups.lock() {
                    c.retain(|_, (_, at)| at.elapsed() < self.config.mollie_cache);
                    if paid {
                        c.insert(cache_key, (payment.clone(), Instant::now()));
                    }
                }
                payment
            }
        };
        let Some(payment) = payment else {
            tracing::warn!(source_id = %source.id, payment_id, "Mollie does not know this payment; nothing published");
            return Ok(None);
        };
        let status = payment.get("status").and_then(Value::as_str).unwrap_or("");
        if payment.get("id").and_then(Value::as_str) != Some(payment_id) || status != "paid" {
            tracing::info!(source_id = %source.id, payment_id, status, "Mollie payment not paid; nothing published");
            return Ok(None);
        }
        let id = format!("{payment_id}:paid");
        Ok(Some(Verified {
            dedupe_id: id.clone(),
            provider_event_id: id,
            provider_type: "payment.paid".into(),
            data: payment,
            signed_at: None,
        }))
    }

    fn unavailable(&self, doing: &str, error: &str) -> Reply {
        tracing::error!(error, "{doing} failed");
        self.ports.metrics.increment(&[], metrics::UNAVAILABLE);
        Problem::unavailable(format!("Relay failed {doing}; nothing was kept, retry"), 5).into()
    }
}

fn payload(source: &Source, v: &Verified) -> serde_json::Map<String, Value> {
    let mut p = serde_json::Map::new();
    p.insert("provider".into(), json!(source.provider.slug()));
    p.insert("sourceId".into(), json!(source.id));
    p.insert("providerEventId".into(), json!(v.provider_event_id));
    p.insert("providerType".into(), json!(v.provider_type));
    p.insert("data".into(), v.data.clone());
    p
}

/// Whether a header or query parameter's name says it carries a credential (a sender that
/// authenticates with `?token=` or an `X-Api-Token` header): its value is never archived, since
/// the organisation can read the archive back through the API.
fn carries_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&n.as_str())
        || ["token", "secret", "password", "passwd", "apikey", "api-key", "api_key", "auth", "session"].iter().any(|w| n.contains(w))
}

fn archive_record(source: &Source, v: &Verified, e: &EventEnvelope, req: &InboundRequest, now: DateTime<Utc>) -> Vec<u8> {
    let redacted = |(k, v): (&String, &String)| (k.clone(), if carries_credential(k) { json!("[redacted]") } else { json!(v) });
    let headers: serde_json::Map<String, Value> = req.headers.iter().map(redacted).collect();
    let query: serde_json::Map<String, Value> = req.query.iter().map(redacted).collect();
    let (body, encoding) = match std::str::from_utf8(&req.body) {
        Ok(t) => (t.to_string(), "utf8"),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&req.body), "base64"),
    };
    json!({
        "sourceId": source.id,
        "organizationId": source.organization_id,
        "provider": source.provider.slug(),
        "providerEventId": v.provider_event_id,
        "eventId": e.event_id,
        "eventType": e.event_type,
        "verified_at": now,
        "method": req.method,
        "headers": headers,
        "query": query,
        "body": body,
        "bodyEncoding": encoding,
    })
    .to_string()
    .into_bytes()
}
