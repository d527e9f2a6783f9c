//! The HTTP sender for outgoing webhooks: one client per instance, a timeout, no redirects, no
//! proxies, and the SSRF guard applied to every address a host name resolves to (at connect
//! time, so a DNS change after registration cannot point Relay inward) and to IP literals.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use relay_core::model::delivery::{Outgoing, SendResult, EXCERPT_BYTES};
use relay_core::ports::WebhookSender;
use relay_core::ssrf;

/// Resolves host names, refusing the lot if any address is not public (a name that mixes a
/// public and a private address is a rebinding attempt).
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| ssrf::check_ip(a.ip(), allow).is_err()) {
                return Err(format!("refused: {} resolves to {}, which is not a public address", name.as_str(), bad.ip()).into());
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

pub struct HttpSender {
    client: reqwest::Client,
    allow_loopback: bool,
}

impl HttpSender {
    /// Fails closed: if the guarded client cannot be built, there is no sender at all (the
    /// function does not start) rather than a default client without the guard.
    pub fn new(timeout: Duration, allow_loopback: bool) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
            .build()?;
        Ok(Self { client, allow_loopback })
    }
}

fn retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, request: Outgoing) -> SendResult {
        let started = Instant::now();
        if let Err(e) = ssrf::check_url(&request.url, self.allow_loopback) {
            return SendResult {
                error_kind: Some("refused".into()),
                excerpt: Some(e.to_string()),
                duration: started.elapsed(),
                ..SendResult::default()
            };
        }
        let mut req = self.client.post(&request.url).body(request.body);
        for (k, v) in &request.headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(resp.headers().get("retry-after"));
                let mut excerpt = Vec::new();
                while excerpt.len() < EXCERPT_BYTES {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - excerpt.len())]),
                        _ => break,
                    }
                }
                let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
                SendResult { status: Some(status), retry_after, duration: started.elapsed(), excerpt, error_kind: None }
            }
            Err(e) => {
                let text = format!("{e:?}");
                let kind = if text.contains("refused: ") {
                    "refused"
                } else if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                // The error's text names the URL; the attempt log shows it to the organisation and
                // an integration's URL may carry a token, so the URL is left out.
                SendResult {
                    error_kind: Some(kind.into()),
                    excerpt: Some(e.without_url().to_string()),
                    duration: started.elapsed(),
                    ..SendResult::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_and_names_resolving_inward_are_refused_at_send_time() {
        let sender = HttpSender::new(Duration::from_secs(2), false).unwrap();
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/",
            "http://[::ffff:127.0.0.1]:9/",
            "http://10.0.0.1/",
            "http://169.254.169.254/",
            "http://localhost:9/",
        ] {
            let r = sender.send(Outgoing { url: url.into(), headers: vec![], body: vec![] }).await;
            assert_eq!(r.error_kind.as_deref(), Some("refused"), "{url}: {r:?}");
            assert_eq!(r.status, None);
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_retry_after_is_read() {
        let app = axum::Router::new()
            .route(
                "/redirect",
                axum::routing::post(|| async { (axum::http::StatusCode::FOUND, [("location", "http://127.0.0.1:9/elsewhere")]) }),
            )
            .route(
                "/busy",
                axum::routing::post(|| async { (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "slow down") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let sender = HttpSender::new(Duration::from_secs(2), true).unwrap();
        let r = sender.send(Outgoing { url: format!("http://{addr}/redirect"), headers: vec![], body: vec![] }).await;
        assert_eq!(r.status, Some(302));
        let r = sender.send(Outgoing { url: format!("http://{addr}/busy"), headers: vec![], body: vec![] }).await;
        assert_eq!((r.status, r.retry_after, r.excerpt.as_deref()), (Some(429), Some(Duration::from_secs(120)), Some("slow down")));
    }

    #[tokio::test]
    async fn an_error_excerpt_never_repeats_the_url_its_query_or_credentials() {
        let sender = HttpSender::new(Duration::from_millis(500), true).unwrap();
        // Nothing listens on port 9; the URL carries a token in its query.
        let r = sender.send(Outgoing { url: "http://127.0.0.1:9/hook?token=s3cr3t".into(), headers: vec![], body: vec![] }).await;
        let excerpt = r.excerpt.unwrap_or_default();
        assert_eq!(r.error_kind.as_deref(), Some("connect"), "{excerpt}");
        for secret in ["s3cr3t", "pa55", "token="] {
            assert!(!excerpt.contains(secret), "{excerpt}");
        }
        let refused = HttpSender::new(Duration::from_millis(500), false).unwrap();
        let r =
            refused.send(Outgoing { url: "http://user:pa55@127.0.0.1:9/hook?token=s3cr3t".into(), headers: vec![], body: vec![] }).await;
        let excerpt = r.excerpt.unwrap_or_default();
        assert_eq!(r.error_kind.as_deref(), Some("refused"));
        for secret in ["s3cr3t", "pa55", "token="] {
            assert!(!excerpt.contains(secret), "{excerpt}");
        }
    }
}
