//! A tenant's health check over HTTP: `GET` its health URL, healthy on a 2xx within ten
//! seconds; anything else is "not yet" (the workflow waits and asks again until its deadline).

use std::time::Duration;

use async_trait::async_trait;
use relay_core::ports::provision::{HealthProbe, RemoteError};

pub struct HttpHealthProbe {
    http: reqwest::Client,
}

impl HttpHealthProbe {
    /// Redirects are not followed: a tenant that answers its health check with one is not healthy.
    pub fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default();
        Self { http }
    }
}

impl Default for HttpHealthProbe {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl HealthProbe for HttpHealthProbe {
    async fn check(&self, url: &str) -> Result<(), RemoteError> {
        let response =
            self.http.get(url).timeout(Duration::from_secs(10)).send().await.map_err(|e| RemoteError::transient(e.to_string()))?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(RemoteError::transient(format!("answered {s}"))),
        }
    }
}
