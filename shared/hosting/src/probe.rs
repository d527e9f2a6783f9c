//! A tenant's health check over HTTP: `GET` its health URL, healthy on a 2xx within ten
//! seconds; anything else is "not yet" (the workflow waits and asks again until its deadline).

use std::time::Duration;

use async_trait::async_trait;
use relay_core::ports::provision::{HealthProbe, RemoteError};

pub struct HttpHealthProbe {
    http: reqwest::Client,
}

impl HttpHealthProbe {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
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
