//! The OpenID Connect provider's settings: the flat `oidc_*` keys, and the form the
//! handlers use, fixed at start-up.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcConfig {
    /// A rotated refresh token presented again within this many seconds gets the same
    /// successor instead of revoking its family (two tabs refreshing at once).
    #[serde(rename = "oidc_refresh_grace_secs")]
    pub refresh_grace_secs: u64,
    /// Lifetime of each refresh token (a rotation issues a fresh one).
    #[serde(rename = "oidc_refresh_ttl_secs")]
    pub refresh_ttl_secs: u64,
    /// Absolute lifetime of a refresh-token family: however often it is rotated, no
    /// refresh token works longer than this after the sign-in it came from.
    #[serde(rename = "oidc_refresh_max_lifetime_secs")]
    pub refresh_max_lifetime_secs: u64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            refresh_grace_secs: 10,
            refresh_ttl_secs: 30 * 24 * 3600,
            refresh_max_lifetime_secs: 90 * 24 * 3600,
        }
    }
}

/// The longest refresh-family lifetime accepted: ten years.
const MAX_FAMILY_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

impl OidcConfig {
    pub(super) fn validate(&self) -> Result<(), super::ConfigError> {
        if !(1..=MAX_FAMILY_LIFETIME_SECS).contains(&self.refresh_max_lifetime_secs) {
            return Err(super::ConfigError::Invalid(format!(
                "oidc_refresh_max_lifetime_secs must be between 1 and {MAX_FAMILY_LIFETIME_SECS} \
                 (ten years); the default is 7776000 (90 days)"
            )));
        }
        Ok(())
    }
}

/// Provider settings fixed at start-up.
pub struct OidcSettings {
    /// The public URL: `iss` of every token, base of every endpoint.
    pub issuer: String,
    pub discovery: serde_json::Value,
    /// Derived from the master key; makes refresh-token successors deterministic.
    pub rotation_key: [u8; 32],
    /// A rotated refresh token presented again within this window gets the same successor.
    pub refresh_grace: time::Duration,
    pub refresh_ttl: time::Duration,
    /// A refresh family ends this long after the sign-in it came from.
    pub refresh_max_lifetime: time::Duration,
    pub id_token_ttl: time::Duration,
}

impl OidcSettings {
    pub fn new(
        issuer: &str,
        discovery: serde_json::Value,
        rotation_key: [u8; 32],
        config: &OidcConfig,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            discovery,
            rotation_key,
            refresh_grace: time::Duration::seconds(config.refresh_grace_secs as i64),
            refresh_ttl: time::Duration::seconds(config.refresh_ttl_secs as i64),
            refresh_max_lifetime: time::Duration::seconds(
                config
                    .refresh_max_lifetime_secs
                    .min(MAX_FAMILY_LIFETIME_SECS) as i64,
            ),
            id_token_ttl: time::Duration::hours(1),
        }
    }
}
