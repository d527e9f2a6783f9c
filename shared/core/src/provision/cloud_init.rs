//! The tenant's cloud-init (seed 000 §3.1): Docker and Compose, a firewall that lets in only
//! SSH, HTTP and HTTPS, a Let's Encrypt certificate for the tenant's host name, and the
//! tenant's `.env` (with its licence) and Compose file, then the application started.
//!
//! A dedicated VPS gets it as its install text when it is ordered; for a shared VPS it is
//! stored beside the tenant and the VPS's deploy agent applies the tenant's part. Every value
//! goes into the YAML as a JSON string (valid YAML), and into the `.env` single-quoted (taken
//! literally by Compose and by a shell); the one free-text value, the organisation's name, is
//! there only base64-encoded, so no quote, `$`, backtick or control character of it reaches
//! either file.

use super::tenant::Tenant;

/// What the rendering needs beyond the tenant.
pub struct CloudInitContext<'a> {
    /// `tenants.example.com`: the tenant is served at `{slug}.{domain}`.
    pub tenant_domain: &'a str,
    /// The container image of the tenant application, pinned by the operator.
    pub image: &'a str,
    /// The address Let's Encrypt mails about the certificate.
    pub certificate_email: &'a str,
}

/// The tenant's cloud-config: the whole machine for a dedicated VPS.
pub fn render(tenant: &Tenant, licence: &str, ctx: &CloudInitContext<'_>) -> String {
    let r = &tenant.request;
    let host = format!("{}.{}", r.slug, ctx.tenant_domain);
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let env = env_file(tenant, licence, &host);
    let compose = compose_file(ctx.image);
    format!(
        r#"#cloud-config
# Relay tenant {org} ({tier}, {deployment}): rendered by the provision function.
hostname: {hostname}
package_update: true
packages: [docker.io, docker-compose-v2, certbot, ufw]
write_files:
  - path: /opt/tenant/.env
    permissions: "0600"
    content: {env}
  - path: /opt/tenant/compose.yaml
    permissions: "0644"
    content: {compose}
runcmd:
  - [ufw, default, deny, incoming]
  - [ufw, allow, "22/tcp"]
  - [ufw, allow, "80/tcp"]
  - [ufw, allow, "443/tcp"]
  - [ufw, --force, enable]
  - [systemctl, enable, --now, docker]
  - [certbot, certonly, --standalone, --non-interactive, --agree-tos, -m, {cert_email}, -d, {host}]
  - [docker, compose, --project-directory, /opt/tenant, up, --detach]
"#,
        org = r.organization_id.replace(['\n', '\r'], " "),
        tier = r.tier.name(),
        deployment = match r.deployment_type {
            super::tenant::DeploymentType::Shared => "shared",
            super::tenant::DeploymentType::Dedicated => "dedicated",
        },
        hostname = q(&r.slug),
        env = q(&env),
        compose = q(&compose),
        cert_email = q(ctx.certificate_email),
        host = q(&host),
    )
}

/// The tenant's `.env`: what its application reads at start.
pub fn env_file(tenant: &Tenant, licence: &str, host: &str) -> String {
    let r = &tenant.request;
    // Every value here is from a checked alphabet (ids, host names, base64), so single quotes
    // cannot occur in it; the name is base64.
    let name = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, r.name.as_bytes());
    format!(
        "ORGANIZATION_ID='{}'\nORGANIZATION_NAME_BASE64='{name}'\nTENANT_HOST='{host}'\nTIER='{}'\nPRODUCTS='{}'\nLICENCE='{licence}'\n",
        r.organization_id.replace('\'', ""),
        r.tier.name(),
        r.products.join(","),
    )
}

fn compose_file(image: &str) -> String {
    format!(
        "services:\n  app:\n    image: {}\n    env_file: .env\n    restart: unless-stopped\n    ports: [\"443:8443\", \"80:8080\"]\n    volumes: [\"/etc/letsencrypt:/etc/letsencrypt:ro\", \"data:/data\"]\nvolumes:\n  data: {{}}\n",
        serde_json::to_string(image).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::tenant::{DeploymentType, TenantRequest, Tier};

    #[test]
    fn the_cloud_config_is_yaml_whose_fields_hold_the_tenant_and_nothing_more() {
        let request = TenantRequest {
            organization_id: "org-acme".into(),
            name: "Acme\"\n  - [rm, -rf, /]".into(),
            slug: "acme".into(),
            tier: Tier::Starter,
            deployment_type: DeploymentType::Dedicated,
            contact_email: "it@acme.example".into(),
            products: vec!["recruitiq".into()],
        };
        let tenant = Tenant::new(request, "https://acme.tenants.example".into(), chrono::Utc::now());
        let ctx = CloudInitContext {
            tenant_domain: "tenants.example",
            image: "ghcr.io/recruitiq/tenant:1.4.2",
            certificate_email: "ops@example.com",
        };
        let text = render(&tenant, "payload.signature", &ctx);
        assert!(text.starts_with("#cloud-config\n"));
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let env = env_file(&tenant, "payload.signature", "acme.tenants.example");
        assert_eq!(doc["write_files"][0]["content"].as_str(), Some(env.as_str()), "the .env, whole, in its field");
        let name = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, tenant.request.name.as_bytes());
        assert!(env.contains("LICENCE='payload.signature'\n") && env.contains(&format!("ORGANIZATION_NAME_BASE64='{name}'\n")), "{env}");
        assert!(!env.contains("rm, -rf") && !text.contains("rm, -rf"), "the hostile name is nowhere in clear");
        let runcmd = doc["runcmd"].as_sequence().expect("runcmd");
        assert_eq!(runcmd.len(), 8, "the hostile name added no command");
        assert_eq!(runcmd[6][8].as_str(), Some("acme.tenants.example"));
        assert_eq!(doc["hostname"].as_str(), Some("acme"));
    }
}
