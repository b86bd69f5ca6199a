//! The OpenID Connect provider's settings, fixed at start-up.

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
    pub id_token_ttl: time::Duration,
}

impl OidcSettings {
    pub fn new(
        issuer: &str,
        discovery: serde_json::Value,
        rotation_key: [u8; 32],
        refresh_grace_secs: u64,
        refresh_ttl_secs: u64,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            discovery,
            rotation_key,
            refresh_grace: time::Duration::seconds(refresh_grace_secs as i64),
            refresh_ttl: time::Duration::seconds(refresh_ttl_secs as i64),
            id_token_ttl: time::Duration::hours(1),
        }
    }
}
