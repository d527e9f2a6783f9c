//! What the API shows of the mail path: a message's log entry (to the product that sent it,
//! the organisation it was sent for, or an operator) and the suppression list (operators).

use std::sync::Arc;

use uuid::Uuid;

use crate::model::mail::{suppression_key, Sender};
use crate::model::mail_log::{MailMessage, MailRecipients, Suppression};
use crate::model::problem::{Problem, ProblemKind};
use crate::ports::{MailLog, StoreError, SuppressionList};

/// Who is looking.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// A product key: the messages it sent.
    Product(Sender),
    /// An organisation key: the messages sent for it.
    Organization(&'a str),
    Operator,
}

/// The log and the suppression list, read for the API.
pub struct MailRecords {
    pub log: Arc<dyn MailLog>,
    pub suppressions: Arc<dyn SuppressionList>,
}

impl MailRecords {
    /// The message and, within their retention, its addresses. Someone else's message is a 404,
    /// exactly like a missing one.
    pub async fn message(&self, id: Uuid, viewer: Viewer<'_>, now: i64) -> Result<(MailMessage, Option<MailRecipients>), Problem> {
        let not_found = || Problem::new(ProblemKind::NotFound, format!("no message {id}"));
        let message = self.log.get_message(id, now).await.map_err(unavailable)?.ok_or_else(not_found)?;
        let visible = match viewer {
            Viewer::Product(sender) => message.sender == sender,
            Viewer::Organization(org) => message.organization_id == org,
            Viewer::Operator => true,
        };
        if !visible {
            return Err(not_found());
        }
        let recipients = self.log.get_recipients(id, now).await.map_err(unavailable)?;
        Ok((message, recipients))
    }

    pub async fn suppressions(&self, cursor: Option<&str>, limit: usize) -> Result<(Vec<Suppression>, Option<String>), Problem> {
        if cursor.is_some_and(|c| c.len() > 254) {
            return Err(Problem::new(ProblemKind::InvalidRequest, "cursor must be the nextCursor of the previous page (an address)"));
        }
        self.suppressions.list_suppressions(cursor, limit).await.map_err(unavailable)
    }

    /// Takes an address off the list (an operator who knows the mailbox works again).
    pub async fn unsuppress(&self, address: &str) -> Result<(), Problem> {
        let key = suppression_key(address);
        if key.len() > 254 {
            return Err(Problem::new(ProblemKind::NotFound, "that address is not on the suppression list"));
        }
        match self.suppressions.remove_suppression(&key).await.map_err(unavailable)? {
            true => {
                tracing::info!("an address was taken off the suppression list");
                Ok(())
            }
            false => Err(Problem::new(ProblemKind::NotFound, "that address is not on the suppression list")),
        }
    }
}

fn unavailable(e: StoreError) -> Problem {
    tracing::error!(error = %e, "reading the mail log failed");
    Problem::unavailable("Relay could not read the mail log; retry", 2)
}
