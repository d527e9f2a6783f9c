//! E-mail to an organisation's contact through SES (v2), from the template's verified sender.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use relay_core::ports::{Notifier, OrganizationStore, StoreError};

pub struct SesNotifier<O> {
    client: Client,
    organizations: O,
    from: String,
}

impl<O> SesNotifier<O> {
    pub fn new(config: &aws_config::SdkConfig, organizations: O, from: String) -> Self {
        Self { client: Client::new(config), organizations, from }
    }
}

#[async_trait]
impl<O: OrganizationStore> Notifier for SesNotifier<O> {
    async fn notify(&self, organization_id: &str, subject: &str, body: &str) -> Result<bool, StoreError> {
        let Some(to) = self.organizations.contact(organization_id).await? else { return Ok(false) };
        let text = |t: &str| Content::builder().data(t).charset("UTF-8").build().map_err(|e| StoreError::new("build Content", e));
        let message = Message::builder().subject(text(subject)?).body(Body::builder().text(text(body)?).build()).build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| StoreError::new("ses:SendEmail", aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
        Ok(true)
    }
}
