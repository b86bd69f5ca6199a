//! Sending webhooks: where endpoints may point, sealing their secrets under the master key,
//! and one signed attempt (Standard Webhooks). The worker (`workers::webhooks`) decides when;
//! this decides how.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use portcullis_core::webhook::{
    ErrorClass, SigningSecret, WebhookId, hmac_sha256, signature_header, signed_content,
};
use portcullis_store::webhooks::{Attempt, Claimed, RESPONSE_SNIPPET};

use crate::config::MasterKey;
use crate::infra::crypto::{SecretBox, SecretBoxError, purpose};
use crate::infra::upstream::net::{guarded_client, is_public};

/// Where endpoints may point. In production: `https://` to public addresses only (an IP
/// literal is checked here, a name at every connection). In development mode also loopback,
/// over http too. `sso_allow_private_networks` (tests, labs) lifts the address rule.
#[derive(Clone, Copy, Debug)]
pub struct UrlPolicy {
    pub dev: bool,
    pub allow_private: bool,
}

impl UrlPolicy {
    /// Err says why the URL may not be used, for the admin who named it.
    pub fn check(&self, url: &url::Url) -> Result<(), String> {
        let host = url.host().ok_or("the URL has no host")?;
        let ip = match &host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            url::Host::Domain(_) => None,
        };
        let loopback = match &host {
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            _ => ip.is_some_and(|ip| ip.is_loopback()),
        };
        if self.allow_private {
            return Ok(());
        }
        if self.dev && loopback {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(
                "must be an https:// URL (plain http only to loopback in development mode)".into(),
            );
        }
        if loopback || ip.is_some_and(|ip| !is_public(ip)) {
            return Err("names a loopback, private or other non-public address".into());
        }
        Ok(())
    }
}

/// Signs and sends deliveries; seals and opens endpoint secrets.
pub struct Sender {
    client: reqwest::Client,
    secrets: SecretBox,
    pub policy: UrlPolicy,
    pub limits: SendLimits,
}

/// What one project may make this server send: endpoints, and on-demand sends (test,
/// recover) within a budget per project.
pub struct SendLimits {
    pub max_endpoints: u32,
    pub sends: Box<dyn crate::infra::rate_limit::Budget>,
}

impl SendLimits {
    pub fn new(c: &crate::config::WebhookConfig) -> Self {
        Self {
            max_endpoints: c.max_endpoints_per_project,
            sends: Box::new(crate::infra::rate_limit::RateLimiter::new(
                c.sends_per_minute,
                Duration::from_secs(60),
            )),
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("policy", &self.policy)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("webhook secrets: {0}")]
    Secrets(#[from] SecretBoxError),
    #[error("webhook HTTP client: {0}")]
    Client(String),
}

impl Sender {
    pub fn new(
        master: &MasterKey,
        timeout: Duration,
        policy: UrlPolicy,
        limits: SendLimits,
    ) -> Result<Self, SenderError> {
        Ok(Self {
            client: guarded_client(timeout, policy.allow_private, policy.dev)
                .map_err(SenderError::Client)?,
            secrets: SecretBox::new(master, purpose::WEBHOOK_SECRETS)?,
            policy,
            limits,
        })
    }

    /// The secret sealed for this endpoint only (its id is the associated data).
    pub fn seal(&self, id: WebhookId, secret: &SigningSecret) -> Result<Vec<u8>, SecretBoxError> {
        self.secrets.seal(secret.bytes(), id.0.as_bytes())
    }

    fn open(&self, id: WebhookId, sealed: &[u8]) -> Option<SigningSecret> {
        let plain = self.secrets.open(sealed, id.0.as_bytes()).ok()?;
        SigningSecret::from_bytes(&plain)
    }

    /// One attempt: signed with every secret that still signs, at `now`. Never fails: what
    /// went wrong is the attempt's error class.
    pub async fn send(&self, claimed: &Claimed) -> Attempt {
        let at = portcullis_core::now();
        let started = Instant::now();
        let d = &claimed.delivery;
        let msg_id = d.id.to_string();
        let timestamp = at.unix_timestamp();
        let content = signed_content(&msg_id, timestamp, &d.body);
        let keys: Vec<SigningSecret> = std::iter::once(&claimed.secrets.current)
            .chain(claimed.secrets.previous.as_ref())
            .filter_map(|sealed| self.open(d.endpoint_id, sealed))
            .collect();
        let failed = |class: ErrorClass, why: String| Attempt {
            at,
            status_code: None,
            duration_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            response: truncate(&why),
            error_class: Some(class),
        };
        if keys.is_empty() {
            // The master key changed, or the row was damaged: nothing could be verified.
            return failed(
                ErrorClass::Other,
                "the endpoint's secret cannot be opened".into(),
            );
        }
        let url = match url::Url::parse(&claimed.url) {
            Ok(u) => u,
            Err(_) => {
                return failed(
                    ErrorClass::Connect,
                    "the endpoint URL does not parse".into(),
                );
            }
        };
        if let Err(why) = self.policy.check(&url) {
            return failed(ErrorClass::Connect, format!("refused: the URL {why}"));
        }
        let macs: Vec<[u8; 32]> = keys
            .iter()
            .map(|k| hmac_sha256(k.bytes(), &content))
            .collect();
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature_header(&macs))
            .body(d.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let class = if e.is_timeout() {
                    ErrorClass::Timeout
                } else if e.is_connect() {
                    ErrorClass::Connect
                } else {
                    ErrorClass::Other
                };
                return failed(class, error_chain(&e));
            }
        };
        let status = response.status();
        let snippet = read_snippet(response).await;
        Attempt {
            at,
            status_code: Some(status.as_u16()),
            duration_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            response: snippet.unwrap_or_default(),
            error_class: (!status.is_success()).then_some(ErrorClass::Status),
        }
    }
}

/// The error and its causes ("error sending request: … : connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The first KiB of the answer; the rest is never read.
async fn read_snippet(mut response: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while body.len() < RESPONSE_SNIPPET {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(RESPONSE_SNIPPET);
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn truncate(s: &str) -> String {
    let mut end = s.len().min(RESPONSE_SNIPPET);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn where_endpoints_may_point() {
        let prod = UrlPolicy {
            dev: false,
            allow_private: false,
        };
        assert!(prod.check(&url("https://hooks.example.com/x")).is_ok());
        assert!(prod.check(&url("https://8.8.8.8/x")).is_ok());
        for refused in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "http://127.0.0.1:9000/x",
        ] {
            assert!(prod.check(&url(refused)).is_err(), "{refused}");
        }
        let dev = UrlPolicy {
            dev: true,
            allow_private: false,
        };
        assert!(dev.check(&url("http://127.0.0.1:9000/x")).is_ok());
        assert!(dev.check(&url("http://localhost:9000/x")).is_ok());
        assert!(dev.check(&url("https://10.0.0.1/x")).is_err());
        assert!(dev.check(&url("http://hooks.example.com/x")).is_err());
        let lab = UrlPolicy {
            dev: false,
            allow_private: true,
        };
        assert!(lab.check(&url("http://10.0.0.1/x")).is_ok());
    }
}
