//! Outgoing mail, in memory: the verification mailer and the organisation notifier.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::ports::{Mailer, Notifier, StoreError};

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

/// Notifies the organisations that have a contact (see [`MemoryNotifier::with_contact`]);
/// keeps each notice as (organisation, subject, body).
#[derive(Default)]
pub struct MemoryNotifier {
    contacts: Mutex<HashSet<String>>,
    sent: Mutex<Vec<Mail>>,
}

impl MemoryNotifier {
    pub fn with_contact(self, organization_id: &str) -> Self {
        lock(&self.contacts).insert(organization_id.to_string());
        self
    }
    pub fn sent(&self) -> Vec<Mail> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, organization_id: &str, subject: &str, body: &str) -> Result<bool, StoreError> {
        if !lock(&self.contacts).contains(organization_id) {
            return Ok(false);
        }
        lock(&self.sent).push((organization_id.to_string(), subject.to_string(), body.to_string()));
        Ok(true)
    }
}
