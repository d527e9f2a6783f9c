//! RFC 9457 problem documents: every error Relay returns over HTTP is one of these, with a stable
//! `type` a client can branch on and a `detail` that says what to fix.

use serde::{Deserialize, Serialize};

use crate::model::validation::FieldError;

/// The media type of a problem document.
pub const CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://relay.dev/problems/";

/// The kinds of problem Relay reports. The slug is the stable part of `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    MalformedJson,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidEvent,
    InvalidEmail,
    InvalidRequest,
    IdempotencyKeyReused,
    RequestInProgress,
    EventIdConflict,
    /// A resource changed or appeared meanwhile; retry.
    Conflict,
    /// A per-organisation limit is reached.
    LimitReached,
    TooManyRequests,
    ServiceUnavailable,
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed-json",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::InvalidEvent => "invalid-event",
            Self::InvalidEmail => "invalid-email",
            Self::InvalidRequest => "invalid-request",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::RequestInProgress => "request-in-progress",
            Self::EventIdConflict => "event-id-conflict",
            Self::Conflict => "conflict",
            Self::LimitReached => "limit-reached",
            Self::TooManyRequests => "too-many-requests",
            Self::ServiceUnavailable => "service-unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::MalformedJson | Self::InvalidRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestInProgress | Self::EventIdConflict | Self::Conflict | Self::LimitReached => 409,
            Self::TooManyRequests => 429,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidEvent | Self::InvalidEmail | Self::IdempotencyKeyReused => 422,
            Self::Internal => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "The request body is not valid JSON",
            Self::Unauthenticated => "Missing or invalid API key",
            Self::Forbidden => "This key may not do that",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "Unsupported content type",
            Self::InvalidEvent => "The event is not valid",
            Self::InvalidEmail => "The mail request is not valid",
            Self::InvalidRequest => "The request is not valid",
            Self::IdempotencyKeyReused => "Idempotency key reused with a different request",
            Self::RequestInProgress => "A request with this idempotency key is still in progress",
            Self::EventIdConflict => "An event with this eventId already exists",
            Self::Conflict => "The resource changed meanwhile",
            Self::LimitReached => "A limit is reached",
            Self::TooManyRequests => "Too many requests",
            Self::ServiceUnavailable => "Temporarily unavailable",
            Self::Internal => "Internal error",
        }
    }
}

/// A problem document (RFC 9457), with Relay's `errors` extension listing every bad field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Seconds after which a retry may succeed (also sent as the `Retry-After` header).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// One bad field in a problem's `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("{TYPE_BASE}{}", kind.slug()),
            title: kind.title().to_string(),
            status: kind.status(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// An invalid event, listing every field that is wrong.
    pub fn invalid_event(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] if one.field.is_empty() => one.message.clone(),
            [one] => format!("{} {}", one.field, one.message),
            many => format!("{} fields are invalid: {}", many.len(), names(many)),
        };
        let mut p = Self::new(ProblemKind::InvalidEvent, detail);
        p.errors = errors.into_iter().map(|e| ProblemField { field: e.field, message: e.message }).collect();
        p
    }

    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut p = Self::new(ProblemKind::ServiceUnavailable, detail);
        p.retry_after = Some(retry_after_secs);
        p
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn names(errors: &[FieldError]) -> String {
    errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serialises_per_rfc_9457() {
        let p =
            Problem::invalid_event(vec![FieldError { field: "payload.jobId".into(), message: "is required for candidate.hired".into() }]);
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["type"], "https://relay.dev/problems/invalid-event");
        assert_eq!(v["status"], 422);
        assert_eq!(v["detail"], "payload.jobId is required for candidate.hired");
        assert_eq!(v["errors"][0]["field"], "payload.jobId");
    }
}
