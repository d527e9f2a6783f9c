//! Webhook subscriptions: an organisation's endpoint, the event types it wants, its signing
//! secrets (sealed at rest), and the platform's product-to-product integrations, which are
//! subscriptions owned by the platform and delivered by the same machinery.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::problem::{Problem, ProblemField, ProblemKind};
use crate::model::validation::is_event_type;
use crate::secrets::SecretBox;
use crate::signing::new_secret;
use crate::ssrf;

/// Headers a subscription may not set: Relay owns them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
    "connection",
];

/// A signing secret as stored: sealed, and when it stops being used (after a rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSecret {
    pub sealed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The platform integration a subscription stands for (`recruitiq` → `nexus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub source: String,
    pub target: String,
    /// The organisations it serves: `None`, every organisation (as an operator configures it
    /// at first); a list, only those, to which provisioning adds each new tenant that has both
    /// products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizations: Option<BTreeSet<String>>,
}

impl Integration {
    pub fn serves(&self, organization_id: &str) -> bool {
        self.organizations.as_ref().is_none_or(|o| o.contains(organization_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    /// The owning organisation; `*` for platform integrations (they serve every organisation).
    pub organization_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Deliveries per second across all instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Newest first.
    pub secrets: Vec<StoredSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<Integration>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write; a write succeeds only over the version it read (see [`crate::ports::modify_subscription`]).
    #[serde(default)]
    pub version: u64,
}

impl Subscription {
    /// The organisation a delivery of this subscription belongs to: its own, or for a platform
    /// integration (which serves every organisation) the event's.
    pub fn delivered_for<'a>(&'a self, event_organization_id: &'a str) -> &'a str {
        if self.integration.is_some() {
            event_organization_id
        } else {
            &self.organization_id
        }
    }

    /// Does this subscription want this event?
    pub fn wants(&self, event_type: &str, source_product: &str, organization_id: &str) -> bool {
        let scope = match &self.integration {
            Some(i) => i.source == source_product && i.serves(organization_id),
            None => self.organization_id == organization_id,
        };
        self.enabled && scope && self.event_types.iter().any(|p| pattern_matches(p, event_type))
    }

    /// The secrets to sign with at `now`, opened (newest first).
    pub fn signing_secrets(&self, now: DateTime<Utc>, secrets: &SecretBox) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .filter_map(|s| secrets.open(&s.sealed, &self.id).ok())
            .collect()
    }

    /// Rotates the secret: the new one signs from now on, the old ones keep signing beside it
    /// until `overlap` has passed. Returns the new secret (shown once).
    pub fn rotate(&mut self, now: DateTime<Utc>, overlap: Duration, secrets: &SecretBox) -> String {
        let fresh = new_secret();
        self.secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
        for s in &mut self.secrets {
            s.expires_at = Some(s.expires_at.map_or(now + overlap, |e| e.min(now + overlap)));
        }
        self.secrets.insert(0, StoredSecret { sealed: secrets.seal(&fresh, &self.id), expires_at: None });
        self.updated_at = now;
        fresh
    }

    /// What the API shows: never a secret.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "eventTypes": self.event_types,
            "description": self.description,
            "enabled": self.enabled,
            "headers": self.headers,
            "rateLimit": self.rate_limit,
            "disabledReason": self.disabled_reason,
            "secretsActive": self.secrets.len(),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        })
    }
}

/// `payroll.completed` (exact), `payroll.*` (the `payroll` family, any depth) or `*` (all).
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(prefix) => event_type.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == event_type,
    }
}

/// The endpoint URL syntax the API documents (`EndpointUrl` in infra/openapi.yaml), checked here
/// so that the server refuses exactly what the document calls invalid: the WHATWG parser behind
/// `url` would take host names no DNS has (`a.b*`), fragments and any path. Beyond the pattern,
/// an IP literal or `localhost` passes this check, to be judged by the SSRF guard.
pub fn is_endpoint_url(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix("https://").or_else(|| raw.strip_prefix("http://")) else { return false };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !authority.ends_with(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = is_dns_name(host) || host == "localhost" || host.parse::<std::net::Ipv4Addr>().is_ok() || {
        host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
    };
    let port_ok = port.is_none_or(|p| !p.starts_with('0') && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0));
    const PATH: &str = "._~!$&'()*+,;=:@/-";
    let (path, query) = tail.split_once('?').map_or((tail, None), |(p, q)| (p, Some(q)));
    let path_ok = path.is_empty()
        || (path.starts_with('/') && path.len() <= 1001 && path.chars().all(|c| c.is_ascii_alphanumeric() || PATH.contains(c)));
    let query_ok = query.is_none_or(|q| q.len() <= 500 && q.chars().all(|c| c.is_ascii_alphanumeric() || PATH.contains(c) || c == '?'));
    host_ok && port_ok && path_ok && query_ok
}

/// Labels of letters, digits and inner hyphens (1 to 63 characters), at least two, the last of
/// 2 to 24 letters.
fn is_dns_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-') && !l.ends_with('-')
    };
    match labels.split_last() {
        Some((tld, rest)) if !rest.is_empty() => {
            (2..=24).contains(&tld.len()) && tld.chars().all(|c| c.is_ascii_alphabetic()) && rest.iter().all(label_ok)
        }
        _ => false,
    }
}

fn is_pattern(p: &str) -> bool {
    p.len() <= 128 && is_pattern_unbounded(p)
}

fn is_pattern_unbounded(p: &str) -> bool {
    p == "*"
        || is_event_type(p)
        || p.strip_suffix(".*").is_some_and(|prefix| {
            prefix.split('.').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        })
}

fn invalid(field: &str, message: impl Into<String>) -> Problem {
    let message = message.into();
    let mut p = Problem::new(ProblemKind::InvalidRequest, format!("{field} {message}"));
    p.errors = vec![ProblemField { field: field.into(), message }];
    p
}

/// The fields a create or update may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Changes {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "crate::model::validation::whole_number")]
    pub rate_limit: Option<u32>,
}

impl Changes {
    pub fn parse(body: &Value) -> Result<Self, Problem> {
        // serde would also read a struct from an array of its fields: only an object is a body.
        if !body.is_object() {
            return Err(invalid("body", "must be a JSON object"));
        }
        let c: Changes = serde_json::from_value(body.clone()).map_err(|e| invalid("body", format!("is not a subscription: {e}")))?;
        if let Some(url) = &c.url {
            if url.len() > 2048 {
                return Err(invalid("url", "must be at most 2048 characters"));
            }
            if !is_endpoint_url(url) {
                return Err(invalid(
                    "url",
                    "must be http(s)://host[:port][/path][?query]: a DNS name (letters, digits, '-') or an IP address, no fragment",
                ));
            }
            ssrf::check_url(url, ssrf::loopback_allowed()).map_err(|e| invalid("url", format!("is refused: {e}")))?;
        }
        if let Some(types) = &c.event_types {
            if types.is_empty() || types.len() > 100 {
                return Err(invalid("eventTypes", "must list 1 to 100 event types or patterns"));
            }
            if let Some(bad) = types.iter().find(|t| !is_pattern(t)) {
                return Err(invalid("eventTypes", format!("{bad:?} is not an event type, a family such as payroll.*, or *")));
            }
        }
        if c.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
            return Err(invalid("description", "must be at most 500 characters"));
        }
        if let Some(h) = &c.headers {
            if h.len() > 10 {
                return Err(invalid("headers", "may hold at most 10 headers"));
            }
            for (name, value) in h {
                let lower = name.to_ascii_lowercase();
                if name.is_empty()
                    || name.len() > 64
                    || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                    || RESERVED_HEADERS.contains(&lower.as_str())
                {
                    return Err(invalid("headers", format!("{name:?} is not a header a subscription may set")));
                }
                // Printable ASCII: what every HTTP stack sends as a header value unchanged.
                if value.len() > 1024 || !value.chars().all(|ch| (' '..='~').contains(&ch)) {
                    return Err(invalid("headers", format!("the value of {name} is not a valid header value")));
                }
            }
        }
        if c.rate_limit.is_some_and(|r| !(1..=1000).contains(&r)) {
            return Err(invalid("rateLimit", "must be 1 to 1000 deliveries per second"));
        }
        Ok(c)
    }

    /// A new subscription from a create request; returns it and its first secret.
    pub fn create(
        self,
        organization_id: &str,
        id: String,
        now: DateTime<Utc>,
        secrets: &SecretBox,
    ) -> Result<(Subscription, String), Problem> {
        let url = self.url.ok_or_else(|| invalid("url", "is required"))?;
        let event_types = self.event_types.ok_or_else(|| invalid("eventTypes", "is required"))?;
        let secret = new_secret();
        let sub = Subscription {
            secrets: vec![StoredSecret { sealed: secrets.seal(&secret, &id), expires_at: None }],
            id,
            organization_id: organization_id.to_string(),
            url,
            event_types,
            description: self.description,
            enabled: self.enabled.unwrap_or(true),
            headers: self.headers.unwrap_or_default(),
            rate_limit: self.rate_limit,
            disabled_reason: None,
            integration: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        Ok((sub, secret))
    }

    /// Applies the fields this change carries; the others stay as stored.
    pub fn apply_to(&self, sub: &mut Subscription, now: DateTime<Utc>) {
        if let Some(u) = &self.url {
            sub.url = u.clone();
        }
        if let Some(t) = &self.event_types {
            sub.event_types = t.clone();
        }
        if let Some(d) = &self.description {
            sub.description = Some(d.clone());
        }
        if let Some(e) = self.enabled {
            sub.enabled = e;
            if e {
                sub.disabled_reason = None;
            }
        }
        if let Some(h) = &self.headers {
            sub.headers = h.clone();
        }
        if let Some(r) = self.rate_limit {
            sub.rate_limit = Some(r);
        }
        sub.updated_at = now;
    }
}

/// The most subscriptions an organisation may have: one event fans out to at most this many
/// endpoints in one invocation.
pub const MAX_SUBSCRIPTIONS_PER_ORGANIZATION: usize = 50;

/// The seed integrations (source → target: event types), from the platform documents.
pub const SEED_INTEGRATIONS: &[(&str, &str, &[&str])] = &[
    ("recruitiq", "nexus", &["candidate.hired"]),
    ("nexus", "paylinq", &["employee.created", "employee.updated", "employee.terminated"]),
    ("recruitiq", "paylinq", &["candidate.hired"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_held_to_the_documented_syntax() {
        for ok in [
            "https://hooks.example.com",
            "https://hooks.example.com:8443/a/b?x=1&y=2",
            "http://a-b.example.io/x",
            "https://93.184.215.14/hook",
            "http://127.0.0.1:9000/h",
            "http://[::1]:8080/h",
            "http://[::1]/h",
            "http://localhost:8080/hook",
            "https://EXAMPLE.com/Path_~!$&'()*+,;=:@",
        ] {
            assert!(is_endpoint_url(ok), "{ok}");
        }
        for bad in [
            "https://4.AAAhAAiAAjtAa*",
            "ftp://example.com",
            "https://example",
            "https://-a.example.com",
            "https://a.example.c0m",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com:08080",
            "https://example.com/a b",
            "https://example.com/#frag",
            "https://user@example.com",
            "HTTPS://example.com",
        ] {
            assert!(!is_endpoint_url(bad), "{bad}");
        }
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "anything.at_all"));
        assert!(pattern_matches("payroll.*", "payroll.completed"));
        assert!(pattern_matches("payroll.*", "payroll.run.requested"));
        assert!(!pattern_matches("payroll.*", "payrolls.completed"));
        assert!(!pattern_matches("payroll.*", "payroll"));
        assert!(pattern_matches("candidate.hired", "candidate.hired"));
        assert!(!pattern_matches("candidate.hired", "candidate.hired.late"));
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_overlap_only() {
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let now = Utc::now();
        let body = json!({"url": "https://hooks.example.com/x", "eventTypes": ["payroll.*"]});
        let (mut sub, first) = Changes::parse(&body).unwrap().create("org", crate::model::ids::new_subscription_id(), now, &b).unwrap();
        assert_eq!(sub.signing_secrets(now, &b), vec![first.clone()]);
        let second = sub.rotate(now, Duration::hours(24), &b);
        assert_eq!(sub.signing_secrets(now + Duration::hours(1), &b), vec![second.clone(), first]);
        assert_eq!(sub.signing_secrets(now + Duration::hours(25), &b), vec![second]);
        assert!(!sub.view().to_string().contains("whsec_"));
    }

    #[test]
    fn bad_subscriptions_name_the_field() {
        let field = |body: Value| Changes::parse(&body).err().map(|p| p.errors[0].field.clone());
        assert_eq!(field(json!({"url": "http://10.0.0.1/x"})).as_deref(), Some("url"));
        assert_eq!(field(json!({"url": "http://169.254.169.254/"})).as_deref(), Some("url"));
        assert_eq!(field(json!({"eventTypes": ["Payroll"]})).as_deref(), Some("eventTypes"));
        assert_eq!(field(json!({"headers": {"webhook-signature": "x"}})).as_deref(), Some("headers"));
        assert_eq!(field(json!({"rateLimit": 0})).as_deref(), Some("rateLimit"));
        assert_eq!(field(json!({"bogus": 1})).as_deref(), Some("body"));
    }
}
