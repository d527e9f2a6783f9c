//! What the workflows count and time, for dashboards and alarms. The domain names the
//! measurements; an adapter decides where they go (CloudWatch through the Embedded Metric Format
//! in `relay-aws`, a recorder in tests). Every metric Relay emits is named here, in one list, so
//! an alarm or a dashboard can be written against it without reading the workflows.

use std::time::Duration;

/// Newly accepted events (ingest: one per event, batch items included).
pub const EVENTS_ACCEPTED: &str = "EventsAccepted";
/// Batch items refused one by one (invalid, wrong product, id conflict, not published).
pub const EVENTS_REJECTED: &str = "EventsRejected";
/// Whole requests refused with a 4xx (auth, malformed JSON, invalid event, key reused, ...).
pub const REQUESTS_REJECTED: &str = "RequestsRejected";
/// Requests answered from a completed idempotency record.
pub const IDEMPOTENT_REPLAYS: &str = "IdempotentReplays";
/// Requests answered 503 because an AWS dependency failed (nothing was kept).
pub const UNAVAILABLE: &str = "Unavailable";

/// Third-party webhooks verified and published (dimension `Provider`).
pub const WEBHOOKS_ACCEPTED: &str = "WebhooksAccepted";
/// Third-party webhooks refused: bad or stale signature, malformed (dimension `Provider`).
pub const WEBHOOKS_REJECTED: &str = "WebhooksRejected";
/// Provider retries of a webhook already published (dimension `Provider`).
pub const WEBHOOKS_DUPLICATE: &str = "WebhooksDuplicate";
/// Refused or duplicate webhook calls left out of the source's request log (over its cap).
pub const WEBHOOK_REQUESTS_NOT_LOGGED: &str = "WebhookRequestsNotLogged";

/// Webhook deliveries answered with a 2xx.
pub const DELIVERIES_SUCCEEDED: &str = "DeliveriesSucceeded";
/// Delivery attempts that failed (non-2xx, timeout, connection error, refused address).
pub const DELIVERY_ATTEMPTS_FAILED: &str = "DeliveryAttemptsFailed";
/// How long the receiving endpoint took to answer, per attempt.
pub const DELIVERY_DURATION: &str = "DeliveryDuration";
/// Retries put on the retry queue (failure or rate limit).
pub const RETRIES_SCHEDULED: &str = "RetriesScheduled";
/// Deliveries that used up every attempt and went to the dead-letter queue.
pub const DELIVERIES_EXHAUSTED: &str = "DeliveriesExhausted";
/// Subscriptions disabled (410 Gone, or failing for longer than the window).
pub const ENDPOINTS_DISABLED: &str = "EndpointsDisabled";

/// Mails SES accepted (dimension `Sender`).
pub const EMAILS_SENT: &str = "EmailsSent";
/// Mails not sent because every recipient is on the suppression list (dimension `Sender`).
pub const EMAILS_SUPPRESSED: &str = "EmailsSuppressed";
/// Mails that failed for good: refused by SES, out of attempts, invalid on the bus, or a send
/// whose outcome is unknown (dimension `Sender`).
pub const EMAILS_FAILED: &str = "EmailsFailed";
/// Sends put off by throttling or a transient SES fault, to be tried again.
pub const EMAIL_RETRIES: &str = "EmailRetries";
/// Hard bounces and complaints SES reported (each suppresses its addresses).
pub const EMAILS_BOUNCED: &str = "EmailsBounced";
pub const EMAILS_COMPLAINED: &str = "EmailsComplained";

/// Payroll runs completed (payroll-batch: once per run).
pub const PAYROLL_RUNS_COMPLETED: &str = "PayrollRunsCompleted";
/// Employees paid in a completed run (a payslip and a transfer each).
pub const EMPLOYEES_PAID: &str = "EmployeesPaid";
/// Input lines of a completed run that were not paid (listed with the reason in its report).
pub const EMPLOYEES_REJECTED: &str = "EmployeesRejected";
/// Scheduled runs that are due but cannot be asked for yet: their input is not uploaded, or no
/// rule table of their year is built in (per due schedule, per tick).
pub const SCHEDULED_RUNS_WAITING: &str = "ScheduledRunsWaiting";

/// Tenants that reached `active` (provision).
pub const TENANTS_PROVISIONED: &str = "TenantsProvisioned";
/// Provisioning workflows that failed (dimension `Step`: where).
pub const PROVISIONING_FAILED: &str = "ProvisioningFailed";
/// How long a provisioning step took from its start to done, waits included (dimension `Step`).
pub const STEP_DURATION: &str = "StepDuration";

/// CloudWatch's unit for a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
}

impl Metric {
    pub fn count(name: &'static str, n: usize) -> Self {
        Self { name, value: n as f64, unit: Unit::Count }
    }

    pub fn millis(name: &'static str, d: Duration) -> Self {
        Self { name, value: d.as_secs_f64() * 1000.0, unit: Unit::Milliseconds }
    }
}

/// Where the workflows report measurements. One call is one set of metrics that share
/// dimensions; dimension values must come from a small, fixed set (a provider's name, never an
/// organisation or event id), because every distinct value is a separate paid metric.
pub trait Metrics: Send + Sync {
    fn record(&self, dimensions: &[(&'static str, &str)], metrics: &[Metric]);

    /// One more of `name`: the common case, a single count.
    fn increment(&self, dimensions: &[(&'static str, &str)], name: &'static str) {
        self.record(dimensions, &[Metric::count(name, 1)]);
    }
}
