//! Tenant licences: what a tenant may run (tier, products, seats, until when), signed with
//! Relay's Ed25519 key so a tenant's application checks it offline with the public key Relay
//! publishes (`GET /v1/licence-key`), never calling home.
//!
//! The token is `<payload>.<signature>`: the licence as compact JSON, then the Ed25519
//! signature over those exact bytes, each base64url without padding. The signature covers
//! the payload's bytes as sent, so a verifier never re-serialises anything. Ed25519 signatures
//! are deterministic, so the same licence signed twice (a step resumed) is the same token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::tenant::Tenant;

/// How long a licence runs from the tenant's creation.
pub const LICENCE_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Licence {
    /// Always `relay-licence/1`, so a verifier refuses anything else signed with the key.
    pub kind: String,
    pub organization_id: String,
    /// The host the tenant is served at (`acme.tenants.example`): an application checks it is
    /// the one it serves, so a licence cannot move to another tenant's instance.
    pub host: String,
    pub tier: String,
    pub products: Vec<String>,
    pub seats: u32,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The key that signed it (see [`LicenceKey::key_id`]), so keys can be rotated.
    pub key_id: String,
}

pub const LICENCE_KIND: &str = "relay-licence/1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LicenceError {
    #[error("the licence key must be 32 bytes, base64 (an Ed25519 seed)")]
    BadKey,
    #[error("not a licence token")]
    Malformed,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the licence expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the licence was issued for another tenant")]
    OtherTenant,
}

/// Relay's licence signing key.
pub struct LicenceKey {
    key: SigningKey,
}

impl LicenceKey {
    /// From the 32-byte Ed25519 seed, base64 (standard or URL-safe), as kept in the encrypted
    /// parameter.
    pub fn from_base64(seed: &str) -> Result<Self, LicenceError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(seed.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(seed.trim().trim_end_matches('=')))
            .map_err(|_| LicenceError::BadKey)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| LicenceError::BadKey)?;
        Ok(Self { key: SigningKey::from_bytes(&seed) })
    }

    /// The public half, which the API publishes.
    pub fn public(&self) -> LicencePublicKey {
        LicencePublicKey { key: self.key.verifying_key() }
    }

    /// The public key, raw 32 bytes base64url: what a tenant's application verifies with.
    pub fn public_key(&self) -> String {
        self.public().public_key()
    }

    pub fn public_key_pem(&self) -> String {
        self.public().public_key_pem()
    }

    pub fn key_id(&self) -> String {
        self.public().key_id()
    }

    /// The tenant's licence and its token.
    pub fn issue(&self, tenant: &Tenant) -> (Licence, String) {
        let r = &tenant.request;
        let licence = Licence {
            kind: LICENCE_KIND.into(),
            organization_id: r.organization_id.clone(),
            host: tenant.url.trim_start_matches("https://").to_string(),
            tier: r.tier.name().into(),
            products: r.products.clone(),
            seats: r.tier.seats(),
            issued_at: tenant.created_at,
            expires_at: tenant.created_at + chrono::Duration::days(LICENCE_DAYS),
            key_id: self.key_id(),
        };
        let payload = serde_json::to_vec(&licence).unwrap_or_default();
        let signature = self.key.sign(&payload);
        let token = format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        (licence, token)
    }
}

/// Relay's licence public key: all the API needs to publish it (the manage function never holds
/// the signing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicencePublicKey {
    key: VerifyingKey,
}

impl LicencePublicKey {
    /// From the raw 32-byte key, base64url (what `public_key` gives) or standard base64.
    pub fn from_base64(public_key: &str) -> Result<Self, LicenceError> {
        let text = public_key.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
            .map_err(|_| LicenceError::BadKey)?;
        let raw: [u8; 32] = bytes.try_into().map_err(|_| LicenceError::BadKey)?;
        Ok(Self { key: VerifyingKey::from_bytes(&raw).map_err(|_| LicenceError::BadKey)? })
    }

    /// Raw 32 bytes, base64url: what a tenant's application verifies with.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }

    /// As an X.509 SubjectPublicKeyInfo PEM (what OpenSSL and most libraries read).
    pub fn public_key_pem(&self) -> String {
        // SPKI for Ed25519 is a fixed 12-byte prefix (RFC 8410) and the raw key.
        let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        der.extend_from_slice(self.key.as_bytes());
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64::engine::general_purpose::STANDARD.encode(der))
    }

    /// A short id of the key: the first 8 bytes of its SHA-256, hex (each licence names it).
    pub fn key_id(&self) -> String {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(self.key.as_bytes())[..8])
    }
}

/// What a tenant's application does with a token: checks it with Relay's public key (raw,
/// base64url), that it was issued for this organisation and host, and that it runs.
pub fn verify(token: &str, public_key: &str, organization_id: &str, host: &str, now: DateTime<Utc>) -> Result<Licence, LicenceError> {
    let key: [u8; 32] = URL_SAFE_NO_PAD.decode(public_key).ok().and_then(|k| k.try_into().ok()).ok_or(LicenceError::BadKey)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| LicenceError::BadKey)?;
    let (payload, signature) = token.split_once('.').ok_or(LicenceError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LicenceError::Malformed)?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(signature).ok().and_then(|s| s.try_into().ok()).ok_or(LicenceError::Malformed)?;
    key.verify(&payload, &Signature::from_bytes(&signature)).map_err(|_| LicenceError::BadSignature)?;
    let licence: Licence = serde_json::from_slice(&payload).map_err(|_| LicenceError::Malformed)?;
    if licence.kind != LICENCE_KIND {
        return Err(LicenceError::Malformed);
    }
    if licence.organization_id != organization_id || licence.host != host {
        return Err(LicenceError::OtherTenant);
    }
    if licence.expires_at <= now {
        return Err(LicenceError::Expired(licence.expires_at));
    }
    Ok(licence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::tenant::{DeploymentType, TenantRequest, Tier};

    /// RFC 8032 §7.1, test 1: the seed and the public key it gives.
    const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn tenant() -> Tenant {
        let request = TenantRequest {
            organization_id: "org-acme".into(),
            name: "Acme".into(),
            slug: "acme".into(),
            tier: Tier::Professional,
            deployment_type: DeploymentType::Shared,
            contact_email: "it@acme.example".into(),
            products: vec!["recruitiq".into(), "nexus".into()],
        };
        Tenant::new(request, "https://acme.tenants.example".into(), "2026-11-24T10:00:00Z".parse().unwrap())
    }

    #[test]
    fn the_key_is_rfc_8032s_and_a_token_verifies_with_the_public_key_only() {
        let key = LicenceKey::from_base64(SEED).unwrap();
        assert_eq!(hex::encode(URL_SAFE_NO_PAD.decode(key.public_key()).unwrap()), PUBLIC);
        let (licence, token) = key.issue(&tenant());
        assert_eq!((licence.seats, licence.tier.as_str()), (100, "professional"));
        assert_eq!(key.issue(&tenant()).1, token, "deterministic: a resumed step issues the same token");
        let now = "2027-01-01T00:00:00Z".parse().unwrap();
        let verify = |token: &str, public: &str, at| super::verify(token, public, "org-acme", "acme.tenants.example", at);
        assert_eq!(verify(&token, &key.public_key(), now), Ok(licence.clone()));
        assert_eq!(super::verify(&token, &key.public_key(), "org-other", "acme.tenants.example", now), Err(LicenceError::OtherTenant));
        assert_eq!(super::verify(&token, &key.public_key(), "org-acme", "evil.tenants.example", now), Err(LicenceError::OtherTenant));

        // Tampered, signed by another key, expired, or not a token: refused.
        let (payload, sig) = token.split_once('.').unwrap();
        let mut forged: Licence = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        forged.seats = 100_000;
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap()));
        assert_eq!(verify(&forged, &key.public_key(), now), Err(LicenceError::BadSignature));
        let other = LicenceKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(verify(&token, &other.public_key(), now), Err(LicenceError::BadSignature));
        let later = "2028-01-01T00:00:00Z".parse().unwrap();
        assert!(matches!(verify(&token, &key.public_key(), later), Err(LicenceError::Expired(_))));
        assert_eq!(verify("nonsense", &key.public_key(), now), Err(LicenceError::Malformed));
        assert_eq!(LicenceKey::from_base64("c2hvcnQ=").err(), Some(LicenceError::BadKey));
        assert!(key.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        let published = LicencePublicKey::from_base64(&key.public_key()).unwrap();
        assert_eq!(published, key.public());
        assert_eq!(
            LicencePublicKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(hex::decode(PUBLIC).unwrap())).unwrap(),
            published
        );
        assert_eq!(LicencePublicKey::from_base64("c2hvcnQ=").err(), Some(LicenceError::BadKey));
    }
}
