//! One employee's pay for one period, exact to the cent.
//!
//! The rounding rule (also in the table's `rounding`): the annual wage is the period's taxable
//! wage times the periods per year, rounded down to whole euros; brackets and credits are
//! computed on it exactly; the period's withholding is the annual amount divided by the periods
//! per year, rounded to the cent with halves away from zero. Pension and employer charges are
//! rounded the same way when computed, and net pay is gross minus the rounded amounts, so
//! `net + wage tax + pension + deductions = gross` holds exactly on every payslip, and so for
//! every chunk and every run.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::rules::{CreditSegment, PhasedOutCredit, RuleTable};
use super::sepa::{bic_is_valid, iban_is_valid, normalize_iban};

/// One line of a run's input (JSON lines in S3, one employee each). Amounts are decimal strings
/// ("4250.00") with at most two decimals: a JSON number would pass through a float first.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmployeeLine {
    pub employee_id: String,
    pub name: String,
    pub email: String,
    pub iban: String,
    #[serde(default)]
    pub bic: Option<String>,
    /// Gross pay for the period.
    #[serde(with = "rust_decimal::serde::str")]
    pub gross_pay: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub hours: Option<Decimal>,
    /// Taxable allowances for the period, added to gross pay.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub allowances: Decimal,
    /// Deducted from net pay (after tax): an advance repaid, a garnishment, ...
    #[serde(default, with = "rust_decimal::serde::str")]
    pub deductions: Decimal,
    /// A scheme of the rule table (`none`, ...).
    pub pension_scheme: String,
    /// Whether the employer applies the tax credits (loonheffingskorting) for this employee.
    pub tax_credit_applied: bool,
}

/// One employer charge on a payslip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    pub code: String,
    pub name: String,
    pub amount: Decimal,
}

/// One employee's payslip: what they are paid and why, and what it costs the employer beside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payslip {
    pub payslip_id: String,
    pub employee_id: String,
    pub name: String,
    pub email: String,
    pub iban: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
    pub period: String,
    pub rule_table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<Decimal>,
    pub gross_pay: Decimal,
    pub allowances: Decimal,
    /// Gross pay plus allowances.
    pub gross: Decimal,
    pub pension_scheme: String,
    pub pension: Decimal,
    /// Gross minus the employee's pension contribution.
    pub taxable_wage: Decimal,
    /// The taxable wage annualised, whole euros (what the tables are applied to).
    pub annual_wage: Decimal,
    /// Annual tax and national insurance before credits, exact.
    pub annual_tax_before_credits: Decimal,
    pub general_credit: Decimal,
    pub labour_credit: Decimal,
    /// Withheld this period.
    pub wage_tax: Decimal,
    pub deductions: Decimal,
    pub net_pay: Decimal,
    pub employer_pension: Decimal,
    pub employer_charges: Vec<Charge>,
    /// Employer pension plus every charge.
    pub employer_cost: Decimal,
}

impl Payslip {
    /// `net + wage tax + pension + deductions = gross`, exactly.
    pub fn reconciles(&self) -> bool {
        self.net_pay + self.wage_tax + self.pension + self.deductions == self.gross
    }
}

/// Rounds to the cent, halves away from zero (the one rounding of money in a payslip).
pub fn cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Why a line is not paid. A refused line is reported in the run's report and never half-paid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The payslip of `line` for `period` under `table`, or why the line is refused.
pub fn payslip(line: &EmployeeLine, table: &RuleTable, period: &str, payslip_id: String) -> Result<Payslip, Refusal> {
    let refuse = |why: String| Err(Refusal(why));
    // It names the employee's payslip files, so it is kept to a safe alphabet.
    let id_ok = line.employee_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) && !line.employee_id.starts_with('.');
    if !(1..=64).contains(&line.employee_id.len()) || !id_ok {
        return refuse("employeeId must be 1 to 64 letters, digits, '-', '_' or '.' (not first)".into());
    }
    if line.name.trim().is_empty() || line.name.chars().count() > 140 {
        return refuse("name must be 1 to 140 characters".into());
    }
    let at = line.email.find('@');
    if at.is_none_or(|i| i == 0 || i + 1 == line.email.len()) || line.email.contains(char::is_whitespace) {
        return refuse(format!("email {:?} is not an address", line.email));
    }
    let iban = normalize_iban(&line.iban);
    if !iban_is_valid(&iban) {
        return refuse(format!("IBAN {:?} fails its checksum or format", line.iban));
    }
    if let Some(bic) = line.bic.as_deref().filter(|b| !bic_is_valid(b)) {
        return refuse(format!("BIC {bic:?} is not a BIC (8 or 11 characters, as ABNANL2A)"));
    }
    for (name, amount) in [("grossPay", line.gross_pay), ("allowances", line.allowances), ("deductions", line.deductions)] {
        if amount.is_sign_negative() && !amount.is_zero() {
            return refuse(format!("{name} must not be negative"));
        }
        if amount.normalize().scale() > 2 {
            return refuse(format!("{name} has more than two decimals: {amount}"));
        }
        if amount > Decimal::from(10_000_000) {
            return refuse(format!("{name} is implausibly large: {amount}"));
        }
    }
    let Some(scheme) = table.pension_schemes.get(&line.pension_scheme) else {
        return refuse(format!("pension scheme {:?} is not in rule table {}", line.pension_scheme, table.id));
    };

    let periods = Decimal::from(table.periods_per_year);
    let gross = line.gross_pay + line.allowances;
    let pension = cents(gross * scheme.employee_rate);
    let taxable_wage = gross - pension;
    let annual_wage = (taxable_wage * periods).floor();
    let annual_tax_before_credits = bracket_tax(table, annual_wage);
    let (general_credit, labour_credit) = if line.tax_credit_applied {
        (phased_out(&table.general_credit, annual_wage), piecewise(&table.labour_credit, annual_wage))
    } else {
        (Decimal::ZERO, Decimal::ZERO)
    };
    let annual_tax = (annual_tax_before_credits - general_credit - labour_credit).max(Decimal::ZERO);
    let wage_tax = cents(annual_tax / periods);
    let net_pay = gross - pension - wage_tax - line.deductions;
    if net_pay.is_sign_negative() && !net_pay.is_zero() {
        return refuse(format!("net pay would be negative ({net_pay}): deductions exceed what is left after tax"));
    }

    let premium_wage = taxable_wage.min(table.employer_charges.max_premium_wage / periods);
    let employer_charges: Vec<Charge> = table
        .employer_charges
        .premiums
        .iter()
        .map(|p| Charge { code: p.code.clone(), name: p.name.clone(), amount: cents(premium_wage * p.rate) })
        .collect();
    let employer_pension = cents(gross * scheme.employer_rate);
    let employer_cost = employer_pension + employer_charges.iter().map(|c| c.amount).sum::<Decimal>();
    Ok(Payslip {
        payslip_id,
        employee_id: line.employee_id.clone(),
        name: line.name.trim().to_string(),
        email: line.email.clone(),
        iban,
        bic: line.bic.clone(),
        period: period.to_string(),
        rule_table: table.id.clone(),
        hours: line.hours,
        gross_pay: line.gross_pay,
        allowances: line.allowances,
        gross,
        pension_scheme: line.pension_scheme.clone(),
        pension,
        taxable_wage,
        annual_wage,
        annual_tax_before_credits,
        general_credit,
        labour_credit,
        wage_tax,
        deductions: line.deductions,
        net_pay,
        employer_pension,
        employer_charges,
        employer_cost,
    })
}

/// Tax and national insurance on an annual wage, bracket by bracket, exact.
fn bracket_tax(table: &RuleTable, annual: Decimal) -> Decimal {
    let mut tax = Decimal::ZERO;
    let mut lower = Decimal::ZERO;
    for bracket in &table.brackets {
        let upper = bracket.up_to.map_or(annual, |u| annual.min(u));
        if upper > lower {
            tax += (upper - lower) * bracket.rate;
        }
        match bracket.up_to {
            Some(u) if annual > u => lower = u,
            _ => break,
        }
    }
    tax
}

fn phased_out(credit: &PhasedOutCredit, income: Decimal) -> Decimal {
    (credit.max - credit.phase_out_rate * (income - credit.phase_out_from).max(Decimal::ZERO)).max(Decimal::ZERO)
}

fn piecewise(segments: &[CreditSegment], income: Decimal) -> Decimal {
    segments
        .iter()
        .find(|s| s.to.is_none_or(|to| income < to))
        .map_or(Decimal::ZERO, |s| (s.base + s.rate * (income - s.from)).max(Decimal::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NL_2025: &str = include_str!("../../../../rules/payroll/nl-2025.json");

    fn table() -> RuleTable {
        RuleTable::parse(NL_2025).expect("table")
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn line(gross: &str, allowances: &str, deductions: &str, scheme: &str, credits: bool) -> EmployeeLine {
        EmployeeLine {
            employee_id: "emp-1".into(),
            name: "Anna de Vries".into(),
            email: "anna@example.nl".into(),
            iban: "NL91 ABNA 0417 1643 00".into(),
            bic: None,
            gross_pay: d(gross),
            hours: Some(d("160")),
            allowances: d(allowances),
            deductions: d(deductions),
            pension_scheme: scheme.into(),
            tax_credit_applied: credits,
        }
    }

    fn slip(l: &EmployeeLine) -> Payslip {
        let p = payslip(l, &table(), "2025-11", "ps-1".into()).expect("paid");
        assert!(p.reconciles(), "{p:?}");
        p
    }

    // Monthly €2,000, no pension, credits applied.
    // annual wage 2,000 × 12 = 24,000
    // tax 24,000 × 35.82% = 8,596.80
    // general credit: 24,000 is below 28,406, so the maximum 3,068
    // labour credit: 980 + 30.030% × (24,000 − 12,169) = 980 + 3,552.8493 = 4,532.8493
    // annual 8,596.80 − 3,068 − 4,532.8493 = 995.9507; ÷ 12 = 82.9959 → 83.00; net 1,917.00
    #[test]
    fn two_thousand_a_month_with_credits() {
        let p = slip(&line("2000.00", "0", "0", "none", true));
        assert_eq!((p.annual_wage, p.annual_tax_before_credits), (d("24000"), d("8596.80")));
        assert_eq!((p.general_credit, p.labour_credit), (d("3068"), d("4532.8493")));
        assert_eq!((p.wage_tax, p.net_pay), (d("83.00"), d("1917.00")));
    }

    // Monthly €4,000 in the 5% / 10% example pension scheme, credits applied.
    // pension 4,000 × 5% = 200.00; taxable 3,800.00; annual 45,600
    // tax 38,441 × 35.82% = 13,769.5662 + (45,600 − 38,441) × 37.48% = 2,683.1932 → 16,452.7594
    // general 3,068 − 6.337% × (45,600 − 28,406) = 3,068 − 1,089.58378 = 1,978.41622
    // labour 5,599 − 6.510% × (45,600 − 43,071) = 5,599 − 164.6379 = 5,434.3621
    // annual 9,039.98108; ÷ 12 = 753.3318 → 753.33; net 4,000 − 200 − 753.33 = 3,046.67
    // employer: pension 400.00; premium wage 3,800 (below 75,864 ÷ 12 = 6,322):
    // Zvw 6.51% 247.38, AWf 2.74% 104.12, Aof 6.28% 238.64, Whk 1.33% 50.54, Ufo 0.68% 25.84
    #[test]
    fn four_thousand_a_month_with_pension() {
        let p = slip(&line("4000.00", "0", "0", "basic", true));
        assert_eq!((p.pension, p.taxable_wage, p.annual_wage), (d("200.00"), d("3800.00"), d("45600")));
        assert_eq!(p.annual_tax_before_credits, d("16452.7594"));
        assert_eq!((p.general_credit, p.labour_credit), (d("1978.41622"), d("5434.3621")));
        assert_eq!((p.wage_tax, p.net_pay), (d("753.33"), d("3046.67")));
        let charges: Vec<Decimal> = p.employer_charges.iter().map(|c| c.amount).collect();
        assert_eq!(charges, [d("247.38"), d("104.12"), d("238.64"), d("50.54"), d("25.84")]);
        assert_eq!(p.employer_cost, d("400.00") + d("666.52"));
    }

    // Monthly €8,000, no pension, credits applied: the top bracket.
    // annual 96,000; tax 13,769.5662 + (76,817 − 38,441) × 37.48% = 14,383.3248
    // + (96,000 − 76,817) × 49.50% = 9,495.585 → 37,648.476
    // general: 3,068 − 6.337% × 67,594 is below zero → 0
    // labour 5,599 − 6.510% × (96,000 − 43,071) = 5,599 − 3,445.6779 = 2,153.3221
    // annual 35,495.1539; ÷ 12 = 2,957.9295 → 2,957.93; net 5,042.07
    // premiums on the capped wage 6,322.00: Zvw 6.51% = 411.5622 → 411.56
    #[test]
    fn eight_thousand_a_month_reaches_the_top_bracket_and_the_premium_cap() {
        let p = slip(&line("8000.00", "0", "0", "none", true));
        assert_eq!((p.annual_tax_before_credits, p.general_credit, p.labour_credit), (d("37648.476"), d("0"), d("2153.3221")));
        assert_eq!((p.wage_tax, p.net_pay), (d("2957.93"), d("5042.07")));
        assert_eq!(p.employer_charges[0].amount, d("411.56"));
    }

    // Monthly €1,000 + €50 allowance, no credits (a second job), €25 deducted after tax.
    // gross 1,050.00; annual 12,600; tax 12,600 × 35.82% = 4,513.32; ÷ 12 = 376.11
    // net 1,050 − 376.11 − 25 = 648.89
    #[test]
    fn a_second_job_without_credits_with_an_allowance_and_a_deduction() {
        let p = slip(&line("1000.00", "50.00", "25.00", "none", false));
        assert_eq!((p.gross, p.wage_tax, p.net_pay), (d("1050.00"), d("376.11"), d("648.89")));
    }

    // Monthly €12,500 in the pension scheme: pension 625.00, taxable 11,875.00, annual 142,500
    // tax 13,769.5662 + 14,383.3248 + (142,500 − 76,817) × 49.50% = 32,513.085 → 60,665.976
    // both credits 0 (general above 76,817; labour above 129,078)
    // ÷ 12 = 5,055.498 → 5,055.50; net 12,500 − 625 − 5,055.50 = 6,819.50
    #[test]
    fn twelve_and_a_half_thousand_a_month_has_no_credits_left() {
        let p = slip(&line("12500.00", "0", "0", "basic", true));
        assert_eq!((p.annual_tax_before_credits, p.general_credit, p.labour_credit), (d("60665.976"), d("0"), d("0")));
        assert_eq!((p.wage_tax, p.net_pay), (d("5055.50"), d("6819.50")));
    }

    // Monthly €800 with credits: tax 9,600 × 35.82% = 3,438.72, credits 3,068 + 8.053% × 9,600
    // = 773.088 exceed it, so nothing is withheld (never a negative tax); net 800.00
    #[test]
    fn a_small_wage_whose_credits_exceed_its_tax_pays_no_tax() {
        let p = slip(&line("800.00", "0", "0", "none", true));
        assert_eq!((p.wage_tax, p.net_pay), (d("0.00"), d("800.00")));
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        let t = table();
        let refused = |l: EmployeeLine| payslip(&l, &t, "2025-11", "ps".into()).unwrap_err().0;
        assert!(refused(EmployeeLine { iban: "NL91ABNA0417164301".into(), ..line("1", "0", "0", "none", true) }).contains("IBAN"));
        assert!(refused(EmployeeLine { email: "nobody".into(), ..line("1", "0", "0", "none", true) }).contains("email"));
        assert!(refused(line("1000.001", "0", "0", "none", true)).contains("two decimals"));
        assert!(refused(line("-5", "0", "0", "none", true)).contains("negative"));
        assert!(refused(line("1000", "0", "0", "gold", true)).contains("pension scheme"));
        assert!(refused(line("100", "0", "500", "none", false)).contains("net pay would be negative"));
    }
}
