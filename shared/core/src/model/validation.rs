//! Turns an untrusted JSON value into an [`EventEnvelope`], or into the list of every field that
//! is wrong (all of them at once, so a caller fixes their request in one round trip).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::catalogue;
use crate::model::envelope::{EventEnvelope, RELAY_SOURCE};

/// One thing wrong with one field, named by its JSON path (`payload.candidateId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// What Relay fills in when the caller leaves it out.
#[derive(Debug, Clone)]
pub struct Defaults<'a> {
    /// Used when the event carries no `eventId`.
    pub event_id: Uuid,
    /// The caller's product, used when the event carries no `sourceProduct`.
    pub source_product: &'a str,
    /// Used when the event carries no `timestamp`.
    pub now: DateTime<Utc>,
}

const FIELDS: &[&str] =
    &["eventId", "eventType", "eventVersion", "sourceProduct", "organizationId", "timestamp", "correlationId", "payload"];
const MAX_TYPE_LEN: usize = 128;
const MAX_ID_LEN: usize = 128;
const MAX_CORRELATION_LEN: usize = 256;

/// Where an event is being checked, which decides how much of the contract applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    /// A product publishing through the API: the whole contract, catalogue included.
    Ingest,
    /// An envelope read off the bus by a consumer (deliver). It may come from ingest (which
    /// checked it and may have moved its payload to S3), from webhook-receive (a provider's
    /// event, never held to a product's catalogue), from Relay itself, or from a product that
    /// put it on the bus directly. The shape is always checked; the catalogue only for a
    /// platform product's inline payload, so nothing Relay acknowledged is dropped by its own
    /// rules (a payload by reference was checked at the door, before it moved).
    Bus,
}

/// Validates one event from a product. Known types are held to the catalogue (fields, major
/// version and owning product); well-formed unknown types pass.
pub fn validate_event(value: &Value, defaults: &Defaults<'_>) -> Result<EventEnvelope, Vec<FieldError>> {
    check(value, defaults, Door::Ingest)
}

/// Validates an envelope read off the bus (see [`Door::Bus`]); it must carry its own `eventId`.
pub fn validate_bus_event(value: &Value) -> Result<EventEnvelope, Vec<FieldError>> {
    if !value.get("eventId").is_some_and(Value::is_string) {
        return Err(vec![FieldError::new("eventId", "is required on the bus")]);
    }
    let Some(product) = value.get("sourceProduct").and_then(Value::as_str) else {
        return Err(vec![FieldError::new("sourceProduct", "is required on the bus")]);
    };
    check(value, &Defaults { event_id: Uuid::nil(), source_product: product, now: Utc::now() }, Door::Bus)
}

/// The key a large payload of this event is stored under (see `EventEnvelope::offload_if_large`).
fn payload_key(obj: &serde_json::Map<String, Value>) -> Option<String> {
    Some(format!("payloads/{}/{}.json", obj.get("organizationId")?.as_str()?, obj.get("eventId")?.as_str()?))
}

fn check(value: &Value, defaults: &Defaults<'_>, door: Door) -> Result<EventEnvelope, Vec<FieldError>> {
    let Some(obj) = value.as_object() else {
        return Err(vec![FieldError::new("", "an event must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let payload_ref = match (door, obj.get("payloadRef")) {
        (Door::Bus, Some(r)) => match serde_json::from_value::<crate::model::envelope::PayloadRef>(r.clone()) {
            // A reference names the one key Relay writes for this event, so a bus event cannot
            // point deliver at another event's (or organisation's) stored payload.
            Ok(r) if Some(r.key.as_str()) == payload_key(obj).as_deref() => Some(r),
            Ok(_) => {
                errors.push(FieldError::new("payloadRef", "must name payloads/<organizationId>/<eventId>.json"));
                None
            }
            Err(_) => {
                errors.push(FieldError::new("payloadRef", "must be {bucket, key, size, sha256}"));
                None
            }
        },
        _ => None,
    };
    if payload_ref.is_some() && obj.get("payload").is_some_and(|p| !p.is_null()) {
        errors.push(FieldError::new("payload", "must be absent when payloadRef is set"));
    }

    let known = |k: &str| FIELDS.contains(&k) || (door == Door::Bus && k == "payloadRef");
    for key in obj.keys().filter(|k| !known(k.as_str())) {
        let hint = match key.as_str() {
            "sourceOrganizationId" | "orgId" | "organization_id" => "; did you mean organizationId?",
            "type" | "event_type" => "; did you mean eventType?",
            "data" => "; did you mean payload?",
            _ => "",
        };
        errors.push(FieldError::new(key.clone(), format!("is not a field of the event envelope{hint}")));
    }

    let event_id = match obj.get("eventId") {
        None | Some(Value::Null) => Some(defaults.event_id),
        Some(Value::String(s)) => match Uuid::parse_str(s) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new("eventId", "must be a UUID"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("eventId", "must be a UUID string"));
            None
        }
    };

    let event_type = match obj.get("eventType") {
        Some(Value::String(s)) if is_event_type(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(FieldError::new("eventType", "must be dot-delimited lower-case words, at least two, such as candidate.hired"));
            None
        }
        None | Some(Value::Null) => {
            errors.push(FieldError::new("eventType", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("eventType", "must be a string"));
            None
        }
    };

    let event_version = match obj.get("eventVersion") {
        None | Some(Value::Null) => Some("1.0".to_string()),
        Some(Value::String(s)) if parse_major(s).is_some() => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new("eventVersion", "must be a version string MAJOR.MINOR, such as \"1.0\""));
            None
        }
    };

    let source_product = match obj.get("sourceProduct") {
        None | Some(Value::Null) => Some(defaults.source_product.to_string()),
        Some(Value::String(s)) if s == RELAY_SOURCE && door == Door::Bus => Some(s.clone()),
        Some(Value::String(s)) if s == RELAY_SOURCE => {
            errors.push(FieldError::new("sourceProduct", "\"relay\" is reserved for Relay's own events"));
            None
        }
        Some(Value::String(s)) if is_slug(s) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new("sourceProduct", "must be a lower-case product name such as recruitiq"));
            None
        }
    };

    let organization_id = match obj.get("organizationId") {
        Some(Value::String(s)) if is_identifier(s) => Some(s.clone()),
        None | Some(Value::Null) => {
            errors.push(FieldError::new("organizationId", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("organizationId", "must be a string of 1 to 128 letters, digits, '-', '_', '.' or ':'"));
            None
        }
    };

    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => Some(defaults.now),
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new("timestamp", "must be an RFC 3339 date-time, such as 2025-11-03T10:30:00Z"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("timestamp", "must be an RFC 3339 date-time string"));
            None
        }
    };

    let correlation_id = match obj.get("correlationId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CORRELATION_LEN => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new("correlationId", "must be a string of 1 to 256 characters"));
            None
        }
    };

    let payload = match obj.get("payload") {
        Some(Value::Object(p)) => Some(p.clone()),
        None | Some(Value::Null) if payload_ref.is_some() => None,
        None | Some(Value::Null) => {
            errors.push(FieldError::new("payload", "is required (an object)"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("payload", "must be a JSON object"));
            None
        }
    };

    let held_to_catalogue = match door {
        Door::Ingest => true,
        Door::Bus => payload.is_some() && source_product.as_deref().is_some_and(|p| catalogue::PRODUCTS.contains(&p)),
    };
    if let (Some(t), Some(v), true) = (&event_type, &event_version, held_to_catalogue) {
        if let Some(entry) = catalogue::lookup(t) {
            let major = parse_major(v).unwrap_or(0);
            if !entry.major_versions.contains(&major) {
                let supported: Vec<String> = entry.major_versions.iter().map(|m| format!("{m}.x")).collect();
                errors.push(FieldError::new(
                    "eventVersion",
                    format!("version {v} of {t} is not supported; supported: {}", supported.join(", ")),
                ));
            } else if let Some(p) = &payload {
                for field in entry.required_fields {
                    if p.get(*field).is_none_or(Value::is_null) {
                        errors.push(FieldError::new(format!("payload.{field}"), format!("is required for {t}")));
                    }
                }
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    match (event_id, event_type, event_version, source_product, organization_id, timestamp, payload) {
        (Some(event_id), Some(event_type), Some(event_version), Some(source_product), Some(organization_id), Some(timestamp), payload)
            if payload.is_some() != payload_ref.is_some() =>
        {
            Ok(EventEnvelope {
                event_id,
                event_type,
                event_version,
                source_product,
                organization_id,
                timestamp,
                correlation_id,
                payload,
                payload_ref,
            })
        }
        // Unreachable: every `None` above pushed an error. Kept total rather than unwrapped.
        _ => Err(vec![FieldError::new("", "invalid event")]),
    }
}

/// `candidate.hired`, `payroll.run.requested`: two or more lower-case words joined by dots.
pub fn is_event_type(s: &str) -> bool {
    s.len() <= MAX_TYPE_LEN && s.split('.').count() >= 2 && s.split('.').all(is_word)
}

fn is_word(w: &str) -> bool {
    let mut chars = w.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An organisation or correlation id: 1 to 128 letters, digits, `-`, `_`, `.` or `:`.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Deserializes an optional whole number written as an integer or as a number with no fraction
/// (`5.0`): JSON does not tell them apart, and JSON Schema's `integer` admits both.
pub fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole = n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
    let whole = whole.ok_or_else(|| D::Error::custom(format!("{n} is not a whole number")))?;
    T::try_from(whole).map(Some).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// Whether `s` is a product's or provider's name (`sourceProduct`).
pub fn is_source_name(s: &str) -> bool {
    is_slug(s)
}

fn parse_major(v: &str) -> Option<u32> {
    let (major, minor) = v.split_once('.')?;
    minor.parse::<u32>().ok()?;
    major.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Defaults<'static> {
        Defaults { event_id: Uuid::nil(), source_product: "recruitiq", now: DateTime::UNIX_EPOCH }
    }

    fn hired() -> Value {
        json!({"eventType": "candidate.hired", "organizationId": "org-123",
               "payload": {"candidateId": "c1", "jobId": "j1", "startDate": "2025-12-01"}})
    }

    fn fields(r: Result<EventEnvelope, Vec<FieldError>>) -> Vec<String> {
        r.err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_minimal_known_event_gets_defaults() {
        let e = validate_event(&hired(), &defaults()).expect("valid");
        assert_eq!(e.event_id, Uuid::nil());
        assert_eq!(e.event_version, "1.0");
        assert_eq!(e.source_product, "recruitiq");
        assert_eq!(e.timestamp, DateTime::UNIX_EPOCH);
    }

    #[test]
    fn a_missing_required_payload_field_is_named() {
        let mut v = hired();
        v["payload"].as_object_mut().map(|p| p.remove("jobId"));
        assert_eq!(fields(validate_event(&v, &defaults())), vec!["payload.jobId"]);
    }

    #[test]
    fn an_unknown_major_version_of_a_known_type_is_refused() {
        let mut v = hired();
        v["eventVersion"] = json!("2.0");
        assert_eq!(fields(validate_event(&v, &defaults())), vec!["eventVersion"]);
        v["eventVersion"] = json!("1.7");
        assert!(validate_event(&v, &defaults()).is_ok());
    }

    #[test]
    fn a_well_formed_unknown_type_is_accepted_with_any_payload() {
        let v = json!({"eventType": "candidate.promoted", "eventVersion": "3.1", "organizationId": "o", "payload": {}});
        assert!(validate_event(&v, &defaults()).is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let v = json!({"eventId": "nope", "eventType": "Hired", "eventVersion": 1, "organizationId": "",
                       "timestamp": "yesterday", "payload": [], "sourceOrganizationId": "x", "sourceProduct": "relay"});
        let mut got = fields(validate_event(&v, &defaults()));
        got.sort();
        assert_eq!(
            got,
            vec!["eventId", "eventType", "eventVersion", "organizationId", "payload", "sourceOrganizationId", "sourceProduct", "timestamp"]
        );
    }

    #[test]
    fn event_type_shape() {
        for ok in ["candidate.hired", "payroll.run.requested", "a1.b_2"] {
            assert!(is_event_type(ok), "{ok}");
        }
        for bad in ["hired", "Candidate.hired", "candidate..hired", ".x", "x.", "1a.b", "a.b-c"] {
            assert!(!is_event_type(bad), "{bad}");
        }
    }

    #[test]
    fn a_bus_event_is_checked_for_shape_and_its_payload_reference_for_its_own_key() {
        let id = "2f0c4c56-6f4b-4f8e-9d55-0a7f1c6b9e01";
        let base = serde_json::json!({"eventId": id, "eventType": "candidate.hired", "sourceProduct": "recruitiq",
            "organizationId": "org-1", "timestamp": "2026-11-22T10:00:00Z"});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            validate_bus_event(&v)
        };
        let own = format!("payloads/org-1/{id}.json");
        let reference = |key: &str| serde_json::json!({"bucket": "b", "key": key, "size": 1, "sha256": "00"});
        assert!(with(serde_json::json!({"payloadRef": reference(&own)})).is_ok(), "checked by ingest before it moved");
        assert!(with(serde_json::json!({"payloadRef": reference("payloads/org-2/other.json")})).is_err());
        assert!(with(serde_json::json!({"payloadRef": reference(&own), "payload": {}})).is_err(), "not both");
        // A provider's event is never held to a product's catalogue; a product's inline one is.
        assert!(with(serde_json::json!({"sourceProduct": "stripe", "eventType": "payment.failed", "payload": {}})).is_ok());
        assert!(with(serde_json::json!({"payload": {}})).is_err());
        assert!(with(serde_json::json!({"sourceProduct": "relay", "eventType": "delivery.exhausted", "payload": {}})).is_ok());
    }
}
