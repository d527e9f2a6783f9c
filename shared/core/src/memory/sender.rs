//! Webhook requests, in memory: each answered from a script, each kept for inspection.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::guard::lock;
use crate::model::delivery::{Outgoing, SendResult};
use crate::ports::WebhookSender;

/// Answers each URL's requests with the statuses scripted for it, in order, then `200`.
/// `None` in a script stands for a timeout.
#[derive(Default)]
pub struct ScriptedSender {
    scripts: Mutex<HashMap<String, VecDeque<Option<u16>>>>,
    sent: Mutex<Vec<Outgoing>>,
}

impl ScriptedSender {
    /// The next answers of `url`.
    pub fn script(&self, url: &str, answers: &[Option<u16>]) {
        lock(&self.scripts).entry(url.to_string()).or_default().extend(answers.iter().copied());
    }
    /// Every request sent so far.
    pub fn sent(&self) -> Vec<Outgoing> {
        lock(&self.sent).clone()
    }
    pub fn sent_to(&self, url: &str) -> usize {
        lock(&self.sent).iter().filter(|o| o.url == url).count()
    }
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn send(&self, request: Outgoing) -> SendResult {
        let answer = lock(&self.scripts).get_mut(&request.url).and_then(VecDeque::pop_front).unwrap_or(Some(200));
        lock(&self.sent).push(request);
        match answer {
            Some(status) => SendResult { status: Some(status), duration: Duration::from_millis(3), ..SendResult::default() },
            None => SendResult { error_kind: Some("timeout".into()), duration: Duration::from_secs(15), ..SendResult::default() },
        }
    }
}
