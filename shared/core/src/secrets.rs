//! Application-level encryption of stored secrets (webhook signing secrets, provider secrets):
//! AES-256-GCM with a random 96-bit nonce per value, bound by associated data to the record it
//! belongs to, so a sealed secret copied onto another record does not open. Sealed form:
//! `v1.<base64(nonce || ciphertext || tag)>`. Plain secrets never reach the store or the logs.

use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

const VERSION: &str = "v1.";
const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the encryption key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a sealed secret could not be opened (wrong key, wrong record, or tampered)")]
    Unreadable,
}

/// Seals and opens secrets with one 256-bit key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// From the base64 key (`RELAY_SECRETS_KEY`).
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        let key = Key::<Aes256Gcm>::try_from(bytes.as_slice()).map_err(|_| SecretError::BadKey)?;
        Ok(Self { cipher: Aes256Gcm::new(&key) })
    }

    /// A key for `purpose` derived from the base64 key (HMAC-SHA256), so one configured
    /// secret serves several uses without one revealing another.
    pub fn derive_key(key: &str, purpose: &str) -> Result<Vec<u8>, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(crate::crypto::hmac_sha256(&bytes, &[purpose.as_bytes()]))
    }

    /// A new random key, base64 (for set-up and the local stack).
    pub fn generate_key() -> String {
        let key = Key::<Aes256Gcm>::generate();
        base64::engine::general_purpose::STANDARD.encode(key.as_slice())
    }

    pub fn seal(&self, plaintext: &str, record: &str) -> String {
        let nonce = Nonce::generate();
        // Encrypting a short string in memory cannot fail; an empty result would not open.
        let sealed = self.cipher.encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: record.as_bytes() }).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{VERSION}{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, record: &str) -> Result<String, SecretError> {
        let data = sealed
            .strip_prefix(VERSION)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|d| d.len() > NONCE_LEN)
            .ok_or(SecretError::Unreadable)?;
        let nonce = Nonce::try_from(&data[..NONCE_LEN]).map_err(|_| SecretError::Unreadable)?;
        let plain = self
            .cipher
            .decrypt(&nonce, Payload { msg: &data[NONCE_LEN..], aad: record.as_bytes() })
            .map_err(|_| SecretError::Unreadable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_its_record_and_key() {
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let sealed = b.seal("whsec_abc", "src_1");
        assert!(sealed.starts_with("v1.") && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, b.seal("whsec_abc", "src_1"), "a fresh nonce each time");
        assert_eq!(b.open(&sealed, "src_1").as_deref(), Ok("whsec_abc"));
        assert_eq!(b.open(&sealed, "src_2"), Err(SecretError::Unreadable));
        let other = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert_eq!(other.open(&sealed, "src_1"), Err(SecretError::Unreadable));
        assert_eq!(SecretBox::from_base64("c2hvcnQ=").err(), Some(SecretError::BadKey));
    }
}
