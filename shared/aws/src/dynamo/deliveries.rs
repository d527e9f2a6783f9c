//! The deliveries table: per (event, subscription) pair, `SUB#<subscription>` holds the state,
//! the lease, the pending follow-up and the envelope (for replays of events that were never in
//! the event store); `ATTEMPT#<subscription>#<nnnn>` holds each attempt; and
//! `health:<subscription>`/`HEALTH` remembers since when a subscription has failed.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::{DateTime, Utc};
use relay_core::model::delivery::{
    Attempt, AttemptClaim, AttemptOutcome, ClaimResult, DeadLetter, DeadLetterCursor, DeliveryActivity, DeliveryRecord, FollowUp,
    LastEvent, PairKey, PairStatus, State,
};
use relay_core::model::envelope::EventEnvelope;
use relay_core::ports::{DeliveryStore, StoreError};
use uuid::Uuid;

use super::{conditional, get_n, get_s, get_time, key, n, packed, s, DynamoStore, Item, OrStoreError};

fn pair_key(pair: PairKey<'_>) -> Item {
    key::delivery(&pair.event_id.to_string(), &format!("SUB#{}", pair.subscription_id))
}

fn health_key(subscription_id: &str) -> Item {
    key::delivery(&format!("health:{subscription_id}"), "HEALTH")
}

/// A state as stored (`"retrying"`, ...).
fn state_text(state: State) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn read_state(item: &Item) -> Option<State> {
    serde_json::from_value(serde_json::Value::String(get_s(item, "state")?.to_string())).ok()
}

impl DynamoStore {
    /// The subscription's health after an attempt: a failure sets the failing-since mark if it
    /// is not set yet; a success clears it, read first (strongly consistent, one read unit)
    /// since nearly every success finds none and an unconditional removal bills a write unit.
    /// A failure that lands between the read and a success is left standing: it happened after
    /// the read, and the next success clears it.
    async fn note_health(&self, subscription_id: &str, state: State, at: DateTime<Utc>) -> Result<(), StoreError> {
        let update = self.client.update_item().table_name(&self.tables.deliveries).set_key(Some(health_key(subscription_id)));
        let update = if state == State::Delivered {
            if self.failing_since(subscription_id).await?.is_none() {
                return Ok(());
            }
            update.update_expression("REMOVE failingSince")
        } else {
            update
                .update_expression("SET failingSince = if_not_exists(failingSince, :now)")
                .expression_attribute_values(":now", s(&at.to_rfc3339()))
        };
        update.send().await.or_store("dynamodb:UpdateItem")?;
        Ok(())
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn failed_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(EventEnvelope, u32)>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .index_name("bySubscription")
            .key_condition_expression("subscriptionId = :sub AND updatedAt >= :since")
            .filter_expression("#st = :failed")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sub", s(subscription_id))
            .expression_attribute_values(":since", s(&since.to_rfc3339()))
            .expression_attribute_values(":failed", s("failed"));
        let items = self.query_all(query).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let envelope = packed::envelope(item, "envelope")?;
                Some((envelope, get_n(item, "attemptNo").unwrap_or(1) as u32))
            })
            .collect())
    }

    async fn activity(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<DeliveryActivity, StoreError> {
        // The newest pair (with its envelope, for the event's type), then the window's pairs
        // projected to their state. The projection saves transfer, not read units: the index
        // projects whole items, so a busy integration's day is read in full (issue #14 weighs
        // a narrower index or counters).
        let newest = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .index_name("bySubscription")
            .key_condition_expression("subscriptionId = :sub")
            .expression_attribute_values(":sub", s(subscription_id))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .or_store("dynamodb:Query")?;
        let last_event = newest.items().first().and_then(|item| {
            let envelope = packed::envelope(item, "envelope")?;
            let at = get_s(item, "updatedAt")?.parse().ok()?;
            Some(LastEvent { event_id: envelope.event_id, event_type: envelope.event_type, at, state: read_state(item)? })
        });
        let window = self.outcomes_since(subscription_id, since).await?;
        let count = |wanted: &[State]| window.iter().filter(|(_, s)| wanted.contains(s)).count() as u32;
        Ok(DeliveryActivity { delivered: count(&[State::Delivered]), failed: count(&[State::Retrying, State::Failed]), last_event })
    }

    async fn outcomes_since(&self, subscription_id: &str, since: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, State)>, StoreError> {
        let window = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .index_name("bySubscription")
            .key_condition_expression("subscriptionId = :sub AND updatedAt >= :since")
            .projection_expression("#st, updatedAt")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sub", s(subscription_id))
            .expression_attribute_values(":since", s(&since.to_rfc3339()));
        Ok(self.query_all(window).await?.iter().filter_map(|item| Some((get_time(item, "updatedAt"), read_state(item)?))).collect())
    }

    async fn dead_letters(
        &self,
        after: Option<&DeadLetterCursor>,
        limit: u32,
    ) -> Result<(Vec<DeadLetter>, Option<DeadLetterCursor>), StoreError> {
        let start = after.map(|c| {
            Item::from([
                ("exhausted".to_string(), s(EXHAUSTED)),
                ("updatedAt".to_string(), s(&c.at)),
                ("eventId".to_string(), s(&c.event_id)),
                ("sk".to_string(), s(&format!("SUB#{}", c.subscription_id))),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .index_name("byExhausted")
            .key_condition_expression("exhausted = :ex")
            .expression_attribute_values(":ex", s(EXHAUSTED))
            .scan_index_forward(false)
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .or_store("dynamodb:Query")?;
        let letters = out.items().iter().filter_map(dead_letter).collect();
        let next = out.last_evaluated_key().and_then(|key| {
            Some(DeadLetterCursor {
                at: get_s(key, "updatedAt")?.to_string(),
                event_id: get_s(key, "eventId")?.to_string(),
                subscription_id: get_s(key, "sk")?.strip_prefix("SUB#")?.to_string(),
            })
        });
        Ok((letters, next))
    }

    async fn dismiss_dead_letter(&self, pair: PairKey<'_>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(pair_key(pair)))
            .update_expression("REMOVE exhausted")
            .condition_expression("attribute_exists(exhausted)")
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }

    async fn failing_since(&self, subscription_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(health_key(subscription_id)))
            .consistent_read(true)
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        Ok(out.item.as_ref().and_then(|i| get_s(i, "failingSince")).and_then(|t| t.parse().ok()))
    }

    async fn claim(&self, claim: &AttemptClaim<'_>) -> Result<ClaimResult, StoreError> {
        let AttemptClaim { event, subscription_id, organization_id, attempt, lease_until_ms, now_ms } = *claim;
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(pair_key(PairKey { event_id: event.event_id, subscription_id })))
            .update_expression("SET #st = :sending, leaseUntil = :lease, attemptNo = :n, organizationId = :org, subscriptionId = :sub, updatedAt = :now, envelope = if_not_exists(envelope, :env)")
            .condition_expression("attribute_not_exists(sk) OR (#st = :retrying AND attemptNo = :n) OR (#st = :sending AND leaseUntil <= :nowms)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":retrying", s("retrying"))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":n", n(i64::from(attempt)))
            .expression_attribute_values(":org", s(organization_id))
            .expression_attribute_values(":sub", s(subscription_id))
            .expression_attribute_values(":now", s(&Utc::now().to_rfc3339()))
            .expression_attribute_values(":nowms", n(now_ms))
            .expression_attribute_values(":env", packed::pack(&event.to_json()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimResult::Claimed),
            // Refused: the pair as it stands comes back with the failure, so a lost follow-up
            // can be found without another read.
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => Ok(ClaimResult::Refused(c.item.as_ref().and_then(pair_status))),
                other => Err(StoreError::new("dynamodb:UpdateItem", DisplayErrorContext(other))),
            },
        }
    }

    async fn follow_up_sent(&self, pair: PairKey<'_>) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(pair_key(pair)))
            .update_expression("REMOVE deadLetter, disablePending, retryPending")
            .send()
            .await
            .or_store("dynamodb:UpdateItem")?;
        Ok(())
    }

    async fn record(&self, pair: PairKey<'_>, outcome: &AttemptOutcome<'_>) -> Result<(), StoreError> {
        let AttemptOutcome { attempt, state, next_attempt, follow_up } = *outcome;
        let PairKey { event_id, subscription_id } = pair;
        let doc = serde_json::to_string(attempt).map_err(|e| StoreError::new("encode attempt", e))?;
        let mut attempt_item = key::delivery(&event_id.to_string(), &format!("ATTEMPT#{subscription_id}#{:04}", attempt.number));
        attempt_item.insert("doc".into(), s(&doc));
        let update = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(pair_key(pair)))
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":state", s(&state_text(state)))
            .expression_attribute_values(":next", n(i64::from(next_attempt)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(&attempt.at.to_rfc3339()));
        // The follow-up rides with the state (see DeliveryStore::record).
        let update = match follow_up {
            FollowUp::None => update
                .update_expression("SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now REMOVE retryAt, deadLetter, disablePending, retryPending, exhausted"),
            FollowUp::RetryAt(at) => update
                .update_expression(
                    "SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now, retryAt = :at, retryPending = :pending REMOVE deadLetter, disablePending, exhausted",
                )
                .expression_attribute_values(":at", n(at))
                .expression_attribute_values(":pending", s("pending")),
            // `exhausted` puts the pair in the sparse `byExhausted` index (GET /v1/dead-letters)
            // until it is reopened; its last answer rides along for the operator's listing.
            FollowUp::DeadLetter => update
                .update_expression(
                    "SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now, deadLetter = :pending, exhausted = :ex, lastAnswer = :answer REMOVE retryAt, disablePending, retryPending",
                )
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":ex", s(EXHAUSTED))
                .expression_attribute_values(
                    ":answer",
                    s(&attempt.status_code.map_or_else(|| attempt.error_kind.clone().unwrap_or_default(), |c| c.to_string())),
                ),
            FollowUp::Disable => update
                .update_expression("SET #st = :state, attemptNo = :next, leaseUntil = :zero, updatedAt = :now, disablePending = :pending REMOVE retryAt, deadLetter, retryPending, exhausted")
                .expression_attribute_values(":pending", s("pending")),
        };
        // Three single writes, not one transaction (which bills every write twice: 8 write
        // units where these take 2 or 3, issue 14). The pair's update goes last: it is the
        // commit point. Before it, the attempt's item and the health mark are idempotent
        // (rewritten by a redelivered message that claims the pair again after its lease);
        // the attempt log never misses an attempt the pair counts.
        self.client
            .put_item()
            .table_name(&self.tables.deliveries)
            .set_item(Some(attempt_item))
            .send()
            .await
            .or_store("dynamodb:PutItem")?;
        self.note_health(subscription_id, state, attempt.at).await?;
        update.send().await.or_store("dynamodb:UpdateItem")?;
        Ok(())
    }

    async fn deliveries(&self, event_id: Uuid) -> Result<Vec<DeliveryRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .key_condition_expression("eventId = :id")
            .expression_attribute_values(":id", s(&event_id.to_string()));
        let items = self.query_all(query).await?;
        let mut records: Vec<DeliveryRecord> = Vec::new();
        let mut attempts: Vec<(String, Attempt)> = Vec::new();
        for item in &items {
            let sk = get_s(item, "sk").unwrap_or_default();
            if let Some(sub) = sk.strip_prefix("SUB#") {
                records.push(DeliveryRecord {
                    subscription_id: sub.to_string(),
                    organization_id: get_s(item, "organizationId").unwrap_or_default().to_string(),
                    state: read_state(item).unwrap_or(State::Sending),
                    attempts: Vec::new(),
                    updated_at: get_time(item, "updatedAt"),
                    dead_lettered: get_s(item, "exhausted").is_some(),
                    next_attempt_at: get_n(item, "retryAt")
                        .filter(|_| read_state(item) == Some(State::Retrying))
                        .and_then(DateTime::from_timestamp_millis),
                });
            } else if let Some(rest) = sk.strip_prefix("ATTEMPT#") {
                let sub = rest.rsplit_once('#').map(|(s, _)| s.to_string()).unwrap_or_default();
                if let Some(a) = get_s(item, "doc").and_then(|d| serde_json::from_str(d).ok()) {
                    attempts.push((sub, a));
                }
            }
        }
        for (sub, a) in attempts {
            if let Some(r) = records.iter_mut().find(|r| r.subscription_id == sub) {
                r.attempts.push(a);
            }
        }
        Ok(records)
    }

    /// The envelope a delivery was made from (events put on the bus directly are not in the
    /// event store, but every delivered pair keeps its envelope).
    async fn delivered_envelope(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .key_condition_expression("eventId = :id AND begins_with(sk, :p)")
            .expression_attribute_values(":id", s(&event_id.to_string()))
            .expression_attribute_values(":p", s("SUB#"))
            .limit(1)
            .send()
            .await
            .or_store("dynamodb:Query")?;
        Ok(out.items().first().and_then(|i| packed::envelope(i, "envelope")))
    }

    async fn reopen(&self, pair: PairKey<'_>, organization_id: &str, attempt: u32, now_ms: i64) -> Result<bool, StoreError> {
        let subscription_id = pair.subscription_id;
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(pair_key(pair)))
            .update_expression(
                "SET #st = :retrying, attemptNo = :n, leaseUntil = :zero, organizationId = :org, subscriptionId = :sub, updatedAt = :now, retryAt = :nowms REMOVE deadLetter, disablePending, retryPending, exhausted",
            )
            .condition_expression("attribute_not_exists(sk) OR NOT (#st = :sending AND leaseUntil > :nowms)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":retrying", s("retrying"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":n", n(i64::from(attempt)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":org", s(organization_id))
            .expression_attribute_values(":sub", s(subscription_id))
            .expression_attribute_values(":now", s(&Utc::now().to_rfc3339()))
            .expression_attribute_values(":nowms", n(now_ms))
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }
}

/// The one value of `exhausted`: the sparse index holds exhausted pairs only.
const EXHAUSTED: &str = "exhausted";

/// An exhausted pair as the operator's listing shows it.
fn dead_letter(item: &Item) -> Option<DeadLetter> {
    let subscription_id = get_s(item, "sk")?.strip_prefix("SUB#")?.to_string();
    let answer = get_s(item, "lastAnswer").unwrap_or_default();
    let status: Option<u16> = answer.parse().ok();
    Some(DeadLetter {
        event_id: get_s(item, "eventId")?.parse().ok()?,
        event_type: packed::envelope(item, "envelope").map(|e| e.event_type).unwrap_or_default(),
        subscription_id,
        organization_id: get_s(item, "organizationId").unwrap_or_default().to_string(),
        exhausted_at: get_time(item, "updatedAt"),
        attempts: get_n(item, "attemptNo").unwrap_or(1) as u32,
        last_status_code: status,
        last_error_kind: status.is_none().then(|| answer.to_string()).filter(|a| !a.is_empty()),
    })
}

/// A pair item's state, as a refused claim returns it.
fn pair_status(item: &Item) -> Option<PairStatus> {
    Some(PairStatus {
        state: read_state(item)?,
        attempt_no: get_n(item, "attemptNo").unwrap_or(1) as u32,
        retry_at_ms: get_n(item, "retryAt"),
        dead_letter_pending: get_s(item, "deadLetter") == Some("pending"),
        disable_pending: get_s(item, "disablePending") == Some("pending"),
        retry_pending: get_s(item, "retryPending") == Some("pending"),
        updated_at: get_s(item, "updatedAt").and_then(|t| t.parse().ok()),
    })
}
