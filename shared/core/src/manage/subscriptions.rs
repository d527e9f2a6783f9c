//! An organisation's subscriptions: create (with the secret shown once), change field by field,
//! rotate the secret, delete, re-send what failed since a time, and send a test event.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{not_found, oldest_first, owned, unavailable, Manage};
use crate::model::delivery::{RetryKind, RetryMessage};
use crate::model::envelope::{EventEnvelope, RELAY_SOURCE};
use crate::model::ids;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::subscription::{Changes, Subscription, MAX_SUBSCRIPTIONS_PER_ORGANIZATION};
use crate::ports::modify_subscription;

impl Manage {
    /// Creates a subscription; answers it with its first signing secret (shown only now).
    pub async fn create_subscription(
        &self,
        organization_id: &str,
        changes: Changes,
        now: DateTime<Utc>,
    ) -> Result<(Subscription, String), Problem> {
        let existing = self.ports.subscriptions.list_subscriptions(organization_id).await.map_err(unavailable)?;
        if existing.len() >= MAX_SUBSCRIPTIONS_PER_ORGANIZATION {
            return Err(Problem::new(
                ProblemKind::LimitReached,
                format!("an organisation may have at most {MAX_SUBSCRIPTIONS_PER_ORGANIZATION} subscriptions; delete one first"),
            ));
        }
        let (sub, secret) = changes.create(organization_id, ids::new_subscription_id(), now, &self.config.secrets)?;
        if !self.ports.subscriptions.put_subscription(&sub, None).await.map_err(unavailable)? {
            return Err(Problem::new(ProblemKind::Conflict, "a subscription with this id already exists; retry"));
        }
        tracing::info!(subscription_id = %sub.id, organization_id, "subscription created");
        Ok((sub, secret))
    }

    /// The organisation's subscriptions, oldest first.
    pub async fn subscriptions(&self, organization_id: &str) -> Result<Vec<Subscription>, Problem> {
        Ok(oldest_first(self.ports.subscriptions.list_subscriptions(organization_id).await.map_err(unavailable)?))
    }

    /// One of the organisation's subscriptions.
    pub async fn subscription(&self, organization_id: &str, id: &str) -> Result<Subscription, Problem> {
        owned(self.ports.subscriptions.get_subscription(id).await.map_err(unavailable)?, organization_id, id)
    }

    /// Applies only the fields sent, to the newest stored copy (no concurrent change is lost).
    pub async fn update_subscription(
        &self,
        organization_id: &str,
        id: &str,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Result<Subscription, Problem> {
        let written = modify_subscription(self.ports.subscriptions.as_ref(), id, |s| {
            s.organization_id == organization_id && {
                changes.apply_to(s, now);
                true
            }
        })
        .await
        .map_err(unavailable)?;
        written.ok_or_else(|| not_found("subscription", id))
    }

    pub async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<(), Problem> {
        match self.ports.subscriptions.delete_subscription(organization_id, id).await.map_err(unavailable)? {
            true => Ok(()),
            false => Err(not_found("subscription", id)),
        }
    }

    /// A new signing secret; the old ones keep signing for the rotation overlap. Answers the new
    /// secret and until when the old ones stay valid. The secret handed back is the one that was
    /// stored: a rotation that lost a race is made again on the newer copy, with a new secret.
    pub async fn rotate_secret(&self, organization_id: &str, id: &str, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>), Problem> {
        let mut secret = String::new();
        let written = modify_subscription(self.ports.subscriptions.as_ref(), id, |s| {
            s.organization_id == organization_id && {
                secret = s.rotate(now, self.config.rotation_overlap, &self.config.secrets);
                true
            }
        })
        .await
        .map_err(unavailable)?;
        match written {
            Some(_) => Ok((secret, now + self.config.rotation_overlap)),
            None => Err(not_found("subscription", id)),
        }
    }

    /// Re-sends every event whose delivery to this subscription failed since `since`, as its
    /// next attempt. Pairs being sent right now are left alone. Answers the events re-sent.
    pub async fn recover(&self, organization_id: &str, id: &str, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<Uuid>, Problem> {
        let sub = self.subscription(organization_id, id).await?;
        let failed = self.ports.deliveries.failed_since(&sub.id, since).await.map_err(unavailable)?;
        let mut recovered = Vec::new();
        for (envelope, attempts) in failed {
            if self.resend(&envelope, &sub.id, organization_id, attempts + 1, now).await? {
                recovered.push(envelope.event_id);
            }
        }
        Ok(recovered)
    }

    /// Queues a `relay.test` event for this subscription alone; answers its event id.
    pub async fn send_test(&self, organization_id: &str, id: &str, now: DateTime<Utc>) -> Result<Uuid, Problem> {
        let sub = self.subscription(organization_id, id).await?;
        let mut payload = serde_json::Map::new();
        payload.insert("subscriptionId".into(), json!(sub.id));
        payload.insert("message".into(), json!("This is a test event from Relay."));
        let envelope = EventEnvelope {
            event_id: Uuid::new_v4(),
            event_type: "relay.test".into(),
            event_version: "1.0".into(),
            source_product: RELAY_SOURCE.into(),
            organization_id: organization_id.to_string(),
            timestamp: now,
            correlation_id: None,
            payload: Some(payload),
            payload_ref: None,
        };
        self.queue_now(&RetryMessage::new(RetryKind::Retry, &envelope, &sub.id, 1, now)).await?;
        Ok(envelope.event_id)
    }
}
