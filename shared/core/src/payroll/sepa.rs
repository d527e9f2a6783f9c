//! The run's bank file: a SEPA credit transfer initiation (ISO 20022 pain.001.001.03) paying
//! every net amount from the employer's account, in one batch booked as salaries, and the IBAN
//! check every account goes through first.

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// An IBAN without spaces, in capitals.
pub fn normalize_iban(iban: &str) -> String {
    iban.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase()
}

/// ISO 13616: two letters, two check digits, up to 30 letters and digits, and the whole,
/// rotated and with letters as numbers, is 1 modulo 97.
pub fn iban_is_valid(iban: &str) -> bool {
    let b = iban.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return false;
    }
    let rotated = b[4..].iter().chain(&b[..4]);
    let remainder = rotated.fold(0u32, |acc, &c| {
        let value = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 };
        if value >= 10 {
            (acc * 100 + value) % 97
        } else {
            (acc * 10 + value) % 97
        }
    });
    remainder == 1
}

/// ISO 9362, as the pain.001.001.03 XSD has it: `[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?`.
pub fn bic_is_valid(bic: &str) -> bool {
    let b = bic.as_bytes();
    let upper_or_digit = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    matches!(b.len(), 8 | 11)
        && b[..6].iter().all(u8::is_ascii_uppercase)
        && (b[6].is_ascii_uppercase() || (b'2'..=b'9').contains(&b[6]))
        && (upper_or_digit(&b[7]) && b[7] != b'O')
        && b[8..].iter().all(upper_or_digit)
}

/// The paying side of a run.
#[derive(Debug, Clone)]
pub struct Debtor {
    pub name: String,
    pub iban: String,
    /// `None`: "NOTPROVIDED", which SEPA allows within the EEA.
    pub bic: Option<String>,
}

/// One salary payment.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Unique per run and employee (at most 35 characters); the employee's bank shows it.
    pub end_to_end_id: String,
    pub amount: Decimal,
    pub name: String,
    pub iban: String,
    pub bic: Option<String>,
    /// At most 140 characters after transliteration.
    pub remittance: String,
}

/// The pain.001.001.03 document; `NbOfTxs` and `CtrlSum` (the decimal sum) are computed here,
/// in the group header and the payment block alike. Names and texts are transliterated to
/// SEPA's Latin character set and cut to its lengths.
pub fn credit_transfer(message_id: &str, created: DateTime<Utc>, execution: NaiveDate, debtor: &Debtor, transfers: &[Transfer]) -> String {
    let count = transfers.len();
    let sum: Decimal = transfers.iter().map(|t| t.amount).sum();
    let agent = |bic: &Option<String>| match bic {
        Some(b) => format!("<FinInstnId><BIC>{}</BIC></FinInstnId>", latin(b, 11)),
        None => "<FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId>".to_string(),
    };
    let mut x = String::with_capacity(600 + transfers.len() * 520);
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    x.push_str(r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><CstmrCdtTrfInitn>"#);
    let _ = write!(
        x,
        "<GrpHdr><MsgId>{}</MsgId><CreDtTm>{}</CreDtTm><NbOfTxs>{count}</NbOfTxs><CtrlSum>{sum:.2}</CtrlSum><InitgPty><Nm>{}</Nm></InitgPty></GrpHdr>",
        latin(message_id, 35),
        created.format("%Y-%m-%dT%H:%M:%S"),
        latin(&debtor.name, 70),
    );
    let _ = write!(
        x,
        "<PmtInf><PmtInfId>{}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>true</BtchBookg><NbOfTxs>{count}</NbOfTxs><CtrlSum>{sum:.2}</CtrlSum>\
         <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl><CtgyPurp><Cd>SALA</Cd></CtgyPurp></PmtTpInf><ReqdExctnDt>{execution}</ReqdExctnDt>\
         <Dbtr><Nm>{}</Nm></Dbtr><DbtrAcct><Id><IBAN>{}</IBAN></Id></DbtrAcct><DbtrAgt>{}</DbtrAgt><ChrgBr>SLEV</ChrgBr>",
        latin(message_id, 35),
        latin(&debtor.name, 70),
        normalize_iban(&debtor.iban),
        agent(&debtor.bic),
    );
    for t in transfers {
        let creditor_agent = t.bic.as_ref().map(|_| format!("<CdtrAgt>{}</CdtrAgt>", agent(&t.bic))).unwrap_or_default();
        let _ = write!(
            x,
            "<CdtTrfTxInf><PmtId><EndToEndId>{}</EndToEndId></PmtId><Amt><InstdAmt Ccy=\"EUR\">{:.2}</InstdAmt></Amt>{creditor_agent}\
             <Cdtr><Nm>{}</Nm></Cdtr><CdtrAcct><Id><IBAN>{}</IBAN></Id></CdtrAcct><Purp><Cd>SALA</Cd></Purp><RmtInf><Ustrd>{}</Ustrd></RmtInf></CdtTrfTxInf>",
            latin(&t.end_to_end_id, 35),
            t.amount,
            latin(&t.name, 70),
            normalize_iban(&t.iban),
            latin(&t.remittance, 140),
        );
    }
    x.push_str("</PmtInf></CstmrCdtTrfInitn></Document>");
    x
}

/// SEPA's character set (a-z A-Z 0-9 / - ? : ( ) . , ' + space): accented letters lose their
/// accents, anything else becomes a space; at most `max` characters; no XML escaping is ever
/// needed afterwards since none of `<>&"` survives.
pub fn latin(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let mapped: &str = match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '/' | '-' | '?' | ':' | '(' | ')' | '.' | ',' | '\'' | '+' | ' ' => {
                out.push(c);
                continue;
            }
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "A",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'È' | 'É' | 'Ê' | 'Ë' => "E",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'Ì' | 'Í' | 'Î' | 'Ï' => "I",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
            'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "O",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
            'ý' | 'ÿ' => "y",
            'Ý' => "Y",
            'ç' => "c",
            'Ç' => "C",
            'ñ' => "n",
            'Ñ' => "N",
            'ß' => "ss",
            'æ' => "ae",
            'Æ' => "AE",
            'œ' => "oe",
            'Œ' => "OE",
            'ĳ' => "ij",
            'Ĳ' => "IJ",
            _ => " ",
        };
        out.push_str(mapped);
    }
    let trimmed = out.trim();
    let cut: String = trimmed.chars().take(max).collect();
    if cut.trim().is_empty() {
        "NOTPROVIDED".chars().take(max).collect()
    } else {
        cut.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_pass_only_with_their_checksum() {
        for good in ["NL91ABNA0417164300", "DE89370400440532013000", "GB82WEST12345698765432", "BE68539007547034"] {
            assert!(iban_is_valid(good), "{good}");
        }
        for bad in ["NL91ABNA0417164301", "NL91ABNA041716430", "nl91abna0417164300", "NL91 ABNA 0417 1643 00", "XX", ""] {
            assert!(!iban_is_valid(bad), "{bad}");
        }
        assert!(iban_is_valid(&normalize_iban("nl91 abna 0417 1643 00")));
    }

    #[test]
    fn bics_follow_the_xsd_pattern() {
        for good in ["ABNANL2A", "COBADEFFXXX", "RABONL2U", "DEUTDEDB100"] {
            assert!(bic_is_valid(good), "{good}");
        }
        for bad in ["12345678", "ABNANL2", "abnanl2a", "ABNANL1A", "ABNANL2O", "ABNANL2AXX", ""] {
            assert!(!bic_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_transliterated_to_the_sepa_set_and_cut() {
        assert_eq!(latin("Zoë Ørsted-Müller & Söhne <b>", 70), "Zoe Orsted-Muller   Sohne  b");
        assert_eq!(latin("Ĳsselmeer Straße", 70), "IJsselmeer Strasse");
        assert_eq!(latin("x".repeat(200).as_str(), 140).len(), 140);
        assert_eq!(latin("日本", 70), "NOTPROVIDED");
    }

    #[test]
    fn the_control_sum_is_the_decimal_sum_in_both_headers() {
        let t = |id: &str, amount: &str| Transfer {
            end_to_end_id: id.into(),
            amount: amount.parse().unwrap(),
            name: "A".into(),
            iban: "NL91ABNA0417164300".into(),
            bic: None,
            remittance: "Salary 2025-11".into(),
        };
        let debtor = Debtor { name: "Acme B.V.".into(), iban: "NL91ABNA0417164300".into(), bic: Some("ABNANL2A".into()) };
        let created = "2025-11-24T12:00:00Z".parse().unwrap();
        let xml =
            credit_transfer("run-1", created, NaiveDate::from_ymd_opt(2025, 11, 25).unwrap(), &debtor, &[t("e1", "0.10"), t("e2", "0.20")]);
        assert_eq!(xml.matches("<CtrlSum>0.30</CtrlSum>").count(), 2, "{xml}");
        assert_eq!(xml.matches("<NbOfTxs>2</NbOfTxs>").count(), 2);
    }
}
