//! The products' mail templates: files in `templates/email/<sender>/`, three per template
//! (`<name>.subject.txt`, `<name>.html`, `<name>.txt`), compiled into the binaries that render
//! them (so what was checked at request time is what is sent). Jinja2 syntax through
//! minijinja; the `.html` part escapes every value, the subject and text parts do not (they
//! are not HTML). A variable the data lacks is an error naming it, never an empty hole: the
//! environment is strict, and `{% if x is defined %}` marks what a template treats as optional.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use crate::model::mail::{is_subject, RenderedMail, Sender};

/// One template's three files.
struct TemplateFiles {
    sender: Sender,
    name: &'static str,
    subject: &'static str,
    html: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($sender:ident, $dir:literal, $name:literal) => {
        TemplateFiles {
            sender: Sender::$sender,
            name: $name,
            subject: include_str!(concat!("../../../../templates/email/", $dir, "/", $name, ".subject.txt")),
            html: include_str!(concat!("../../../../templates/email/", $dir, "/", $name, ".html")),
            text: include_str!(concat!("../../../../templates/email/", $dir, "/", $name, ".txt")),
        }
    };
}

/// Every template in `templates/email` (a test checks the folder and this list agree).
const TEMPLATES: &[TemplateFiles] = &[
    template!(System, "system", "welcome"),
    template!(System, "system", "password-reset"),
    template!(System, "system", "endpoint-disabled"),
    template!(System, "system", "contact-verification"),
    template!(Paylinq, "paylinq", "payslip-available"),
    template!(Recruitiq, "recruitiq", "interview-invitation"),
    template!(Nexus, "nexus", "leave-approved"),
];

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The sender has no template of that name; the names it has.
    UnknownTemplate { available: Vec<&'static str> },
    /// Variables the template uses that the data lacks (dotted paths: `employee.name`).
    MissingVariables(Vec<String>),
    /// Anything else the engine refused (a filter applied to the wrong type, a subject that
    /// rendered to more than one line).
    Invalid(String),
}

/// The template names a sender has.
pub fn templates_of(sender: Sender) -> Vec<&'static str> {
    TEMPLATES.iter().filter(|t| t.sender == sender).map(|t| t.name).collect()
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        env.set_keep_trailing_newline(false);
        for t in TEMPLATES {
            let dir = t.sender.name();
            for (ext, source) in [("subject.txt", t.subject), ("html", t.html), ("txt", t.text)] {
                // The files are part of the build and a unit test renders each; one that does not
                // parse is left out here and reported as unknown rather than taking the
                // function down.
                if let Err(e) = env.add_template_owned(format!("{dir}/{}.{ext}", t.name), source) {
                    tracing::error!(template = t.name, error = %e, "a mail template does not parse");
                }
            }
        }
        env
    })
}

/// Renders `sender`'s template `name` with `data`: subject, html and text.
pub fn render(sender: Sender, name: &str, data: &Map<String, Value>) -> Result<RenderedMail, RenderError> {
    let env = environment();
    let path = |ext: &str| format!("{}/{name}.{ext}", sender.name());
    let unknown = || RenderError::UnknownTemplate { available: templates_of(sender) };
    let (subject, html, text) =
        match (env.get_template(&path("subject.txt")), env.get_template(&path("html")), env.get_template(&path("txt"))) {
            (Ok(s), Ok(h), Ok(t)) => (s, h, t),
            _ => return Err(unknown()),
        };
    let ctx = minijinja::Value::from_serialize(data);
    let run = |t: &minijinja::Template, ctx: &minijinja::Value| t.render(ctx);
    let rendered = (run(&subject, &ctx), run(&html, &ctx), run(&text, &ctx));
    match rendered {
        (Ok(s), Ok(h), Ok(t)) => {
            let s = s.trim().to_string();
            if !is_subject(&s) || s.is_empty() {
                return Err(RenderError::Invalid("the subject must render to one non-empty line".into()));
            }
            Ok(RenderedMail { subject: s, html: Some(h), text: Some(t) })
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) if e.kind() != minijinja::ErrorKind::UndefinedError => {
            Err(RenderError::Invalid(e.to_string()))
        }
        _ => {
            // Name every variable the data lacks that the templates cannot do without: of the
            // names they use and the data does not hold, those whose absence alone (every other
            // one filled in) still leaves a value undefined. A guarded one (`is defined`) is not named.
            let mut candidates: Vec<String> =
                [&subject, &html, &text].iter().flat_map(|t| t.undeclared_variables(true)).filter(|path| !resolves(data, path)).collect();
            candidates.sort();
            candidates.dedup();
            let undefined_without = |gap: &str| {
                let mut filled = data.clone();
                for c in candidates.iter().filter(|c| c.as_str() != gap) {
                    fill(&mut filled, c);
                }
                let ctx = minijinja::Value::from_serialize(&filled);
                [&subject, &html, &text].iter().any(|t| run(t, &ctx).is_err_and(|e| e.kind() == minijinja::ErrorKind::UndefinedError))
            };
            let missing: Vec<String> = candidates.iter().filter(|c| undefined_without(c)).cloned().collect();
            if missing.is_empty() {
                Err(RenderError::Invalid("a value the template uses is undefined".into()))
            } else {
                Err(RenderError::MissingVariables(missing))
            }
        }
    }
}

/// Puts a stand-in value at the dotted path `a.b.c` (for finding which variables are required).
fn fill(data: &mut Map<String, Value>, path: &str) {
    let mut parts = path.split('.').peekable();
    let mut at = data;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            at.entry(p.to_string()).or_insert_with(|| Value::String("x".into()));
            return;
        }
        let next = at.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(m) => at = m,
            _ => return,
        }
    }
}

/// Does `data` hold the dotted path `a.b.c`?
fn resolves(data: &Map<String, Value>, path: &str) -> bool {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else { return true };
    let mut at = match data.get(first) {
        Some(v) => v,
        None => return false,
    };
    for p in parts {
        at = match at.get(p) {
            Some(v) => v,
            // A path into a list or a scalar (`items.length`, a loop variable's field) is the
            // engine's to judge; only missing object keys are named.
            None if !at.is_object() => return true,
            None => return false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn hostile_data_is_escaped_in_html_and_left_alone_in_text() {
        let d = data(json!({"candidateName": "<script>alert(1)</script>", "jobTitle": "Dev & \"Ops\"", "organizationName": "Acme",
                            "dateTime": "2026-12-01 10:00", "confirmUrl": "https://example.com/c?a=1&b=2"}));
        let m = render(Sender::Recruitiq, "interview-invitation", &d).unwrap();
        let html = m.html.unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("Dev &amp; &quot;Ops&quot;"));
        assert!(m.text.unwrap().contains("<script>alert(1)</script>"), "the text part is not HTML");
        assert_eq!(m.subject, "Interview for Dev & \"Ops\" at Acme");
    }

    #[test]
    fn a_missing_variable_is_named_and_nothing_is_rendered() {
        let d = data(json!({"employeeName": "Ada", "period": "2026-11"}));
        assert_eq!(
            render(Sender::Paylinq, "payslip-available", &d),
            Err(RenderError::MissingVariables(vec!["netPay".into(), "payDate".into(), "payslipUrl".into()]))
        );
    }

    #[test]
    fn an_optional_variable_may_be_left_out_and_is_never_named_missing() {
        let d = data(json!({"candidateName": "A", "jobTitle": "B", "organizationName": "C", "dateTime": "D", "confirmUrl": "E"}));
        let m = render(Sender::Recruitiq, "interview-invitation", &d).unwrap();
        assert!(!m.text.unwrap().contains(" at "), "no location, no 'at'");
        let d = data(json!({"candidateName": "A"}));
        assert_eq!(
            render(Sender::Recruitiq, "interview-invitation", &d),
            Err(RenderError::MissingVariables(vec!["confirmUrl".into(), "dateTime".into(), "jobTitle".into(), "organizationName".into()]))
        );
    }

    #[test]
    fn a_template_belongs_to_its_sender() {
        assert_eq!(
            render(Sender::Recruitiq, "payslip-available", &Map::new()),
            Err(RenderError::UnknownTemplate { available: vec!["interview-invitation"] })
        );
    }

    #[test]
    fn a_subject_cannot_be_made_to_carry_a_header() {
        let d =
            data(json!({"period": "2026-11\r\nBcc: x@evil.test", "employeeName": "A", "netPay": "1", "payDate": "2", "payslipUrl": "3"}));
        assert!(matches!(render(Sender::Paylinq, "payslip-available", &d), Err(RenderError::Invalid(_))));
    }

    /// Every file in `templates/email` is a listed template, and every listed one renders when
    /// given every variable it names.
    #[test]
    fn the_folder_and_the_list_agree_and_every_template_renders() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/email");
        let mut on_disk = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap();
            for f in std::fs::read_dir(dir.path()).unwrap() {
                let f = f.unwrap().file_name().into_string().unwrap();
                let name = f.trim_end_matches(".subject.txt").trim_end_matches(".html").trim_end_matches(".txt").to_string();
                on_disk.push(format!("{}/{name}", dir.file_name().into_string().unwrap()));
            }
        }
        on_disk.sort();
        on_disk.dedup();
        let mut listed: Vec<String> = TEMPLATES.iter().map(|t| format!("{}/{}", t.sender.name(), t.name)).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        for t in TEMPLATES {
            let env = environment();
            let mut d = Map::new();
            for ext in ["subject.txt", "html", "txt"] {
                for v in env.get_template(&format!("{}/{}.{ext}", t.sender.name(), t.name)).unwrap().undeclared_variables(false) {
                    d.insert(v, json!(["x"]));
                }
            }
            assert!(render(t.sender, t.name, &d).is_ok(), "{}/{}", t.sender.name(), t.name);
        }
    }
}
