//! Registering a webhook source (`POST /v1/sources`): validation of what the organisation sends,
//! sealing of its secrets, and the public view (which never contains a secret).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Provider, Source, SourceOptions};
use crate::model::problem::{Problem, ProblemField, ProblemKind};
use crate::model::source::SealedSource;
use crate::secrets::{SecretBox, SecretError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSource {
    provider: String,
    secret: String,
    #[serde(default)]
    options: SourceOptions,
    #[serde(default)]
    description: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> Problem {
    let message = message.into();
    let mut p = Problem::new(ProblemKind::InvalidRequest, format!("{field} {message}"));
    p.errors = vec![ProblemField { field: field.into(), message }];
    p
}

/// Validates a registration body and seals it for storage.
pub fn register(body: &Value, organization_id: &str, id: String, now: DateTime<Utc>, secrets: &SecretBox) -> Result<SealedSource, Problem> {
    // serde would also read a struct from an array of its fields: only objects are accepted.
    if !body.is_object() || body.get("options").is_some_and(|o| !o.is_object()) {
        return Err(invalid("body", "must be a JSON object, with options (if any) an object"));
    }
    let new: NewSource = serde_json::from_value(body.clone()).map_err(|e| invalid("body", format!("is not a source registration: {e}")))?;
    let provider = Provider::parse(&new.provider).ok_or_else(|| {
        let known: Vec<&str> = Provider::ALL.iter().map(|p| p.slug()).collect();
        invalid("provider", format!("must be one of {}", known.join(", ")))
    })?;
    if new.secret.is_empty() || new.secret.chars().count() > 1024 {
        return Err(invalid("secret", "must be 1 to 1024 characters"));
    }
    if matches!(provider, Provider::StandardWebhooks | Provider::Svix)
        && !(new.secret.starts_with("whsec_") && crate::signing::standard_webhooks_key(&new.secret).is_some_and(|k| k.len() >= 16))
    {
        return Err(invalid("secret", "must be a whsec_<base64> secret of at least 16 bytes"));
    }
    let o = &new.options;
    if let Some(e) = &o.encoding {
        if e != "hex" && e != "base64" {
            return Err(invalid("options.encoding", "must be hex or base64"));
        }
    }
    for (name, value, max) in [
        ("options.signatureHeader", &o.signature_header, 100),
        ("options.signaturePrefix", &o.signature_prefix, 100),
        ("options.timestampHeader", &o.timestamp_header, 100),
        ("options.idHeader", &o.id_header, 100),
        ("options.signingSecret", &o.signing_secret, 1024),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            return Err(invalid(name, format!("must be at most {max} characters")));
        }
    }
    if o.tolerance_seconds.is_some_and(|t| !(1..=86_400).contains(&t)) {
        return Err(invalid("options.toleranceSeconds", "must be between 1 and 86400"));
    }
    if new.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    let mut options = new.options.clone();
    options.signing_secret = options.signing_secret.map(|s| secrets.seal(&s, &signing_record(&id)));
    Ok(SealedSource {
        sealed_secret: secrets.seal(&new.secret, &id),
        id,
        organization_id: organization_id.to_string(),
        provider: provider.slug().to_string(),
        options: serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()),
        description: new.description,
        created_at: now,
    })
}

fn signing_record(id: &str) -> String {
    format!("{id}#signing")
}

/// Opens a stored source for verification.
pub fn open(sealed: &SealedSource, secrets: &SecretBox) -> Result<Source, SecretError> {
    let provider = Provider::parse(&sealed.provider).ok_or(SecretError::Unreadable)?;
    let mut options: SourceOptions = serde_json::from_str(&sealed.options).unwrap_or_default();
    if let Some(s) = &options.signing_secret {
        options.signing_secret = Some(secrets.open(s, &signing_record(&sealed.id))?);
    }
    Ok(Source {
        id: sealed.id.clone(),
        organization_id: sealed.organization_id.clone(),
        provider,
        secret: secrets.open(&sealed.sealed_secret, &sealed.id)?,
        options,
        created_at: sealed.created_at,
    })
}

/// What the API shows of a source: never its secrets.
pub fn public_view(s: &SealedSource, base_url: &str) -> Value {
    let mut options: Value = serde_json::from_str(&s.options).unwrap_or_else(|_| json!({}));
    if let Some(o) = options.as_object_mut() {
        if o.remove("signingSecret").is_some() {
            o.insert("signingSecretSet".into(), json!(true));
        }
    }
    json!({
        "id": s.id,
        "provider": s.provider,
        "organizationId": s.organization_id,
        "description": s.description,
        "options": options,
        "url": format!("{}/webhooks/{}/{}", base_url.trim_end_matches('/'), s.provider, s.id),
        "createdAt": s.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_seals_secrets_and_the_view_shows_none() {
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let body = json!({"provider": "mollie", "secret": "test_key", "options": {"signingSecret": "sig"}});
        let sealed = register(&body, "org-1", crate::model::ids::new_source_id(), Utc::now(), &b).unwrap();
        assert!(!sealed.sealed_secret.contains("test_key") && !sealed.options.contains("\"sig\""));
        let opened = open(&sealed, &b).unwrap();
        assert_eq!((opened.secret.as_str(), opened.options.signing_secret.as_deref()), ("test_key", Some("sig")));
        let view = public_view(&sealed, "http://x").to_string();
        assert!(!view.contains("test_key") && !view.contains("v1.") && view.contains("signingSecretSet"));
    }

    #[test]
    fn bad_registrations_name_the_field() {
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let field =
            |body: Value| register(&body, "o", crate::model::ids::new_source_id(), Utc::now(), &b).err().map(|p| p.errors[0].field.clone());
        assert_eq!(field(json!({"provider": "paypal", "secret": "x"})).as_deref(), Some("provider"));
        assert_eq!(field(json!({"provider": "svix", "secret": "not-whsec"})).as_deref(), Some("secret"));
        assert_eq!(
            field(json!({"provider": "hmac", "secret": "x", "options": {"encoding": "rot13"}})).as_deref(),
            Some("options.encoding")
        );
        assert_eq!(field(json!({"provider": "hmac", "secret": "x", "options": {"bogus": 1}})).as_deref(), Some("body"));
    }
}
