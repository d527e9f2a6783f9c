//! An organisation's monthly payroll schedule: the standing order behind its regular run.
//!
//! The schedule in template.yaml (`PayrollMonthlySchedule`) ticks once a day; on every tick on or
//! after the pending month's `requestDay`, that month's run is asked for once its input and its
//! rule table are there, unless the month was already run by hand. The month's run has the id
//! `scheduled-<period>` and reads `inputs/<organisation>/<period>.jsonl`, so a tick repeated
//! asks for the same run, which is done once. The month is then settled and the schedule moves
//! to the next; a month not asked for in time stays pending, so none is skipped. Off-cycle runs
//! (a correction, a bonus) are asked for by hand with their own ids.

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

/// A schedule as kept, with what its ticks did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    pub schedule: PayrollSchedule,
    pub last_tick: Option<TickOutcome>,
    /// The last month settled: asked for, or found already run by hand.
    pub last_settled: Option<String>,
}

/// What the last tick that found the schedule due did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickOutcome {
    pub at: DateTime<Utc>,
    pub period: String,
    pub payroll_run_id: String,
    /// `requested`; `skipped` (the month was already run by hand); `waiting` (for the input,
    /// or for a rule table of the month's year).
    pub outcome: String,
    pub detail: String,
}

impl TickOutcome {
    /// The month is done with: the next tick looks at the month after.
    pub fn settles(&self) -> bool {
        matches!(self.outcome.as_str(), "requested" | "skipped")
    }
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
            self.first_period = month.map(period_of);
        }
        self
    }

    /// The month the schedule asks for next: the first after the last one settled (asked for,
    /// or found already run by hand), from `firstPeriod` on. A month not asked for in time (its
    /// input late, ticks failing) stays the pending one until it is: no month is skipped.
    pub fn pending_month(&self, last_settled: Option<&str>) -> Option<NaiveDate> {
        let first = month_start(self.first_period.as_deref()?)?;
        let after = last_settled.and_then(month_start).and_then(|d| d.checked_add_months(chrono::Months::new(1)));
        Some(after.map_or(first, |a| a.max(first)))
    }

    /// The run due on `today`: the pending month's, once its request day has come.
    pub fn due(&self, today: NaiveDate, last_settled: Option<&str>) -> Option<RunRequest> {
        let month = self.pending_month(last_settled)?;
        (month.with_day(self.request_day)? <= today).then(|| self.request_for(month))
    }

    /// When the schedule next asks, and for which month (today, when a month is overdue).
    pub fn next_request(&self, today: NaiveDate, last_settled: Option<&str>) -> Option<(NaiveDate, String)> {
        let month = self.pending_month(last_settled)?;
        Some((month.with_day(self.request_day)?.max(today), period_of(month)))
    }

    /// The run of `day`'s month.
    pub fn request_for(&self, day: NaiveDate) -> RunRequest {
        let period = period_of(day);
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

/// `2026-12` of a day in December 2026.
pub fn period_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}
