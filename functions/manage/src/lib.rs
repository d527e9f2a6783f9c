//! The manage function: the organisation-scoped management API. An organisation key sees and
//! changes only its own organisation; anything else answers 404 exactly as if it did not exist.
//!
//! Routes: incoming webhook sources (`/v1/sources`), outgoing subscriptions
//! (`/v1/subscriptions`, with secret rotation and test sends), event inspection and replay
//! (`/v1/events/{id}`), and the platform's product integrations (`/v1/integrations`, operator
//! keys only).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use relay_aws::config::{self, ConfigError};
use relay_aws::dynamo::{DynamoStore, Tables};
use relay_aws::s3::S3Blobs;
use relay_aws::ses::SesMailer;
use relay_aws::sqs::SqsRetries;
use relay_core::auth::Authenticator;
use relay_core::delivery::{RetryKind, RetryMessage, MAX_SUBSCRIPTIONS_PER_ORGANIZATION};
use relay_core::envelope::EventEnvelope;
use relay_core::ingest::Reply;
use relay_core::keys::{ApiKey, KeyKind};
use relay_core::organization::{self, Profile};
use relay_core::ports::{
    BlobStore, DeliveryStore, EventQuery, EventStore, KeyStore, Mailer, OrganizationStore, RetryQueue, SourceStore, SubscriptionStore,
};
use relay_core::problem::{Problem, ProblemKind};
use relay_core::secrets::SecretBox;
use relay_core::subscriptions::{self, Changes, Integration, Subscription};
use relay_core::webhooks::sources;
use relay_edge::{header, is_json, to_response};
use serde_json::{json, Value};

/// The largest management request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct App<S, Q> {
    pub auth: Authenticator<S>,
    pub store: S,
    pub retries: Q,
    /// Sends the contact address's verification code.
    pub mailer: Arc<dyn Mailer>,
    /// Large payloads, to show an event whole.
    pub blobs: Arc<dyn BlobStore>,
    pub secrets: SecretBox,
    /// How long a rotated-out secret keeps signing.
    pub rotation_overlap: chrono::Duration,
}

impl App<Arc<DynamoStore>, SqsRetries> {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = config::load().await?;
        let store = Arc::new(DynamoStore::new(&sdk, Tables::from_env()?));
        let secrets = config::secret_box()?;
        let ttl = Duration::from_secs(config::number("RELAY_KEY_CACHE_SECONDS", 60)? as u64);
        let retries = SqsRetries::new(&sdk, config::required("RELAY_RETRY_QUEUE_URL")?, String::new());
        let overlap = chrono::Duration::seconds(config::number("RELAY_SECRET_ROTATION_OVERLAP_SECONDS", 24 * 3600)?);
        let mailer = Arc::new(SesMailer::new(&sdk, config::required("RELAY_MAIL_FROM")?));
        let blobs = Arc::new(S3Blobs::new(&sdk, config::required("RELAY_PAYLOAD_BUCKET")?));
        Ok(Self { auth: Authenticator::new(store.clone(), ttl), store, retries, mailer, blobs, secrets, rotation_overlap: overlap })
    }
}

impl<S: KeyStore + SourceStore + SubscriptionStore + DeliveryStore + EventStore + OrganizationStore, Q: RetryQueue> App<S, Q> {
    /// Handles one request. Never fails: every error is a problem document.
    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Error> {
        let path = relay_edge::path(&req);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let reply = match (req.method(), parts.as_slice()) {
            (_, ["v1", "sources", ..]) => match self.organisation(&req).await {
                Ok(org) => self.sources(&req, &org, &parts[2..]).await,
                Err(p) => p.into(),
            },
            (_, ["v1", "subscriptions", ..]) => match self.organisation(&req).await {
                Ok(org) => self.subscriptions(&req, &org, &parts[2..]).await,
                Err(p) => p.into(),
            },
            (&Method::GET, ["v1", "events"]) => match self.organisation(&req).await {
                Ok(org) => self.list_events(&req, &org).await,
                Err(p) => p.into(),
            },
            (_, ["v1", "events", id, rest @ ..]) => match self.organisation(&req).await {
                Ok(org) => self.events(&req, &org, id, rest).await,
                Err(p) => p.into(),
            },
            (_, ["v1", "organization", rest @ ..]) => match self.organisation(&req).await {
                Ok(org) => self.organization(&req, &org, rest).await,
                Err(p) => p.into(),
            },
            (_, ["v1", "integrations", rest @ ..]) => match self.operator(&req).await {
                Ok(()) => self.integrations(&req, rest).await,
                Err(p) => p.into(),
            },
            _ => Problem::new(ProblemKind::NotFound, format!("no route {path}")).into(),
        };
        Ok(to_response(reply))
    }

    /// The caller's organisation; only organisation keys manage an organisation's resources.
    async fn organisation(&self, req: &Request) -> Result<String, Problem> {
        let key: ApiKey = self.auth.authenticate(header(req.headers(), "authorization")).await?;
        match (key.kind, key.organization_id) {
            (KeyKind::Organization, Some(org)) => Ok(org),
            _ => Err(Problem::new(ProblemKind::Forbidden, "use an organisation key: sources belong to an organisation")),
        }
    }

    /// Reopens one pair for attempt `attempt` and queues it now (replay and recover).
    /// `Ok(false)`: a send of that pair is in flight, so it is left alone.
    async fn resend(
        &self,
        envelope: &EventEnvelope,
        subscription_id: &str,
        org: &str,
        attempt: u32,
        now: chrono::DateTime<Utc>,
    ) -> Result<bool, Reply> {
        if !self.store.reopen(envelope.event_id, subscription_id, org, attempt, now.timestamp_millis()).await.map_err(unavailable)? {
            return Ok(false);
        }
        let message = RetryMessage::new(RetryKind::Retry, envelope, subscription_id, attempt, now);
        self.retries.schedule(&message, std::time::Duration::ZERO).await.map_err(unavailable)?;
        Ok(true)
    }

    /// `GET/PUT /v1/organization` and `POST /v1/organization/contact/verify`: the contact address
    /// operational e-mails go to, used only once the code mailed to it comes back.
    async fn organization(&self, req: &Request, org: &str, rest: &[&str]) -> Reply {
        let now = Utc::now();
        let mut profile = match self.store.profile(org).await {
            Ok(p) => p,
            Err(e) => return unavailable(e),
        };
        let view = |p: &Profile| json!({"organizationId": org, "contactEmail": p.contact_email, "pendingContactEmail": p.pending.as_ref().map(|p| &p.email)});
        match (req.method(), rest) {
            (&Method::GET, []) => Reply::json(200, &view(&profile)),
            (&Method::PUT, []) => {
                let email = match json_body(req) {
                    Ok(b) => b.get("contactEmail").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string(),
                    Err(p) => return p.into(),
                };
                let before = profile.clone();
                let code = match profile.request(&email, now) {
                    Ok(c) => c,
                    Err(p) => return p.into(),
                };
                if let Err(e) = self.store.put_profile(org, &profile).await {
                    return unavailable(e);
                }
                let (subject, body) = organization::verification_mail(&code);
                if let Err(e) = self.mailer.send(&email, &subject, &body).await {
                    tracing::error!(error = %e, "could not send the verification mail");
                    let _ = self.store.put_profile(org, &before).await;
                    return Problem::unavailable("Relay could not send the verification mail; retry", 5).into();
                }
                Reply::json(202, &view(&profile))
            }
            (&Method::POST, ["contact", "verify"]) => {
                let code = match json_body(req) {
                    Ok(b) => b.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
                    Err(p) => return p.into(),
                };
                let outcome = profile.verify(&code, now);
                // A wrong code counts a try, so the profile is stored either way.
                if let Err(e) = self.store.put_profile(org, &profile).await {
                    return unavailable(e);
                }
                match outcome {
                    Ok(_) => Reply::json(200, &view(&profile)),
                    Err(p) => p.into(),
                }
            }
            (_, []) => Problem::new(ProblemKind::MethodNotAllowed, format!("{} is not supported here", req.method())).into(),
            _ => Problem::new(ProblemKind::NotFound, "no such route").into(),
        }
    }

    async fn operator(&self, req: &Request) -> Result<(), Problem> {
        let key: ApiKey = self.auth.authenticate(header(req.headers(), "authorization")).await?;
        match key.kind {
            KeyKind::Admin => Ok(()),
            _ => Err(Problem::new(ProblemKind::Forbidden, "integrations are managed by the platform's operators (admin keys)")),
        }
    }

    async fn own_subscription(&self, org: &str, id: &str) -> Result<Subscription, Reply> {
        match self.store.get_subscription(id).await {
            Ok(Some(s)) if s.organization_id == org => Ok(s),
            Ok(_) => Err(Problem::new(ProblemKind::NotFound, format!("no subscription {id} in your organisation")).into()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn subscriptions(&self, req: &Request, org: &str, rest: &[&str]) -> Reply {
        let now = Utc::now();
        match (req.method(), rest) {
            (&Method::POST, []) => {
                let changes = match json_body(req).and_then(|b| Changes::parse(&b)) {
                    Ok(c) => c,
                    Err(p) => return p.into(),
                };
                if let Err(p) = resolves_publicly(changes.url.as_deref()).await {
                    return p.into();
                }
                match self.store.list_subscriptions(org).await {
                    Ok(existing) if existing.len() >= MAX_SUBSCRIPTIONS_PER_ORGANIZATION => {
                        return Problem::new(
                            ProblemKind::LimitReached,
                            format!(
                                "an organisation may have at most {MAX_SUBSCRIPTIONS_PER_ORGANIZATION} subscriptions; delete one first"
                            ),
                        )
                        .into();
                    }
                    Ok(_) => {}
                    Err(e) => return unavailable(e),
                }
                let (sub, secret) = match changes.create(org, subscriptions::new_id(), now, &self.secrets) {
                    Ok(x) => x,
                    Err(p) => return p.into(),
                };
                match self.store.put_subscription(&sub, None).await {
                    Ok(true) => {}
                    Ok(false) => return Problem::new(ProblemKind::Conflict, "a subscription with this id already exists; retry").into(),
                    Err(e) => return unavailable(e),
                }
                tracing::info!(subscription_id = %sub.id, organization_id = org, "subscription created");
                let mut view = sub.view();
                view["secret"] = json!(secret);
                Reply::json(201, &view)
            }
            (&Method::GET, []) => match self.store.list_subscriptions(org).await {
                Ok(mut list) => {
                    list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
                    Reply::json(200, &json!({"subscriptions": list.iter().map(Subscription::view).collect::<Vec<_>>()}))
                }
                Err(e) => unavailable(e),
            },
            (&Method::GET, [id]) => match self.own_subscription(org, id).await {
                Ok(s) => Reply::json(200, &s.view()),
                Err(r) => r,
            },
            (&Method::PATCH, [id]) => {
                if let Err(r) = self.own_subscription(org, id).await {
                    return r;
                }
                let changes = match json_body(req).and_then(|b| Changes::parse(&b)) {
                    Ok(c) => c,
                    Err(p) => return p.into(),
                };
                if let Err(p) = resolves_publicly(changes.url.as_deref()).await {
                    return p.into();
                }
                // Field-level: only the fields sent change, applied to the newest stored copy.
                let written = subscriptions::modify(&self.store, id, |s| {
                    s.organization_id == org && {
                        changes.apply_to(s, now);
                        true
                    }
                })
                .await;
                match written {
                    Ok(Some(sub)) => Reply::json(200, &sub.view()),
                    Ok(None) => Problem::new(ProblemKind::NotFound, format!("no subscription {id} in your organisation")).into(),
                    Err(e) => unavailable(e),
                }
            }
            (&Method::DELETE, [id]) => match self.store.delete_subscription(org, id).await {
                Ok(true) => no_content(),
                Ok(false) => Problem::new(ProblemKind::NotFound, format!("no subscription {id} in your organisation")).into(),
                Err(e) => unavailable(e),
            },
            (&Method::POST, [id, "secret", "rotate"]) => {
                // The secret handed back is the one that was stored: a rotation that lost a race
                // is made again on the newer copy, with a new secret.
                let mut secret = String::new();
                let written = subscriptions::modify(&self.store, id, |s| {
                    s.organization_id == org && {
                        secret = s.rotate(now, self.rotation_overlap, &self.secrets);
                        true
                    }
                })
                .await;
                match written {
                    Ok(Some(_)) => Reply::json(200, &json!({"secret": secret, "previousSecretsValidUntil": now + self.rotation_overlap})),
                    Ok(None) => Problem::new(ProblemKind::NotFound, format!("no subscription {id} in your organisation")).into(),
                    Err(e) => unavailable(e),
                }
            }
            (&Method::POST, [id, "recover"]) => {
                let sub = match self.own_subscription(org, id).await {
                    Ok(s) => s,
                    Err(r) => return r,
                };
                let since = match json_body(req)
                    .map(|b| b.get("since").and_then(Value::as_str).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
                {
                    Ok(Some(t)) => t.with_timezone(&Utc),
                    Ok(None) => return Problem::new(ProblemKind::InvalidRequest, "since (an RFC 3339 date-time) is required").into(),
                    Err(p) => return p.into(),
                };
                let failed = match self.store.failed_since(&sub.id, since).await {
                    Ok(f) => f,
                    Err(e) => return unavailable(e),
                };
                let mut recovered = Vec::new();
                for (envelope, attempts) in failed {
                    let next = attempts + 1;
                    match self.resend(&envelope, &sub.id, org, next, now).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(r) => return r,
                    }
                    recovered.push(envelope.event_id);
                }
                Reply::json(202, &json!({"recovered": recovered}))
            }
            (&Method::POST, [id, "test"]) => {
                let sub = match self.own_subscription(org, id).await {
                    Ok(s) => s,
                    Err(r) => return r,
                };
                let mut payload = serde_json::Map::new();
                payload.insert("subscriptionId".into(), json!(sub.id));
                payload.insert("message".into(), json!("This is a test event from Relay."));
                let envelope = EventEnvelope {
                    event_id: uuid::Uuid::new_v4(),
                    event_type: "relay.test".into(),
                    event_version: "1.0".into(),
                    source_product: relay_core::envelope::RELAY_SOURCE.into(),
                    organization_id: org.to_string(),
                    timestamp: now,
                    correlation_id: None,
                    payload: Some(payload),
                    payload_ref: None,
                };
                let message = RetryMessage::new(RetryKind::Retry, &envelope, &sub.id, 1, now);
                match self.retries.schedule(&message, std::time::Duration::ZERO).await {
                    Ok(()) => Reply::json(202, &json!({"eventId": envelope.event_id, "eventType": "relay.test"})),
                    Err(e) => unavailable(e),
                }
            }
            (_, [] | [_]) => Problem::new(ProblemKind::MethodNotAllowed, format!("{} is not supported here", req.method())).into(),
            _ => Problem::new(ProblemKind::NotFound, "no such route").into(),
        }
    }

    /// `GET /v1/events?type=&from=&to=&limit=&cursor=`: newest first, a page at a time.
    async fn list_events(&self, req: &Request, org: &str) -> Reply {
        let q = relay_edge::query_map(req);
        let time = |name: &str| -> Result<Option<chrono::DateTime<Utc>>, Problem> {
            q.get(name)
                .map(|v| chrono::DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)))
                .transpose()
                .map_err(|_| Problem::new(ProblemKind::InvalidRequest, format!("{name} must be an RFC 3339 date-time")))
        };
        let (from, to) = match (time("from"), time("to")) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(p), _) | (_, Err(p)) => return p.into(),
        };
        let limit = match q.get("limit").map(|l| l.parse::<u32>()) {
            None => 50,
            Some(Ok(l)) if (1..=100).contains(&l) => l,
            Some(_) => return Problem::new(ProblemKind::InvalidRequest, "limit must be 1 to 100").into(),
        };
        let query = EventQuery {
            organization_id: org.to_string(),
            event_type: q.get("type").cloned(),
            from,
            to,
            cursor: q.get("cursor").cloned(),
            limit,
        };
        match self.store.list_events(&query).await {
            Ok((events, next)) => {
                let items: Vec<Value> = events.iter().map(|e| json!({"event": listed(&e.envelope), "receivedAt": e.received_at})).collect();
                Reply::json(200, &json!({"events": items, "nextCursor": next}))
            }
            Err(e) if e.operation == "cursor" => Problem::new(ProblemKind::InvalidRequest, e.message).into(),
            Err(e) => unavailable(e),
        }
    }

    /// The organisation's event: from the event store, or (put on the bus directly) from its deliveries.
    async fn own_event(&self, org: &str, id: &str) -> Result<EventEnvelope, Reply> {
        let not_found = || -> Reply { Problem::new(ProblemKind::NotFound, format!("no event {id} in your organisation")).into() };
        let Ok(event_id) = id.parse::<uuid::Uuid>() else { return Err(not_found()) };
        let stored = self.store.get_event(event_id).await.map_err(unavailable)?.map(|s| s.envelope);
        let envelope = match stored {
            Some(e) => Some(e),
            None => self.store.delivered_envelope(event_id).await.map_err(unavailable)?,
        };
        envelope.filter(|e| e.organization_id == org).ok_or_else(not_found)
    }

    /// The event with a payload stored by reference fetched and put back in place: the API never
    /// shows Relay's storage (bucket, key) to an organisation.
    async fn inline(&self, mut envelope: EventEnvelope) -> Result<EventEnvelope, relay_core::ports::StoreError> {
        if let Some(r) = envelope.payload_ref.take() {
            let missing = || {
                relay_core::ports::StoreError::new("payload", format!("the payload of event {} is missing or altered", envelope.event_id))
            };
            let bytes = self.blobs.get_blob(&r.key).await?.ok_or_else(missing)?;
            if !r.matches(&bytes) {
                return Err(missing());
            }
            envelope.payload = serde_json::from_slice(&bytes).ok();
        }
        Ok(envelope)
    }

    async fn events(&self, req: &Request, org: &str, id: &str, rest: &[&str]) -> Reply {
        let envelope = match self.own_event(org, id).await {
            Ok(e) => e,
            Err(r) => return r,
        };
        // Only the organisation's own endpoints: the platform's integrations (and their URLs and
        // answers) are the operators' business, not the organisation's.
        let deliveries: Vec<_> = match self.store.deliveries(envelope.event_id).await {
            Ok(d) => d
                .into_iter()
                .filter(|d| d.organization_id == org && !d.subscription_id.starts_with(subscriptions::INTEGRATION_PREFIX))
                .collect(),
            Err(e) => return unavailable(e),
        };
        match (req.method(), rest) {
            (&Method::GET, []) => match self.inline(envelope).await {
                Ok(event) => Reply::json(200, &json!({"event": event, "deliveries": deliveries})),
                Err(e) => unavailable(e),
            },
            (&Method::POST, ["replay"]) => {
                let only = match req.body().as_ref() {
                    [] => None,
                    _ => match json_body(req) {
                        Ok(v) => v.get("subscriptionId").and_then(Value::as_str).map(str::to_string),
                        Err(p) => return p.into(),
                    },
                };
                let subs = match self.store.list_subscriptions(org).await {
                    Ok(s) => s,
                    Err(e) => return unavailable(e),
                };
                let targets: Vec<&Subscription> = subs
                    .iter()
                    .filter(|s| match &only {
                        Some(id) => &s.id == id,
                        None => {
                            s.wants(&envelope.event_type, &envelope.source_product, org)
                                || deliveries.iter().any(|d| d.subscription_id == s.id)
                        }
                    })
                    .collect();
                if targets.is_empty() {
                    return Problem::new(ProblemKind::NotFound, "no subscription of yours to replay this event to").into();
                }
                let now = Utc::now();
                let mut replayed = Vec::new();
                for sub in targets {
                    let next = deliveries.iter().find(|d| d.subscription_id == sub.id).map_or(1, |d| d.attempts.len() as u32 + 1);
                    match self.resend(&envelope, &sub.id, org, next, now).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(r) => return r,
                    }
                    replayed.push(sub.id.clone());
                }
                Reply::json(202, &json!({"eventId": envelope.event_id, "replayedTo": replayed}))
            }
            _ => Problem::new(ProblemKind::NotFound, "no such route").into(),
        }
    }

    async fn integrations(&self, req: &Request, rest: &[&str]) -> Reply {
        match (req.method(), rest) {
            (&Method::GET, []) => {
                let stored = match self.store.list_subscriptions("*").await {
                    Ok(s) => s,
                    Err(e) => return unavailable(e),
                };
                let list: Vec<Value> = subscriptions::SEED_INTEGRATIONS
                    .iter()
                    .map(|(source, target, types)| match stored.iter().find(|s| s.id == subscriptions::integration_id(source, target)) {
                        Some(s) => json!({"source": source, "target": target, "eventTypes": s.event_types, "enabled": s.enabled, "url": s.url, "configured": true}),
                        None => json!({"source": source, "target": target, "eventTypes": types, "enabled": false, "url": null, "configured": false}),
                    })
                    .collect();
                Reply::json(200, &json!({"integrations": list}))
            }
            (&Method::PUT, [source, target]) => {
                let Some((_, _, types)) = subscriptions::SEED_INTEGRATIONS.iter().find(|(s, t, _)| s == source && t == target) else {
                    return Problem::new(ProblemKind::NotFound, format!("there is no {source} -> {target} integration")).into();
                };
                let body = match json_body(req) {
                    Ok(b) => b,
                    Err(p) => return p.into(),
                };
                let enabled = body.get("enabled").and_then(Value::as_bool);
                let url = body.get("url").and_then(Value::as_str).map(str::to_string);
                let changes = match Changes::parse(&json!({"url": url, "enabled": enabled})) {
                    Ok(c) => c,
                    Err(p) => return p.into(),
                };
                let id = subscriptions::integration_id(source, target);
                let now = Utc::now();
                let updated = match subscriptions::modify(&self.store, &id, |s| {
                    changes.apply_to(s, now);
                    true
                })
                .await
                {
                    Ok(s) => s,
                    Err(e) => return unavailable(e),
                };
                let (sub, secret) = match updated {
                    Some(s) => (s, None),
                    None => {
                        let create = Changes { event_types: Some(types.iter().map(|t| t.to_string()).collect()), ..changes };
                        let (mut s, secret) = match create.create("*", id, now, &self.secrets) {
                            Ok(x) => x,
                            Err(p) => return p.into(),
                        };
                        s.integration = Some(Integration { source: source.to_string(), target: target.to_string() });
                        match self.store.put_subscription(&s, None).await {
                            Ok(true) => {}
                            Ok(false) => return Problem::new(ProblemKind::Conflict, "the integration was created meanwhile; retry").into(),
                            Err(e) => return unavailable(e),
                        }
                        (s, Some(secret))
                    }
                };
                tracing::info!(source, target, enabled = sub.enabled, "integration updated");
                let mut view =
                    json!({"source": source, "target": target, "eventTypes": sub.event_types, "enabled": sub.enabled, "url": sub.url});
                if let Some(secret) = secret {
                    view["secret"] = json!(secret);
                }
                Reply::json(200, &view)
            }
            _ => Problem::new(ProblemKind::NotFound, "no such route").into(),
        }
    }

    async fn sources(&self, req: &Request, org: &str, rest: &[&str]) -> Reply {
        let base = relay_edge::public_base_url(req);
        match (req.method(), rest) {
            (&Method::POST, []) => {
                let body = match json_body(req) {
                    Ok(b) => b,
                    Err(p) => return p.into(),
                };
                let sealed = match sources::register(&body, org, sources::new_id(), Utc::now(), &self.secrets) {
                    Ok(s) => s,
                    Err(p) => return p.into(),
                };
                if let Err(e) = self.store.put_source(&sealed).await {
                    tracing::error!(error = %e, "storing a source failed");
                    return Problem::unavailable("Relay could not store the source; retry", 2).into();
                }
                tracing::info!(source_id = %sealed.id, provider = %sealed.provider, organization_id = org, "source registered");
                Reply::json(201, &sources::public_view(&sealed, &base))
            }
            (&Method::GET, []) => match self.store.list_sources(org).await {
                Ok(mut list) => {
                    list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
                    let views: Vec<Value> = list.iter().map(|s| sources::public_view(s, &base)).collect();
                    Reply::json(200, &json!({"sources": views}))
                }
                Err(e) => unavailable(e),
            },
            (&Method::GET, [id]) => match self.store.get_source(id).await {
                Ok(Some(s)) if s.organization_id == org => Reply::json(200, &sources::public_view(&s, &base)),
                Ok(_) => not_found(id),
                Err(e) => unavailable(e),
            },
            (&Method::DELETE, [id]) => match self.store.delete_source(org, id).await {
                Ok(true) => {
                    Reply { status: 204, body: String::new(), content_type: "application/json", replayed: false, retry_after: None }
                }
                Ok(false) => not_found(id),
                Err(e) => unavailable(e),
            },
            (_, [] | [_]) => Problem::new(ProblemKind::MethodNotAllowed, format!("{} is not supported here", req.method())).into(),
            _ => Problem::new(ProblemKind::NotFound, "no such route").into(),
        }
    }
}

fn json_body(req: &Request) -> Result<Value, Problem> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(ProblemKind::PayloadTooLarge, format!("the body is {} bytes; the limit is {MAX_BODY_BYTES}", body.len())));
    }
    if !is_json(header(req.headers(), "content-type")) {
        return Err(Problem::new(ProblemKind::UnsupportedMediaType, "send JSON with 'Content-Type: application/json'"));
    }
    serde_json::from_slice(body).map_err(|e| Problem::new(ProblemKind::MalformedJson, format!("the body is not valid JSON: {e}")))
}

/// The SSRF guard at registration for host names: every address the name resolves to must be
/// public (IP literals were checked when the body was parsed; send time checks again, since
/// DNS can change). A name that does not resolve is refused too: nothing could be delivered.
async fn resolves_publicly(url: Option<&str>) -> Result<(), Problem> {
    let Some(url) = url.and_then(|u| url::Url::parse(u).ok()) else { return Ok(()) };
    let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
    let port = url.port_or_known_default().unwrap_or(443);
    let refused = |detail: String| {
        let mut p = Problem::new(ProblemKind::InvalidRequest, format!("url is refused: {detail}"));
        p.errors = vec![relay_core::problem::ProblemField { field: "url".into(), message: detail }];
        p
    };
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|_| refused(format!("{host} does not resolve")))?;
    let allow = relay_core::ssrf::loopback_allowed();
    for a in addrs {
        relay_core::ssrf::check_ip(a.ip(), allow)
            .map_err(|e| refused(format!("{host} resolves to an address that is not public ({e})")))?;
    }
    Ok(())
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

fn no_content() -> Reply {
    Reply { status: 204, body: String::new(), content_type: "application/json", replayed: false, retry_after: None }
}

fn not_found(id: &str) -> Reply {
    Problem::new(ProblemKind::NotFound, format!("no source {id} in your organisation")).into()
}

fn unavailable(e: relay_core::ports::StoreError) -> Reply {
    tracing::error!(error = %e, "store failed");
    Problem::unavailable("Relay could not reach its store; retry", 2).into()
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
