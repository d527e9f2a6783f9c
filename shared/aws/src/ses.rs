//! E-mail through SES (v2), from the template's verified sender: the [`Mailer`] port. Who is
//! mailed is the domain's business (`relay_core::notify`).

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use relay_core::ports::{Mailer, StoreError};

pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(config: &aws_config::SdkConfig, from: String) -> Self {
        Self { client: Client::new(config), from }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), StoreError> {
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
        Ok(())
    }
}
