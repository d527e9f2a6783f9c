//! Payroll: a period's pay computed exactly, to the cent, from a rule table that is data
//! (`rules/payroll/<country>-<year>.json`), and the documents a run produces. Pure rules, no I/O:
//!
//! - [`rules`]: the rule table (brackets, credits, pension schemes, employer charges) and its checks.
//! - [`compute`]: one employee's payslip from their input line and a table, or why it is refused.
//! - [`sepa`]: the SEPA credit transfer (pain.001.001.03) paying every net amount, and IBAN checks.
//! - [`pdf`]: the payslip as a one-page PDF, what the employee actually receives.
//! - [`job`]: a run as it moves through the queues (request, record, chunks, results).
//! - [`schedule`]: an organisation's monthly schedule, and the run it asks for on a day.
//! - [`requests`]: the API's use cases (ask for a run; see one, with links to its files; list
//!   runs; set an organisation's schedule).
//! - [`tick`]: the schedule's daily tick, which asks for every due monthly run once.
//! - [`run`]: the workflow over ports: split a run into chunks, compute each chunk once in
//!   effect, and let the last chunk to finish write the bank file and announce the run.
//!
//! Money is `rust_decimal::Decimal` throughout, never a float; the one rounding rule is written
//! in the table (`rounding`) and in [`compute`].

pub mod compute;
pub mod job;
pub mod pdf;
pub mod requests;
pub mod rules;
pub mod run;
pub mod schedule;
pub mod sepa;
pub mod tick;

#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod tests;
