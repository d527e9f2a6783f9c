//! The event bus, in memory.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::model::envelope::EventEnvelope;
use crate::ports::{EventPublisher, PublishError};

/// A bus that remembers what was published; can be told to fail.
#[derive(Default)]
pub struct MemoryBus {
    pub published: Mutex<Vec<EventEnvelope>>,
    pub fail: AtomicBool,
    pub calls: AtomicUsize,
}

impl MemoryBus {
    /// Everything published so far, in order.
    pub fn events(&self) -> Vec<EventEnvelope> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.published.lock().map(|p| p.len()).unwrap_or(0)
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    async fn publish(&self, events: &[EventEnvelope]) -> Vec<Result<(), PublishError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return events.iter().map(|_| Err(PublishError("injected fault".into()))).collect();
        }
        if let Ok(mut p) = self.published.lock() {
            p.extend(events.iter().cloned());
        }
        events.iter().map(|_| Ok(())).collect()
    }
}
