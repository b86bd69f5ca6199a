//! Limits that protect the server from the requests an attacker chooses: body sizes, password
//! guessing, and who may read `/metrics`. Flat keys like every other section.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::config::secret::Secret;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    /// Largest form body (`application/x-www-form-urlencoded`: the OAuth endpoints and the
    /// sign-in pages), in bytes; larger bodies get `413`.
    pub max_form_body_bytes: usize,
    /// Largest body of every other route (the JSON API), in bytes.
    pub max_json_body_bytes: usize,
    /// Password sign-ins from one client address that cost nothing; each attempt after it
    /// waits twice as long as the one before. Successful sign-ins are given back. 0 = off.
    pub sign_in_limit_per_ip: u32,
    /// The same for one account (email) from one address: wrong passwords before waits.
    pub sign_in_limit_per_account: u32,
    /// Sign-ups from one address before each further one must wait. 0 = off.
    pub signup_limit_per_ip: u32,
    /// The first wait, in seconds.
    pub sign_in_backoff_secs: u64,
    /// The longest wait, in seconds.
    pub sign_in_backoff_max_secs: u64,
    /// A count is forgotten this many seconds after its latest attempt.
    pub sign_in_limit_window_secs: u64,
    /// When set, `GET /metrics` needs `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<Secret>,
    pub metrics_token_file: Option<PathBuf>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            max_form_body_bytes: 64 * 1024,
            max_json_body_bytes: 256 * 1024,
            sign_in_limit_per_ip: 50,
            sign_in_limit_per_account: 5,
            signup_limit_per_ip: 20,
            sign_in_backoff_secs: 1,
            sign_in_backoff_max_secs: 900,
            sign_in_limit_window_secs: 3600,
            metrics_token: None,
            metrics_token_file: None,
        }
    }
}

/// Smallest body limit accepted: below it ordinary sign-ins and API calls would not fit.
const MIN_BODY_BYTES: usize = 1024;

impl SecurityConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("max_form_body_bytes", self.max_form_body_bytes),
            ("max_json_body_bytes", self.max_json_body_bytes),
        ] {
            if value < MIN_BODY_BYTES {
                return Err(ConfigError::Invalid(format!(
                    "{key} = {value} is too small; use at least {MIN_BODY_BYTES} (bytes)"
                )));
            }
        }
        if self.sign_in_backoff_secs == 0
            || self.sign_in_backoff_max_secs < self.sign_in_backoff_secs
            || self.sign_in_limit_window_secs < self.sign_in_backoff_max_secs
        {
            return Err(ConfigError::Invalid(
                "sign-in limits: need 0 < sign_in_backoff_secs <= sign_in_backoff_max_secs <= sign_in_limit_window_secs"
                    .into(),
            ));
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return Err(ConfigError::Invalid(
                "metrics_token must be at least 16 characters; e.g. `head -c24 /dev/urandom | base64`"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads `metrics_token_file`, so the token can come from a mounted secret.
    pub(super) fn resolve_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.metrics_token_file {
            self.metrics_token = Some(read_secret(path, "metrics_token_file")?);
        }
        Ok(())
    }
}

fn read_secret(path: &Path, what: &str) -> Result<Secret, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| Secret(s.trim().to_owned()))
        .map_err(|e| ConfigError::Io(format!("cannot read {what} from {}: {e}", path.display())))
}
