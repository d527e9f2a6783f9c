//! Mollie's payments API, for confirming classic (unsigned) callbacks: only what Mollie itself
//! returns is trusted. The HTTP client is built on first use, so other providers' cold starts
//! do not pay for it.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use relay_core::ports::PaymentLookup;
use serde_json::Value;

#[derive(Default)]
pub struct MollieApi {
    client: OnceLock<reqwest::Client>,
}

impl MollieApi {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }
}

#[async_trait]
impl PaymentLookup for MollieApi {
    async fn payment(&self, base_url: &str, api_key: &str, payment_id: &str) -> Result<Option<Value>, String> {
        let url = format!("{}/v2/payments/{payment_id}", base_url.trim_end_matches('/'));
        let resp = self.client().get(url).bearer_auth(api_key).send().await.map_err(|e| format!("Mollie did not answer: {e}"))?;
        match resp.status().as_u16() {
            200 => resp.json().await.map(Some).map_err(|e| format!("Mollie's answer is not JSON: {e}")),
            404 | 410 => Ok(None),
            other => Err(format!("Mollie answered {other}")),
        }
    }
}
