//! An upstream's OpenID Provider metadata (discovery document) and its signing keys (JWKS).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;

use super::UpstreamError;

/// The parts of `/.well-known/openid-configuration` the sign-in flow uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

impl Discovery {
    /// `client_secret_basic` unless the upstream supports only `client_secret_post`
    /// (absent means basic, OpenID Connect Discovery §3).
    pub fn uses_basic_auth(&self) -> bool {
        match &self.token_endpoint_auth_methods_supported {
            None => true,
            Some(methods) => {
                methods.iter().any(|m| m == "client_secret_basic")
                    || !methods.iter().any(|m| m == "client_secret_post")
            }
        }
    }
}

/// A loaded upstream: its metadata and the keys it signs ID tokens with.
pub struct Metadata {
    pub discovery: Discovery,
    keys: RwLock<(Vec<Jwk>, Instant)>,
    pub loaded_at: Instant,
}

/// Refetch the JWKS for an unknown `kid` at most this often (key rotation, not abuse).
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(10);

impl Metadata {
    pub fn keys(&self) -> Vec<Jwk> {
        self.keys.read().map(|k| k.0.clone()).unwrap_or_default()
    }

    /// After an ID token named a key we do not have: fetch the JWKS again (rate-limited).
    /// True when a new set was loaded.
    pub async fn refresh_keys(&self, http: &reqwest::Client, dev: bool) -> bool {
        let due = self
            .keys
            .read()
            .map(|k| k.1.elapsed() >= JWKS_REFETCH_MIN)
            .unwrap_or(false);
        if !due {
            return false;
        }
        match fetch_jwks(http, &self.discovery.jwks_uri, dev).await {
            Ok(keys) => {
                if let Ok(mut slot) = self.keys.write() {
                    *slot = (keys, Instant::now());
                }
                true
            }
            Err(e) => {
                tracing::warn!(issuer = %self.discovery.issuer, error = %e, "cannot refetch upstream JWKS");
                false
            }
        }
    }
}

/// Only `https://` upstreams, except loopback hosts (or anything in development mode).
pub fn url_allowed(raw: &str, dev: bool) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => dev || is_loopback(&url),
        _ => false,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    dev: bool,
) -> Result<T, UpstreamError> {
    if !url_allowed(url, dev) {
        return Err(UpstreamError::Failed(format!(
            "{url} is not https (plain http is allowed only for loopback hosts or in development mode)"
        )));
    }
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| UpstreamError::Failed(format!("GET {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(UpstreamError::Failed(format!(
            "GET {url}: HTTP {}",
            response.status().as_u16()
        )));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| UpstreamError::Failed(format!("GET {url}: unreadable JSON: {e}")))
}

/// The keys of a JWKS this server can use; others (unknown key types) are skipped.
pub async fn fetch_jwks(
    http: &reqwest::Client,
    uri: &str,
    dev: bool,
) -> Result<Vec<Jwk>, UpstreamError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = get_json(http, uri, dev).await?;
    let keys: Vec<Jwk> = set
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .filter(|k| {
            !matches!(
                k.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            )
        })
        .collect();
    if keys.is_empty() {
        return Err(UpstreamError::Failed(format!(
            "{uri} holds no usable signing key"
        )));
    }
    Ok(keys)
}

/// Loads the discovery document of `issuer` and its JWKS. `issuer_template` accepts a
/// document whose `issuer` is a template (Microsoft's `{tenantid}`) instead of `issuer`.
pub async fn load(
    http: &reqwest::Client,
    issuer: &str,
    issuer_template: bool,
    dev: bool,
) -> Result<Metadata, UpstreamError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Discovery = get_json(http, &url, dev).await?;
    let matches = discovery.issuer.trim_end_matches('/') == issuer.trim_end_matches('/');
    // Microsoft: `common`/`organizations` publish a `{tenantid}` template, and a tenant
    // named by domain publishes its GUID; both are checked per token instead.
    let template = issuer_template
        && (discovery.issuer.contains("{tenantid}")
            || discovery
                .issuer
                .starts_with("https://login.microsoftonline.com/"));
    if !(matches || template) {
        return Err(UpstreamError::Failed(format!(
            "the discovery document of {issuer} names another issuer ({}); configure the issuer exactly as the provider states it",
            discovery.issuer
        )));
    }
    for endpoint in [
        &discovery.authorization_endpoint,
        &discovery.token_endpoint,
        &discovery.jwks_uri,
    ] {
        if !url_allowed(endpoint, dev) {
            return Err(UpstreamError::Failed(format!(
                "the discovery document of {issuer} names a non-https endpoint {endpoint}"
            )));
        }
    }
    let keys = fetch_jwks(http, &discovery.jwks_uri, dev).await?;
    Ok(Metadata {
        discovery,
        keys: RwLock::new((keys, Instant::now())),
        loaded_at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_dev() {
        assert!(url_allowed("https://accounts.google.com", false));
        assert!(url_allowed("http://127.0.0.1:9000/", false));
        assert!(url_allowed("http://localhost:9000/", false));
        assert!(url_allowed("http://[::1]:9000/", false));
        assert!(!url_allowed("http://idp.example.com/", false));
        assert!(url_allowed("http://idp.example.com/", true));
        assert!(!url_allowed("ftp://idp.example.com/", true));
        assert!(!url_allowed("not a url", true));
    }

    #[test]
    fn token_endpoint_auth_method() {
        let mut d = Discovery {
            issuer: "https://i".into(),
            authorization_endpoint: "https://i/a".into(),
            token_endpoint: "https://i/t".into(),
            jwks_uri: "https://i/j".into(),
            token_endpoint_auth_methods_supported: None,
        };
        assert!(d.uses_basic_auth());
        d.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        assert!(!d.uses_basic_auth());
        d.token_endpoint_auth_methods_supported = Some(vec![
            "client_secret_post".into(),
            "client_secret_basic".into(),
        ]);
        assert!(d.uses_basic_auth());
    }
}
