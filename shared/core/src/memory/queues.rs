//! The retry queue and the dead-letter queue, in memory: what was queued, with its delay.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::delivery::RetryMessage;
use crate::ports::{RetryQueue, StoreError};

/// Keeps every scheduled retry and dead letter; the next `fail_next` sends fail.
#[derive(Default)]
pub struct MemoryRetries {
    scheduled: Mutex<Vec<(RetryMessage, Duration)>>,
    dead_letters: Mutex<Vec<String>>,
    /// This many of the next sends fail as if SQS were down.
    pub fail_next: AtomicUsize,
}

impl MemoryRetries {
    /// Every retry scheduled so far, oldest first.
    pub fn scheduled(&self) -> Vec<(RetryMessage, Duration)> {
        lock(&self.scheduled).clone()
    }
    /// Takes the retries scheduled so far (to run them, as SQS would).
    pub fn take_scheduled(&self) -> Vec<(RetryMessage, Duration)> {
        std::mem::take(&mut *lock(&self.scheduled))
    }
    pub fn dead_letters(&self) -> Vec<String> {
        lock(&self.dead_letters).clone()
    }
    fn check_up(&self, op: &'static str) -> Result<(), StoreError> {
        let failing = self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(StoreError::new(op, "injected fault"));
        }
        Ok(())
    }
}

#[async_trait]
impl RetryQueue for MemoryRetries {
    async fn schedule(&self, message: &RetryMessage, delay: Duration) -> Result<(), StoreError> {
        self.check_up("schedule")?;
        lock(&self.scheduled).push((message.clone(), delay));
        Ok(())
    }
    async fn dead_letter(&self, body: &str) -> Result<(), StoreError> {
        self.check_up("dead_letter")?;
        lock(&self.dead_letters).push(body.to_string());
        Ok(())
    }
}
