use std::sync::Arc;

use portcullis_core::SessionPolicy;
use portcullis_store::Store;

use crate::config::MasterKey;
use crate::infra::metrics::Metrics;
use crate::infra::passwords::PasswordHasher;
use crate::infra::session_cache::SessionCache;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub cache: Arc<SessionCache>,
    pub hasher: PasswordHasher,
    pub metrics: Metrics,
    pub sessions: SessionPolicy,
    /// The public URL without a trailing slash, e.g. `https://auth.example.com`.
    pub public_url: String,
    /// Its origin (`scheme://host[:port]`), the one origin always trusted for CSRF.
    pub public_origin: String,
    /// Public URL is https: set `__Host-` cookies with `Secure`.
    pub secure_cookies: bool,
    pub dev: bool,
    /// The configuration the server started with: the operators' doctor page runs its
    /// checks against it.
    pub config: Arc<crate::config::Config>,
    #[allow(dead_code)] // consumed by the signing-key and webhook-secret stores
    pub master_key: MasterKey,
    /// JWS signing keys: sign, verify, publish, rotate.
    pub keys: Arc<crate::infra::keys::KeyRing>,
    pub oidc: crate::config::oidc::OidcSettings,
    /// Upstream SSO providers (federation) and their discovery state.
    pub sso: crate::infra::upstream::Providers,
    /// Domain verification's TXT lookups (`dns_resolver`).
    pub dns: crate::infra::dns::TxtResolver,
    /// Free-mail domains nobody may claim, besides the built-in ones (`free_mail_domains`).
    pub free_mail_domains: Vec<String>,
    /// Mobile sign-in settings and the exchange's rate limits.
    pub mobile: crate::config::mobile::MobileSettings,
    pub mobile_limits: crate::infra::rate_limit::ExchangeLimits,
    /// Password sign-in and sign-up limits, shared by every route and page taking a password.
    pub sign_in_limits: crate::infra::attempts::SignInLimits,
    /// Email + password sign-in is offered (`password_login`).
    pub password_login: bool,
    /// Rate limits per route class (None: `rate_limit_enabled = false`).
    pub limiter: Option<Arc<crate::infra::limiter::Limiter>>,
    /// Secret keys' last use, written in batches by `workers::key_usage`.
    pub key_usage: Arc<crate::infra::key_usage::KeyUsage>,
    /// `max_form_body_bytes` / `max_json_body_bytes`.
    pub body_limits: crate::http::limits::BodyLimits,
    /// Outgoing webhooks: where endpoints may point, their sealed secrets, signed sending.
    pub webhooks: Arc<crate::infra::webhooks::Sender>,
    /// `webhook_backlog_warn_secs` and the rest of the webhook settings.
    pub webhook_config: crate::config::WebhookConfig,
    /// Wakes the webhook worker: a unit here or (PostgreSQL) on another node committed
    /// webhook work (`infra::changes`).
    pub webhooks_due: Arc<tokio::sync::Notify>,
    /// The hash of `metrics_token`: when set, `/metrics` needs it as a bearer token.
    pub metrics_token: Option<portcullis_core::TokenHash>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
