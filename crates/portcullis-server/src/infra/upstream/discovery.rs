//! An upstream's OpenID Provider metadata (discovery document) and its signing keys (JWKS).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;

use super::UpstreamError;
use super::net::Fetcher;

/// The parts of `/.well-known/openid-configuration` the sign-in flow uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// Where claims are released against an access token (Core §5.3); optional.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
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
    pub async fn refresh_keys(&self, http: &Fetcher) -> bool {
        let due = self
            .keys
            .read()
            .map(|k| k.1.elapsed() >= JWKS_REFETCH_MIN)
            .unwrap_or(false);
        if !due {
            return false;
        }
        match fetch_jwks(http, &self.discovery.jwks_uri).await {
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

/// The keys of a JWKS this server can use; others (unknown key types) are skipped.
pub async fn fetch_jwks(http: &Fetcher, uri: &str) -> Result<Vec<Jwk>, UpstreamError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = http.get_json(uri, None).await?;
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
    http: &Fetcher,
    issuer: &str,
    issuer_template: bool,
) -> Result<Metadata, UpstreamError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Discovery = http.get_json(&url, None).await?;
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
        Some(&discovery.authorization_endpoint),
        Some(&discovery.token_endpoint),
        Some(&discovery.jwks_uri),
        discovery.userinfo_endpoint.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(why) = http.reach().check(endpoint) {
            return Err(UpstreamError::Failed(format!(
                "the discovery document of {issuer} names an endpoint this server may not use: {why}"
            )));
        }
    }
    let keys = fetch_jwks(http, &discovery.jwks_uri).await?;
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
    fn token_endpoint_auth_method() {
        let mut d = Discovery {
            issuer: "https://i".into(),
            authorization_endpoint: "https://i/a".into(),
            token_endpoint: "https://i/t".into(),
            jwks_uri: "https://i/j".into(),
            userinfo_endpoint: None,
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
