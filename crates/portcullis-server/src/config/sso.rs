//! The `sso` section of the configuration: server-wide upstream providers.
//!
//! ```toml
//! [sso.google]
//! client_id = "…apps.googleusercontent.com"
//! client_secret_file = "/run/secrets/google"
//!
//! [sso.microsoft]
//! client_id = "…"
//! client_secret = "…"
//! tenant = "common"            # or organizations, consumers, a tenant id or domain
//!
//! [sso.oidc.authentik]         # env: PORTCULLIS_SSO__OIDC__AUTHENTIK__ISSUER=…
//! issuer = "https://auth.example.com/application/o/portcullis/"
//! client_id = "…"
//! client_secret = "…"
//! name = "Authentik"
//! scopes = ["openid", "email", "profile"]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The client secrets' type under the name callers already use.
pub use crate::config::secret::Secret as ConfigSecret;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SsoConfig {
    pub google: Option<GoogleSso>,
    pub microsoft: Option<MicrosoftSso>,
    /// Generic OpenID Connect providers by id (the id appears in the sign-in routes).
    pub oidc: BTreeMap<String, GenericOidcSso>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GoogleSso {
    pub client_id: Option<String>,
    pub client_secret: Option<ConfigSecret>,
    pub client_secret_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MicrosoftSso {
    pub client_id: Option<String>,
    pub client_secret: Option<ConfigSecret>,
    pub client_secret_file: Option<PathBuf>,
    /// `common` (default), `organizations`, `consumers`, or one tenant's id or domain.
    pub tenant: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericOidcSso {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<ConfigSecret>,
    pub client_secret_file: Option<PathBuf>,
    /// Shown on sign-in buttons; defaults to the id.
    pub name: Option<String>,
    /// Defaults to `openid email profile`. A list, or one space-separated string.
    pub scopes: Option<Scopes>,
}

/// Scopes as a TOML list or as one space-separated string (the environment's form).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scopes {
    List(Vec<String>),
    Spaced(String),
}

impl Scopes {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Scopes::List(v) => v.clone(),
            Scopes::Spaced(s) => s
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Warnings for keys under `sso` that nothing reads (a typo would otherwise silently leave
/// a provider unconfigured).
pub fn unknown_keys(sso: &serde_json::Value) -> Vec<String> {
    const PROVIDER: &[&str] = &["client_id", "client_secret", "client_secret_file"];
    let mut warnings = Vec::new();
    let Some(sections) = sso.as_object() else {
        return warnings;
    };
    let mut unknown_sections = Vec::new();
    let mut check = |path: String, value: &serde_json::Value, extra: &[&str]| {
        if let Some(map) = value.as_object() {
            for key in map.keys() {
                if !PROVIDER.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
                    warnings.push(format!(
                        "unknown configuration key `{path}.{key}` is ignored (known: {})",
                        PROVIDER
                            .iter()
                            .chain(extra)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    };
    for (section, value) in sections {
        match section.as_str() {
            "google" => check("sso.google".into(), value, &[]),
            "microsoft" => check("sso.microsoft".into(), value, &["tenant"]),
            "oidc" => {
                if let Some(map) = value.as_object() {
                    for (id, p) in map {
                        check(
                            format!("sso.oidc.{id}"),
                            p,
                            &["issuer", "name", "scopes"],
                        );
                    }
                }
            }
            other => unknown_sections.push(format!(
                "unknown configuration key `sso.{other}` is ignored (known: google, microsoft, oidc)"
            )),
        }
    }
    warnings.extend(unknown_sections);
    warnings
}

#[cfg(test)]
mod tests {
    #[test]
    fn loads_from_toml_and_warns_on_typos() {
        let path = std::env::temp_dir().join(format!("pc-sso-{}.toml", uuid::Uuid::now_v7()));
        std::fs::write(
            &path,
            r#"
[sso.google]
client_id = "g-id"
client_secret = "g-secret"

[sso.microsoft]
client_id = "m-id"
client_secret_file = "/run/secrets/ms"
tenant = "organizations"

[sso.oidc.authentik]
issuer = "https://sso.example.com/application/o/portcullis/"
client_id = "a-id"
client_secret = "a-secret"
name = "Company SSO"
scopes = "openid email"

[sso.oidc.keycloak]
issuer = "https://kc.example.com/realms/main"
client_id = "k-id"
client_secret = "k-secret"
scopes = ["openid", "email", "profile", "groups"]
redirect = "nope"
"#,
        )
        .unwrap();
        let (config, warnings) = crate::Config::load(Some(&path), &serde_json::Map::new()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let sso = &config.sso;
        let g = sso.google.as_ref().unwrap();
        assert_eq!(g.client_id.as_deref(), Some("g-id"));
        assert_eq!(format!("{:?}", g.client_secret), "Some(***)");
        let m = sso.microsoft.as_ref().unwrap();
        assert_eq!(m.tenant.as_deref(), Some("organizations"));
        let a = &sso.oidc["authentik"];
        assert_eq!(a.name.as_deref(), Some("Company SSO"));
        assert_eq!(a.scopes.as_ref().unwrap().to_vec(), ["openid", "email"]);
        let k = &sso.oidc["keycloak"];
        assert_eq!(k.scopes.as_ref().unwrap().to_vec().len(), 4);
        // (The environment may add its own PORTCULLIS_* warnings; only ours count here.)
        let ours: Vec<_> = warnings.iter().filter(|w| w.contains("`sso")).collect();
        assert_eq!(ours.len(), 1, "{warnings:?}");
        assert!(ours[0].contains("sso.oidc.keycloak.redirect"));
        assert!(!format!("{config:?}").contains("a-secret"));
    }
}
