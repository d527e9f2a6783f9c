//! An organisation's events: a page of the listing, one event whole with every delivery attempt
//! of the organisation's own endpoints, and replaying it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{not_found, unavailable, Manage};
use crate::model::delivery::DeliveryRecord;
use crate::model::envelope::EventEnvelope;
use crate::model::event::{DeliverySummary, EventQuery, StoredEvent};
use crate::model::ids::INTEGRATION_PREFIX;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::subscription::Subscription;
use crate::ports::inline_payload;

/// One event as the API shows it.
#[derive(Debug, Clone)]
pub struct EventDetail {
    /// With a payload stored by reference fetched and put back in place.
    pub event: EventEnvelope,
    /// The organisation's own endpoints only: the platform's integrations (their URLs and
    /// answers) are the operators' business.
    pub deliveries: Vec<DeliveryRecord>,
}

impl Manage {
    /// A page of the organisation's events, newest first, each with how its deliveries to the
    /// organisation's current endpoints stand, and the cursor of the next page. The store
    /// filters by the marks; the filter is checked again here over the endpoints that still
    /// exist, so a deleted endpoint's failures do not keep an event "failed".
    pub async fn list_events(&self, query: &EventQuery) -> Result<(Vec<(StoredEvent, DeliverySummary)>, Option<String>), Problem> {
        let (events, next) = self.ports.events.list_events(query).await.map_err(|e| match e.operation {
            "cursor" => Problem::new(ProblemKind::InvalidRequest, e.message),
            _ => unavailable(e),
        })?;
        let live: std::collections::HashSet<String> = self
            .ports
            .subscriptions
            .list_subscriptions(&query.organization_id)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let page = events
            .into_iter()
            .map(|e| {
                let summary = e.deliveries.summary(|id| live.contains(id));
                (e, summary)
            })
            .filter(|(_, summary)| query.delivery.is_none_or(|d| d.matches(*summary)))
            .collect();
        Ok((page, next))
    }

    /// The event with every attempt to the organisation's own endpoints.
    pub async fn event(&self, organization_id: &str, id: &str) -> Result<EventDetail, Problem> {
        let (envelope, deliveries) = self.event_and_deliveries(organization_id, id).await?;
        // The API never shows Relay's storage (bucket, key) to an organisation.
        let event = inline_payload(self.ports.blobs.as_ref(), envelope).await.map_err(unavailable)?;
        Ok(EventDetail { event, deliveries })
    }

    /// Sends the event again to one subscription (`only`) or to every subscription of the
    /// organisation that wants it or had it, as each pair's next attempt. Pairs being sent right
    /// now are left alone. Answers the event id and the subscriptions it was queued for.
    pub async fn replay(
        &self,
        organization_id: &str,
        id: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Uuid, Vec<String>), Problem> {
        let (envelope, deliveries) = self.event_and_deliveries(organization_id, id).await?;
        let subs = self.ports.subscriptions.list_subscriptions(organization_id).await.map_err(unavailable)?;
        let targets: Vec<&Subscription> = subs
            .iter()
            .filter(|s| match only {
                Some(id) => s.id == id,
                None => {
                    s.wants(&envelope.event_type, &envelope.source_product, organization_id)
                        || deliveries.iter().any(|d| d.subscription_id == s.id)
                }
            })
            .collect();
        if targets.is_empty() {
            return Err(Problem::new(ProblemKind::NotFound, "no subscription of yours to replay this event to"));
        }
        let mut replayed = Vec::new();
        for sub in targets {
            let next = deliveries.iter().find(|d| d.subscription_id == sub.id).map_or(1, |d| d.attempts.len() as u32 + 1);
            if self.resend(&envelope, &sub.id, organization_id, next, now).await? {
                replayed.push(sub.id.clone());
            }
        }
        Ok((envelope.event_id, replayed))
    }

    /// The organisation's event and its deliveries to the organisation's own endpoints.
    async fn event_and_deliveries(&self, organization_id: &str, id: &str) -> Result<(EventEnvelope, Vec<DeliveryRecord>), Problem> {
        let envelope = self.own_event(organization_id, id).await?;
        let deliveries = self.ports.deliveries.deliveries(envelope.event_id).await.map_err(unavailable)?;
        let deliveries = deliveries
            .into_iter()
            .filter(|d| d.organization_id == organization_id && !d.subscription_id.starts_with(INTEGRATION_PREFIX))
            .collect();
        Ok((envelope, deliveries))
    }

    /// The organisation's event: from the event store, or (put on the bus directly) from its deliveries.
    async fn own_event(&self, organization_id: &str, id: &str) -> Result<EventEnvelope, Problem> {
        let Ok(event_id) = id.parse::<Uuid>() else { return Err(not_found("event", id)) };
        let stored = self.ports.events.get_event(event_id).await.map_err(unavailable)?.map(|s| s.envelope);
        let envelope = match stored {
            Some(e) => Some(e),
            None => self.ports.deliveries.delivered_envelope(event_id).await.map_err(unavailable)?,
        };
        envelope.filter(|e| e.organization_id == organization_id).ok_or_else(|| not_found("event", id))
    }
}
