//! The bus publisher on EventBridge: `Source` = product, `DetailType` = event type, `Detail` =
//! the envelope (DESIGN.md §3). Entries are packed up to ten and 256 KB to a call (the service
//! limits, the size counted over the whole request) and only the entries a call reports as
//! failed are sent again.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use relay_core::model::envelope::EventEnvelope;
use relay_core::ports::{EventPublisher, PublishError};

/// Entries per PutEvents call (service limit).
const MAX_ENTRIES: usize = 10;
/// Bytes per PutEvents call, all entries together (service limit: 256 KB).
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// An entry's size as EventBridge counts it: Source, DetailType and Detail bytes, plus 14 for
/// the time.
fn entry_size(e: &EventEnvelope) -> usize {
    14 + e.source_product.len() + e.event_type.len() + e.to_json().len()
}

/// Splits `events` into calls of at most ten entries and 256 KB.
fn calls(events: &[EventEnvelope]) -> Vec<&[EventEnvelope]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let size = entry_size(e);
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES) {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}
/// Attempts for entries a call reports as failed (throttling, internal errors). Whole-call
/// errors are already retried by the SDK's standard retry policy.
const ATTEMPTS: usize = 3;

pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(config: &aws_config::SdkConfig, bus_name: String) -> Self {
        Self { client: Client::new(config), bus_name }
    }

    fn entry(&self, e: &EventEnvelope) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&e.source_product)
            .detail_type(&e.event_type)
            .detail(e.to_json())
            .build()
    }

    /// Sends one chunk, retrying just its failed entries; one outcome per entry.
    async fn send_chunk(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>> {
        let mut outcomes: Vec<Result<(), PublishError>> = events.iter().map(|_| Err(PublishError("not sent".into()))).collect();
        let mut pending: Vec<usize> = (0..events.len()).collect();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * 4u64.pow(attempt as u32 - 1))).await;
            }
            let entries = pending.iter().map(|&i| self.entry(&events[i])).collect();
            match self.client.put_events().set_entries(Some(entries)).send().await {
                Ok(out) => {
                    let results = out.entries();
                    let mut still = Vec::new();
                    for (pos, &i) in pending.iter().enumerate() {
                        match results.get(pos) {
                            Some(r) if r.error_code().is_none() && r.event_id().is_some() => outcomes[i] = Ok(()),
                            Some(r) => {
                                let why = format!("{}: {}", r.error_code().unwrap_or("?"), r.error_message().unwrap_or(""));
                                outcomes[i] = Err(PublishError(why));
                                still.push(i);
                            }
                            None => still.push(i),
                        }
                    }
                    pending = still;
                }
                Err(e) => {
                    let why = aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string();
                    tracing::warn!(attempt, error = %why, "PutEvents failed");
                    for &i in &pending {
                        outcomes[i] = Err(PublishError(why.clone()));
                    }
                    // The SDK already retried this call; a second round would only stretch the
                    // caller's wait past its deadline.
                    break;
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        outcomes
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for chunk in calls(events) {
            outcomes.extend(self.send_chunk(chunk).await);
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload_bytes: usize) -> EventEnvelope {
        let payload = serde_json::json!({"notes": "n".repeat(payload_bytes)});
        EventEnvelope {
            event_id: uuid::Uuid::new_v4(),
            event_type: "candidate.hired".into(),
            event_version: "1.0".into(),
            source_product: "recruitiq".into(),
            organization_id: "org".into(),
            timestamp: chrono::Utc::now(),
            correlation_id: None,
            payload: payload.as_object().cloned(),
            payload_ref: None,
        }
    }

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kb() {
        let small: Vec<EventEnvelope> = (0..25).map(|_| event(10)).collect();
        assert_eq!(calls(&small).iter().map(|c| c.len()).collect::<Vec<_>>(), [10, 10, 5]);
        // Two events of 150 KiB each fit the entry limit but not one request together.
        let large = vec![event(150 * 1024), event(150 * 1024), event(10)];
        let split = calls(&large);
        assert_eq!(split.iter().map(|c| c.len()).collect::<Vec<_>>(), [1, 2]);
        for c in split {
            assert!(c.iter().map(entry_size).sum::<usize>() <= MAX_REQUEST_BYTES);
        }
    }
}
