//! API keys. A key is shown once, at creation; Relay stores only its SHA-256 hash, so a leaked
//! table does not leak keys. A key belongs to a principal: a product (may publish events as that
//! product), an organisation (may see and change only its own organisation), or an operator.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Product,
    Organization,
    Admin,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Product => "rk_prod_",
            Self::Organization => "rk_org_",
            Self::Admin => "rk_admin_",
        }
    }
}

impl std::str::FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "product" => Ok(Self::Product),
            "organization" | "org" => Ok(Self::Organization),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown key kind {other:?}: use product, organization or admin")),
        }
    }
}

/// What a key may do, as stored beside its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub kind: KeyKind,
    /// Set for product keys: the `sourceProduct` the key publishes as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Set for organisation keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub disabled: bool,
}

impl ApiKey {
    /// The stable identity idempotency keys and rate limits are scoped to. Two keys of one
    /// product share it, so a client that rotates its key mid-retry still gets its replay.
    pub fn principal(&self) -> String {
        match self.kind {
            KeyKind::Product => format!("product:{}", self.product.as_deref().unwrap_or("")),
            KeyKind::Organization => {
                format!("org:{}", self.organization_id.as_deref().unwrap_or(""))
            }
            KeyKind::Admin => format!("admin:{}", self.name),
        }
    }
}

/// A new random key of the given kind: prefix + 32 random bytes, base64url.
pub fn generate(kind: KeyKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The hash a key is stored and looked up under.
pub fn hash(key: &str) -> String {
    crate::crypto::sha256_hex(key.as_bytes())
}

/// The key in an `Authorization: Bearer <key>` header value, if well-formed.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() && key.len() <= 256).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hash_stably() {
        let a = generate(KeyKind::Product);
        assert!(a.starts_with("rk_prod_") && a.len() > 40);
        assert_ne!(a, generate(KeyKind::Product));
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
