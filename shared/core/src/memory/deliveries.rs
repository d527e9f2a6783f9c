//! Delivery state per (event, subscription) pair, in memory, with the DynamoDB adapter's
//! conditions: a claim succeeds only on a new pair, on a retry of exactly that attempt, or over
//! a lapsed lease; a record writes the state, the attempt, the follow-up and the endpoint's
//! health (the adapter as three writes, the pair's last); a reopen refuses a pair being sent right now. Stricter than the adapter in
//! one way: recording or finishing a follow-up of a pair that was never claimed fails (the
//! adapter's update would create a bare item), since a workflow doing so has a bug.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::guard::lock;
use crate::model::delivery::{
    Attempt, AttemptClaim, AttemptOutcome, ClaimResult, DeadLetter, DeadLetterCursor, DeliveryActivity, DeliveryRecord, FollowUp,
    LastEvent, PairKey, PairStatus, State,
};
use crate::model::envelope::EventEnvelope;
use crate::ports::{DeliveryStore, StoreError};

/// One pair as stored.
#[derive(Debug, Clone)]
struct Pair {
    organization_id: String,
    state: State,
    attempt_no: u32,
    lease_until_ms: i64,
    updated_at: DateTime<Utc>,
    envelope: Option<EventEnvelope>,
    retry_at_ms: Option<i64>,
    retry_pending: bool,
    dead_letter_pending: bool,
    disable_pending: bool,
    /// Failed every attempt and dead-lettered (until reopened).
    exhausted: bool,
    attempts: Vec<Attempt>,
}

impl Pair {
    /// A pair not written yet; the caller sets its state.
    fn new(now_ms: i64) -> Self {
        Self {
            organization_id: String::new(),
            state: State::Sending,
            attempt_no: 1,
            lease_until_ms: 0,
            updated_at: at_ms(now_ms),
            envelope: None,
            retry_at_ms: None,
            retry_pending: false,
            dead_letter_pending: false,
            disable_pending: false,
            exhausted: false,
            attempts: Vec::new(),
        }
    }

    fn status(&self) -> PairStatus {
        PairStatus {
            state: self.state,
            attempt_no: self.attempt_no,
            retry_at_ms: self.retry_at_ms,
            dead_letter_pending: self.dead_letter_pending,
            disable_pending: self.disable_pending,
            retry_pending: self.retry_pending,
            updated_at: Some(self.updated_at),
        }
    }

    fn clear_follow_ups(&mut self) {
        self.retry_pending = false;
        self.dead_letter_pending = false;
        self.disable_pending = false;
    }
}

/// Pairs by (event, subscription), ordered as the table's sort key orders them.
#[derive(Default)]
pub struct MemoryDeliveries {
    pairs: Mutex<BTreeMap<(Uuid, String), Pair>>,
    /// Since when each subscription has failed without a success.
    failing: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl MemoryDeliveries {
    /// The pair's state as stored (for assertions).
    pub fn status(&self, event_id: Uuid, subscription_id: &str) -> Option<PairStatus> {
        lock(&self.pairs).get(&(event_id, subscription_id.to_string())).map(Pair::status)
    }
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[async_trait]
impl DeliveryStore for MemoryDeliveries {
    async fn claim(&self, claim: &AttemptClaim<'_>) -> Result<ClaimResult, StoreError> {
        let AttemptClaim { event, subscription_id, organization_id, attempt, lease_until_ms, now_ms } = *claim;
        let mut pairs = lock(&self.pairs);
        let key = (event.event_id, subscription_id.to_string());
        if let Some(p) = pairs.get(&key) {
            let ours = (p.state == State::Retrying && p.attempt_no == attempt) || (p.state == State::Sending && p.lease_until_ms <= now_ms);
            if !ours {
                return Ok(ClaimResult::Refused(Some(p.status())));
            }
        }
        let pair = pairs.entry(key).or_insert_with(|| Pair::new(now_ms));
        pair.state = State::Sending;
        pair.lease_until_ms = lease_until_ms;
        pair.attempt_no = attempt;
        pair.organization_id = organization_id.to_string();
        pair.updated_at = at_ms(now_ms);
        pair.envelope.get_or_insert_with(|| event.clone());
        Ok(ClaimResult::Claimed)
    }

    async fn record(&self, pair: PairKey<'_>, outcome: &AttemptOutcome<'_>) -> Result<(), StoreError> {
        let AttemptOutcome { attempt, state, next_attempt, follow_up } = *outcome;
        let PairKey { event_id, subscription_id } = pair;
        let mut pairs = lock(&self.pairs);
        let Some(pair) = pairs.get_mut(&(event_id, subscription_id.to_string())) else {
            return Err(StoreError::new("record", "no such pair (it is always claimed first)"));
        };
        pair.attempts.retain(|a| a.number != attempt.number);
        pair.attempts.push(attempt.clone());
        pair.attempts.sort_by_key(|a| a.number);
        pair.state = state;
        pair.attempt_no = next_attempt;
        pair.lease_until_ms = 0;
        pair.updated_at = attempt.at;
        pair.clear_follow_ups();
        pair.retry_at_ms = None;
        pair.exhausted = follow_up == FollowUp::DeadLetter;
        match follow_up {
            FollowUp::None => {}
            FollowUp::RetryAt(at) => {
                pair.retry_at_ms = Some(at);
                pair.retry_pending = true;
            }
            FollowUp::DeadLetter => pair.dead_letter_pending = true,
            FollowUp::Disable => pair.disable_pending = true,
        }
        let mut failing = lock(&self.failing);
        if state == State::Delivered {
            failing.remove(subscription_id);
        } else {
            failing.entry(subscription_id.to_string()).or_insert(attempt.at);
        }
        Ok(())
    }

    async fn follow_up_sent(&self, pair: PairKey<'_>) -> Result<(), StoreError> {
        match lock(&self.pairs).get_mut(&(pair.event_id, pair.subscription_id.to_string())) {
            Some(p) => {
                p.clear_follow_ups();
                Ok(())
            }
            None => Err(StoreError::new("follow_up_sent", "no such pair (it is always claimed first)")),
        }
    }

    async fn deliveries(&self, event_id: Uuid) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(lock(&self.pairs)
            .iter()
            .filter(|((id, _), _)| *id == event_id)
            .map(|((_, sub), p)| DeliveryRecord {
                subscription_id: sub.clone(),
                organization_id: p.organization_id.clone(),
                state: p.state,
                attempts: p.attempts.clone(),
                updated_at: p.updated_at,
                next_attempt_at: p.retry_at_ms.filter(|_| p.state == State::Retrying).and_then(DateTime::from_timestamp_millis),
                dead_lettered: p.exhausted,
            })
            .collect())
    }

    async fn delivered_envelope(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError> {
        // As the adapter: the first pair in sort-key order, whose envelope a reopened pair may lack.
        Ok(lock(&self.pairs).iter().find(|((id, _), _)| *id == event_id).and_then(|(_, p)| p.envelope.clone()))
    }

    async fn failed_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(EventEnvelope, u32)>, StoreError> {
        Ok(lock(&self.pairs)
            .iter()
            .filter(|((_, sub), p)| sub == subscription_id && p.state == State::Failed && p.updated_at >= since)
            .filter_map(|(_, p)| Some((p.envelope.clone()?, p.attempt_no)))
            .collect())
    }

    async fn activity(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<DeliveryActivity, StoreError> {
        let pairs = lock(&self.pairs);
        let mine: Vec<&Pair> = pairs.iter().filter(|((_, sub), _)| sub == subscription_id).map(|(_, p)| p).collect();
        let recent = |state: &[State]| mine.iter().filter(|p| p.updated_at >= since && state.contains(&p.state)).count() as u32;
        let last_event = mine.iter().max_by_key(|p| p.updated_at).and_then(|p| {
            let e = p.envelope.as_ref()?;
            Some(LastEvent { event_id: e.event_id, event_type: e.event_type.clone(), at: p.updated_at, state: p.state })
        });
        Ok(DeliveryActivity { delivered: recent(&[State::Delivered]), failed: recent(&[State::Retrying, State::Failed]), last_event })
    }

    async fn outcomes_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, State)>, StoreError> {
        Ok(lock(&self.pairs)
            .iter()
            .filter(|((_, sub), p)| sub == subscription_id && p.updated_at >= since)
            .map(|(_, p)| (p.updated_at, p.state))
            .collect())
    }

    async fn dead_letters(
        &self,
        after: Option<&DeadLetterCursor>,
        limit: u32,
    ) -> Result<(Vec<DeadLetter>, Option<DeadLetterCursor>), StoreError> {
        // As the index orders them: newest first by the stored time, then by the table's key.
        let pairs = lock(&self.pairs);
        let mut all: Vec<(DeadLetterCursor, DeadLetter)> = pairs
            .iter()
            .filter(|(_, p)| p.exhausted)
            .map(|((event_id, sub), p)| {
                let last = p.attempts.last();
                let cursor =
                    DeadLetterCursor { at: p.updated_at.to_rfc3339(), event_id: event_id.to_string(), subscription_id: sub.clone() };
                let letter = DeadLetter {
                    event_id: *event_id,
                    event_type: p.envelope.as_ref().map(|e| e.event_type.clone()).unwrap_or_default(),
                    subscription_id: sub.clone(),
                    organization_id: p.organization_id.clone(),
                    exhausted_at: p.updated_at,
                    attempts: p.attempt_no,
                    last_status_code: last.and_then(|a| a.status_code),
                    last_error_kind: last.and_then(|a| a.error_kind.clone()),
                };
                (cursor, letter)
            })
            .filter(|(cursor, _)| after.is_none_or(|a| cursor < a))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = if more { all.last().map(|(c, _)| c.clone()) } else { None };
        Ok((all.into_iter().map(|(_, l)| l).collect(), next))
    }

    async fn dismiss_dead_letter(&self, pair: PairKey<'_>) -> Result<bool, StoreError> {
        Ok(match lock(&self.pairs).get_mut(&(pair.event_id, pair.subscription_id.to_string())) {
            Some(p) if p.exhausted => {
                p.exhausted = false;
                true
            }
            _ => false,
        })
    }

    async fn failing_since(&self, subscription_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(lock(&self.failing).get(subscription_id).copied())
    }

    async fn reopen(&self, pair: PairKey<'_>, organization_id: &str, attempt: u32, now_ms: i64) -> Result<bool, StoreError> {
        let PairKey { event_id, subscription_id } = pair;
        let mut pairs = lock(&self.pairs);
        let key = (event_id, subscription_id.to_string());
        if pairs.get(&key).is_some_and(|p| p.state == State::Sending && p.lease_until_ms > now_ms) {
            return Ok(false);
        }
        let pair = pairs.entry(key).or_insert_with(|| Pair::new(now_ms));
        pair.state = State::Retrying;
        pair.attempt_no = attempt;
        pair.lease_until_ms = 0;
        pair.organization_id = organization_id.to_string();
        pair.updated_at = at_ms(now_ms);
        pair.retry_at_ms = Some(now_ms);
        pair.exhausted = false;
        pair.clear_follow_ups();
        Ok(true)
    }
}
