//! Mail through SES (v2), sent raw: a MIME message built here with both parts (text and
//! HTML) and the headers encoded as the RFCs want, so what the recipient's client shows is
//! exactly what was rendered. The SDK's own retries are off for this client: SES has no
//! idempotency token, so only the workflow (`relay_core::mail::send`), which knows whether a
//! try could have gone out, decides to try again.

use async_trait::async_trait;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use aws_sdk_sesv2::Client;
use mail_builder::headers::address::Address;
use mail_builder::MessageBuilder;
use relay_core::model::mail::{split_mailbox, OutgoingMail, SendFailure};
use relay_core::ports::MailTransport;

pub struct SesTransport {
    client: Client,
    /// The configuration set whose event destination reports bounces and complaints.
    configuration_set: Option<String>,
}

impl SesTransport {
    pub fn new(config: &aws_config::SdkConfig, configuration_set: Option<String>) -> Self {
        let ses = aws_sdk_sesv2::config::Builder::from(config).retry_config(aws_config::retry::RetryConfig::disabled()).build();
        Self { client: Client::from_conf(ses), configuration_set: configuration_set.filter(|c| !c.is_empty()) }
    }
}

/// The MIME message: From, To, Cc, Reply-To, Subject, a Message-ID from Relay's id, and a
/// multipart/alternative body. Bcc is never a header: those recipients are only in the
/// envelope (SES's Destination).
pub fn mime(mail: &OutgoingMail) -> Result<Vec<u8>, String> {
    let (name, address) = split_mailbox(&mail.from);
    let from: Address = match name {
        Some(n) => (n, address).into(),
        None => address.into(),
    };
    fn list(v: &[String]) -> Address<'_> {
        Address::new_list(v.iter().map(|a| Address::from(a.as_str())).collect())
    }
    let mut m = MessageBuilder::new()
        .from(from)
        .to(list(&mail.recipients.to))
        .subject(mail.rendered.subject.as_str())
        .message_id(format!("{}@relay", mail.message_id));
    if !mail.recipients.cc.is_empty() {
        m = m.cc(list(&mail.recipients.cc));
    }
    if !mail.reply_to.is_empty() {
        m = m.reply_to(list(&mail.reply_to));
    }
    if let Some(t) = &mail.rendered.text {
        m = m.text_body(t.as_str());
    }
    if let Some(h) = &mail.rendered.html {
        m = m.html_body(h.as_str());
    }
    m.write_to_vec().map_err(|e| format!("could not build the MIME message: {e}"))
}

#[async_trait]
impl MailTransport for SesTransport {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, SendFailure> {
        let raw = mime(mail).map_err(SendFailure::Rejected)?;
        let content = EmailContent::builder()
            .raw(RawMessage::builder().data(Blob::new(raw)).build().map_err(|e| SendFailure::Rejected(e.to_string()))?)
            .build();
        let destination = Destination::builder()
            .set_to_addresses(Some(mail.recipients.to.clone()))
            .set_cc_addresses(Some(mail.recipients.cc.clone()).filter(|v| !v.is_empty()))
            .set_bcc_addresses(Some(mail.recipients.bcc.clone()).filter(|v| !v.is_empty()))
            .build();
        let tags: Vec<MessageTag> = mail.tags.iter().filter_map(|(k, v)| MessageTag::builder().name(k).value(v).build().ok()).collect();
        let result = self
            .client
            .send_email()
            .from_email_address(&mail.from)
            .destination(destination)
            .content(content)
            .set_email_tags(Some(tags))
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Whether a failed send may be tried again: only when SES answered that it did not send
/// (throttling, a quota, a service fault) or the request never left. A timeout or an
/// unreadable answer leaves the outcome unknown.
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_sesv2::config::http::HttpResponse>,
) -> SendFailure {
    let text = aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            let status = s.raw().status().as_u16();
            if matches!(code, "TooManyRequestsException" | "LimitExceededException" | "ThrottlingException" | "Throttling")
                || status == 429
                || status >= 500
            {
                SendFailure::Retryable(format!("{code} ({status})"))
            } else {
                SendFailure::Rejected(format!("{code}: {}", s.err().message().unwrap_or_default()))
            }
        }
        SdkError::DispatchFailure(d) if d.is_io() && !d.is_timeout() => SendFailure::Retryable(text),
        SdkError::ConstructionFailure(_) => SendFailure::Rejected(text),
        _ => SendFailure::Unknown(text),
    }
}
