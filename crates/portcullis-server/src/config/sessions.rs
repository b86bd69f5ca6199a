//! Web session settings: the flat `session_*` keys.

use portcullis_core::SessionPolicy;
use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// Sliding lifetime of a web session.
    #[serde(rename = "session_idle_ttl_secs")]
    pub idle_ttl_secs: u64,
    /// Hard cap on a session's lifetime.
    #[serde(rename = "session_absolute_ttl_secs")]
    pub absolute_ttl_secs: u64,
    /// How long a resolved session may be served from memory before the database is asked
    /// again. Revocations invalidate it immediately; this bounds staleness of everything else.
    #[serde(rename = "session_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_ttl_secs: 7 * 24 * 3600,
            absolute_ttl_secs: 30 * 24 * 3600,
            cache_ttl_ms: 10_000,
        }
    }
}

impl SessionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.idle_ttl_secs == 0 || self.absolute_ttl_secs < self.idle_ttl_secs {
            return Err(ConfigError::Invalid(
                "session_idle_ttl_secs must be > 0 and at most session_absolute_ttl_secs".into(),
            ));
        }
        Ok(())
    }

    /// The lifetimes in the form the session rules use.
    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_ttl: time::Duration::seconds(self.idle_ttl_secs as i64),
            absolute_ttl: time::Duration::seconds(self.absolute_ttl_secs as i64),
            ..SessionPolicy::default()
        }
    }
}
