//! An organisation's profile: the contact address Relay's operational e-mails go to (an
//! endpoint disabled, ...). An address is used only once its owner proved they read it: a new
//! address waits as *pending* with a one-time code mailed to it, and becomes the contact when
//! the code comes back. The mail that carries the code says nothing the organisation chose, so
//! Relay's sender cannot be used to carry someone's text to a stranger.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::problem::{Problem, ProblemField, ProblemKind};

/// How long a verification code stays valid.
pub const CODE_LIFETIME_HOURS: i64 = 24;
/// The shortest wait between two verification mails for one organisation.
pub const RESEND_AFTER_SECS: i64 = 60;
/// Wrong codes tolerated for one pending address before a new one must be requested.
pub const MAX_CODE_TRIES: u32 = 5;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The verified contact address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingContact>,
}

/// An address waiting for its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingContact {
    pub email: String,
    /// SHA-256 of the code (the code itself is only in the mail).
    pub code_sha256: String,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub failed_tries: u32,
}

/// The verification mail: Relay's words and the code, nothing else.
/// The `contact-verification` system template's data: the code and how long it holds. The
/// mail carries nothing the organisation chose but the address it goes to.
pub fn verification_data(code: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut data = serde_json::Map::new();
    data.insert("code".into(), code.into());
    data.insert("hours".into(), CODE_LIFETIME_HOURS.into());
    data
}

fn digest(code: &str) -> String {
    crate::crypto::sha256_hex(code.trim().to_ascii_uppercase().as_bytes())
}

fn invalid(field: &str, message: &str) -> Problem {
    let mut p = Problem::new(ProblemKind::InvalidRequest, format!("{field} {message}"));
    p.errors = vec![ProblemField { field: field.into(), message: message.into() }];
    p
}

impl Profile {
    /// Starts verifying `email`: returns the code to mail. The verified contact (if any) stays
    /// in use until the new address is confirmed.
    pub fn request(&mut self, email: &str, now: DateTime<Utc>) -> Result<String, Problem> {
        if !is_one_address(email) {
            return Err(invalid("contactEmail", "must be one plain e-mail address (local@domain.tld)"));
        }
        if let Some(p) = &self.pending {
            let wait = RESEND_AFTER_SECS - (now - p.sent_at).num_seconds();
            if wait > 0 {
                let mut problem = Problem::new(ProblemKind::TooManyRequests, "a verification mail was sent less than a minute ago");
                problem.retry_after = Some(wait as u64);
                return Err(problem);
            }
        }
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::rng();
        let code: String = (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        self.pending = Some(PendingContact {
            email: email.to_string(),
            code_sha256: digest(&code),
            sent_at: now,
            expires_at: now + Duration::hours(CODE_LIFETIME_HOURS),
            failed_tries: 0,
        });
        Ok(code)
    }

    /// Confirms the pending address with `code`. On a wrong code the profile still changes (a try
    /// is counted), so the caller stores it either way.
    pub fn verify(&mut self, code: &str, now: DateTime<Utc>) -> Result<String, Problem> {
        let Some(p) = self.pending.as_mut() else {
            return Err(invalid("code", "matches no pending address; set contactEmail first"));
        };
        if p.expires_at <= now || p.failed_tries >= MAX_CODE_TRIES {
            self.pending = None;
            return Err(invalid("code", "has expired or was tried too often; set contactEmail again for a new one"));
        }
        // Both sides are fixed-length hex digests of the code, so comparing them leaks nothing
        // about the code itself.
        if digest(code) != p.code_sha256 {
            p.failed_tries += 1;
            return Err(invalid("code", "is not the code that was mailed"));
        }
        let email = p.email.clone();
        self.contact_email = Some(email.clone());
        self.pending = None;
        Ok(email)
    }
}

/// Exactly one plain address (`local@domain.tld`): no list (`a@b.c,victim@evil.com`), no
/// display name, no quoting, nothing a mail header would read as a second recipient.
pub fn is_one_address(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    let local_ok = !local.is_empty() && local.len() <= 64 && local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    e.len() <= 254 && local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_is_one_plain_address() {
        assert!(is_one_address("ops@acme.test"));
        assert!(is_one_address("first.last+relay@mail.example.com"));
        for bad in
            ["a@b.c,victim@evil.com", "a@b.c;v@e.com", "A <a@b.c>", "\"a b\"@c.d", "a@b@c.d", "a@localhost", "a@b..c", "a b@c.d", "@b.c"]
        {
            assert!(!is_one_address(bad), "{bad}");
        }
    }

    #[test]
    fn an_address_is_the_contact_only_after_its_code_comes_back() {
        let now = Utc::now();
        let mut p = Profile::default();
        let code = p.request("ops@acme.test", now).unwrap();
        assert_eq!(p.contact_email, None, "not before the code");
        assert_eq!(p.request("other@acme.test", now).unwrap_err().status, 429, "one mail a minute");
        assert!(p.verify("WRONGCODE1", now).is_err());
        assert_eq!(p.verify(&code.to_lowercase(), now).as_deref(), Ok("ops@acme.test"));
        assert_eq!(p.contact_email.as_deref(), Some("ops@acme.test"));
        assert!(p.verify(&code, now).is_err(), "a code works once");

        let code = p.request("new@acme.test", now + Duration::minutes(2)).unwrap();
        assert_eq!(p.contact_email.as_deref(), Some("ops@acme.test"), "the old contact stays until the new one is confirmed");
        for _ in 0..MAX_CODE_TRIES {
            assert!(p.verify("WRONGCODE1", now).is_err());
        }
        assert!(p.verify(&code, now).is_err(), "too many wrong tries end the pending address");
        let code = p.request("late@acme.test", now + Duration::minutes(4)).unwrap();
        assert!(p.verify(&code, now + Duration::hours(25)).is_err(), "codes expire");
        assert!(p.request("a@b.c,victim@evil.com", now + Duration::minutes(10)).is_err());
    }
}
