//! A payroll rule table: the figures of one country and year, read from a data file. A table for
//! another year or country is a new file beside it, not new code: every rule here is generic
//! (brackets, a phased-out credit, a piecewise-linear credit, rates on capped wages).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

/// One rule table (`rules/payroll/nl-2025.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleTable {
    /// `nl-2025`: the file's name, and what a run names.
    pub id: String,
    pub country: String,
    pub year: i32,
    pub currency: String,
    pub periods_per_year: u32,
    pub description: String,
    /// Where each figure comes from.
    pub sources: Vec<String>,
    /// Figures not confirmed by a source, named so nobody mistakes them for checked ones.
    #[serde(default)]
    pub unverified: Vec<String>,
    /// The rounding rule, in words (implemented in [`crate::payroll::compute`]).
    pub rounding: String,
    /// Annual wage-tax brackets, lowest first; the last has no upper bound.
    pub brackets: Vec<Bracket>,
    pub general_credit: PhasedOutCredit,
    /// Piecewise linear in the annual wage, lowest segment first.
    pub labour_credit: Vec<CreditSegment>,
    pub pension_schemes: BTreeMap<String, PensionScheme>,
    pub employer_charges: EmployerCharges,
    /// What the table does not cover, for the README and the run report.
    pub not_covered: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bracket {
    /// Upper bound of the annual wage this rate applies to; `None` for the top bracket.
    pub up_to: Option<Decimal>,
    pub rate: Decimal,
    #[serde(default)]
    pub note: Option<String>,
}

/// A credit worth `max`, reduced by `phase_out_rate` of the income above `phase_out_from`, never below zero.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhasedOutCredit {
    pub max: Decimal,
    pub phase_out_from: Decimal,
    pub phase_out_rate: Decimal,
}

/// `base + rate × (income − from)` for an income in `[from, to)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditSegment {
    pub from: Decimal,
    pub to: Option<Decimal>,
    pub base: Decimal,
    pub rate: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PensionScheme {
    /// Withheld from the employee's gross pay (before tax).
    pub employee_rate: Decimal,
    /// Paid by the employer on top, reported beside.
    pub employer_rate: Decimal,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmployerCharges {
    /// Premiums are due on the wage up to this (annual; per period `/ periods_per_year`).
    pub max_premium_wage: Decimal,
    pub premiums: Vec<Premium>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Premium {
    pub code: String,
    pub name: String,
    pub rate: Decimal,
}

/// Why a table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the rule table is not valid JSON for a table: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("the rule table {id} is inconsistent: {why}")]
    Inconsistent { id: String, why: String },
}

impl RuleTable {
    /// Reads and checks a table: brackets and credit segments ascending and contiguous, the
    /// top of each open-ended, rates between -1 and 1, a `none` pension scheme.
    pub fn parse(json: &str) -> Result<Self, TableError> {
        let table: RuleTable = serde_json::from_str(json)?;
        table.check().map_err(|why| TableError::Inconsistent { id: table.id.clone(), why })?;
        Ok(table)
    }

    fn check(&self) -> Result<(), String> {
        if self.periods_per_year == 0 {
            return Err("periodsPerYear must be at least 1".into());
        }
        let ascending = |bounds: Vec<Option<Decimal>>, what: &str| -> Result<(), String> {
            let Some((last, inner)) = bounds.split_last() else { return Err(format!("{what} must not be empty")) };
            if last.is_some() {
                return Err(format!("the last of {what} must be open-ended (null)"));
            }
            let inner: Vec<Decimal> =
                inner.iter().map(|b| b.ok_or_else(|| format!("only the last of {what} may be open-ended"))).collect::<Result<_, _>>()?;
            if inner.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("{what} must be ascending"));
            }
            Ok(())
        };
        ascending(self.brackets.iter().map(|b| b.up_to).collect(), "brackets")?;
        ascending(self.labour_credit.iter().map(|s| s.to).collect(), "labourCredit segments")?;
        for pair in self.labour_credit.windows(2) {
            if pair[0].to != Some(pair[1].from) {
                return Err("labourCredit segments must join: each starts where the one before ends".into());
            }
        }
        let rates = self
            .brackets
            .iter()
            .map(|b| b.rate)
            .chain(self.labour_credit.iter().map(|s| s.rate))
            .chain(self.employer_charges.premiums.iter().map(|p| p.rate));
        if rates.into_iter().any(|r| r.abs() > Decimal::ONE) {
            return Err("every rate is a fraction between -1 and 1 (0.0817, not 8.17)".into());
        }
        let fractions =
            self.pension_schemes.values().flat_map(|p| [p.employee_rate, p.employer_rate]).chain([self.general_credit.phase_out_rate]);
        if fractions.into_iter().any(|r| r.is_sign_negative() || r > Decimal::ONE) {
            return Err("pension rates and the phase-out rate are fractions between 0 and 1".into());
        }
        if !self.pension_schemes.contains_key("none") {
            return Err("a `none` pension scheme must exist".into());
        }
        Ok(())
    }
}

mod files {
    include!(concat!(env!("OUT_DIR"), "/payroll_tables.rs"));
}

/// Every table in `rules/payroll/` (built in by `shared/core/build.rs`), checked.
pub fn built_in() -> Result<Vec<RuleTable>, TableError> {
    files::BUILT_IN.iter().map(|json| RuleTable::parse(json)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NL_2025: &str = include_str!("../../../../rules/payroll/nl-2025.json");

    #[test]
    fn the_2025_table_reads_and_its_credits_join_their_neighbours() {
        let t = RuleTable::parse(NL_2025).expect("nl-2025 parses");
        assert_eq!((t.id.as_str(), t.year, t.periods_per_year), ("nl-2025", 2025, 12));
        // Each segment's end value is the next one's base (to the euro).
        for pair in t.labour_credit.windows(2) {
            let end = pair[0].base + pair[0].rate * (pair[1].from - pair[0].from);
            assert!((end - pair[1].base).abs() < Decimal::ONE || pair[1].base.is_zero(), "{end} vs {}", pair[1].base);
        }
    }

    #[test]
    fn every_built_in_table_parses_and_ids_are_unique() {
        let tables = built_in().expect("every table in rules/payroll parses");
        assert!(tables.iter().any(|t| t.id == "nl-2025"));
        let mut ids: Vec<&str> = tables.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), tables.len());
    }

    #[test]
    fn an_inconsistent_table_is_refused_with_what_is_wrong() {
        let broken = NL_2025.replace("\"upTo\": \"76817\"", "\"upTo\": \"30000\"");
        let e = RuleTable::parse(&broken).unwrap_err().to_string();
        assert!(e.contains("brackets must be ascending"), "{e}");
        let percent = NL_2025.replace("\"rate\": \"0.4950\"", "\"rate\": \"49.50\"");
        assert!(RuleTable::parse(&percent).unwrap_err().to_string().contains("fraction"));
        assert!(matches!(RuleTable::parse("{}"), Err(TableError::Parse(_))));
    }
}
