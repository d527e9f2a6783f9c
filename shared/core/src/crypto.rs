//! The cryptographic primitives both signing directions share: HMAC-SHA256 for the webhooks
//! Relay sends ([`crate::signing`]) and the ones it verifies ([`crate::webhooks::verify`]), and
//! the SHA-256 digests used for fingerprints and stored hashes. One place, so a fix (a
//! constant-time comparison, a key-length rule) reaches every caller.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new_from_slice(&[0]).expect("HMAC takes any key"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Whether `candidate` is HMAC-SHA256(key, parts), compared in constant time
/// (`Mac::verify_slice`), so a timing difference reveals nothing about the expected value.
pub fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], candidate: &[u8]) -> bool {
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else { return false };
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(candidate).is_ok()
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The lowercase hex SHA-256 of the concatenation of `parts`.
pub fn sha256_hex_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2_and_a_constant_time_match() {
        // RFC 4231, test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing?"], &mac));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing!"], &mac));
        assert_eq!(sha256_hex(b"abc"), sha256_hex_of(&[b"a", b"bc"]));
    }
}
