//! The mail path in memory: requests handed to it, the message log, the suppression list, and
//! a transport that records what it sent and can be told to fail.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use super::guard::lock;
use crate::model::mail::{MailRequest, OutgoingMail, SendFailure};
use crate::model::mail_log::{MailMessage, MailRecipients, Suppression};
use crate::ports::{MailLog, MailTransport, Mailer, StoreError, SuppressionList};

/// One requested mail: (organisation, request).
pub type Mail = (String, MailRequest);

/// Keeps every mail requested; can be told to fail.
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
    async fn request_mail(&self, organization_id: &str, request: &MailRequest) -> Result<Uuid, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::new("request mail", "injected fault"));
        }
        lock(&self.sent).push((organization_id.to_string(), request.clone()));
        Ok(Uuid::new_v4())
    }
}

/// The message log and the suppression list in maps, with the adapter's conditions.
#[derive(Default)]
pub struct MemoryMailLog {
    messages: Mutex<HashMap<Uuid, (MailMessage, MailRecipients)>>,
    suppressions: Mutex<BTreeMap<String, Suppression>>,
}

#[async_trait]
impl MailLog for MemoryMailLog {
    async fn create_message(&self, message: &MailMessage, recipients: &MailRecipients) -> Result<bool, StoreError> {
        let mut m = lock(&self.messages);
        if m.contains_key(&message.id) {
            return Ok(false);
        }
        m.insert(message.id, (message.clone(), recipients.clone()));
        Ok(true)
    }

    async fn get_message(&self, id: Uuid, now: i64) -> Result<Option<MailMessage>, StoreError> {
        Ok(lock(&self.messages).get(&id).map(|(m, _)| m.clone()).filter(|m| m.expires_at > now))
    }

    async fn get_recipients(&self, id: Uuid, now: i64) -> Result<Option<MailRecipients>, StoreError> {
        Ok(lock(&self.messages).get(&id).map(|(_, r)| r.clone()).filter(|r| r.expires_at > now))
    }

    async fn put_message(&self, message: &MailMessage, expected: u64) -> Result<bool, StoreError> {
        let mut m = lock(&self.messages);
        match m.get_mut(&message.id) {
            Some((stored, _)) if stored.version == expected => {
                *stored = message.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn put_recipients(&self, id: Uuid, recipients: &MailRecipients) -> Result<(), StoreError> {
        if let Some((_, r)) = lock(&self.messages).get_mut(&id) {
            *r = recipients.clone();
        }
        Ok(())
    }

    async fn delete_message(&self, id: Uuid) -> Result<(), StoreError> {
        lock(&self.messages).remove(&id);
        Ok(())
    }
}

#[async_trait]
impl SuppressionList for MemoryMailLog {
    async fn suppressed(&self, addresses: &[String]) -> Result<Vec<String>, StoreError> {
        let s = lock(&self.suppressions);
        Ok(addresses.iter().filter(|a| s.contains_key(*a)).cloned().collect())
    }

    async fn suppress(&self, entry: &Suppression) -> Result<(), StoreError> {
        lock(&self.suppressions).insert(entry.address.clone(), entry.clone());
        Ok(())
    }

    async fn list_suppressions(&self, cursor: Option<&str>, limit: usize) -> Result<(Vec<Suppression>, Option<String>), StoreError> {
        let s = lock(&self.suppressions);
        let after: Vec<&Suppression> = s.values().filter(|e| cursor.is_none_or(|c| e.address.as_str() > c)).collect();
        let page: Vec<Suppression> = after.iter().take(limit).map(|e| (*e).clone()).collect();
        let next = (after.len() > limit).then(|| page.last().map(|e| e.address.clone())).flatten();
        Ok((page, next))
    }

    async fn remove_suppression(&self, address: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.suppressions).remove(address).is_some())
    }
}

/// A transport that records each mail it sends, answering from a script of failures first.
#[derive(Default)]
pub struct MemoryTransport {
    sent: Mutex<Vec<OutgoingMail>>,
    script: Mutex<VecDeque<SendFailure>>,
}

impl MemoryTransport {
    /// The next sends fail with these, in order.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = SendFailure>) {
        lock(&self.script).extend(failures);
    }

    pub fn sent(&self) -> Vec<OutgoingMail> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl MailTransport for MemoryTransport {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, SendFailure> {
        if let Some(f) = lock(&self.script).pop_front() {
            return Err(f);
        }
        let mut sent = lock(&self.sent);
        sent.push(mail.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}
