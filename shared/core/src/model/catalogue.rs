//! The event catalogue: the platform's known event types, the major versions Relay accepts for
//! each, and the payload fields each must carry. Taken from the seed documents' event catalogue;
//! a well-formed type that is not listed here is accepted as-is (products may ship new events
//! before the catalogue learns them), but a listed type is held to its contract.

/// One catalogued event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub event_type: &'static str,
    /// The product that owns (publishes) this event.
    pub product: &'static str,
    pub description: &'static str,
    /// Major versions of the payload contract Relay understands.
    pub major_versions: &'static [u32],
    /// Payload fields that must be present (and not null) in every supported version.
    pub required_fields: &'static [&'static str],
}

macro_rules! entry {
    ($t:literal, $p:literal, $d:literal, [$($f:literal),* $(,)?]) => {
        CatalogueEntry { event_type: $t, product: $p, description: $d, major_versions: &[1], required_fields: &[$($f),*] }
    };
}

/// Every catalogued event. Order: by product, as in the seed catalogue.
pub const CATALOGUE: &[CatalogueEntry] = &[
    // RecruitIQ
    entry!("candidate.applied", "recruitiq", "New candidate applied for a job", ["candidateId", "jobId"]),
    entry!("interview.scheduled", "recruitiq", "Interview scheduled with a candidate", ["interviewId", "candidateId", "dateTime"]),
    entry!("candidate.hired", "recruitiq", "Candidate accepted an offer and was hired", ["candidateId", "jobId", "startDate"]),
    entry!("candidate.rejected", "recruitiq", "Candidate was rejected", ["candidateId", "jobId"]),
    entry!("job.published", "recruitiq", "Job posting published", ["jobId", "title"]),
    entry!("application.received", "recruitiq", "Application received (also from job boards)", ["applicationId", "jobId"]),
    // Nexus
    entry!("employee.created", "nexus", "New employee onboarded", ["employeeId", "firstName", "lastName", "email", "startDate"]),
    entry!("employee.updated", "nexus", "Employee information updated", ["employeeId", "changes"]),
    entry!("employee.terminated", "nexus", "Employee left the organisation", ["employeeId", "terminationDate"]),
    entry!("leave.approved", "nexus", "Leave request approved", ["leaveId", "employeeId", "startDate", "endDate"]),
    entry!("contract.expiring", "nexus", "Employee contract expiring soon", ["employeeId", "contractId", "expiryDate"]),
    // Paylinq
    entry!(
        "payroll.run.requested",
        "paylinq",
        "A payroll run asked of Relay's payroll-batch (POST /v1/payroll-runs publishes it too)",
        ["payrollRunId", "period", "input", "payDate", "employer"]
    ),
    entry!("payroll.started", "paylinq", "Payroll run started", ["payrollRunId", "period"]),
    entry!("payroll.completed", "paylinq", "Payroll run completed", ["payrollRunId", "period", "totalAmount", "employeeCount"]),
    entry!(
        "payslip.generated",
        "paylinq",
        "Payslip generated for an employee",
        ["payslipId", "employeeId", "period", "grossPay", "netPay"]
    ),
    entry!("payment.processed", "paylinq", "Payment successfully processed", ["paymentId", "amount", "currency"]),
    entry!("payment.failed", "paylinq", "Payment failed", ["paymentId", "amount", "currency", "reason"]),
    // Portal
    entry!(
        "organization.created",
        "portal",
        "A customer organisation was created (Relay provisions its tenant)",
        ["name", "slug", "tier", "deploymentType", "contactEmail", "products"]
    ),
];

/// The products that may publish events, by the name used as `sourceProduct`.
pub const PRODUCTS: &[&str] = &["recruitiq", "nexus", "paylinq", "portal"];

/// Looks up a catalogued event type.
pub fn lookup(event_type: &str) -> Option<&'static CatalogueEntry> {
    CATALOGUE.iter().find(|e| e.event_type == event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_event_is_catalogued_once_with_a_known_product() {
        for e in CATALOGUE {
            assert_eq!(CATALOGUE.iter().filter(|o| o.event_type == e.event_type).count(), 1, "{}", e.event_type);
            assert!(PRODUCTS.contains(&e.product), "{}", e.event_type);
            assert!(!e.required_fields.is_empty());
        }
        // The seed's seventeen, and payroll.run.requested (Relay's payroll-batch takes it).
        assert_eq!(CATALOGUE.len(), 18);
        assert_eq!(lookup("candidate.hired").map(|e| e.product), Some("recruitiq"));
        assert!(lookup("candidate.promoted").is_none());
    }
}
