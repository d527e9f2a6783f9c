//! Building AWS clients once per process, and reading the settings template.yaml hands to
//! every function as environment variables.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder as HttpClientBuilder;

/// The Amazon Trust Services roots (Amazon Root CA 1-4 and Starfield Services Root G2) that
/// every AWS service endpoint chains to. Trusting just these, compiled in, replaces reading and
/// parsing the ~140 platform certificates at every cold start, which cost more than the rest of
/// start-up together (see `./dev bench`). `RELAY_TLS_NATIVE_ROOTS=true` trusts the platform
/// store instead (for example behind a TLS-inspecting proxy).
const AMAZON_TRUST_SERVICES: &str = include_str!("../certs/amazon-trust-services.pem");

/// A required setting is missing or malformed: the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required (template.yaml sets it for every function)")]
    Missing(&'static str),
    #[error("environment variable {name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
}

/// A required environment variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name))
}

/// An optional whole-number environment variable with a default.
pub fn number(name: &'static str, default: i64) -> Result<i64, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.trim().parse().map_err(|_| ConfigError::Invalid { name, expected: "a whole number", value: v }),
        _ => Ok(default),
    }
}

/// The shared SDK configuration. The endpoint comes from `AWS_ENDPOINT_URL` when set (the local
/// stack points it at the emulator), so the same binary runs against AWS and moto.
///
/// Timeouts are bounded so a stalled AWS call fails inside the Lambda deadline and the caller
/// gets a 503 it can retry, rather than a gateway timeout with an unknown outcome.
pub async fn load() -> Result<SdkConfig, ConfigError> {
    let attempt = number("RELAY_AWS_ATTEMPT_TIMEOUT_MS", 3_000)?;
    let operation = number("RELAY_AWS_OPERATION_TIMEOUT_MS", 8_000)?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(attempt.max(1) as u64))
        .operation_attempt_timeout(Duration::from_millis(attempt.max(1) as u64))
        .operation_timeout(Duration::from_millis(operation.max(1) as u64))
        .build();
    let http = https_client()?;
    if let (true, Some(region)) = (in_lambda(), env_region()) {
        // Lambda (and the local stack) hand a function its credentials and region as
        // environment variables, so the provider chain's profile files and SSO, ECS and IMDS
        // providers are pure start-up cost there (measured: about a third of ingest's start-up).
        let credentials = aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new(),
        );
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .credentials_provider(credentials)
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard())
            .http_client(http);
        if let Some(url) = std::env::var("AWS_ENDPOINT_URL").ok().filter(|u| !u.is_empty()) {
            builder = builder.endpoint_url(url);
        }
        return Ok(builder.build());
    }
    Ok(aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).http_client(http).load().await)
}

/// True inside a Lambda execution environment (or the local stack's emulation of one).
fn in_lambda() -> bool {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok_and(|v| !v.is_empty())
        && std::env::var("AWS_ACCESS_KEY_ID").is_ok_and(|v| !v.is_empty())
}

fn env_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn https_client() -> Result<aws_sdk_dynamodb::config::SharedHttpClient, ConfigError> {
    let trust = if std::env::var("RELAY_TLS_NATIVE_ROOTS").is_ok_and(|v| v == "true") {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes())
    };
    let context = TlsContext::builder().with_trust_store(trust).build().map_err(|e| ConfigError::Invalid {
        name: "RELAY_TLS_NATIVE_ROOTS",
        expected: "a usable trust store",
        value: e.to_string(),
    })?;
    Ok(HttpClientBuilder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https())
}

/// True when the SDK talks to an emulator rather than AWS (S3 then needs path-style URLs).
pub fn custom_endpoint() -> bool {
    std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty())
}

/// The key that seals stored secrets (`RELAY_SECRETS_KEY`, the template's `SecretsKey`).
pub fn secret_box() -> Result<relay_core::secrets::SecretBox, ConfigError> {
    relay_core::secrets::SecretBox::from_base64(&required("RELAY_SECRETS_KEY")?).map_err(|_| ConfigError::Invalid {
        name: "RELAY_SECRETS_KEY",
        expected: "32 bytes, base64",
        value: "(hidden)".into(),
    })
}

/// A key for `purpose` derived from `RELAY_SECRETS_KEY` (ids derived from idempotency keys).
pub fn derived_key(purpose: &str) -> Result<Vec<u8>, ConfigError> {
    relay_core::secrets::SecretBox::derive_key(&required("RELAY_SECRETS_KEY")?, purpose).map_err(|_| ConfigError::Invalid {
        name: "RELAY_SECRETS_KEY",
        expected: "32 bytes, base64",
        value: "(hidden)".into(),
    })
}

/// How long the message log keeps messages, and their addresses.
pub fn mail_retention() -> Result<relay_core::mail::Retention, ConfigError> {
    Ok(relay_core::mail::Retention {
        log_secs: number("RELAY_MAIL_LOG_RETENTION_DAYS", 30)? * 24 * 3600,
        addresses_secs: number("RELAY_MAIL_ADDRESS_RETENTION_DAYS", 7)? * 24 * 3600,
    })
}
