//! A registered webhook source as it is stored. Opening it (its secrets unsealed) and checking a
//! registration are in [`crate::webhooks::sources`].

use chrono::{DateTime, Utc};

/// A registered webhook source as stored: its secrets sealed (see [`crate::secrets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSource {
    pub id: String,
    pub organization_id: String,
    pub provider: String,
    pub sealed_secret: String,
    /// The options as JSON, with any signing secret sealed.
    pub options: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}
