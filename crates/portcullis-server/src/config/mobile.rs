//! Mobile sign-in settings: the flat `mobile_*` keys, their validation, and the form the
//! handlers use at run time.

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::config::list::StringList;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct MobileConfig {
    /// Mobile sign-in (`/api/v1/mobile/auth/*`, `/auth/mobile/handoff`) is offered.
    #[serde(rename = "mobile_enabled")]
    pub enabled: bool,
    /// Hostnames the mobile routes answer on (comma-separated or a list); empty means the
    /// public URL's own host only.
    #[serde(rename = "mobile_host_allowlist")]
    pub host_allowlist: StringList,
    /// App URL schemes the hand-off may redirect to, e.g. `alga` (for `alga://…`).
    #[serde(rename = "mobile_schemes")]
    pub schemes: StringList,
    /// `https://` URL prefixes (universal / app links) the hand-off may redirect to.
    #[serde(rename = "mobile_universal_links")]
    pub universal_links: StringList,
    /// Lifetime of a mobile one-time token, in seconds.
    #[serde(rename = "mobile_ott_ttl_sec")]
    pub ott_ttl_sec: u64,
    /// Lifetime of mobile access tokens, in seconds.
    #[serde(rename = "mobile_access_token_ttl_secs")]
    pub access_token_ttl_secs: u32,
    /// Deprecated: the exchange's per-address limit is the `ott_exchange` rate-limit class
    /// (`[rate_limits.ott_exchange]`, shared through Redis). When set, it stands in for that
    /// class's limit, over `mobile_exchange_limit_window_secs` ([`super::Config::rate_limiting`]).
    #[serde(rename = "mobile_exchange_limit_per_ip")]
    pub exchange_limit_per_ip: Option<u32>,
    /// Exchanges allowed per app sign-in attempt (its `state`) per window.
    #[serde(rename = "mobile_exchange_limit_per_client")]
    pub exchange_limit_per_client: u32,
    #[serde(rename = "mobile_exchange_limit_window_secs")]
    pub exchange_limit_window_secs: u64,
}

impl Default for MobileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host_allowlist: StringList::default(),
            schemes: StringList::default(),
            universal_links: StringList::default(),
            ott_ttl_sec: 60,
            access_token_ttl_secs: 900,
            exchange_limit_per_ip: None,
            exchange_limit_per_client: 5,
            exchange_limit_window_secs: 60,
        }
    }
}

/// Schemes an app may not claim: they would turn the hand-off into an open redirect.
const RESERVED_SCHEMES: &[&str] = &[
    "http",
    "https",
    "javascript",
    "data",
    "file",
    "about",
    "blob",
];

fn valid_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl MobileConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for host in self.host_allowlist.iter() {
            if host.contains("://") || host.contains('/') || host.contains(' ') {
                return Err(ConfigError::Invalid(format!(
                    "mobile_host_allowlist entry {host:?} must be a bare hostname like auth.example.com"
                )));
            }
        }
        for scheme in self.schemes.iter() {
            let scheme = scheme.trim_end_matches("://").trim_end_matches(':');
            if !valid_scheme(scheme)
                || RESERVED_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
            {
                return Err(ConfigError::Invalid(format!(
                    "mobile_schemes entry {scheme:?} must be an app URL scheme like `alga` (not http, https, javascript, data or file)"
                )));
            }
        }
        for link in self.universal_links.iter() {
            match url::Url::parse(link) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "mobile_universal_links entry {link:?} must be an https URL prefix like https://app.example.com/auth/callback"
                    )));
                }
            }
        }
        if self.ott_ttl_sec == 0 || self.ott_ttl_sec > 600 {
            return Err(ConfigError::Invalid(
                "mobile_ott_ttl_sec must be between 1 and 600 seconds".into(),
            ));
        }
        if !(60..=86_400).contains(&self.access_token_ttl_secs) {
            return Err(ConfigError::Invalid(
                "mobile_access_token_ttl_secs must be between 60 and 86400".into(),
            ));
        }
        if self.exchange_limit_per_ip == Some(0)
            || self.exchange_limit_per_client == 0
            || self.exchange_limit_window_secs == 0
        {
            return Err(ConfigError::Invalid(
                "mobile_exchange_limit_per_ip, _per_client and _window_secs must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The mobile settings in the form the handlers use, fixed at start-up.
pub struct MobileSettings {
    pub enabled: bool,
    /// Lower-case hostnames; empty means only `public_host`.
    pub host_allowlist: Vec<String>,
    /// The public URL's host, lower-case.
    pub public_host: String,
    /// Lower-case schemes without `://`.
    pub schemes: Vec<String>,
    /// Normalized `https://host[:port]/path` prefixes.
    pub universal_links: Vec<String>,
    pub ott_ttl: time::Duration,
    pub access_token_ttl_secs: u32,
    /// Derived from the master key: names the session behind a mobile access token.
    pub session_key: [u8; 32],
    pub client_id: portcullis_core::oauth::ClientId,
}

impl MobileSettings {
    pub fn new(
        c: &MobileConfig,
        public_url: &str,
        session_key: [u8; 32],
    ) -> Result<Self, ConfigError> {
        let client_id = portcullis_core::oauth::ClientId::parse(portcullis_store::MOBILE_CLIENT_ID)
            .ok_or_else(|| ConfigError::Invalid("the mobile client id is malformed".into()))?;
        let public_host = url::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        Ok(Self {
            enabled: c.enabled,
            host_allowlist: c
                .host_allowlist
                .iter()
                .map(str::to_ascii_lowercase)
                .collect(),
            public_host,
            schemes: c
                .schemes
                .iter()
                .map(|s| {
                    s.trim_end_matches("://")
                        .trim_end_matches(':')
                        .to_ascii_lowercase()
                })
                .collect(),
            universal_links: c
                .universal_links
                .iter()
                .filter_map(|l| url::Url::parse(l).ok())
                .map(|u| origin_and_path(&u))
                .collect(),
            ott_ttl: time::Duration::seconds(c.ott_ttl_sec as i64),
            access_token_ttl_secs: c.access_token_ttl_secs,
            session_key,
            client_id,
        })
    }

    /// Whether the mobile routes answer on `host` (a Host header value, port allowed).
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = strip_port(host).to_ascii_lowercase();
        if self.host_allowlist.is_empty() {
            host == self.public_host
        } else {
            self.host_allowlist.contains(&host)
        }
    }

    /// Whether the hand-off may send the browser (and the one-time token) to `uri`: a
    /// registered app scheme, or an https URL under a registered universal link.
    pub fn redirect_allowed(&self, uri: &url::Url) -> bool {
        self.schemes.contains(&uri.scheme().to_ascii_lowercase()) || self.is_universal_link(uri)
    }

    /// Whether `uri` is under a registered universal link: an https URL the operating system
    /// gives only to the app that proved it owns the domain, unlike an app scheme, which any
    /// installed app may claim.
    pub fn is_universal_link(&self, uri: &url::Url) -> bool {
        uri.scheme() == "https"
            && uri.username().is_empty()
            && uri.password().is_none()
            && self
                .universal_links
                .iter()
                .any(|prefix| under_prefix(&origin_and_path(uri), prefix))
    }
}

/// `candidate` is `prefix` or lies below it at a path-segment boundary: a registered
/// `https://app.example.com/auth` covers `/auth` and `/auth/callback`, never `/auth-evil`.
fn under_prefix(candidate: &str, prefix: &str) -> bool {
    match candidate.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

fn origin_and_path(u: &url::Url) -> String {
    format!("{}{}", u.origin().ascii_serialization(), u.path())
}

/// `host[:port]` or `[v6]:port` → the host part.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn list(items: &[&str]) -> StringList {
        StringList(items.iter().map(|s| s.to_string()).collect())
    }

    fn settings(allow: &[&str], schemes: &[&str], links: &[&str]) -> MobileSettings {
        let c = MobileConfig {
            host_allowlist: list(allow),
            schemes: list(schemes),
            universal_links: list(links),
            ..MobileConfig::default()
        };
        c.validate().unwrap();
        MobileSettings::new(&c, "https://Auth.Example.com", [7; 32]).unwrap()
    }

    #[test]
    fn lists_load_from_the_config_layers() {
        use figment::Figment;
        use figment::providers::{Format, Serialized, Toml};
        let c: MobileConfig = Figment::from(Serialized::defaults(MobileConfig::default()))
            .merge(Toml::string(
                "mobile_host_allowlist = \"a.example.com, b.example.com\"\nmobile_schemes = [\"alga\"]",
            ))
            .merge(Serialized::default("mobile_universal_links", "https://app.example.com/auth/"))
            .extract()
            .unwrap();
        assert_eq!(c.host_allowlist.0, ["a.example.com", "b.example.com"]);
        assert_eq!(c.schemes.0, ["alga"]);
        assert_eq!(c.universal_links.0, ["https://app.example.com/auth/"]);
        c.validate().unwrap();
    }

    #[test]
    fn hosts() {
        let own = settings(&[], &[], &[]);
        assert!(own.host_allowed("auth.example.com:443"));
        assert!(own.host_allowed("AUTH.example.com"));
        assert!(!own.host_allowed("evil.example.com"));
        let listed = settings(&["psa.example.net"], &[], &[]);
        assert!(listed.host_allowed("psa.example.net:8443"));
        assert!(!listed.host_allowed("auth.example.com"));
        assert_eq!(strip_port("[::1]:8080"), "::1");
    }

    #[test]
    fn redirects() {
        let s = settings(&[], &["alga"], &["https://app.example.com/auth/"]);
        let ok = |u: &str| s.redirect_allowed(&url::Url::parse(u).unwrap());
        assert!(ok("alga://auth/callback"));
        assert!(ok("ALGA://x"));
        assert!(ok("https://app.example.com/auth/callback?x=1"));
        assert!(!ok("https://app.example.com/other"));
        assert!(!ok("https://app.example.com.evil.net/auth/"));
        assert!(!ok("https://user@app.example.com/auth/"));
        assert!(!ok("other://auth"));
        assert!(!ok("javascript:alert(1)"));
        let universal = |u: &str| s.is_universal_link(&url::Url::parse(u).unwrap());
        assert!(universal("https://app.example.com/auth/callback"));
        assert!(!universal("alga://auth/callback"));
        assert!(!universal("https://app.example.com/other"));
        assert!(!universal("https://app.example.com/auth-evil/callback"));
    }

    #[test]
    fn reserved_schemes_are_refused() {
        let c = MobileConfig {
            schemes: list(&["https"]),
            ..MobileConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_universal_link_covers_only_its_own_path_segments() {
        assert!(under_prefix(
            "https://a.example.com/auth",
            "https://a.example.com/auth"
        ));
        assert!(under_prefix(
            "https://a.example.com/auth/cb",
            "https://a.example.com/auth"
        ));
        assert!(under_prefix(
            "https://a.example.com/auth/cb",
            "https://a.example.com/auth/"
        ));
        assert!(!under_prefix(
            "https://a.example.com/auth-evil",
            "https://a.example.com/auth"
        ));
        assert!(!under_prefix(
            "https://a.example.com/authx/cb",
            "https://a.example.com/auth"
        ));
        assert!(!under_prefix(
            "https://a.example.com.evil/auth",
            "https://a.example.com/auth"
        ));
    }
}
