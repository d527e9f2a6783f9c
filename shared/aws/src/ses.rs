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
        // A send may take longer than a table write; a timeout is an unknown outcome (the mail
        // fails rather than go twice), so the limit is generous but well inside the function's.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .operation_attempt_timeout(std::time::Duration::from_secs(12))
            .operation_timeout(std::time::Duration::from_secs(12))
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
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
    let mut m = MessageBuilder::new().from(from).subject(mail.rendered.subject.as_str()).message_id(format!("{}@relay", mail.message_id));
    // No To header at all when every To address was suppressed (an empty one is malformed).
    if !mail.recipients.to.is_empty() {
        m = m.to(list(&mail.recipients.to));
    }
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

/// Whether a failed send may be tried again: only when SES itself answered that it did not
/// send (throttling, a quota, a fault it named) or no connection was ever made. A timeout, a
/// connection lost mid-request, an unreadable answer or a bare 5xx from something in between
/// leave the outcome unknown.
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_sesv2::config::http::HttpResponse>,
) -> SendFailure {
    let text = aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            let status = s.raw().status().as_u16();
            let throttled = matches!(code, "TooManyRequestsException" | "LimitExceededException" | "ThrottlingException" | "Throttling");
            // A 5xx SES names (InternalFailure, ServiceUnavailable) is SES saying it did not send.
            if throttled || status == 429 || (status >= 500 && !code.is_empty()) {
                SendFailure::Retryable(format!("{code} ({status})"))
            } else if status >= 500 {
                SendFailure::Unknown(format!("HTTP {status} without an SES error"))
            } else {
                SendFailure::Rejected(format!("{code}: {}", s.err().message().unwrap_or_default()))
            }
        }
        SdkError::DispatchFailure(_) if never_connected(&e) => SendFailure::Retryable(text),
        SdkError::ConstructionFailure(_) => SendFailure::Rejected(text),
        _ => SendFailure::Unknown(text),
    }
}

/// Did the request fail before a connection to SES was made (refused, unreachable, the
/// connect timeout, DNS)? Only then is it certain SES never saw it. The HTTP client reports the
/// connect phase as hyper-util's `Connect` kind (shown as `client error (Connect)`), its connect
/// timeout as `HTTP connect timeout ...` and a failed look-up as `failed to perform DNS lookup`;
/// a connection lost after the request went out is none of these.
fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(io.kind(), ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable) {
                return true;
            }
        }
        let text = err.to_string();
        if text == "client error (Connect)" || text.starts_with("HTTP connect timeout") || text == "failed to perform DNS lookup" {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use relay_core::model::mail::{Recipients, RenderedMail};

    use super::*;

    fn outgoing(to: &[&str], cc: &[&str], bcc: &[&str]) -> OutgoingMail {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        OutgoingMail {
            message_id: uuid::Uuid::nil(),
            from: "Paylinq <noreply@paylinq.com>".into(),
            recipients: Recipients { to: list(to), cc: list(cc), bcc: list(bcc) },
            reply_to: vec![],
            rendered: RenderedMail { subject: "Über alles".into(), html: Some("<p>hi</p>".into()), text: Some("hi".into()) },
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn bcc_never_becomes_a_header_and_an_empty_to_is_left_out() {
        let raw = String::from_utf8(mime(&outgoing(&["a@example.com"], &[], &["secret@example.com"])).unwrap()).unwrap();
        assert!(!raw.contains("secret@example.com"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "both parts: {raw}");
        assert!(raw.contains("Subject: =?utf-8?"), "a non-ASCII subject is encoded: {raw}");
        let raw = String::from_utf8(mime(&outgoing(&[], &["c@example.com"], &[])).unwrap()).unwrap();
        assert!(!raw.lines().any(|l| l.starts_with("To:")), "{raw}");
        assert!(raw.contains("Cc: <c@example.com>") || raw.contains("Cc: c@example.com"), "{raw}");
    }

    /// What the HTTP client reports when no connection was made, and when one was lost.
    #[test]
    fn only_a_connection_never_made_counts_as_not_sent() {
        #[derive(Debug)]
        struct Wrap(&'static str, Option<Box<dyn std::error::Error + 'static>>);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref()
            }
        }
        let chain = |inner: Box<dyn std::error::Error>| Wrap("dispatch failure", Some(Box::new(Wrap("io error", Some(inner)))));
        let refused = chain(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert!(never_connected(&refused));
        assert!(never_connected(&chain(Box::new(Wrap("client error (Connect)", None)))));
        assert!(never_connected(&chain(Box::new(Wrap("HTTP connect timeout occurred after 3s", None)))));
        let reset = chain(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert!(!never_connected(&reset), "a reset may come after SES took the mail");
        assert!(!never_connected(&chain(Box::new(Wrap("HTTP read timeout occurred after 12s", None)))));
    }
}
