//! Provider event types to internal event types. The mapped ones are the events the platform
//! acts on; anything else becomes `<provider>.<type>`, normalised to the envelope's rules, so
//! nothing a provider sends is dropped for want of a mapping.

use super::Provider;
use crate::model::validation::is_event_type;

/// The internal event type for a provider's event type.
pub fn internal_type(provider: Provider, provider_type: &str) -> String {
    let mapped = match (provider, provider_type) {
        (Provider::Stripe, "payment_intent.succeeded") => Some("payment.received"),
        (Provider::Stripe, "payment_intent.payment_failed") => Some("payment.failed"),
        (Provider::Checkr, "report.completed") => Some("background_check.completed"),
        (Provider::Linkedin, t) if t.to_ascii_lowercase().contains("application") => Some("application.received"),
        (Provider::Mollie, "payment.paid") => Some("payment.received"),
        _ => None,
    };
    if let Some(m) = mapped {
        return m.to_string();
    }
    let prefix = provider.slug().replace('-', "_");
    let words: Vec<String> = provider_type
        .split(['.', '/', ':'])
        .map(|w| w.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect::<String>())
        .map(|w| w.trim_matches('_').to_string())
        .filter(|w| !w.is_empty())
        .map(|w| if w.starts_with(|c: char| c.is_ascii_digit()) { format!("n{w}") } else { w })
        .collect();
    let candidate = format!("{prefix}.{}", if words.is_empty() { "event".to_string() } else { words.join(".") });
    if is_event_type(&candidate) {
        candidate
    } else {
        format!("{prefix}.event")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_unmapped_types() {
        assert_eq!(internal_type(Provider::Stripe, "payment_intent.succeeded"), "payment.received");
        assert_eq!(internal_type(Provider::Stripe, "payment_intent.payment_failed"), "payment.failed");
        assert_eq!(internal_type(Provider::Checkr, "report.completed"), "background_check.completed");
        assert_eq!(internal_type(Provider::Linkedin, "JOB_APPLICATION"), "application.received");
        assert_eq!(internal_type(Provider::Mollie, "payment.paid"), "payment.received");
        assert_eq!(internal_type(Provider::Stripe, "customer.created"), "stripe.customer.created");
        assert_eq!(internal_type(Provider::StandardWebhooks, "User-Created"), "standard_webhooks.user_created");
        assert_eq!(internal_type(Provider::Github, "pull_request.opened"), "github.pull_request.opened");
        assert_eq!(internal_type(Provider::Hmac, "2fa/enabled"), "hmac.n2fa.enabled");
        assert_eq!(internal_type(Provider::Hmac, "!!!"), "hmac.event");
    }
}
