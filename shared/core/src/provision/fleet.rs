//! The VPS fleet (seed 000 §3.2): the shared VPSs tenants take slots on, and the dedicated ones
//! ordered for a single tenant. Which shared VPS a tenant goes to, and the fleet's statistics,
//! are pure rules over the records; taking a slot is the store's conditional write.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::tenant::DeploymentType;

/// A shared VPS's slots when its registration does not say.
pub const DEFAULT_MAX_TENANTS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VpsStatus {
    /// Takes new tenants (a shared VPS with a free slot).
    Active,
    /// Keeps its tenants, takes no new one.
    Draining,
}

/// Usage the VPS last reported, in percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub at: DateTime<Utc>,
}

impl Usage {
    /// Each figure a percentage.
    pub fn problems(&self) -> Option<String> {
        let ok = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
        (!(ok(self.cpu) && ok(self.memory) && ok(self.disk))).then(|| "cpu, memory and disk are percentages, 0 to 100".into())
    }
}

/// `POST /v1/vps`' body: a VPS the operator adds to the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VpsRegistration {
    pub name: String,
    pub ip: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    /// `20` and `20.0` alike (JSON does not tell them apart).
    #[serde(default, deserialize_with = "crate::model::validation::whole_number")]
    pub max_tenants: Option<u32>,
    /// Where the VPS's deploy agent listens (`https://vps-1.example/deploy`): Relay calls it,
    /// signed, to deploy a tenant onto the VPS.
    pub deploy_agent_url: String,
}

impl VpsRegistration {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut wrong = Vec::new();
        if !is_vps_name(&self.name) {
            wrong.push(("name", "1 to 64 letters, digits, - or _".into()));
        }
        if self.ip.parse::<IpAddr>().is_err() {
            wrong.push(("ip", "an IPv4 or IPv6 address".into()));
        }
        if self.max_tenants.is_some_and(|m| !(1..=500).contains(&m)) {
            wrong.push(("maxTenants", "1 to 500".into()));
        }
        // HTTPS: the calls carry a tenant's licence. Plain HTTP only to this machine (a local stack).
        if !is_agent_url(&self.deploy_agent_url) {
            wrong.push(("deployAgentUrl", "an https URL with a DNS name, without credentials, query or fragment".into()));
        }
        wrong
    }
}

/// A deploy agent's URL, exactly as the API documents it: `https://` and a DNS name (labels of
/// letters, digits and inner hyphens, a top-level label of 2 to 24 letters), an optional port
/// (1 to 9999) and path; nothing else (no credentials, query or fragment). `http://127.0.0.1`
/// and `http://localhost` with a port are taken too, only with the local stack's loopback
/// opt-in (in Lambda, 127.0.0.1:9001 is the Runtime API).
pub fn is_agent_url(s: &str) -> bool {
    if s.len() > 2048 {
        return false;
    }
    let path_ok = |p: &str| p.len() <= 1000 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~!$&'()*+,;=:@/-".contains(&b));
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 4 && !p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit());
    let split = |rest: &str| {
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
        (host.to_string(), port.map(str::to_string), path.to_string())
    };
    if let Some(rest) = s.strip_prefix("http://") {
        if !crate::ssrf::loopback_allowed() {
            return false;
        }
        let (host, port, path) = split(rest);
        return matches!(host.as_str(), "127.0.0.1" | "localhost")
            && port.is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
            && path_ok(&path);
    }
    let Some(rest) = s.strip_prefix("https://") else { return false };
    let (host, port, path) = split(rest);
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-') && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|t| (2..=24).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphabetic()));
    labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok && port.as_deref().is_none_or(port_ok) && path_ok(&path)
}

pub fn is_vps_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A VPS of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vps {
    pub name: String,
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub deployment_type: DeploymentType,
    /// The tenant a dedicated VPS runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub max_tenants: u32,
    /// The tenants on it (organisation ids); its slot count is their number.
    pub tenants: Vec<String>,
    pub status: VpsStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_agent_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Vps {
    pub fn shared(registration: VpsRegistration, now: DateTime<Utc>) -> Self {
        Self {
            name: registration.name,
            ip: registration.ip,
            hostname: registration.hostname,
            deployment_type: DeploymentType::Shared,
            organization_id: None,
            location: registration.location,
            max_tenants: registration.max_tenants.unwrap_or(DEFAULT_MAX_TENANTS),
            tenants: Vec::new(),
            status: VpsStatus::Active,
            usage: None,
            deploy_agent_url: Some(registration.deploy_agent_url),
            created_at: now,
        }
    }

    pub fn free_slots(&self) -> u32 {
        self.max_tenants.saturating_sub(self.tenants.len() as u32)
    }

    /// Takes new tenants: shared, active, with a free slot.
    pub fn open(&self) -> bool {
        self.deployment_type == DeploymentType::Shared && self.status == VpsStatus::Active && self.free_slots() > 0
    }
}

/// The open shared VPSs, least loaded first: fewest tenants for its size, then the lowest
/// reported CPU, then by name (so concurrent placements spread over the fleet in the same order
/// and a full VPS's loser moves on to the next).
pub fn least_loaded(fleet: &[Vps]) -> Vec<&Vps> {
    let mut open: Vec<&Vps> = fleet.iter().filter(|v| v.open()).collect();
    open.sort_by(|a, b| {
        let load = |v: &Vps| v.tenants.len() as f64 / v.max_tenants.max(1) as f64;
        let cpu = |v: &Vps| v.usage.as_ref().map_or(0.0, |u| u.cpu);
        load(a).total_cmp(&load(b)).then(cpu(a).total_cmp(&cpu(b))).then(a.name.cmp(&b.name))
    });
    open
}

/// The fleet's statistics (seed 000 §3.2's `getVPSStatistics`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetStats {
    pub total_vps: usize,
    pub shared_vps: usize,
    pub dedicated_vps: usize,
    pub draining_vps: usize,
    pub total_tenants: usize,
    pub shared_slots: u32,
    pub free_shared_slots: u32,
    /// Averages over the VPSs that reported usage; `None` when none did.
    pub avg_cpu_usage: Option<f64>,
    pub avg_memory_usage: Option<f64>,
    pub avg_disk_usage: Option<f64>,
}

pub fn stats(fleet: &[Vps]) -> FleetStats {
    let shared: Vec<&Vps> = fleet.iter().filter(|v| v.deployment_type == DeploymentType::Shared).collect();
    let reported: Vec<&Usage> = fleet.iter().filter_map(|v| v.usage.as_ref()).collect();
    let avg = |f: fn(&Usage) -> f64| {
        (!reported.is_empty()).then(|| (reported.iter().map(|u| f(u)).sum::<f64>() / reported.len() as f64 * 100.0).round() / 100.0)
    };
    FleetStats {
        total_vps: fleet.len(),
        shared_vps: shared.len(),
        dedicated_vps: fleet.len() - shared.len(),
        draining_vps: fleet.iter().filter(|v| v.status == VpsStatus::Draining).count(),
        total_tenants: fleet.iter().map(|v| v.tenants.len()).sum(),
        shared_slots: shared.iter().map(|v| v.max_tenants).sum(),
        free_shared_slots: shared.iter().filter(|v| v.status == VpsStatus::Active).map(|v| v.free_slots()).sum(),
        avg_cpu_usage: avg(|u| u.cpu),
        avg_memory_usage: avg(|u| u.memory),
        avg_disk_usage: avg(|u| u.disk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vps(name: &str, tenants: usize, max: u32, cpu: Option<f64>) -> Vps {
        let now = Utc::now();
        let mut v = Vps::shared(
            VpsRegistration {
                name: name.into(),
                ip: "10.0.0.1".into(),
                hostname: None,
                location: None,
                max_tenants: Some(max),
                deploy_agent_url: "https://agent.example/deploy".into(),
            },
            now,
        );
        v.tenants = (0..tenants).map(|i| format!("t{i}")).collect();
        v.usage = cpu.map(|cpu| Usage { cpu, memory: 50.0, disk: 10.0, at: now });
        v
    }

    #[test]
    fn the_least_loaded_open_shared_vps_comes_first() {
        let mut draining = vps("d", 0, 20, None);
        draining.status = VpsStatus::Draining;
        let fleet =
            vec![vps("a", 10, 20, Some(5.0)), vps("b", 5, 20, Some(90.0)), vps("c", 5, 20, Some(10.0)), vps("full", 4, 4, None), draining];
        let order: Vec<&str> = least_loaded(&fleet).iter().map(|v| v.name.as_str()).collect();
        assert_eq!(order, ["c", "b", "a"], "full and draining VPSs take no one; equal load goes to the idler CPU");
        let s = stats(&fleet);
        assert_eq!(
            (s.total_vps, s.shared_vps, s.draining_vps, s.total_tenants, s.shared_slots, s.free_shared_slots),
            (5, 5, 1, 24, 84, 40)
        );
        assert_eq!(s.avg_cpu_usage, Some(35.0));
    }

    #[test]
    fn a_registration_names_every_wrong_field() {
        let bad = VpsRegistration {
            name: "vps 1".into(),
            ip: "999.1.1.1".into(),
            hostname: None,
            location: None,
            max_tenants: Some(0),
            deploy_agent_url: "ftp://agent".into(),
        };
        let fields: Vec<&str> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["name", "ip", "maxTenants", "deployAgentUrl"]);
        assert!(Usage { cpu: 101.0, memory: 1.0, disk: 1.0, at: Utc::now() }.problems().is_some());
        let agent =
            |url: &str| VpsRegistration { deploy_agent_url: url.into(), name: "vps-1".into(), ip: "10.0.0.1".into(), ..bad.clone() };
        assert!(agent("http://vps-1.example/deploy").problems().iter().any(|(f, _)| *f == "deployAgentUrl"), "no licence in clear text");
        assert!(agent("https://user:pw@vps-1.example/deploy").problems().iter().any(|(f, _)| *f == "deployAgentUrl"));
        let local = !agent("http://127.0.0.1:9000/deploy").problems().iter().any(|(f, _)| *f == "deployAgentUrl");
        assert_eq!(local, crate::ssrf::loopback_allowed(), "a local stack's agent, with the local stack's opt-in only");
        // Exactly the documented pattern: a DNS name, a port, a path; nothing the fuzzer found.
        for ok in ["https://vps-1.example:8443/agent", "https://a.b.example/x/y", "https://vps-1.example"] {
            assert!(super::is_agent_url(ok), "{ok}");
        }
        for bad in [
            "https://ZQLs.3.mr.bzfYyidyVDqf*",
            "https://vps.example/x?q=1",
            "https://vps.example/#f",
            "https://-a.example",
            "https://10.0.0.1/x",
            "https://vps.example:0",
            "https://vps.example/a b",
            "http://127.0.0.1/x",
        ] {
            assert!(!super::is_agent_url(bad), "{bad}");
        }
    }
}
