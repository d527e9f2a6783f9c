//! Log lines as CloudWatch Logs bills them: per byte ingested ($0.50 per GB in us-east-1, issue
//! 14). The runtime's default JSON subscriber writes the invocation's span twice on every line
//! (as `span` and again as the one-element `spans` list: requestId and X-Ray trace id, about
//! 200 bytes) and nests the fields under `fields`. This one keeps the span once and the fields
//! flat; the level comes from Lambda's `ApplicationLogLevel` (`AWS_LAMBDA_LOG_LEVEL`) or
//! `RUST_LOG`, as the runtime's does.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Installs the subscriber every function uses: JSON when Lambda's log format is JSON (as
/// template.yaml sets it), plain text otherwise (a developer's terminal).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    let level = level.as_deref().and_then(|l| l.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let fmt = tracing_subscriber::fmt().with_target(false).with_env_filter(filter);
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        // With a timestamp: Lambda filters JSON lines by `ApplicationLogLevel` only when each
        // carries `timestamp` and `level` (without one it takes every line for INFO, so a WARN
        // setting would drop errors too).
        fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        fmt.without_time().with_ansi(false).init();
    }
}
