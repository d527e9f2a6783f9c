//! Payroll's documents checked by independent libraries: the SEPA credit transfer validates
//! against the official pain.001.001.03 XSD (Python's `xmlschema`, with the schema the `sepaxml`
//! package ships) and its control sum and count match the payslips; a payslip PDF's text, as
//! `pypdf` extracts it, shows the figures of its JSON.

use std::process::Command;

use relay_core::payroll::compute::{payslip, EmployeeLine, Payslip};
use relay_core::payroll::pdf::{render, Employer};
use relay_core::payroll::rules::RuleTable;
use relay_core::payroll::sepa::{credit_transfer, Debtor, Transfer};
use relay_e2e::repo_root;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn tool(args: &[&str]) -> String {
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/python/payroll_tools.py"))
        .args(args)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn table() -> RuleTable {
    RuleTable::parse(&std::fs::read_to_string(repo_root().join("rules/payroll/nl-2025.json")).expect("table")).expect("parses")
}

/// Six employees at different incomes (the ones `shared/core/src/payroll/compute.rs` works out by hand).
fn payslips() -> Vec<Payslip> {
    let t = table();
    let lines = [
        json!({"employeeId": "e1", "name": "Anna de Vries", "email": "anna@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "2000.00", "pensionScheme": "none", "taxCreditApplied": true}),
        json!({"employeeId": "e2", "name": "Zoë Ørsted-Müller", "email": "zoe@example.nl", "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX", "grossPay": 4000, "pensionScheme": "basic", "taxCreditApplied": true}),
        json!({"employeeId": "e3", "name": "Bram Jansen & Zn <b>", "email": "bram@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "8000.00", "pensionScheme": "none", "taxCreditApplied": true}),
        json!({"employeeId": "e4", "name": "Chris Bakker", "email": "chris@example.nl", "iban": "BE68539007547034", "grossPay": "1000.00", "allowances": "50.00", "deductions": "25.00", "pensionScheme": "none", "taxCreditApplied": false}),
        json!({"employeeId": "e5", "name": "Dana Visser", "email": "dana@example.nl", "iban": "GB82WEST12345698765432", "grossPay": "12500.00", "pensionScheme": "basic", "taxCreditApplied": true}),
        json!({"employeeId": "e6", "name": "Eva Smit", "email": "eva@example.nl", "iban": "NL91ABNA0417164300", "grossPay": "800.00", "pensionScheme": "none", "taxCreditApplied": true}),
    ];
    lines
        .iter()
        .map(|l| {
            let line: EmployeeLine = serde_json::from_value(l.clone()).expect("line");
            payslip(&line, &t, "2025-11", format!("run-1-{}", line.employee_id)).expect("paid")
        })
        .collect()
}

#[test]
fn the_sepa_file_validates_against_the_official_xsd_and_its_sums_match_the_payslips() {
    let slips = payslips();
    let transfers: Vec<Transfer> = slips
        .iter()
        .map(|p| Transfer {
            end_to_end_id: p.payslip_id.clone(),
            amount: p.net_pay,
            name: p.name.clone(),
            iban: p.iban.clone(),
            bic: p.bic.clone(),
            remittance: format!("Salary {} {}", p.period, p.employee_id),
        })
        .collect();
    let debtor = Debtor { name: "Acme Uitzend B.V.".into(), iban: "NL91ABNA0417164300".into(), bic: Some("ABNANL2A".into()) };
    let xml = credit_transfer(
        "run-1",
        "2025-11-24T10:00:00Z".parse().expect("time"),
        chrono::NaiveDate::from_ymd_opt(2025, 11, 25).expect("date"),
        &debtor,
        &transfers,
    );
    let file = std::env::temp_dir().join(format!("relay-sepa-{}.xml", std::process::id()));
    std::fs::write(&file, &xml).expect("write");
    let report: Value = serde_json::from_str(&tool(&["sepa", file.to_str().expect("path")])).expect("json");
    let net: Decimal = slips.iter().map(|p| p.net_pay).sum();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["nbOfTxs"], json!(["6", "6"]));
    assert_eq!(report["ctrlSum"], json!([net.to_string(), net.to_string()]));
    assert_eq!(report["amounts"], net.to_string(), "the transfers add up to the control sum");
    assert_eq!(net.to_string(), "18274.13", "1917.00 + 3046.67 + 5042.07 + 648.89 + 6819.50 + 800.00");
    assert!(xml.contains("<Nm>Zoe Orsted-Muller</Nm>") && xml.contains("<Nm>Bram Jansen   Zn  b</Nm>"), "transliterated, never escaped");

    // A file the XSD refuses is reported as such (the validator can fail).
    let broken = xml.replace("<ChrgBr>SLEV</ChrgBr>", "<ChrgBr>NOPE</ChrgBr>");
    std::fs::write(&file, broken).expect("write");
    let report: Value = serde_json::from_str(&tool(&["sepa", file.to_str().expect("path")])).expect("json");
    assert_eq!(report["valid"], false, "{report}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_payslip_pdf_shows_the_figures_of_its_json() {
    for p in payslips() {
        let pdf = render(&p, &Employer { name: "Acme Uitzend B.V.", pay_date: "2025-11-25" });
        let file = std::env::temp_dir().join(format!("relay-payslip-{}-{}.pdf", std::process::id(), p.employee_id));
        std::fs::write(&file, &pdf).expect("write");
        let text = tool(&["pdf-text", file.to_str().expect("path")]);
        let _ = std::fs::remove_file(&file);
        for figure in [p.gross, p.pension, p.wage_tax, p.net_pay, p.employer_cost] {
            assert!(text.contains(&format!("{figure:.2}")), "{} shows {figure:.2}:\n{text}", p.employee_id);
        }
        for part in ["Payslip 2025-11", "Net pay", "Wage tax", p.employee_id.as_str(), p.iban.as_str()] {
            assert!(text.contains(part), "{part} in:\n{text}");
        }
        if p.employee_id == "e2" {
            assert!(text.contains("Zoë Ørsted-Müller") && text.contains("€ 3046.67"), "Latin-1 and the euro sign come through:\n{text}");
        }
    }
}
