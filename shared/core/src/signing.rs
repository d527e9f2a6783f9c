//! Standard Webhooks signing, done once, here: `webhook-signature` is `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, one entry per active secret (several while a rotated secret is
//! still valid), keyed with the base64 part of each `whsec_` secret.

use base64::Engine;
use rand::RngCore;

use crate::crypto::hmac_sha256 as sign;

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The HMAC key of a `whsec_<base64>` secret (the same rule for the secrets Relay signs with
/// and the Standard Webhooks sources it verifies).
pub fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    // Lenient about the unused bits of the last character, as the official libraries are
    // (Python's base64, Node's Buffer): a secret they accept is accepted here too.
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()
}

/// The `webhook-signature` header value for `body`, signed with every secret given.
pub fn signature_header(id: &str, timestamp: i64, body: &[u8], secrets: &[&str]) -> String {
    let ts = timestamp.to_string();
    secrets
        .iter()
        .filter_map(|s| standard_webhooks_key(s))
        .map(|key| {
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(sign(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::{verify, InboundRequest, Provider, Source, SourceOptions};

    #[test]
    fn what_relay_signs_its_own_verifier_accepts_for_each_secret() {
        let (old, new) = (new_secret(), new_secret());
        let body = br#"{"type":"candidate.hired","timestamp":"2026-01-01T00:00:00Z","data":{}}"#;
        let header = signature_header("msg_1", 1_700_000_000, body, &[&new, &old]);
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&old, &new] {
            let source = Source {
                id: "s".into(),
                organization_id: "o".into(),
                provider: Provider::StandardWebhooks,
                secret: secret.clone(),
                options: SourceOptions::default(),
                created_at: chrono::Utc::now(),
            };
            let req = InboundRequest {
                method: "POST".into(),
                headers: [("webhook-id", "msg_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", header.as_str())]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                query: Default::default(),
                body: body.to_vec(),
            };
            assert!(verify::verify(&source, &req, 1_700_000_000).is_ok());
        }
    }
}
