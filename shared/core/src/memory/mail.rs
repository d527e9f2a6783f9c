//! Outgoing mail, in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::guard::lock;
use crate::ports::{Mailer, StoreError};

/// One mail: (to, subject, body).
pub type Mail = (String, String, String);

/// Keeps every mail sent; can be told to fail.
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Mail>>,
    pub fail: AtomicBool,
}

impl MemoryMailer {
    pub fn sent(&self) -> Vec<Mail> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::new("send", "injected fault"));
        }
        lock(&self.sent).push((to.to_string(), subject.to_string(), body.to_string()));
        Ok(())
    }
}
