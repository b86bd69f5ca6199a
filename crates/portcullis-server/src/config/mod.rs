//! Layered configuration: defaults → `portcullis.toml` → `PORTCULLIS_*` environment
//! (`__` for nesting, `*_FILE` for secrets) → command-line flags. Errors name the setting
//! and say what to do; unknown keys warn instead of silently doing nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

pub mod mobile;
pub mod oidc;
pub mod sso;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// Everything `portcullis serve` (and every other subcommand) can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`; defaults to SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub database_url_file: Option<PathBuf>,
    /// Where the embedded database and the generated master key live.
    pub data_dir: PathBuf,
    /// The URL users reach this server at; decides cookie names and the CSRF origin.
    pub public_url: Option<String>,
    /// Development mode: relaxed requirements for a laptop (generated master key, http).
    pub dev: bool,
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info` or `portcullis=debug,info`.
    pub log_level: String,
    /// Base64 of 32 bytes; encrypts secrets that must be recovered (signing keys, webhook
    /// secrets). Required in production; generated into `data_dir` when embedded or `--dev`.
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub session_idle_ttl_secs: u64,
    pub session_absolute_ttl_secs: u64,
    /// How long a resolved session may be served from memory before the database is asked
    /// again. Revocations invalidate it immediately; this bounds staleness of everything else.
    pub session_cache_ttl_ms: u64,
    /// Concurrent password hashes; each takes 19 MiB. Defaults to the number of cores.
    pub password_hash_concurrency: Option<usize>,
    /// Database connections per server process.
    pub database_max_connections: u32,
    /// A rotated refresh token presented again within this many seconds gets the same
    /// successor instead of revoking its family (two tabs refreshing at once).
    pub oidc_refresh_grace_secs: u64,
    /// Lifetime of each refresh token (a rotation issues a fresh one).
    pub oidc_refresh_ttl_secs: u64,
    /// Mobile sign-in (`/api/v1/mobile/auth/*`, `/auth/mobile/handoff`) is offered.
    pub mobile_enabled: bool,
    /// Hostnames the mobile routes answer on (comma-separated or a list); empty means the
    /// public URL's own host only.
    pub mobile_host_allowlist: StringList,
    /// App URL schemes the hand-off may redirect to, e.g. `alga` (for `alga://…`).
    pub mobile_schemes: StringList,
    /// `https://` URL prefixes (universal / app links) the hand-off may redirect to.
    pub mobile_universal_links: StringList,
    /// Lifetime of a mobile one-time token, in seconds.
    pub mobile_ott_ttl_sec: u64,
    /// Lifetime of mobile access tokens, in seconds.
    pub mobile_access_token_ttl_secs: u32,
    /// Email + password sign-in (`/v1/auth/login` and the sign-in pages).
    pub password_login: bool,
    /// One-time-token exchanges allowed per client IP per window.
    pub mobile_exchange_limit_per_ip: u32,
    /// Exchanges allowed per app sign-in attempt (its `state`) per window.
    pub mobile_exchange_limit_per_client: u32,
    pub mobile_exchange_limit_window_secs: u64,
    /// Server-wide upstream SSO providers (`sso.google`, `sso.microsoft`, `sso.oidc.<id>`).
    pub sso: crate::config::sso::SsoConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            database_url_file: None,
            data_dir: PathBuf::from("portcullis-data"),
            public_url: None,
            dev: false,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            master_key: None,
            master_key_file: None,
            session_idle_ttl_secs: 7 * 24 * 3600,
            session_absolute_ttl_secs: 30 * 24 * 3600,
            session_cache_ttl_ms: 10_000,
            password_hash_concurrency: None,
            database_max_connections: 16,
            oidc_refresh_grace_secs: 10,
            oidc_refresh_ttl_secs: 30 * 24 * 3600,
            mobile_enabled: true,
            mobile_host_allowlist: Default::default(),
            mobile_schemes: Default::default(),
            mobile_universal_links: Default::default(),
            mobile_ott_ttl_sec: 60,
            mobile_access_token_ttl_secs: 900,
            password_login: true,
            mobile_exchange_limit_per_ip: 30,
            mobile_exchange_limit_per_client: 5,
            mobile_exchange_limit_window_secs: 60,
            sso: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration file {path}: {source}")]
    File {
        path: PathBuf,
        source: Box<figment::Error>,
    },
    #[error("{0}")]
    Io(String),
}

/// Keys a file or the environment may set; anything else is reported as unknown.
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "database_url_file",
    "data_dir",
    "public_url",
    "dev",
    "log_format",
    "log_level",
    "master_key",
    "master_key_file",
    "session_idle_ttl_secs",
    "session_absolute_ttl_secs",
    "session_cache_ttl_ms",
    "password_hash_concurrency",
    "database_max_connections",
    "oidc_refresh_grace_secs",
    "oidc_refresh_ttl_secs",
    "mobile_enabled",
    "mobile_host_allowlist",
    "mobile_schemes",
    "mobile_universal_links",
    "mobile_ott_ttl_sec",
    "mobile_access_token_ttl_secs",
    "password_login",
    "mobile_exchange_limit_per_ip",
    "mobile_exchange_limit_per_client",
    "mobile_exchange_limit_window_secs",
    "sso",
];

/// Environment variables with the prefix that belong to tooling, not to the server.
const FOREIGN_ENV_PREFIXES: &[&str] = &["test_", "config"];

impl Config {
    /// Loads the layers. `file` is `--config`; without it `portcullis.toml` in the working
    /// directory is read when present. `overrides` are the command-line flags that were given.
    pub fn load(
        file: Option<&Path>,
        overrides: &impl Serialize,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let default_file = Path::new("portcullis.toml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("PORTCULLIS_").split("__").filter(|k| {
            !FOREIGN_ENV_PREFIXES
                .iter()
                .any(|p| k.as_str().starts_with(p))
        });
        figment = figment.merge(env).merge(Serialized::defaults(overrides));

        let mut warnings = Vec::new();
        if let Ok(all) = figment.extract::<serde_json::Map<String, serde_json::Value>>() {
            for key in all.keys() {
                if key == "sso" {
                    warnings.extend(crate::config::sso::unknown_keys(&all[key]));
                }
                if !KNOWN_KEYS.contains(&key.as_str()) {
                    warnings.push(format!(
                        "unknown configuration key `{key}` is ignored (known keys: {})",
                        KNOWN_KEYS.join(", ")
                    ));
                }
            }
        }
        let mut config: Config = figment.extract().map_err(|e| ConfigError::File {
            path: file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("(environment)")),
            source: Box::new(e),
        })?;
        config.resolve_files()?;
        config.validate()?;
        Ok((config, warnings))
    }

    /// Reads `*_file` secrets, so they can come from a mounted secret instead of the env.
    fn resolve_files(&mut self) -> Result<(), ConfigError> {
        let read = |path: &Path, what: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| {
                    ConfigError::Io(format!("cannot read {what} from {}: {e}", path.display()))
                })
        };
        if let Some(path) = &self.database_url_file {
            self.database_url = Some(read(path, "database_url_file")?);
        }
        if let Some(path) = &self.master_key_file {
            self.master_key = Some(read(path, "master_key_file")?);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|_| {
                ConfigError::Invalid(format!(
                    "public_url {url:?} is not a URL; set it like https://auth.example.com"
                ))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(ConfigError::Invalid(format!(
                    "public_url {url:?} must be an http(s) URL like https://auth.example.com"
                )));
            }
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database_url must start with sqlite:// or postgres://".into(),
            ));
        }
        if self.session_idle_ttl_secs == 0
            || self.session_absolute_ttl_secs < self.session_idle_ttl_secs
        {
            return Err(ConfigError::Invalid(
                "session_idle_ttl_secs must be > 0 and at most session_absolute_ttl_secs".into(),
            ));
        }
        crate::config::mobile::validate(self)?;
        Ok(())
    }

    /// The database URL in force: the configured one, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("portcullis.db").display()),
        }
    }

    /// Embedded mode: SQLite in the data dir, one process, nothing else to run.
    pub fn is_embedded(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The public URL in force; without one, what the listen address answers on.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Creates the data directory when the embedded database lives there.
    pub fn prepare_data_dir(&self) -> Result<(), ConfigError> {
        if self.is_embedded() || self.dev {
            std::fs::create_dir_all(&self.data_dir).map_err(|e| {
                ConfigError::Io(format!(
                    "cannot create data_dir {}: {e}",
                    self.data_dir.display()
                ))
            })?;
        }
        Ok(())
    }

    /// The 32-byte master key: configured, or (embedded/dev only) read from or generated
    /// into `data_dir/master.key` with owner-only permissions.
    pub fn master_key(&self) -> Result<MasterKey, ConfigError> {
        if let Some(k) = &self.master_key {
            return MasterKey::parse(k);
        }
        if !(self.is_embedded() || self.dev) {
            return Err(ConfigError::Invalid(
                "master_key is required in production: set PORTCULLIS_MASTER_KEY (or PORTCULLIS_MASTER_KEY_FILE) \
                 to base64 of 32 random bytes, e.g. from `head -c32 /dev/urandom | base64`"
                    .into(),
            ));
        }
        let path = self.data_dir.join("master.key");
        if path.exists() {
            let raw = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Io(format!("cannot read {}: {e}", path.display())))?;
            return MasterKey::parse(raw.trim());
        }
        let key = portcullis_core::token::random_bytes::<32>()
            .map_err(|e| ConfigError::Io(format!("no randomness for the master key: {e}")))?;
        write_private(&path, STANDARD.encode(key).as_bytes())?;
        Ok(MasterKey(key))
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

/// A list setting that accepts either a comma-separated string (as environment variables
/// give it: `PORTCULLIS_MOBILE_SCHEMES=alga,alga-dev`) or a TOML list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StringList(pub Vec<String>);

impl StringList {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        };
        Ok(StringList(
            items
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

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

    fn parse(b64: &str) -> Result<Self, ConfigError> {
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
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_rules() {
        let dir = std::env::temp_dir().join(format!("pc-cfg-{}", uuid::Uuid::now_v7()));
        let embedded = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        embedded.prepare_data_dir().unwrap();
        let k1 = embedded.master_key().unwrap();
        let k2 = embedded.master_key().unwrap();
        assert_eq!(k1.0, k2.0, "generated once, then read back");
        assert_eq!(format!("{k1:?}"), "MasterKey(***)");
        let prod = Config {
            database_url: Some("postgres://x@localhost/db".into()),
            ..Config::default()
        };
        let err = prod.master_key().unwrap_err().to_string();
        assert!(err.contains("PORTCULLIS_MASTER_KEY"), "{err}");
        let bad = Config {
            master_key: Some("c2hvcnQ=".into()),
            ..prod
        };
        assert!(
            bad.master_key()
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert!(c.database_url().starts_with("sqlite://portcullis-data/"));
        assert!(c.is_embedded());
    }
}
