//! The payslip as the employee receives it: one A4 page, written with `pdf-writer` (typst's
//! PDF writer) in the PDF's built-in Helvetica and Courier, so nothing is embedded and the file
//! stays a few kilobytes. Amounts are set in Courier (fixed width) so they align on the right;
//! every figure is the payslip's own, formatted with two decimals.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;

use super::compute::Payslip;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const LEFT: f32 = 56.0;
const RIGHT: f32 = WIDTH - 56.0;
const SANS: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const MONO: Name<'static> = Name(b"F3");

/// Who pays, for the payslip's heading.
#[derive(Debug, Clone)]
pub struct Employer<'a> {
    pub name: &'a str,
    pub pay_date: &'a str,
}

/// The payslip as PDF bytes.
pub fn render(p: &Payslip, employer: &Employer<'_>) -> Vec<u8> {
    let mut page = Page::new();
    page.text(BOLD, 18.0, LEFT, 780.0, &format!("Payslip {}", p.period));
    page.text(SANS, 10.0, LEFT, 762.0, &format!("{} · paid on {}", employer.name, employer.pay_date));
    page.text(BOLD, 11.0, LEFT, 730.0, &p.name);
    page.text(SANS, 10.0, LEFT, 716.0, &format!("Employee {} · IBAN {}", p.employee_id, p.iban));
    if let Some(hours) = p.hours {
        page.text(SANS, 10.0, LEFT, 702.0, &format!("Hours {hours}"));
    }

    let mut y = 670.0;
    page.rule(y + 14.0);
    page.row(&mut y, 17.0, "Gross pay", p.gross_pay, false);
    page.row(&mut y, 17.0, "Allowances", p.allowances, false);
    page.row(&mut y, 17.0, "Gross", p.gross, true);
    page.row(&mut y, 17.0, &format!("Pension contribution ({})", p.pension_scheme), -p.pension, false);
    page.row(&mut y, 17.0, "Taxable wage", p.taxable_wage, false);
    page.row(&mut y, 17.0, "Wage tax and national insurance (loonheffing)", -p.wage_tax, false);
    page.row(&mut y, 17.0, "Deductions", -p.deductions, false);
    page.rule(y + 12.0);
    page.row(&mut y, 17.0, "Net pay", p.net_pay, true);

    y -= 10.0;
    page.text(
        SANS,
        9.0,
        LEFT,
        y,
        &format!("Annual wage {} · annual tax before credits {}", p.annual_wage, two(p.annual_tax_before_credits)),
    );
    y -= 13.0;
    page.text(
        SANS,
        9.0,
        LEFT,
        y,
        &format!("Credits applied (annual): general {} · labour {}", two(p.general_credit), two(p.labour_credit)),
    );

    y -= 30.0;
    page.text(BOLD, 10.5, LEFT, y, "Paid by your employer beside your pay (not deducted)");
    y -= 6.0;
    page.rule(y);
    y -= 14.0;
    page.row(&mut y, 15.0, "Employer pension contribution", p.employer_pension, false);
    for c in &p.employer_charges {
        page.row(&mut y, 15.0, &c.name, c.amount, false);
    }
    page.row(&mut y, 15.0, "Employer cost in all", p.employer_cost, true);

    page.text(SANS, 8.0, LEFT, 60.0, &format!("Payslip {} · rule table {} · amounts in euros", p.payslip_id, p.rule_table));
    page.finish(&format!("Payslip {} {}", p.period, p.name))
}

fn two(amount: Decimal) -> String {
    format!("{amount:.2}")
}

/// One page's content stream and the document around it.
struct Page {
    content: Content,
}

impl Page {
    fn new() -> Self {
        Self { content: Content::new() }
    }

    fn text(&mut self, font: Name<'_>, size: f32, x: f32, y: f32, text: &str) {
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.next_line(x, y);
        self.content.show(Str(&win_ansi(text)));
        self.content.end_text();
    }

    /// An amount in euros, right-aligned at `right` (Courier: every glyph is 0.6 em wide).
    fn amount(&mut self, right: f32, y: f32, amount: Decimal) {
        let text = format!("€ {amount:.2}");
        let width = text.chars().count() as f32 * 0.6 * 10.5;
        self.text(MONO, 10.5, right - width, y, &text);
    }

    /// A label and its amount on line `y`, then `y` moves down by `step`.
    fn row(&mut self, y: &mut f32, step: f32, label: &str, amount: Decimal, bold: bool) {
        self.text(if bold { BOLD } else { SANS }, 10.5, LEFT, *y, label);
        self.amount(RIGHT, *y, amount);
        *y -= step;
    }

    fn rule(&mut self, y: f32) {
        self.content.set_line_width(0.5);
        self.content.move_to(LEFT, y);
        self.content.line_to(RIGHT, y);
        self.content.stroke();
    }

    fn finish(self, title: &str) -> Vec<u8> {
        let (catalog, tree, page, content, info) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5));
        let fonts = [(SANS, Ref::new(6), "Helvetica"), (BOLD, Ref::new(7), "Helvetica-Bold"), (MONO, Ref::new(8), "Courier")];
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids([page]).count(1);
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        p.parent(tree);
        p.contents(content);
        {
            let mut resources = p.resources();
            let mut dict = resources.fonts();
            for (name, id, _) in fonts {
                dict.pair(name, id);
            }
        }
        p.finish();
        for (_, id, base) in fonts {
            pdf.type1_font(id).base_font(Name(base.as_bytes())).encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.document_info(info).title(TextStr(title)).producer(TextStr("Relay payroll-batch"));
        pdf.stream(content, &self.content.finish());
        pdf.finish()
    }
}

/// Text in the standard fonts' WinAnsi encoding: Latin-1 as itself, the euro sign as 0x80, the
/// middle dot kept; anything else a question mark (names are printed, never lost: the JSON
/// payslip beside holds them whole).
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_1_and_the_euro_sign_survive_other_scripts_do_not() {
        assert_eq!(win_ansi("Zoë € 5"), [b'Z', b'o', 0xEB, b' ', 0x80, b' ', b'5']);
        assert_eq!(win_ansi("日"), [b'?']);
    }
}
