//! The delivery dead letters as an operator sees them: every organisation's exhausted pairs,
//! newest first, each replayable as its pair's next attempt. The SQS dead-letter queue is the
//! alarm (`DeliveryDLQAlarm`); this listing, read from the pairs themselves, is what a person
//! works from, since SQS cannot be browsed without taking messages.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{unavailable, Manage};
use crate::model::delivery::{DeadLetter, DeadLetterCursor, DeliveryRecord, PairKey};
use crate::model::envelope::EventEnvelope;
use crate::model::problem::{Problem, ProblemKind};

impl Manage {
    /// A page of exhausted deliveries (`cursor` from the previous page).
    pub async fn dead_letters(&self, cursor: Option<&str>, limit: u32) -> Result<(Vec<DeadLetter>, Option<String>), Problem> {
        let after = match cursor {
            None => None,
            Some(c) => Some(
                DeadLetterCursor::parse(c)
                    .ok_or_else(|| Problem::new(ProblemKind::InvalidRequest, "cursor must be the nextCursor of a previous page"))?,
            ),
        };
        let (letters, next) = self.ports.deliveries.dead_letters(after.as_ref(), limit).await.map_err(unavailable)?;
        Ok((letters, next.map(|c| c.to_string())))
    }

    /// Sends an exhausted pair again, as its next attempt, to the subscription it failed at
    /// (an organisation's endpoint or a platform integration). 404 unless the pair is a dead
    /// letter now; 409 if its subscription is gone or disabled (nothing would be sent: dismiss
    /// the letter, or enable the endpoint first), or if the pair is being sent at this moment.
    pub async fn replay_dead_letter(&self, event_id: &str, subscription_id: &str, now: DateTime<Utc>) -> Result<(), Problem> {
        let (envelope, record) = self.dead_letter(event_id, subscription_id).await?;
        match self.ports.subscriptions.get_subscription(subscription_id).await.map_err(unavailable)? {
            None => return Err(Problem::new(ProblemKind::Conflict, "its subscription was deleted: dismiss the dead letter instead")),
            Some(sub) if !sub.enabled => {
                return Err(Problem::new(
                    ProblemKind::Conflict,
                    "its subscription is disabled: enable it first, or dismiss the dead letter",
                ));
            }
            Some(_) => {}
        }
        let next = record.attempts.len() as u32 + 1;
        if self.resend(&envelope, subscription_id, &record.organization_id, next, now).await? {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::Conflict, "this delivery is being sent right now; look again in a moment"))
        }
    }

    /// Takes a dead letter off the list without sending it (its subscription was deleted, or
    /// nobody wants it any more); the pair stays failed in its organisation's event log.
    pub async fn dismiss_dead_letter(&self, event_id: &str, subscription_id: &str) -> Result<(), Problem> {
        let (envelope, _) = self.dead_letter(event_id, subscription_id).await?;
        let pair = PairKey { event_id: envelope.event_id, subscription_id };
        if self.ports.deliveries.dismiss_dead_letter(pair).await.map_err(unavailable)? {
            Ok(())
        } else {
            Err(missing(event_id, subscription_id))
        }
    }

    /// A dead letter's event and pair, or 404.
    async fn dead_letter(&self, event_id: &str, subscription_id: &str) -> Result<(EventEnvelope, DeliveryRecord), Problem> {
        let Ok(id) = event_id.parse::<Uuid>() else { return Err(missing(event_id, subscription_id)) };
        let records = self.ports.deliveries.deliveries(id).await.map_err(unavailable)?;
        let Some(record) = records.into_iter().find(|r| r.subscription_id == subscription_id && r.dead_lettered) else {
            return Err(missing(event_id, subscription_id));
        };
        let stored = self.ports.events.get_event(id).await.map_err(unavailable)?.map(|s| s.envelope);
        let envelope = match stored {
            Some(e) => e,
            None => self
                .ports
                .deliveries
                .delivered_envelope(id)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| missing(event_id, subscription_id))?,
        };
        Ok((envelope, record))
    }
}

fn missing(event_id: &str, subscription_id: &str) -> Problem {
    Problem::new(ProblemKind::NotFound, format!("no dead letter for event {event_id} and subscription {subscription_id}"))
}
