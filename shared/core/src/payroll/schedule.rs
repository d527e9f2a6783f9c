//! An organisation's monthly payroll schedule: the standing order behind its regular run.
//!
//! The schedule in template.yaml (`PayrollMonthlySchedule`) ticks once a day; on every tick on or
//! after an organisation's `requestDay`, the month's run is asked for if it has not been and its
//! input is there. The month's run has the id `scheduled-<period>` and reads
//! `inputs/<organisation>/<period>.jsonl`, so a tick repeated (or a day's tick after the run was
//! asked for) asks for the same run, which is done once. Off-cycle runs (a correction, a bonus)
//! are asked for by hand with their own ids.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::job::{month_start, EmployerAccount, RunRequest};

/// `PUT /v1/payroll-schedules/{organizationId}`'s body, and what is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayrollSchedule {
    /// From the path; never from the body.
    #[serde(default)]
    pub organization_id: String,
    /// The day of the month the run is asked for: 1 to 28, so that every month has it.
    pub request_day: u32,
    /// The day of the month employees are paid (the month's last day when it has fewer days):
    /// on or after `requestDay`.
    pub pay_day: u32,
    pub employer: EmployerAccount,
    /// A table in `rules/payroll/`; `nl-<year>` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_table: Option<String>,
    /// The first month the schedule asks for (`2026-12`). Left out, it is the first month whose
    /// request day is still ahead: a schedule set up after this month's run was asked for by
    /// hand must not ask for the month again, under another id, and pay it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_period: Option<String>,
}

/// What the last tick that found the schedule due did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickOutcome {
    pub at: DateTime<Utc>,
    pub period: String,
    pub payroll_run_id: String,
    /// `requested`, or `waiting` (for the input).
    pub outcome: String,
    pub detail: String,
}

/// The prefix of a scheduled run's id.
pub const RUN_ID_PREFIX: &str = "scheduled-";

impl PayrollSchedule {
    /// What is wrong with the schedule, before anything is written.
    pub fn problems(&self) -> Option<String> {
        if !(1..=28).contains(&self.request_day) {
            return Some("requestDay must be 1 to 28, a day every month has".into());
        }
        if !(1..=31).contains(&self.pay_day) || self.pay_day < self.request_day {
            return Some("payDay must be a day of the month (1 to 31) on or after requestDay".into());
        }
        if self.first_period.as_deref().is_some_and(|p| month_start(p).is_none()) {
            return Some("firstPeriod must be a month such as 2026-12".into());
        }
        // The run it would ask for checks the organisation and the employer's account.
        self.request_for(NaiveDate::from_ymd_opt(2025, 1, 1)?).problems()
    }

    /// The schedule as kept: with its first period settled, from `today` if it was left out.
    pub fn settled(mut self, today: NaiveDate) -> Self {
        if self.first_period.is_none() {
            let month = if today.day() < self.request_day { Some(today) } else { today.checked_add_months(chrono::Months::new(1)) };
            self.first_period = month.map(|d| format!("{:04}-{:02}", d.year(), d.month()));
        }
        self
    }

    /// The month's run asked for on `today`, or none before the month's `requestDay` or before
    /// the schedule's first period.
    pub fn due(&self, today: NaiveDate) -> Option<RunRequest> {
        let request = self.request_for(today);
        let started = self.first_period.as_deref().is_none_or(|first| request.period.as_str() >= first);
        (today.day() >= self.request_day && started).then_some(request)
    }

    /// The next day, from `today` on, that the schedule asks for a month's run, and that month.
    pub fn next_request(&self, today: NaiveDate) -> Option<(NaiveDate, String)> {
        (0..=24).find_map(|ahead| {
            let day = today.with_day(1)?.checked_add_months(chrono::Months::new(ahead))?.with_day(self.request_day)?;
            let period = format!("{:04}-{:02}", day.year(), day.month());
            let started = self.first_period.as_deref().is_none_or(|first| period.as_str() >= first);
            (day >= today && started).then_some((day, period))
        })
    }

    /// The run of `day`'s month.
    fn request_for(&self, day: NaiveDate) -> RunRequest {
        let period = format!("{:04}-{:02}", day.year(), day.month());
        let first = day.with_day(1).unwrap_or(day);
        let last = first.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).unwrap_or(first);
        let pay_date = first.with_day(self.pay_day.min(last.day())).unwrap_or(last);
        RunRequest {
            payroll_run_id: format!("{RUN_ID_PREFIX}{period}"),
            organization_id: self.organization_id.clone(),
            input: input_key(&self.organization_id, &period),
            period,
            pay_date,
            employer: self.employer.clone(),
            rule_table: self.rule_table.clone(),
        }
    }
}

/// Where Paylinq uploads a month's input for the scheduled run.
pub fn input_key(organization_id: &str, period: &str) -> String {
    format!("inputs/{organization_id}/{period}.jsonl")
}
