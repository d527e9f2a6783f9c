//! Secrets from SSM Parameter Store: a `SecureString` read once, at a function's cold start, and
//! decrypted by SSM with the account's key. Used for what must never sit in a function's
//! environment (visible to anyone who may read its configuration): the hosting provider's
//! private key, the licence signing key and the deploy agents' secret.

use aws_sdk_ssm::Client;

use crate::config::ConfigError;

/// Reads the parameters named by environment variables.
pub struct Parameters {
    client: Client,
}

impl Parameters {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }

    /// The decrypted value of the parameter whose name the environment variable `env` holds.
    /// The value is never logged; an error names the parameter, not its content.
    pub async fn secret(&self, env: &'static str) -> Result<String, ConfigError> {
        let name = crate::config::required(env)?;
        let out = self.client.get_parameter().name(&name).with_decryption(true).send().await.map_err(|e| ConfigError::Invalid {
            name: env,
            expected: "the name of a readable SSM parameter",
            value: format!("{name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)),
        })?;
        out.parameter().and_then(|p| p.value()).filter(|v| !v.is_empty()).map(str::to_string).ok_or(ConfigError::Invalid {
            name: env,
            expected: "a parameter with a value",
            value: name,
        })
    }
}
