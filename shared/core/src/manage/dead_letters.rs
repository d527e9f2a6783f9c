//! The delivery dead letters as an operator sees them: every organisation's exhausted pairs,
//! newest first, each replayable as its pair's next attempt. The SQS dead-letter queue is the
//! alarm (`DeliveryDLQAlarm`); this listing, read from the pairs themselves, is what a person
//! works from, since SQS cannot be browsed without taking messages.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{unavailable, Manage};
use crate::model::delivery::{DeadLetter, State};
use crate::model::problem::{Problem, ProblemKind};

impl Manage {
    /// A page of exhausted deliveries (`cursor` from the previous page).
    pub async fn dead_letters(&self, cursor: Option<&str>, limit: u32) -> Result<(Vec<DeadLetter>, Option<String>), Problem> {
        self.ports
            .deliveries
            .dead_letters(cursor, limit)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Problem::new(ProblemKind::InvalidRequest, "cursor must be the nextCursor of a previous page"))
    }

    /// Sends an exhausted pair again, as its next attempt, to the subscription it failed at
    /// (an organisation's endpoint or a platform integration). 404 unless the pair is exhausted
    /// now; 409 if it is being sent at this moment.
    pub async fn replay_dead_letter(&self, event_id: &str, subscription_id: &str, now: DateTime<Utc>) -> Result<(), Problem> {
        let missing =
            || Problem::new(ProblemKind::NotFound, format!("no dead letter for event {event_id} and subscription {subscription_id}"));
        let Ok(id) = event_id.parse::<Uuid>() else { return Err(missing()) };
        let records = self.ports.deliveries.deliveries(id).await.map_err(unavailable)?;
        let Some(record) = records.into_iter().find(|r| r.subscription_id == subscription_id && r.state == State::Failed) else {
            return Err(missing());
        };
        let stored = self.ports.events.get_event(id).await.map_err(unavailable)?.map(|s| s.envelope);
        let envelope = match stored {
            Some(e) => e,
            None => self.ports.deliveries.delivered_envelope(id).await.map_err(unavailable)?.ok_or_else(missing)?,
        };
        let next = record.attempts.len() as u32 + 1;
        if self.resend(&envelope, subscription_id, &record.organization_id, next, now).await? {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::Conflict, "this delivery is being sent right now; look again in a moment"))
        }
    }
}
