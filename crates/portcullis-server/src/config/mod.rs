//! Layered configuration: defaults → `portcullis.toml` → `PORTCULLIS_*` environment
//! (`__` for nesting, `*_FILE` for secrets) → command-line flags. Errors name the setting
//! and say what to do; unknown keys warn instead of silently doing nothing.
//!
//! The keys are flat (`mobile_schemes`, `session_idle_ttl_secs`); in Rust they are grouped
//! into one section struct per file, flattened into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Data, Env, Format, Serialized, Toml};
use figment::{Figment, Provider};
use serde::{Deserialize, Serialize};

mod error;
pub mod federation;
mod list;
mod master_key;
pub mod mobile;
pub mod oidc;
pub mod platform;
mod secret;
pub mod security;
pub mod sessions;
pub mod sso;
pub mod webhooks;

pub use error::ConfigError;
pub use federation::FederationConfig;
pub use list::StringList;
pub use master_key::MasterKey;
pub use mobile::MobileConfig;
pub use oidc::OidcConfig;
pub use platform::PlatformConfig;
pub use secret::Secret;
pub use security::SecurityConfig;
pub use sessions::SessionConfig;
pub use webhooks::WebhookConfig;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// Everything `portcullis serve` (and every other subcommand) can be told.
///
/// `Serialize` exists for figment's layering and writes secrets in clear; `Debug` does not.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`; defaults to SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    pub database_url_file: Option<PathBuf>,
    /// Database connections per server process.
    pub database_max_connections: u32,
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
    pub master_key: Option<Secret>,
    pub master_key_file: Option<PathBuf>,
    /// Concurrent password hashes; each takes 19 MiB. Defaults to the number of cores.
    pub password_hash_concurrency: Option<usize>,
    /// Email + password sign-in (`/v1/auth/login` and the sign-in pages).
    pub password_login: bool,
    /// `session_*`
    #[serde(flatten)]
    pub sessions: SessionConfig,
    /// `oidc_*`
    #[serde(flatten)]
    pub oidc: OidcConfig,
    /// `mobile_*`
    #[serde(flatten)]
    pub mobile: MobileConfig,
    /// `dns_resolver`, `free_mail_domains`, `sso_allow_private_networks`
    #[serde(flatten)]
    pub federation: FederationConfig,
    /// Body limits, sign-in limits, the metrics token.
    #[serde(flatten)]
    pub security: SecurityConfig,
    /// Server-wide upstream SSO providers (`sso.google`, `sso.microsoft`, `sso.oidc.<id>`).
    pub sso: sso::SsoConfig,
    /// `webhook_*`
    #[serde(flatten)]
    pub webhooks: WebhookConfig,
    /// `plans`, `rate_limit_enabled`, `rate_limits`, `redis_url`, `redis_key_prefix`,
    /// `trusted_proxies`
    #[serde(flatten)]
    pub platform: PlatformConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            database_url_file: None,
            // What the pools used before the setting was read; 16 measured 14 % slower on the
            // uncached PostgreSQL path of the 2-core benchmark host (bench/README.md).
            database_max_connections: 10,
            data_dir: PathBuf::from("portcullis-data"),
            public_url: None,
            dev: false,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            master_key: None,
            master_key_file: None,
            password_hash_concurrency: None,
            password_login: true,
            sessions: SessionConfig::default(),
            oidc: OidcConfig::default(),
            mobile: MobileConfig::default(),
            federation: FederationConfig::default(),
            security: SecurityConfig::default(),
            sso: sso::SsoConfig::default(),
            webhooks: WebhookConfig::default(),
            platform: PlatformConfig::default(),
        }
    }
}

/// Environment variables with the prefix that belong to tooling, not to the server.
const FOREIGN_ENV_PREFIXES: &[&str] = &["test_", "config"];

impl Config {
    /// Loads the layers. `file` is `--config`; without it `portcullis.toml` in the working
    /// directory is read when present. `overrides` are the command-line flags that were given.
    pub fn load(
        file: Option<&Path>,
        overrides: &impl Serialize,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let default_file = Path::new("portcullis.toml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        if let Some(path) = file
            && !path.exists()
        {
            return Err(ConfigError::Invalid(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        // The name still has its upper case here: `UncasedStr::starts_with` ignores case.
        let env = Env::prefixed("PORTCULLIS_")
            .split("__")
            .filter(|k| !FOREIGN_ENV_PREFIXES.iter().any(|p| k.starts_with(p)));
        let figment = layers(file.map(Toml::file), env, overrides);
        let warnings = unknown_keys(&figment);
        let mut config = extract(&figment).map_err(|e| ConfigError::File {
            path: file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("(environment)")),
            source: e,
        })?;
        config.resolve_files()?;
        config.validate()?;
        let mut warnings = warnings;
        if let Some(limit) = config.mobile.exchange_limit_per_ip {
            warnings.push(format!(
                "mobile_exchange_limit_per_ip is deprecated: set [rate_limits.ott_exchange] instead \
                 (applied as its limit: {limit} per {} s)",
                config.mobile.exchange_limit_window_secs
            ));
        }
        warnings.extend(config.webhooks.deprecation());
        Ok((config, warnings))
    }

    /// The rate limits in force: the platform's classes, with the deprecated
    /// `mobile_exchange_limit_per_ip` (when set) as the `ott_exchange` class's limit over
    /// `mobile_exchange_limit_window_secs` — the two limited the same route by the same key.
    pub fn rate_limiting(&self) -> platform::PlatformConfig {
        let mut p = self.platform.clone();
        if let Some(limit) = self.mobile.exchange_limit_per_ip {
            p.rate_limits.ott_exchange = platform::QuotaConfig {
                limit,
                window_secs: self.mobile.exchange_limit_window_secs,
            };
        }
        p
    }

    /// Reads `*_file` secrets, so they can come from a mounted secret instead of the env.
    fn resolve_files(&mut self) -> Result<(), ConfigError> {
        let read = |path: &Path, what: &str| {
            std::fs::read_to_string(path)
                .map(|s| Secret(s.trim().to_owned()))
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
        self.security.resolve_files()
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
        if let Some(url) = self.database_url.as_ref().map(Secret::expose)
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database_url must start with sqlite:// or postgres://".into(),
            ));
        }
        self.sessions.validate()?;
        self.oidc.validate()?;
        self.mobile.validate()?;
        self.federation.validate()?;
        self.platform.validate()?;
        self.security.validate()?;
        self.webhooks.validate()
    }

    /// The database URL in force: the configured one, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().clone(),
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
            return MasterKey::parse(k.expose());
        }
        if !(self.is_embedded() || self.dev) {
            return Err(ConfigError::Invalid(
                "master_key is required in production: set PORTCULLIS_MASTER_KEY (or PORTCULLIS_MASTER_KEY_FILE) \
                 to base64 of 32 random bytes, e.g. from `head -c32 /dev/urandom | base64`"
                    .into(),
            ));
        }
        MasterKey::read_or_generate(&self.data_dir.join("master.key"))
    }
}

/// defaults → file → environment → flags; later layers win.
fn layers(file: Option<Data<Toml>>, env: impl Provider, overrides: &impl Serialize) -> Figment {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(file) = file {
        figment = figment.merge(file);
    }
    figment.merge(env).merge(Serialized::defaults(overrides))
}

/// Reads the layered settings into a `Config`.
fn extract(figment: &Figment) -> Result<Config, Box<figment::Error>> {
    figment.extract::<Config>().map_err(|e| {
        // serde buffers flattened sections, which drops the key and the layer from their
        // errors; reading the section on its own names both.
        figment
            .extract::<SessionConfig>()
            .err()
            .or_else(|| figment.extract::<OidcConfig>().err())
            .or_else(|| figment.extract::<MobileConfig>().err())
            .or_else(|| figment.extract::<FederationConfig>().err())
            .or_else(|| figment.extract::<SecurityConfig>().err())
            .or_else(|| figment.extract::<PlatformConfig>().err())
            .or_else(|| figment.extract::<WebhookConfig>().err())
            .map_or_else(|| Box::new(e), Box::new)
    })
}

/// Keys a file or the environment may set: the defaults' own serialized keys, so a field
/// (of `Config` or of a flattened section) is known the moment it exists.
fn known_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(keys)) => keys.into_iter().map(|(k, _)| k).collect(),
        _ => Vec::new(),
    }
}

/// Warnings for keys that nothing reads (a typo would otherwise silently do nothing).
fn unknown_keys(figment: &Figment) -> Vec<String> {
    let mut warnings = Vec::new();
    let Ok(all) = figment.extract::<serde_json::Map<String, serde_json::Value>>() else {
        return warnings;
    };
    let known = known_keys();
    for (key, value) in &all {
        if key == "sso" {
            warnings.extend(sso::unknown_keys(value));
        }
        if !known.contains(key) {
            warnings.push(format!(
                "unknown configuration key `{key}` is ignored (known keys: {})",
                known.join(", ")
            ));
        }
    }
    warnings
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
        assert_eq!(k1.expose(), k2.expose(), "generated once, then read back");
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

    #[test]
    fn debug_output_hides_the_master_key_and_the_database_password() {
        let key = "ZmFrZS1tYXN0ZXIta2V5LWZvci10aGUtZGVidWctdGVzdA==";
        let c = Config {
            master_key: Some(key.into()),
            database_url: Some("postgres://portcullis:s3cr3t-pw@db.internal/auth".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("master_key: Some(***)"), "{shown}");
        assert_eq!(
            c.database_url(),
            "postgres://portcullis:s3cr3t-pw@db.internal/auth"
        );
    }

    /// Every key of every section is known, and nothing else is.
    #[test]
    fn known_keys_come_from_the_fields() {
        let known = known_keys();
        for key in [
            "listen",
            "database_url_file",
            "database_max_connections",
            "master_key",
            "session_idle_ttl_secs",
            "session_cache_ttl_ms",
            "oidc_refresh_grace_secs",
            "mobile_schemes",
            "mobile_exchange_limit_window_secs",
            "password_login",
            "sso",
        ] {
            assert!(
                known.iter().any(|k| k == key),
                "{key} missing from {known:?}"
            );
        }
        assert!(
            !known
                .iter()
                .any(|k| ["sessions", "oidc", "mobile"].contains(&k.as_str()))
        );
        assert_eq!(Config::default().database_max_connections, 10);
    }

    /// docs/configuration.md lists every key an operator can set.
    #[test]
    fn every_key_is_documented() {
        let doc = include_str!("../../../../docs/configuration.md");
        for key in known_keys() {
            assert!(
                doc.contains(&format!("`{key}`")) || doc.contains(&format!("`{key}.")),
                "`{key}` is not in docs/configuration.md"
            );
        }
    }

    fn toml_only(toml: &str) -> Figment {
        layers(
            Some(Toml::string(toml)),
            Serialized::defaults(serde_json::Map::new()),
            &serde_json::Map::new(),
        )
    }

    #[test]
    fn flattened_keys_warn_like_the_others() {
        let figment =
            toml_only("mobile_schemes = [\"alga\"]\nsession_cache_ttl_ms = 5\nlisten_port = 5\n");
        let warnings = unknown_keys(&figment);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("unknown configuration key `listen_port` is ignored (known keys: ")
        );
        assert!(warnings[0].contains("mobile_schemes"));
        let c = extract(&figment).unwrap();
        assert_eq!(c.mobile.schemes.0, ["alga"]);
        assert_eq!(c.sessions.cache_ttl_ms, 5);
    }

    #[test]
    fn the_deprecated_webhook_poll_interval_stands_in_for_the_fallback_poll() {
        let c = extract(&toml_only("")).unwrap();
        assert_eq!(
            c.webhooks.fallback_poll(),
            std::time::Duration::from_secs(5)
        );
        assert_eq!(c.webhooks.deprecation(), None);
        let figment = toml_only("webhook_fallback_poll_ms = 700\n");
        assert!(unknown_keys(&figment).is_empty());
        let c = extract(&figment).unwrap();
        assert_eq!(
            c.webhooks.fallback_poll(),
            std::time::Duration::from_millis(700)
        );
        // The old key is still read (no unknown-key warning), applied, and warned about.
        let figment = toml_only("webhook_poll_interval_ms = 250\n");
        assert!(unknown_keys(&figment).is_empty());
        let c = extract(&figment).unwrap();
        assert_eq!(
            c.webhooks.fallback_poll(),
            std::time::Duration::from_millis(250)
        );
        let warning = c.webhooks.deprecation().unwrap();
        assert!(
            warning.starts_with("webhook_poll_interval_ms is deprecated")
                && warning.contains("webhook_fallback_poll_ms")
                && warning.contains("250 ms"),
            "{warning}"
        );
        let c = extract(&toml_only("webhook_fallback_poll_ms = 0\n")).unwrap();
        assert!(c.webhooks.validate().is_err());
    }

    #[test]
    fn rate_limit_headers_read_near_limit_by_default() {
        use crate::config::platform::RateLimitHeaders;
        let c = extract(&toml_only("")).unwrap();
        assert_eq!(c.platform.rate_limit_headers, RateLimitHeaders::NearLimit);
        let figment = toml_only("rate_limit_headers = \"always\"\n");
        assert!(unknown_keys(&figment).is_empty());
        let c = extract(&figment).unwrap();
        assert_eq!(c.platform.rate_limit_headers, RateLimitHeaders::Always);
    }

    #[test]
    fn errors_in_flattened_sections_name_the_key() {
        for (toml, key) in [
            ("mobile_ott_ttl_sec = \"soon\"", "mobile_ott_ttl_sec"),
            ("session_idle_ttl_secs = -1", "session_idle_ttl_secs"),
            ("oidc_refresh_ttl_secs = [1]", "oidc_refresh_ttl_secs"),
            ("listen = 5", "listen"),
            ("rate_limit_headers = \"sometimes\"", "rate_limit_headers"),
            ("rate_limit_enabled = 3", "rate_limit_enabled"),
            ("webhook_timeout_ms = \"slow\"", "webhook_timeout_ms"),
        ] {
            let err = extract(&toml_only(toml)).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }

    /// The real layers, environment included: defaults → TOML → `PORTCULLIS_*` → flags. The
    /// test runs itself again in a child process with the variables set, so this process's
    /// environment (shared with every other test thread) is never changed.
    #[test]
    fn layers_reach_flattened_sections() {
        const CHILD: &str = "PORTCULLIS_TEST_CONFIG_CHILD";
        let Some(toml) = std::env::var_os(CHILD) else {
            let dir = std::env::temp_dir().join(format!("pc-layers-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&dir).unwrap();
            let toml = dir.join("portcullis.toml");
            std::fs::write(
                &toml,
                "listen = \"127.0.0.1:9000\"\n\
                 mobile_schemes = [\"alga\"]\n\
                 mobile_ott_ttl_sec = 30\n\
                 session_idle_ttl_secs = 100\n\
                 oidc_refresh_grace_secs = 3\n\
                 oidc_refresh_ttl_secs = 60\n",
            )
            .unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "config::tests::layers_reach_flattened_sections"])
                .args(["--nocapture", "--test-threads=1"])
                .env_clear()
                .env(CHILD, &toml)
                .env("PORTCULLIS_LISTEN", "127.0.0.1:9001")
                .env("PORTCULLIS_MOBILE_SCHEMES", "alga, alga-dev")
                .env("PORTCULLIS_MOBILE_ENABLED", "false")
                .env("PORTCULLIS_SESSION_CACHE_TTL_MS", "250")
                .env("PORTCULLIS_OIDC_REFRESH_TTL_SECS", "7200")
                .env("PORTCULLIS_SSO__GOOGLE__CLIENT_ID", "g-id")
                .env("PORTCULLIS_MASTER_KEY", "a2V5")
                .output()
                .unwrap();
            std::fs::remove_dir_all(dir).unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        };
        let flags = serde_json::json!({"listen": "127.0.0.1:9002"});
        let (c, warnings) = Config::load(Some(Path::new(&toml)), &flags).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.listen.port(), 9002, "flags beat the environment");
        assert_eq!(c.mobile.schemes.0, ["alga", "alga-dev"], "env beats TOML");
        assert!(!c.mobile.enabled);
        assert_eq!(c.mobile.ott_ttl_sec, 30, "TOML beats defaults");
        assert_eq!(c.mobile.access_token_ttl_secs, 900, "defaults stay");
        assert_eq!(c.sessions.idle_ttl_secs, 100);
        assert_eq!(c.sessions.cache_ttl_ms, 250);
        assert_eq!(c.oidc.refresh_grace_secs, 3);
        assert_eq!(c.oidc.refresh_ttl_secs, 7200);
        let google = c.sso.google.as_ref().unwrap();
        assert_eq!(google.client_id.as_deref(), Some("g-id"));
        assert_eq!(c.master_key.as_ref().unwrap().expose(), "a2V5");
    }
}
