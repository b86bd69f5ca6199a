//! The master key: parsed from the configuration, or kept in the data directory.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::error::ConfigError;

/// The key that encrypts recoverable secrets at rest. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// The raw key, for the ciphers that encrypt recoverable secrets.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(super) fn parse(b64: &str) -> Result<Self, ConfigError> {
        let bytes = STANDARD.decode(b64.trim()).map_err(|_| {
            ConfigError::Invalid("master_key must be base64 (of 32 random bytes)".into())
        })?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(MasterKey)
            .map_err(|_| {
                ConfigError::Invalid(format!(
                    "master_key must decode to 32 bytes, not {}",
                    bytes.len()
                ))
            })
    }

    /// Reads the key kept at `path`, or generates one there (owner-only permissions).
    pub(super) fn read_or_generate(path: &Path) -> Result<Self, ConfigError> {
        if path.exists() {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Io(format!("cannot read {}: {e}", path.display())))?;
            return Self::parse(raw.trim());
        }
        let key = portcullis_core::token::random_bytes::<32>()
            .map_err(|e| ConfigError::Io(format!("no randomness for the master key: {e}")))?;
        write_private(path, STANDARD.encode(key).as_bytes())?;
        Ok(Self(key))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .map_err(|e| ConfigError::Io(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| ConfigError::Io(format!("cannot write {}: {e}", path.display())))
}
