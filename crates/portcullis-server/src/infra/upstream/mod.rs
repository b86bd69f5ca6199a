//! Upstream SSO (federation): sign-in through Google, Microsoft or any OpenID Connect
//! provider, configured server-wide (`sso` configuration section) or per org (through the
//! API). Protocol logic lives here; the sign-in itself is `features/sso`.
//!
//! A provider is *available* only when its credentials resolve and its discovery document
//! and JWKS loaded. Server-wide providers load in the background from start-up (never
//! delaying it) and are refreshed periodically; org providers load lazily, cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use portcullis_core::{OrgId, Timestamp};
use portcullis_store::{OrgSsoProvider, Store};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::config::MasterKey;
use crate::infra::crypto::SecretBox;

pub mod discovery;
pub mod id_token;
pub mod net;
pub mod userinfo;

use crate::config::sso::{ConfigSecret, SsoConfig};
use discovery::Metadata;
use id_token::IssuerRule;
use net::{Fetcher, Reach};

/// HKDF purpose of the key sealing org providers' client secrets.
pub const CLIENT_SECRET_PURPOSE: &str = "portcullis sso client secrets";
/// Prefix of the sign-in id of an org's provider: `org_<uuid>`.
pub const ORG_PREFIX: &str = "org_";
/// Scopes requested when a provider names none.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "email", "profile"];

/// Server-wide providers' metadata is reloaded this often.
const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// Org providers' metadata is reused this long.
const ORG_CACHE_TTL: Duration = Duration::from_secs(300);
/// An org provider whose discovery failed is not tried again for this long (the public
/// provider list must not let anyone make us hammer a dead upstream).
const ORG_FAILURE_TTL: Duration = Duration::from_secs(30);
/// Retry delays for a provider whose discovery failed: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Why talking to an upstream provider failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream could not be reached or answered something unusable.
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Internal(String),
}

/// A provider as offered to clients: its id (used in the sign-in routes) and display name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProviderSummary {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Google,
    Microsoft,
    Generic,
}

/// A provider whose credentials resolved.
pub struct Upstream {
    /// The id in the sign-in routes (`google`, `microsoft`, a configured id, `org_<uuid>`).
    pub id: String,
    pub name: String,
    /// Where discovery is loaded from.
    pub issuer: String,
    pub client_id: String,
    client_secret: Zeroizing<String>,
    pub scopes: Vec<String>,
    pub kind: Kind,
    /// For an org's provider: the org and the provider's row id.
    pub org: Option<(OrgId, Uuid)>,
}

impl Upstream {
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The `iss` an ID token of this upstream must carry.
    pub fn issuer_rule(&self, meta: &Metadata) -> IssuerRule {
        let iss = &meta.discovery.issuer;
        match self.kind {
            Kind::Google => IssuerRule::OneOf(vec![
                "https://accounts.google.com".into(),
                "accounts.google.com".into(),
            ]),
            Kind::Microsoft if iss.contains("{tenantid}") => {
                IssuerRule::TenantTemplate(iss.clone())
            }
            _ => IssuerRule::Exact(iss.clone()),
        }
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A provider ready for a sign-in: credentials and loaded metadata.
#[derive(Clone)]
pub struct Ready {
    pub upstream: Arc<Upstream>,
    pub meta: Arc<Metadata>,
}

/// One server-wide provider and what is known about it.
struct Slot {
    id: String,
    /// Err: why its credentials do not resolve (logged once at start).
    upstream: Result<Arc<Upstream>, String>,
    meta: RwLock<Option<Arc<Metadata>>>,
    /// Why the last discovery failed, while it has never loaded: what operators are shown.
    failure: RwLock<Option<String>>,
}

/// A configured server-wide provider and whether it is offered now, with why not.
#[derive(Clone, Debug)]
pub struct ProviderStatus {
    pub id: String,
    pub name: String,
    pub available: bool,
    pub why_not: Option<String>,
}

struct OrgEntry {
    updated_at: Timestamp,
    ready: Ready,
    loaded: Instant,
}

/// The server-wide and per-org upstream providers, with their discovery state.
#[derive(Clone, Default)]
pub struct Providers {
    inner: Arc<ProvidersInner>,
}

#[derive(Default)]
struct ProvidersInner {
    /// Built on first use: a server without SSO never pays for it (TLS roots, pools).
    /// Server-wide providers' requests, with the operator's reach.
    operator: std::sync::OnceLock<Option<Fetcher>>,
    /// Org providers' requests: public addresses only (unless `allow_private`).
    org: std::sync::OnceLock<Option<Fetcher>>,
    dev: bool,
    /// `sso_allow_private_networks`.
    allow_private: bool,
    slots: Vec<Slot>,
    store: Option<Arc<dyn Store>>,
    secrets: Option<SecretBox>,
    orgs: Mutex<HashMap<Uuid, OrgEntry>>,
    org_failures: Mutex<HashMap<Uuid, (Timestamp, Instant)>>,
}

impl ProvidersInner {
    fn fetcher(&self, org: bool) -> Option<&Fetcher> {
        let (slot, reach) = if org {
            (
                &self.org,
                Reach::Org {
                    allow_private: self.allow_private,
                },
            )
        } else {
            (&self.operator, Reach::Operator { dev: self.dev })
        };
        slot.get_or_init(|| match Fetcher::new(reach) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client for upstream SSO; no provider is available");
                None
            }
        })
        .as_ref()
    }
}

fn resolve_secret(
    what: &str,
    secret: &Option<ConfigSecret>,
    file: &Option<std::path::PathBuf>,
) -> Result<Zeroizing<String>, String> {
    if let Some(path) = file {
        return std::fs::read_to_string(path)
            .map(|s| Zeroizing::new(s.trim().to_owned()))
            .map_err(|e| {
                format!(
                    "cannot read {what}.client_secret_file {}: {e}",
                    path.display()
                )
            })
            .and_then(|s| {
                if s.is_empty() {
                    Err(format!(
                        "{what}.client_secret_file {} is empty",
                        path.display()
                    ))
                } else {
                    Ok(s)
                }
            });
    }
    match secret {
        Some(s) if !s.0.trim().is_empty() => Ok(Zeroizing::new(s.0.trim().to_owned())),
        _ => Err(format!(
            "{what}: set client_secret or client_secret_file (PORTCULLIS_{}__CLIENT_SECRET)",
            what.to_uppercase().replace('.', "__")
        )),
    }
}

fn client_id(what: &str, id: &Option<String>) -> Result<String, String> {
    match id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(format!(
            "{what}: client_id is not set (PORTCULLIS_{}__CLIENT_ID)",
            what.to_uppercase().replace('.', "__")
        )),
    }
}

/// Ids a generic provider may have: lowercase letters, digits, `-` and `_`, not a name a
/// built-in provider or an org provider uses.
fn generic_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !matches!(id, "google" | "microsoft" | "providers")
        && !id.starts_with(ORG_PREFIX)
}

pub fn normalize_scopes(scopes: Vec<String>) -> Vec<String> {
    let mut scopes: Vec<String> = scopes
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.is_empty() {
        return DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    scopes.dedup();
    scopes
}

fn server_slots(cfg: &SsoConfig) -> Vec<Slot> {
    let mut slots = Vec::new();
    let slot = |id: &str, upstream: Result<Upstream, String>| Slot {
        id: id.to_owned(),
        upstream: upstream.map(Arc::new),
        meta: RwLock::new(None),
        failure: RwLock::new(None),
    };
    if let Some(g) = &cfg.google {
        slots.push(slot(
            "google",
            (|| {
                Ok(Upstream {
                    id: "google".into(),
                    name: "Google".into(),
                    issuer: "https://accounts.google.com".into(),
                    client_id: client_id("sso.google", &g.client_id)?,
                    client_secret: resolve_secret(
                        "sso.google",
                        &g.client_secret,
                        &g.client_secret_file,
                    )?,
                    scopes: normalize_scopes(Vec::new()),
                    kind: Kind::Google,
                    org: None,
                })
            })(),
        ));
    }
    if let Some(m) = &cfg.microsoft {
        slots.push(slot(
            "microsoft",
            (|| {
                let tenant = m
                    .tenant
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .unwrap_or("common");
                if !tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                {
                    return Err(format!("sso.microsoft.tenant {tenant:?} is not a tenant id, domain, common, organizations or consumers"));
                }
                Ok(Upstream {
                    id: "microsoft".into(),
                    name: "Microsoft".into(),
                    issuer: format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                    client_id: client_id("sso.microsoft", &m.client_id)?,
                    client_secret: resolve_secret(
                        "sso.microsoft",
                        &m.client_secret,
                        &m.client_secret_file,
                    )?,
                    scopes: normalize_scopes(Vec::new()),
                    kind: Kind::Microsoft,
                    org: None,
                })
            })(),
        ));
    }
    for (id, o) in &cfg.oidc {
        let what = format!("sso.oidc.{id}");
        slots.push(slot(
            id,
            (|| {
                if !generic_id_ok(id) {
                    return Err(format!(
                        "{what}: the id must be lowercase letters, digits, - or _ (and not google, microsoft, providers or org_…)"
                    ));
                }
                let issuer = o
                    .issuer
                    .as_deref()
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| format!("{what}: issuer is not set"))?;
                Ok(Upstream {
                    id: id.clone(),
                    name: o.name.clone().unwrap_or_else(|| id.clone()),
                    issuer: issuer.to_owned(),
                    client_id: client_id(&what, &o.client_id)?,
                    client_secret: resolve_secret(&what, &o.client_secret, &o.client_secret_file)?,
                    scopes: normalize_scopes(
                        o.scopes.as_ref().map(|s| s.to_vec()).unwrap_or_default(),
                    ),
                    kind: Kind::Generic,
                    org: None,
                })
            })(),
        ));
    }
    slots
}

/// Seals an org provider's client secret; bound to the provider's id.
pub fn seal_client_secret(
    master: &MasterKey,
    id: Uuid,
    secret: &str,
) -> Result<Vec<u8>, crate::infra::crypto::SecretBoxError> {
    SecretBox::new(master, CLIENT_SECRET_PURPOSE)?.seal(secret.as_bytes(), id.as_bytes())
}

/// The sign-in id of an org's provider.
pub fn org_provider_id(id: Uuid) -> String {
    format!("{ORG_PREFIX}{id}")
}

impl Providers {
    /// The registry for a configuration. Nothing is fetched yet: see [`Self::spawn_loader`].
    /// `allow_private`: `sso_allow_private_networks` (org providers may reach private
    /// networks and plain http).
    pub fn new(
        cfg: &SsoConfig,
        master: &MasterKey,
        store: Arc<dyn Store>,
        dev: bool,
        allow_private: bool,
    ) -> Self {
        let slots = server_slots(cfg);
        for s in &slots {
            if let Err(why) = &s.upstream {
                tracing::warn!(provider = %s.id, reason = %why, "SSO provider unavailable: its credentials do not resolve");
            }
        }
        let secrets = match SecretBox::new(master, CLIENT_SECRET_PURPOSE) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot derive the SSO client-secret key");
                None
            }
        };
        Self {
            inner: Arc::new(ProvidersInner {
                operator: std::sync::OnceLock::new(),
                org: std::sync::OnceLock::new(),
                dev,
                allow_private,
                slots,
                store: Some(store),
                secrets,
                orgs: Mutex::new(HashMap::new()),
                org_failures: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The server-wide providers that are available right now (credentials resolve and the
    /// discovery document and JWKS loaded), in configuration order.
    pub fn available(&self) -> Vec<ProviderSummary> {
        self.inner
            .slots
            .iter()
            .filter_map(|s| {
                let up = s.upstream.as_ref().ok()?;
                let loaded = s.meta.read().ok().map(|m| m.is_some()).unwrap_or(false);
                loaded.then(|| ProviderSummary {
                    id: up.id.clone(),
                    name: up.name.clone(),
                })
            })
            .collect()
    }

    /// Every configured server-wide provider, available or not and why not (credentials that
    /// do not resolve, or a discovery that has not loaded), in configuration order: the
    /// same slots [`Self::available`] offers from.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.inner
            .slots
            .iter()
            .map(|s| match &s.upstream {
                Err(why) => ProviderStatus {
                    id: s.id.clone(),
                    name: s.id.clone(),
                    available: false,
                    why_not: Some(format!("its credentials do not resolve: {why}")),
                },
                Ok(up) => {
                    let loaded = s.meta.read().ok().map(|m| m.is_some()).unwrap_or(false);
                    let failure = s.failure.read().ok().and_then(|f| f.clone());
                    ProviderStatus {
                        id: up.id.clone(),
                        name: up.name.clone(),
                        available: loaded,
                        why_not: (!loaded).then(|| {
                            failure.map_or_else(
                                || "its discovery document has not loaded yet".to_owned(),
                                |f| format!("its discovery failed (retrying): {f}"),
                            )
                        }),
                    }
                }
            })
            .collect()
    }

    /// The HTTP client for requests on `upstream`'s behalf: the operator's for server-wide
    /// providers, the address-filtering one for org providers.
    pub fn fetcher(&self, upstream: &Upstream) -> Option<&Fetcher> {
        self.inner.fetcher(upstream.org.is_some())
    }

    /// Where org providers may live: what an org admin may register.
    pub fn org_reach(&self) -> Reach {
        Reach::Org {
            allow_private: self.inner.allow_private,
        }
    }

    /// Loads every server-wide provider's metadata in the background, retries failures
    /// with backoff and refreshes loaded ones every hour. Ends when the registry is dropped.
    pub fn spawn_loader(&self) {
        if self.inner.slots.iter().all(|s| s.upstream.is_err()) {
            return;
        }
        let weak: Weak<ProvidersInner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut retry = RETRY_FIRST;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let all_loaded = load_server_slots(&inner).await;
                drop(inner);
                let pause = if all_loaded {
                    retry = RETRY_FIRST;
                    Duration::from_secs(300)
                } else {
                    let p = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    p
                };
                tokio::time::sleep(pause).await;
            }
        });
    }

    /// A provider ready for sign-in by its route id; None when unknown or unavailable.
    pub async fn resolve(&self, id: &str) -> Option<Ready> {
        if let Some(rest) = id.strip_prefix(ORG_PREFIX) {
            let uuid = Uuid::parse_str(rest).ok()?;
            let store = self.inner.store.as_ref()?;
            let row = match store.sso().provider_by_id(uuid).await {
                Ok(row) => row?,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read an org SSO provider");
                    return None;
                }
            };
            return self.resolve_org(&row).await;
        }
        let slot = self.inner.slots.iter().find(|s| s.id == id)?;
        let upstream = slot.upstream.as_ref().ok()?.clone();
        let meta = slot.meta.read().ok()?.clone()?;
        Some(Ready { upstream, meta })
    }

    /// An org provider with its metadata, from the cache while fresh and unchanged.
    pub async fn resolve_org(&self, row: &OrgSsoProvider) -> Option<Ready> {
        if let Ok(cache) = self.inner.orgs.lock()
            && let Some(e) = cache.get(&row.id)
            && e.updated_at == row.updated_at
            && e.loaded.elapsed() < ORG_CACHE_TTL
        {
            return Some(e.ready.clone());
        }
        if let Ok(failures) = self.inner.org_failures.lock()
            && let Some((updated_at, at)) = failures.get(&row.id)
            && *updated_at == row.updated_at
            && at.elapsed() < ORG_FAILURE_TTL
        {
            return None;
        }
        let secret = self
            .inner
            .secrets
            .as_ref()?
            .open(&row.client_secret_sealed, row.id.as_bytes());
        let secret = match secret {
            Ok(s) => Zeroizing::new(String::from_utf8_lossy(&s).into_owned()),
            Err(e) => {
                tracing::error!(provider_id = %row.id, error = %e, "cannot open an org SSO provider's client secret");
                return None;
            }
        };
        let upstream = Arc::new(Upstream {
            id: org_provider_id(row.id),
            name: row.name.clone(),
            issuer: row.issuer.clone(),
            client_id: row.client_id.clone(),
            client_secret: secret,
            scopes: normalize_scopes(row.scopes.clone()),
            kind: Kind::Generic,
            org: Some((row.org_id, row.id)),
        });
        let http = self.inner.fetcher(true)?;
        let meta = match discovery::load(http, &upstream.issuer, false).await {
            Ok(m) => Arc::new(m),
            Err(e) => {
                tracing::warn!(provider = %upstream.id, error = %e, "org SSO provider unavailable: discovery failed");
                if let Ok(mut failures) = self.inner.org_failures.lock() {
                    failures.insert(row.id, (row.updated_at, Instant::now()));
                }
                return None;
            }
        };
        let ready = Ready { upstream, meta };
        if let Ok(mut cache) = self.inner.orgs.lock() {
            cache.insert(
                row.id,
                OrgEntry {
                    updated_at: row.updated_at,
                    ready: ready.clone(),
                    loaded: Instant::now(),
                },
            );
        }
        Some(ready)
    }

    /// The available providers of the org with this slug.
    pub async fn org_available(
        &self,
        slug: &str,
    ) -> Result<Vec<ProviderSummary>, portcullis_store::StoreError> {
        let Some(store) = self.inner.store.as_ref() else {
            return Ok(Vec::new());
        };
        let rows = store.sso().providers_of_org_slug(slug).await?;
        Ok(self.usable(rows).await)
    }

    /// The available providers of the org with this id (a project's org, for its public
    /// config).
    pub async fn org_available_by_id(
        &self,
        org_id: OrgId,
    ) -> Result<Vec<ProviderSummary>, portcullis_store::StoreError> {
        let Some(store) = self.inner.store.as_ref() else {
            return Ok(Vec::new());
        };
        let rows = store.sso().providers_of_org(org_id).await?;
        Ok(self.usable(rows).await)
    }

    /// Those of `rows` whose credentials open and whose discovery loads (cached).
    async fn usable(&self, rows: Vec<OrgSsoProvider>) -> Vec<ProviderSummary> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(ready) = self.resolve_org(&row).await {
                out.push(ProviderSummary {
                    id: ready.upstream.id.clone(),
                    name: ready.upstream.name.clone(),
                });
            }
        }
        out
    }

    /// Drops a cached org provider (after it was changed or deleted).
    pub fn forget_org(&self, id: Uuid) {
        if let Ok(mut cache) = self.inner.orgs.lock() {
            cache.remove(&id);
        }
        if let Ok(mut failures) = self.inner.org_failures.lock() {
            failures.remove(&id);
        }
    }
}

/// One pass over the server-wide providers; true when every resolvable one is loaded.
async fn load_server_slots(inner: &ProvidersInner) -> bool {
    let Some(http) = inner.fetcher(false) else {
        return true;
    };
    let mut all = true;
    for slot in &inner.slots {
        let Ok(up) = &slot.upstream else { continue };
        let current = slot.meta.read().ok().and_then(|m| m.clone());
        if current
            .as_ref()
            .is_some_and(|m| m.loaded_at.elapsed() < REFRESH_EVERY)
        {
            continue;
        }
        match discovery::load(http, &up.issuer, up.kind == Kind::Microsoft).await {
            Ok(meta) => {
                if current.is_none() {
                    tracing::info!(provider = %up.id, "SSO provider available");
                }
                if let Ok(mut m) = slot.meta.write() {
                    *m = Some(Arc::new(meta));
                }
                if let Ok(mut f) = slot.failure.write() {
                    *f = None;
                }
            }
            Err(e) => {
                // A loaded provider stays offered through a failed refresh (a blip at the
                // upstream); one never loaded stays unavailable until a retry succeeds.
                tracing::warn!(provider = %up.id, error = %e, "SSO provider discovery failed; retrying");
                if let Ok(mut f) = slot.failure.write() {
                    *f = Some(e.to_string());
                }
                if current.is_none() {
                    all = false;
                }
            }
        }
    }
    all
}

/// `portcullis doctor`: each configured server-wide provider, with its display name and
/// issuer when its credentials resolve and its discovery document and JWKS load, or why not.
pub async fn probe_configured(cfg: &SsoConfig, dev: bool) -> Vec<(String, Result<String, String>)> {
    let slots = server_slots(cfg);
    if slots.is_empty() {
        return Vec::new();
    }
    let http = Fetcher::new(Reach::Operator { dev });
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        let verdict = match (&slot.upstream, &http) {
            (Err(why), _) => Err(format!("credentials do not resolve: {why}")),
            (Ok(_), Err(e)) => Err(format!("no HTTP client: {e}")),
            (Ok(up), Ok(http)) => {
                match discovery::load(http, &up.issuer, up.kind == Kind::Microsoft).await {
                    Ok(_) => Ok(format!(
                        "{} ({}) discovery and JWKS load",
                        up.name, up.issuer
                    )),
                    Err(e) => Err(format!("{} ({}): {e}", up.name, up.issuer)),
                }
            }
        };
        out.push((slot.id, verdict));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_default_and_always_openid() {
        assert_eq!(normalize_scopes(vec![]), ["openid", "email", "profile"]);
        assert_eq!(
            normalize_scopes(vec!["email".into(), " ".into()]),
            ["openid", "email"]
        );
    }

    #[test]
    fn generic_ids() {
        assert!(generic_id_ok("authentik"));
        assert!(generic_id_ok("key-cloak_2"));
        for bad in ["", "Google", "google", "org_x", "a b", "providers"] {
            assert!(!generic_id_ok(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_must_resolve() {
        let cfg: SsoConfig = serde_json::from_value(serde_json::json!({
            "google": {"client_id": "g"},
            "microsoft": {"client_id": "m", "client_secret": "s", "tenant": "organizations"},
            "oidc": {
                "ok": {"issuer": "https://idp.example.com", "client_id": "c", "client_secret": "s", "scopes": "email profile"},
                "nofile": {"issuer": "https://idp.example.com", "client_id": "c", "client_secret_file": "/nonexistent/secret"},
                "BAD": {"issuer": "https://idp.example.com", "client_id": "c", "client_secret": "s"},
            }
        }))
        .unwrap();
        let slots = server_slots(&cfg);
        let by = |id: &str| slots.iter().find(|s| s.id == id).unwrap();
        assert!(
            by("google")
                .upstream
                .as_ref()
                .unwrap_err()
                .contains("client_secret")
        );
        let ms = by("microsoft").upstream.as_ref().unwrap();
        assert_eq!(
            ms.issuer,
            "https://login.microsoftonline.com/organizations/v2.0"
        );
        let ok = by("ok").upstream.as_ref().unwrap();
        assert_eq!(ok.scopes, ["openid", "email", "profile"]);
        assert_eq!(ok.name, "ok");
        assert!(
            by("nofile")
                .upstream
                .as_ref()
                .unwrap_err()
                .contains("cannot read")
        );
        assert!(by("BAD").upstream.is_err());
        // The secret never shows in debug output.
        assert!(!format!("{ok:?}").contains("\"s\""));
    }

    #[test]
    fn unknown_nested_keys_warn() {
        let w = crate::config::sso::unknown_keys(&serde_json::json!({
            "google": {"client_id": "x", "clientsecret": "y"},
            "oidc": {"a": {"issuer": "i", "scope": "x"}},
            "github": {},
        }));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().any(|m| m.contains("sso.google.clientsecret")));
        assert!(w.iter().any(|m| m.contains("sso.oidc.a.scope")));
        assert!(w.iter().any(|m| m.contains("sso.github")));
    }
}
