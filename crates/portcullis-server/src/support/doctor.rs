//! `portcullis doctor`: the support runbooks' configuration checks, run against the
//! configuration a server would start with. Read-only: it never migrates, never creates a
//! database, key or file, so it is safe beside a running server and on a box that has
//! never served.

use std::sync::Arc;

use portcullis_store::Store;
use serde::Serialize;

use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One check's verdict, with what to do about it when it is not `ok`.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: String,
    pub level: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            level: Level::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            level: Level::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl From<super::doctor_platform::Finding> for Finding {
    fn from(f: super::doctor_platform::Finding) -> Self {
        use super::doctor_platform::Finding as F;
        match f {
            F::Ok(check, detail) => Finding::ok(check, detail),
            F::Warn(check, detail, fix) => Finding::warn(check, detail, fix),
            F::Fail(check, detail, fix) => Finding::fail(check, detail, fix),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// Any check failed: the server would not start, or nobody could sign in.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }

    pub fn warned(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Warn)
    }

    /// One line per check, and an indented `fix:` line under each that is not ok.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!("{}  {}: {}\n", f.level.label(), f.check, f.detail));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("      fix: {fix}\n"));
            }
        }
        let count = |l: Level| self.findings.iter().filter(|f| f.level == l).count();
        out.push_str(&format!(
            "{} checks: {} ok, {} warnings, {} failures\n",
            self.findings.len(),
            count(Level::Ok),
            count(Level::Warn),
            count(Level::Fail)
        ));
        out
    }
}

/// Runs every check. `config_warnings` are what loading the configuration reported
/// (unknown keys), shown first because a misspelt key explains many other findings.
pub async fn run(config: &Config, config_warnings: &[String]) -> Report {
    let mut report = Report::default();
    let r = &mut report.findings;
    if config_warnings.is_empty() {
        r.push(Finding::ok("configuration", "every key is known"));
    }
    for w in config_warnings {
        r.push(Finding::warn(
            "configuration",
            w.clone(),
            "fix the spelling or remove the key; it has no effect",
        ));
    }
    r.push(public_url(config));
    r.extend(mobile(config));
    let master = master_key(config, r);
    let store = database(config, r).await;
    if let Some(store) = &store {
        webhooks(store.as_ref(), config, r).await;
        let mut found = Vec::new();
        super::doctor_platform::keys_and_plans(config, &**store, &mut found).await;
        r.extend(found.into_iter().map(Finding::from));
    }
    if let (Some(store), Some(master)) = (store, master) {
        signing_keys(store, &master, r).await;
    }
    r.push(super::doctor_platform::redis(config).await.into());
    r.extend(sso(config).await);
    r.push(sign_in_methods(config, r));
    report
}

fn public_url(config: &Config) -> Finding {
    let Some(url) = &config.public_url else {
        return Finding::warn(
            "public_url",
            format!(
                "public URL unset: redirects, cookies, the issuer and the mobile connect QR use the listen address http://{}",
                config.listen
            ),
            "set PORTCULLIS_PUBLIC_URL to the URL users and apps reach this server at, e.g. https://auth.example.com",
        );
    };
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if url.starts_with("http://") && !is_loopback(&host) && !config.dev {
        return Finding::warn(
            "public_url",
            format!("{url} is plain http: session cookies are sent without Secure"),
            "serve Portcullis behind TLS and set PORTCULLIS_PUBLIC_URL to its https:// URL",
        );
    }
    Finding::ok("public_url", url.clone())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn mobile(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    // The master key only derives a token key here; the checks never use it.
    let settings = match crate::config::mobile::MobileSettings::new(
        &config.mobile,
        &config.public_url(),
        [0; 32],
    ) {
        Ok(s) => s,
        Err(e) => {
            out.push(Finding::fail(
                "mobile",
                e.to_string(),
                "fix the mobile_* settings",
            ));
            return out;
        }
    };
    if !settings.enabled {
        out.push(Finding::ok(
            "mobile",
            "mobile sign-in is switched off (PORTCULLIS_MOBILE_ENABLED=false): capabilities say enabled:false",
        ));
        return out;
    }
    let own = settings.public_host.clone();
    if settings.host_allowlist.is_empty() {
        out.push(Finding::ok(
            "mobile_host_allowlist",
            format!("empty: only the server's own host {own} is allowed"),
        ));
    } else if !settings.host_allowlist.contains(&own) {
        out.push(Finding::warn(
            "mobile_host_allowlist",
            format!(
                "allowlist set ({}) but does not contain the server's own host {own}: apps using the public URL get 403 host_not_allowlisted",
                settings.host_allowlist.join(", ")
            ),
            format!("add {own} to PORTCULLIS_MOBILE_HOST_ALLOWLIST (or fix PORTCULLIS_PUBLIC_URL)"),
        ));
    } else {
        out.push(Finding::ok(
            "mobile_host_allowlist",
            settings.host_allowlist.join(", "),
        ));
    }
    if settings.schemes.is_empty() && settings.universal_links.is_empty() {
        out.push(Finding::warn(
            "mobile_schemes",
            "no app scheme or universal link registered: the mobile handoff cannot return to any app",
            "set PORTCULLIS_MOBILE_SCHEMES to the app's URL scheme, e.g. alga",
        ));
    } else {
        let mut all = settings.schemes.clone();
        all.extend(settings.universal_links.iter().cloned());
        out.push(Finding::ok("mobile_schemes", all.join(", ")));
    }
    out
}

fn master_key(config: &Config, r: &mut Vec<Finding>) -> Option<crate::config::MasterKey> {
    let generated = config.data_dir.join("master.key");
    if config.master_key.is_none() && (config.is_embedded() || config.dev) && !generated.exists() {
        r.push(Finding::warn(
            "master_key",
            format!(
                "no master key yet: the first `portcullis serve` generates {}",
                generated.display()
            ),
            "start the server once, or set PORTCULLIS_MASTER_KEY; back the key up: without it signing keys and SSO secrets cannot be decrypted",
        ));
        return None;
    }
    match config.master_key() {
        Ok(k) => {
            r.push(Finding::ok(
                "master_key",
                if config.master_key.is_some() {
                    "configured".to_owned()
                } else {
                    format!("read from {}", generated.display())
                },
            ));
            Some(k)
        }
        Err(e) => {
            r.push(Finding::fail(
                "master_key",
                e.to_string(),
                "set PORTCULLIS_MASTER_KEY (or PORTCULLIS_MASTER_KEY_FILE) to base64 of 32 random bytes",
            ));
            None
        }
    }
}

async fn database(config: &Config, r: &mut Vec<Finding>) -> Option<Arc<dyn Store>> {
    let url = config.database_url();
    if config.database_url.is_none() {
        let file = config.data_dir.join("portcullis.db");
        if !file.exists() {
            r.push(Finding::warn(
                "database",
                format!("no database yet at {}", file.display()),
                "run `portcullis serve` (or `portcullis migrate`) once to create it",
            ));
            return None;
        }
    }
    let store = match portcullis_store::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            r.push(Finding::fail(
                "database",
                format!("cannot connect: {e}"),
                "check PORTCULLIS_DATABASE_URL and that the database is running and reachable",
            ));
            return None;
        }
    };
    if let Err(e) = store.ping().await {
        r.push(Finding::fail(
            "database",
            format!("does not answer: {e}"),
            "check that the database is running and reachable",
        ));
        return None;
    }
    r.push(Finding::ok(
        "database",
        format!("{} reachable", store.backend().as_str()),
    ));
    match store.migrations_current().await {
        Ok(true) => r.push(Finding::ok("migrations", "current")),
        Ok(false) => {
            r.push(Finding::fail(
                "migrations",
                "the database lacks migrations this binary needs",
                "run `portcullis migrate` (serve also migrates at start-up)",
            ));
            return None;
        }
        Err(e) => {
            r.push(Finding::fail(
                "migrations",
                format!("cannot read the migration state: {e}"),
                "run `portcullis migrate`",
            ));
            return None;
        }
    }
    Some(store)
}

/// The webhook runbook's checks: endpoints failing or disabled by the server, and a queue
/// whose oldest due delivery has waited longer than `webhook_backlog_warn_secs` (the worker
/// is down, switched off on every node, or cannot keep up).
async fn webhooks(store: &dyn Store, config: &Config, r: &mut Vec<Finding>) {
    let hooks = store.webhooks();
    match hooks.troubled_endpoints().await {
        Err(e) => r.push(Finding::warn(
            "webhook_endpoints",
            format!("cannot read the webhook endpoints: {e}"),
            "run `portcullis migrate`, then check the database",
        )),
        Ok(list) if list.is_empty() => {
            r.push(Finding::ok("webhook_endpoints", "none failing or disabled"));
        }
        Ok(list) => {
            for e in list {
                let (state, fix) = if !e.enabled {
                    (
                        format!(
                            "disabled ({})",
                            e.disabled_reason.as_deref().unwrap_or("by an admin")
                        ),
                        "fix the receiver, then PATCH …/webhooks/{id} {\"enabled\": true} and POST …/recover {since}",
                    )
                } else {
                    (
                        format!(
                            "failing since {}",
                            crate::http::dto::ts(e.failing_since.unwrap_or(e.updated_at))
                        ),
                        "check the delivery log (GET …/webhooks/{id}/deliveries): the receiver's status, timeouts or refused connections",
                    )
                };
                r.push(Finding::warn(
                    "webhook_endpoints",
                    format!(
                        "endpoint {} of project {} (org {}) at {}: {state}",
                        e.id, e.project_id, e.org_id, e.url
                    ),
                    fix,
                ));
            }
        }
    }
    let now = portcullis_core::now();
    match hooks.backlog(now).await {
        Err(e) => r.push(Finding::warn(
            "webhook_backlog",
            format!("cannot read the webhook queue: {e}"),
            "run `portcullis migrate`, then check the database",
        )),
        Ok(b) => {
            let waited = b.oldest_due.map_or(0, |t| (now - t).whole_seconds().max(0));
            let limit = i64::try_from(config.webhooks.backlog_warn_secs).unwrap_or(i64::MAX);
            let detail = format!(
                "{} deliveries pending, {} events not yet fanned out, oldest due for {waited} s",
                b.pending, b.unfanned
            );
            if waited > limit {
                r.push(Finding::warn(
                    "webhook_backlog",
                    detail,
                    "make sure a server with webhook_worker = true is running; watch portcullis_webhook_oldest_due_age_seconds",
                ));
            } else {
                r.push(Finding::ok("webhook_backlog", detail));
            }
        }
    }
}

async fn signing_keys(
    store: Arc<dyn Store>,
    master: &crate::config::MasterKey,
    r: &mut Vec<Finding>,
) {
    let ring = match crate::infra::keys::KeyRing::open(store, master).await {
        Ok(k) => k,
        Err(e) => {
            r.push(Finding::fail(
                "signing_keys",
                format!("cannot load the signing keys: {e}"),
                "the master key must be the one the keys were sealed with; restore it from backup",
            ));
            return;
        }
    };
    let keys = match ring.list().await {
        Ok(k) => k,
        Err(e) => {
            r.push(Finding::fail(
                "signing_keys",
                format!("cannot list the signing keys: {e}"),
                "check the database",
            ));
            return;
        }
    };
    let now = portcullis_core::now();
    let active: Vec<&str> = keys
        .iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.alg.as_str())
        .collect();
    if active.is_empty() {
        r.push(Finding::warn(
            "signing_keys",
            "no active signing key yet",
            "`portcullis serve` creates one at start-up",
        ));
    } else {
        r.push(Finding::ok(
            "signing_keys",
            format!("{} published, active: {}", keys.len(), active.join(", ")),
        ));
    }
    // A key made "in the future" means this clock is behind the one that made it: tokens
    // this node signs would look expired, or not yet valid, to everyone else.
    match keys.iter().map(|k| k.created_at).max() {
        Some(newest) if newest > now + time::Duration::seconds(60) => r.push(Finding::fail(
            "clock",
            format!(
                "this clock ({now}) is {} s behind the newest signing key's creation time ({newest})",
                (newest - now).whole_seconds()
            ),
            "synchronize the system clock (NTP) on every node",
        )),
        _ => r.push(Finding::ok("clock", format!("{now}"))),
    }
}

async fn sso(config: &Config) -> Vec<Finding> {
    crate::infra::upstream::probe_configured(&config.sso, config.dev)
        .await
        .into_iter()
        .map(|(id, verdict)| match verdict {
            Ok(detail) => Finding::ok(format!("sso.{id}"), detail),
            Err(why) => Finding::fail(
                format!("sso.{id}"),
                format!("not available, so not offered anywhere: {why}"),
                "check the issuer URL, client id and secret, and that this host can reach the provider over HTTPS",
            ),
        })
        .collect()
}

/// Nobody can sign in when password login is off and no SSO provider is available.
fn sign_in_methods(config: &Config, found: &[Finding]) -> Finding {
    let providers: Vec<&str> = found
        .iter()
        .filter(|f| f.check.starts_with("sso.") && f.level == Level::Ok)
        .map(|f| f.check.trim_start_matches("sso."))
        .collect();
    let password = config.password_login;
    if !password && providers.is_empty() {
        return Finding::fail(
            "sign_in_methods",
            "no sign-in method available: password login is off and no SSO provider is available (apps show \"SSO is not configured\")",
            "configure an SSO provider whose discovery loads (see the sso.* checks) or set PORTCULLIS_PASSWORD_LOGIN=true",
        );
    }
    let mut methods = Vec::new();
    if password {
        methods.push("password".to_owned());
    }
    methods.extend(providers.iter().map(|p| format!("sso:{p}")));
    Finding::ok("sign_in_methods", methods.join(", "))
}
