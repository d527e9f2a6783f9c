//! The bench's typical event, shared by the cost scenarios, the latency runs and the load driver.

use serde_json::{json, Value};

/// A typical event: about 1 KB as JSON, shaped like a real `candidate.hired` (names, an
/// address, a recruiter's free-text note drawn from a vocabulary by a generator seeded with
/// `i`), so it deflates like one: about 1.9x (a run of one repeated character would flatter
/// the stored-size cut of issue 14 with 20x).
pub fn event_1kb(i: usize) -> Value {
    const WORDS: [&str; 48] = [
        "candidate",
        "accepted",
        "offer",
        "after",
        "second",
        "interview",
        "with",
        "team",
        "lead",
        "strong",
        "references",
        "from",
        "previous",
        "employer",
        "relocating",
        "Utrecht",
        "start",
        "date",
        "agreed",
        "salary",
        "band",
        "senior",
        "remote",
        "two",
        "days",
        "week",
        "laptop",
        "ordered",
        "onboarding",
        "buddy",
        "assigned",
        "contract",
        "signed",
        "digitally",
        "probation",
        "months",
        "notice",
        "period",
        "negotiated",
        "visa",
        "not",
        "required",
        "pension",
        "scheme",
        "explained",
        "travel",
        "allowance",
        "the",
    ];
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut note = String::new();
    while note.len() < 520 {
        note.push_str(WORDS[next(WORDS.len())]);
        note.push(' ');
    }
    let first = ["Sanne", "Daan", "Fatima", "Lucas", "Noor", "Milan"][next(6)];
    let last = ["de Vries", "Jansen", "Bakker", "El Amrani", "Visser", "Smit"][next(6)];
    json!({"eventType": "candidate.hired", "organizationId": "org-acme", "correlationId": format!("c-{i}"),
           "payload": {"candidateId": format!("cand-{i:06}"), "jobId": format!("job-{}", 100 + next(900)), "startDate": "2026-12-01",
                       "salary": 52000 + 250 * next(80), "currency": "EUR", "hoursPerWeek": 32 + next(9),
                       "candidate": {"firstName": first,
                                     "lastName": last,
                                     "email": format!("candidate{}@example.nl", next(100_000)),
                                     "phone": format!("+316{:08}", next(100_000_000)),
                                     "address": {"street": format!("Kanaalweg {}", 1 + next(300)), "postcode": format!("35{:02} AB", next(100)), "city": "Utrecht"}},
                       "recruiterId": format!("usr-{}", next(5000)), "notes": note.trim_end()}})
}

#[cfg(test)]
mod tests {
    /// The cost scenarios' event must stay a fair stand-in: about 1 KB, and no more
    /// compressible than real JSON (the stored-size cut depends on it).
    #[test]
    fn the_typical_event_is_about_a_kilobyte_and_deflates_like_real_json() {
        for i in [1, 7, 1042] {
            let json = super::event_1kb(i).to_string();
            let packed = miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6);
            let ratio = json.len() as f64 / packed.len() as f64;
            assert!((900..=1150).contains(&json.len()), "{} bytes", json.len());
            assert!((1.4..=2.6).contains(&ratio), "deflates {ratio:.2}x: {json}");
        }
    }
}
