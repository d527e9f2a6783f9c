//! Transactional mail: who sends (a product's own sender, never another's), to whom, what
//! (a template and its data, or a subject and body given directly), and the message log that
//! says what became of it. One request shape serves both doors: the body of `POST /v1/emails`
//! and the payload of an `email.requested` event put on the bus.
//!
//! Limits are SES's where SES has one (50 recipients a message, tag syntax) and Relay's own
//! where a mail must fit in one bus entry (so it never travels by reference): see the consts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::problem::ProblemField;

/// The event type a mail request travels as on the bus (from the API or put there by a product).
pub const EMAIL_REQUESTED: &str = "email.requested";
/// SES refuses a message with more recipients than this (to, cc and bcc together).
pub const MAX_RECIPIENTS: usize = 50;
/// Tags a request may set (SES allows more; Relay adds its own two).
pub const MAX_TAGS: usize = 10;
/// The longest html or text part given directly (characters), and the largest template data
/// (bytes): they keep an `email.requested` entry under EventBridge's 256 KB in the common case;
/// the API checks the entry's size as well.
pub const MAX_PART_CHARS: usize = 96 * 1024;
pub const MAX_DATA_BYTES: usize = 32 * 1024;
/// RFC 5322's line limit, for the subject.
pub const MAX_SUBJECT_CHARS: usize = 998;
/// The SES message tag that carries Relay's message id, so SES's bounce and complaint events
/// find their way back to the message log.
pub const MESSAGE_ID_TAG: &str = "relay-message-id";

/// A sender: each product mails from its own address, and platform mail (password resets,
/// welcome mails, Relay's notices) from the system address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Recruitiq,
    Paylinq,
    Nexus,
    System,
}

impl Sender {
    pub const ALL: [Sender; 4] = [Sender::Recruitiq, Sender::Paylinq, Sender::Nexus, Sender::System];

    pub fn name(self) -> &'static str {
        match self {
            Self::Recruitiq => "recruitiq",
            Self::Paylinq => "paylinq",
            Self::Nexus => "nexus",
            Self::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The one sender a product may use: its own; the Portal and Relay send platform mail.
    pub fn of_product(product: &str) -> Option<Self> {
        match product {
            "recruitiq" => Some(Self::Recruitiq),
            "paylinq" => Some(Self::Paylinq),
            "nexus" => Some(Self::Nexus),
            "portal" | crate::model::envelope::RELAY_SOURCE => Some(Self::System),
            _ => None,
        }
    }
}

/// Who gets a mail. Addresses are checked for shape; `to` has at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipients {
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
}

impl Recipients {
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }

    pub fn count(&self) -> usize {
        self.to.len() + self.cc.len() + self.bcc.len()
    }

    /// These recipients without the given (suppressed) addresses.
    pub fn without(&self, gone: &[String]) -> Recipients {
        let keep = |list: &Vec<String>| list.iter().filter(|a| !gone.contains(&suppression_key(a))).cloned().collect();
        Recipients { to: keep(&self.to), cc: keep(&self.cc), bcc: keep(&self.bcc) }
    }
}

/// What a mail says: a product's template and its data, or a subject and body given directly.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Template { name: String, data: Map<String, Value> },
    Direct { subject: String, html: Option<String>, text: Option<String> },
}

/// A checked mail request (either door).
#[derive(Debug, Clone, PartialEq)]
pub struct MailRequest {
    pub sender: Sender,
    pub recipients: Recipients,
    pub reply_to: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub content: Content,
}

impl MailRequest {
    /// A system template mail to one address (Relay's own notices).
    pub fn system(to: &str, template: &str, data: Map<String, Value>) -> Self {
        Self {
            sender: Sender::System,
            recipients: Recipients { to: vec![to.to_string()], ..Recipients::default() },
            reply_to: Vec::new(),
            tags: BTreeMap::new(),
            content: Content::Template { name: template.to_string(), data },
        }
    }

    pub fn template_name(&self) -> Option<&str> {
        match &self.content {
            Content::Template { name, .. } => Some(name),
            Content::Direct { .. } => None,
        }
    }

    /// The request as an `email.requested` payload (the inverse of [`parse_request`]).
    pub fn to_payload(&self) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("sender".into(), Value::String(self.sender.name().into()));
        p.insert("to".into(), self.recipients.to.clone().into());
        if !self.recipients.cc.is_empty() {
            p.insert("cc".into(), self.recipients.cc.clone().into());
        }
        if !self.recipients.bcc.is_empty() {
            p.insert("bcc".into(), self.recipients.bcc.clone().into());
        }
        if !self.reply_to.is_empty() {
            p.insert("replyTo".into(), self.reply_to.clone().into());
        }
        if !self.tags.is_empty() {
            p.insert("tags".into(), serde_json::to_value(&self.tags).unwrap_or_default());
        }
        match &self.content {
            Content::Template { name, data } => {
                p.insert("template".into(), Value::String(name.clone()));
                p.insert("data".into(), Value::Object(data.clone()));
            }
            Content::Direct { subject, html, text } => {
                p.insert("subject".into(), Value::String(subject.clone()));
                if let Some(h) = html {
                    p.insert("html".into(), Value::String(h.clone()));
                }
                if let Some(t) = text {
                    p.insert("text".into(), Value::String(t.clone()));
                }
            }
        }
        p
    }
}

/// Why a request was refused: the fields to fix, or a sender the caller may not use.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    Invalid(Vec<ProblemField>),
    /// The request names a sender other than the caller's own.
    WrongSender {
        own: Sender,
        asked: String,
    },
    /// The caller's product has no sender at all.
    NoSender(String),
}

const FIELDS: &[&str] = &["sender", "to", "cc", "bcc", "replyTo", "tags", "template", "data", "subject", "html", "text"];

/// Checks a request's fields (the API body without `organizationId`, or an `email.requested`
/// payload) for a caller publishing as `product`. Every bad field is named at once.
pub fn parse_request(body: &Map<String, Value>, product: &str) -> Result<MailRequest, RequestError> {
    let own = Sender::of_product(product).ok_or_else(|| RequestError::NoSender(product.to_string()))?;
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| errors.push(ProblemField { field: field.into(), message });

    for k in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        bad(k, format!("unknown field; a mail request has {}", FIELDS.join(", ")));
    }
    if let Some(v) = body.get("sender") {
        match v.as_str() {
            Some(s) if s == own.name() => {}
            Some(s) => return Err(RequestError::WrongSender { own, asked: s.to_string() }),
            None => bad("sender", "must be a string".into()),
        }
    }

    let list = |field: &str, required: bool, bad: &mut dyn FnMut(&str, String)| -> Vec<String> {
        match body.get(field) {
            None if !required => Vec::new(),
            None => {
                bad(field, "at least one recipient address is required".into());
                Vec::new()
            }
            Some(Value::String(s)) => checked_addresses(field, std::slice::from_ref(s), bad),
            Some(Value::Array(items)) => {
                let strings: Vec<String> = items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
                if strings.len() != items.len() {
                    bad(field, "must be an address or a list of addresses (strings)".into());
                }
                if items.is_empty() {
                    bad(field, "an empty list: give at least one address, or leave the field out".into());
                }
                checked_addresses(field, &strings, bad)
            }
            Some(_) => {
                bad(field, "must be an address or a list of addresses".into());
                Vec::new()
            }
        }
    };
    let recipients = Recipients { to: list("to", true, &mut bad), cc: list("cc", false, &mut bad), bcc: list("bcc", false, &mut bad) };
    let reply_to = list("replyTo", false, &mut bad);
    if recipients.count() > MAX_RECIPIENTS {
        bad("to", format!("at most {MAX_RECIPIENTS} recipients (to, cc and bcc together); this mail has {}", recipients.count()));
    }
    if reply_to.len() > 5 {
        bad("replyTo", "at most 5 reply-to addresses".into());
    }

    let mut tags = BTreeMap::new();
    match body.get("tags") {
        None => {}
        Some(Value::Object(m)) => {
            if m.len() > MAX_TAGS {
                bad("tags", format!("at most {MAX_TAGS} tags"));
            }
            for (k, v) in m {
                let field = format!("tags.{k}");
                match v.as_str() {
                    _ if !is_tag_text(k) => bad(&field, "tag names are 1 to 256 letters, digits, '_' or '-'".into()),
                    _ if k.starts_with("relay-") => bad(&field, "tag names starting with relay- are Relay's own".into()),
                    Some(s) if is_tag_text(s) => {
                        tags.insert(k.clone(), s.to_string());
                    }
                    _ => bad(&field, "tag values are strings of 1 to 256 letters, digits, '_' or '-' (SES's rule)".into()),
                }
            }
        }
        Some(_) => bad("tags", "must be an object of tag names to values".into()),
    }

    let text_field = |field: &str, bad: &mut dyn FnMut(&str, String)| -> Option<String> {
        match body.get(field) {
            None => None,
            Some(Value::String(s)) if s.chars().count() > MAX_PART_CHARS => {
                bad(field, format!("at most {MAX_PART_CHARS} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                bad(field, "must be a string".into());
                None
            }
        }
    };
    let template = body.get("template");
    let direct = ["subject", "html", "text"].iter().any(|f| body.contains_key(*f));
    let content = match (template, direct) {
        (Some(_), true) => {
            bad("template", "give either a template (with data) or subject/html/text, not both".into());
            None
        }
        (Some(Value::String(name)), false) => {
            let data = match body.get("data") {
                None => Map::new(),
                Some(Value::Object(m)) if serde_json::to_vec(m).map_or(0, |b| b.len()) > MAX_DATA_BYTES => {
                    bad("data", format!("at most {} KiB of template data", MAX_DATA_BYTES / 1024));
                    Map::new()
                }
                Some(Value::Object(m)) => m.clone(),
                Some(_) => {
                    bad("data", "must be an object".into());
                    Map::new()
                }
            };
            Some(Content::Template { name: name.clone(), data })
        }
        (Some(_), false) => {
            bad("template", "must be a template name".into());
            None
        }
        (None, true) => {
            if body.get("data").is_some() {
                bad("data", "data goes with a template".into());
            }
            let subject = text_field("subject", &mut bad);
            let html = text_field("html", &mut bad);
            let text = text_field("text", &mut bad);
            match &subject {
                Some(s) if s.trim().is_empty() => bad("subject", "must not be empty".into()),
                Some(s) if !is_subject(s) => bad("subject", format!("one line of at most {MAX_SUBJECT_CHARS} characters")),
                None => bad("subject", "a mail without a template needs a subject".into()),
                _ => {}
            }
            if html.is_none() && text.is_none() {
                bad("text", "give html, text or both".into());
            }
            Some(Content::Direct { subject: subject.unwrap_or_default(), html, text })
        }
        (None, false) => {
            bad("template", "give a template (with data), or subject with html and/or text".into());
            None
        }
    };

    match content {
        Some(content) if errors.is_empty() => Ok(MailRequest { sender: own, recipients, reply_to, tags, content }),
        _ => Err(RequestError::Invalid(errors)),
    }
}

fn checked_addresses(field: &str, items: &[String], bad: &mut dyn FnMut(&str, String)) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in items.iter().enumerate() {
        if is_address(a) {
            out.push(a.clone());
        } else {
            bad(&format!("{field}[{i}]"), "not an e-mail address (local@domain.tld, ASCII, no spaces or display name)".into());
        }
    }
    out
}

/// A plain addr-spec SES will take, exactly the pattern the OpenAPI document gives: dot-atoms
/// of letters, digits and `!#$%&'*+/=?^_`{|}~-` before the `@`, dotted labels of letters, digits
/// and `-` after it (two at least), 254 characters in all. Nothing that could end a header or
/// open a display name.
pub fn is_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else { return false };
    let atom = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c));
    let label = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    a.len() <= 254 && local.split('.').all(atom) && domain.contains('.') && domain.split('.').all(label)
}

fn is_tag_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One line, no control characters, within RFC 5322's line length.
pub fn is_subject(s: &str) -> bool {
    s.chars().count() <= MAX_SUBJECT_CHARS && !s.chars().any(char::is_control)
}

/// The key an address is suppressed under: addresses compare case-insensitively here, as
/// every mailbox provider that matters treats them.
pub fn suppression_key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// A rendered mail, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// What the transport is handed: everything SES needs, nothing it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub message_id: Uuid,
    /// `Name <address>` or a bare address, from the sender's configuration.
    pub from: String,
    pub recipients: Recipients,
    pub reply_to: Vec<String>,
    pub rendered: RenderedMail,
    /// Sent as SES message tags (Relay's message id among them).
    pub tags: BTreeMap<String, String>,
}

/// How a send went, as the transport can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Refused before sending (throttling, a transient service fault): safe to try again.
    Retryable(String),
    /// Refused for good (an unverified sender, a malformed message, a paused account).
    Rejected(String),
    /// The request went out and no answer came back: SES may or may not have sent it.
    Unknown(String),
}

/// Splits `Name <address>` into its parts; a bare address has no name.
pub fn split_mailbox(s: &str) -> (Option<&str>, &str) {
    match (s.find('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            let name = s[..open].trim().trim_matches('"').trim();
            (Some(name).filter(|n| !n.is_empty()), s[open + 1..close].trim())
        }
        _ => (None, s.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, product: &str) -> Result<MailRequest, RequestError> {
        parse_request(v.as_object().unwrap(), product)
    }

    fn fields(r: Result<MailRequest, RequestError>) -> Vec<String> {
        match r {
            Err(RequestError::Invalid(f)) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_template_request_round_trips_through_its_payload() {
        let r = parse(
            json!({"to": "a@example.com", "cc": ["b@example.com"], "replyTo": "hr@example.com", "tags": {"run": "r-1"},
                   "template": "payslip-available", "data": {"period": "2026-11"}}),
            "paylinq",
        )
        .unwrap();
        assert_eq!(r.sender, Sender::Paylinq);
        assert_eq!(r.recipients.count(), 2);
        assert_eq!(parse(Value::Object(r.to_payload()), "paylinq").unwrap(), r);
    }

    #[test]
    fn a_product_sends_only_as_itself() {
        assert_eq!(
            parse(json!({"to": "a@example.com", "sender": "paylinq", "template": "x"}), "recruitiq"),
            Err(RequestError::WrongSender { own: Sender::Recruitiq, asked: "paylinq".into() })
        );
        assert_eq!(parse(json!({"to": "a@example.com", "template": "x"}), "portal").unwrap().sender, Sender::System);
        assert!(matches!(parse(json!({"to": "a@example.com", "template": "x"}), "acme"), Err(RequestError::NoSender(_))));
    }

    #[test]
    fn every_bad_field_is_named() {
        let f = fields(parse(
            json!({"to": ["ok@example.com", "not an address", "x@localhost"], "bcc": 5, "tags": {"ses:x": "1", "ok": "a b"},
                   "subject": "two\nlines", "frm": 1}),
            "nexus",
        ));
        for want in ["frm", "to[1]", "to[2]", "bcc", "tags.ses:x", "tags.ok", "subject", "text"] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
        assert_eq!(fields(parse(json!({"template": "x"}), "nexus")), ["to"]);
        assert_eq!(fields(parse(json!({"to": "a@example.com"}), "nexus")), ["template"]);
        assert_eq!(fields(parse(json!({"to": "a@example.com", "template": "x", "text": "t"}), "nexus")), ["template"]);
        let many: Vec<String> = (0..51).map(|i| format!("u{i}@example.com")).collect();
        assert_eq!(fields(parse(json!({"to": many, "template": "x"}), "nexus")), ["to"]);
    }

    #[test]
    fn addresses_that_could_smuggle_a_header_or_a_name_are_refused() {
        for bad in [
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@example.com\r\nBcc: x@evil.test",
            "Name <a@example.com>",
            "a@exa_mple.com",
            "@example.com",
        ] {
            assert!(!is_address(bad), "{bad:?}");
        }
        for good in ["a@example.com", "first.last+tag@mail.example.co.uk", "x-y_z@a-b.example"] {
            assert!(is_address(good), "{good:?}");
        }
    }

    #[test]
    fn suppressed_addresses_are_dropped_case_insensitively() {
        let r = Recipients { to: vec!["A@Example.com".into(), "b@example.com".into()], cc: vec![], bcc: vec!["c@example.com".into()] };
        let left = r.without(&["a@example.com".into(), "c@example.com".into()]);
        assert_eq!(left.to, ["b@example.com"]);
        assert!(left.bcc.is_empty());
    }

    #[test]
    fn a_mailbox_splits_into_name_and_address() {
        assert_eq!(split_mailbox("Paylinq <noreply@paylinq.com>"), (Some("Paylinq"), "noreply@paylinq.com"));
        assert_eq!(split_mailbox("\"RecruitIQ Platform\" <system@recruitiq.com>"), (Some("RecruitIQ Platform"), "system@recruitiq.com"));
        assert_eq!(split_mailbox("noreply@nexus.com"), (None, "noreply@nexus.com"));
    }
}
