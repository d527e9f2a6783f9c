//! Every id Relay makes up, in one place: a short type prefix (so an id read in a log or a URL
//! says what it names) and 20 random base32 characters (100 bits: unguessable, so an id never
//! grants anything but is never enumerable either).

use rand::RngCore;

/// Webhook sources (incoming).
pub const SOURCE_PREFIX: &str = "src_";
/// Organisations' subscriptions (outgoing).
pub const SUBSCRIPTION_PREFIX: &str = "sub_";
/// Platform integrations, stored as subscriptions; an organisation's subscription id never
/// begins with this.
pub const INTEGRATION_PREFIX: &str = "int_";

/// `prefix` and 20 random base32 characters.
fn random_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", bytes.iter().map(|b| ALPHABET[(*b as usize) % 32] as char).collect::<String>())
}

/// A new webhook source id.
pub fn new_source_id() -> String {
    random_id(SOURCE_PREFIX)
}

/// A new subscription id.
pub fn new_subscription_id() -> String {
    random_id(SUBSCRIPTION_PREFIX)
}

/// The subscription id an integration is stored under: fixed, so there is one per pair.
pub fn integration_id(source: &str, target: &str) -> String {
    format!("{INTEGRATION_PREFIX}{source}_{target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_say_what_they_name_and_differ() {
        let (a, b) = (new_source_id(), new_source_id());
        assert!(a.starts_with("src_") && a.len() == 24 && a != b);
        assert!(new_subscription_id().starts_with("sub_"));
        assert_eq!(integration_id("recruitiq", "nexus"), "int_recruitiq_nexus");
    }
}
