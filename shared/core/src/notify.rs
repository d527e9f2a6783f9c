//! Telling an organisation about something it must act on (its endpoint was disabled): a system
//! mail to its verified contact address, through the mail path like every other mail. A pending
//! address (one whose code has not come back) is never mailed, so nobody can point Relay's mail
//! at someone else's inbox.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::model::mail::MailRequest;
use crate::ports::{Mailer, Notifier, OrganizationStore, StoreError};

/// The [`Notifier`] deliver uses: the contact from the organisation store, the mail through
/// the mail path.
pub struct ContactNotifier {
    organizations: Arc<dyn OrganizationStore>,
    mailer: Arc<dyn Mailer>,
}

impl ContactNotifier {
    pub fn new(organizations: Arc<dyn OrganizationStore>, mailer: Arc<dyn Mailer>) -> Self {
        Self { organizations, mailer }
    }
}

#[async_trait]
impl Notifier for ContactNotifier {
    async fn notify(&self, organization_id: &str, template: &str, data: Map<String, Value>) -> Result<bool, StoreError> {
        let Some(to) = self.organizations.contact(organization_id).await? else { return Ok(false) };
        self.mailer.request_mail(organization_id, &MailRequest::system(&to, template, data)).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryMailer, MemoryOrganizations};

    #[tokio::test]
    async fn only_a_verified_contact_is_mailed_never_a_pending_address() {
        let organizations = Arc::new(MemoryOrganizations::default());
        let mailer = Arc::new(MemoryMailer::default());
        let notifier = ContactNotifier::new(organizations.clone(), mailer.clone());
        let now = chrono::Utc::now();

        assert!(!notifier.notify("org-1", "endpoint-disabled", Map::new()).await.unwrap(), "no contact on record");
        let mut profile = organizations.profile("org-1").await.unwrap();
        let code = profile.request("ops@example.com", now).unwrap();
        organizations.put_profile("org-1", &profile).await.unwrap();
        assert!(!notifier.notify("org-1", "endpoint-disabled", Map::new()).await.unwrap(), "a pending address is not the contact");
        assert!(mailer.sent().is_empty());

        profile.verify(&code, now).unwrap();
        organizations.put_profile("org-1", &profile).await.unwrap();
        assert!(notifier.notify("org-1", "endpoint-disabled", Map::new()).await.unwrap());
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].0.as_str(), sent[0].1.recipients.to.as_slice(), sent[0].1.template_name()),
            ("org-1", &["ops@example.com".to_string()][..], Some("endpoint-disabled"))
        );
    }
}
