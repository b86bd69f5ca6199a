//! The app's tokens: a one-time token minted for a signed-in browser and redeemed for a
//! session, an access token and a refresh family; the family's rotation; and signing out.
//! No HTTP here: the handlers (`http.rs`, `handoff.rs`, `connect.rs`) build a [`Mobile`]
//! from the server state and turn a [`MobileError`] into their answer. The one-time token
//! is in `ott.rs`, the refresh family in `refresh.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::oauth::{
    ClientType, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod,
};
use portcullis_core::{
    Action, AuditContext, DeviceInfo, Org, OrgId, Project, ProjectId, SessionPolicy, TokenHash,
    User,
};
use portcullis_store::{RefreshFamily, Store, StoreError};
use serde_json::json;

use super::provider::{MintError, Provider};
use crate::config::mobile::MobileSettings;
use crate::config::oidc::OidcSettings;
use crate::features::oidc::issue::Grant;
use crate::infra::rate_limit::{ExchangeLimits, Quota};
use crate::infra::session_cache::SessionCache;

mod ott;
mod refresh;

/// Why a mobile step was refused. Each is one error code of the API (mapped in `http.rs`;
/// the hand-off maps them to its redirect's `error` instead).
#[derive(Debug, thiserror::Error)]
pub enum MobileError {
    /// Mobile sign-in is switched off in the server's configuration.
    #[error("mobile sign-in is switched off on this server (PORTCULLIS_MOBILE_ENABLED=false)")]
    SwitchedOff,
    /// The org's plan lacks `mobile_access` ([`Mobile::plan_without_mobile`]).
    #[error("mobile sign-in is not included in the organization's plan ({plan})")]
    FeatureDisabled { plan: String },
    /// Too many exchanges for one app sign-in attempt (its `state`).
    #[error("too many sign-in attempts from this app; retry after the Retry-After seconds")]
    RateLimited { retry_after: u64 },
    /// Unknown, expired or spent, or presented with the wrong `state` or PKCE verifier:
    /// indistinguishable on purpose.
    #[error("the one-time token is invalid, expired or already used")]
    OttInvalid,
    #[error("your membership of this organization has ended")]
    MembershipEnded,
    #[error("you no longer have access to this project")]
    ProjectAccessEnded,
    /// A rotated refresh token came back: its family and session are now revoked.
    #[error(
        "this refresh token was already used; the sign-in it belonged to has been revoked — sign in again"
    )]
    RefreshTokenReused,
    /// The refresh token is unknown, expired or revoked, or its session ended.
    #[error("the refresh token is invalid, expired or revoked; sign in again")]
    Unauthenticated,
    /// The hand-off's user belongs to no org, so there is nothing to sign the app in to.
    #[error("your account belongs to no organization, so the app has nothing to sign in to")]
    NoOrganization,
    /// The connect link needs an app scheme.
    #[error(
        "no app scheme is registered: set PORTCULLIS_MOBILE_SCHEMES (e.g. alga) to offer a connect link"
    )]
    NoAppScheme,
    #[error(transparent)]
    Mint(#[from] MintError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

pub type MobileResult<T> = Result<T, MobileError>;

/// What mobile sign-in works with, borrowed from the server's state by the handler.
pub struct Mobile<'a> {
    pub store: &'a dyn Store,
    pub cache: &'a SessionCache,
    pub sessions: &'a SessionPolicy,
    pub metrics: &'a crate::infra::metrics::Metrics,
    pub settings: &'a MobileSettings,
    pub limits: &'a ExchangeLimits,
    /// Refresh-token lifetime and grace window: the provider's own.
    pub oidc: &'a OidcSettings,
    /// This server's origin, named by the connect link.
    pub public_origin: &'a str,
    pub provider: Provider<'a>,
}

/// A one-time token as the app presents it, its request already well-formed.
pub struct Exchange {
    /// The `ott_…` value from the deep link.
    pub ott: String,
    /// The `state` the app sent to the hand-off.
    pub state: String,
    /// The PKCE verifier of the hand-off's challenge: every hand-off has one.
    pub code_verifier: String,
    pub device: DeviceInfo,
}

/// What the app holds after a sign-in or a refresh.
pub struct Tokens {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// A redeemed one-time token: the app's tokens, and who and where it signed in as.
pub struct Exchanged {
    pub tokens: Tokens,
    pub user: User,
    pub org: Org,
    pub project: Project,
}

impl Mobile<'_> {
    /// Every mobile step but the capabilities answers only while mobile sign-in is on.
    pub fn ensure_enabled(&self) -> MobileResult<()> {
        if self.settings.enabled {
            Ok(())
        } else {
            Err(MobileError::SwitchedOff)
        }
    }

    /// The org's plan when it lacks `mobile_access` (None: the org may use mobile sign-in).
    /// The one place that asks the plan, for the hand-off, the exchange and refresh.
    pub async fn plan_without_mobile(&self, org_id: OrgId) -> MobileResult<Option<String>> {
        let platform = self.store.platform();
        let subscription = platform.org_subscription(org_id).await?;
        let plan = platform.plan(&subscription.plan);
        Ok((!plan.has(portcullis_core::plan::Feature::MobileAccess))
            .then(|| plan.key.as_str().to_owned()))
    }

    /// The deep link a mobile app scans to connect to this server: the first registered app
    /// scheme, the literal host `server`, and the public origin as the `url` parameter.
    pub fn connect_url(&self) -> MobileResult<String> {
        self.ensure_enabled()?;
        let Some(scheme) = self.settings.schemes.first() else {
            return Err(MobileError::NoAppScheme);
        };
        let origin: String =
            url::form_urlencoded::byte_serialize(self.public_origin.as_bytes()).collect();
        Ok(format!("{scheme}://server?url={origin}"))
    }

    /// Counts an exchange for this app sign-in attempt (its `state`): Ok while within the
    /// limit, Err once over it. Either way the quota tells the app where it stands. (The
    /// per-address limit is the `ott_exchange` route class, at the edge.)
    pub fn attempt_quota(&self, app_state: &str) -> Result<Quota, Quota> {
        self.limits.per_client.check(&format!(
            "state:{}",
            URL_SAFE_NO_PAD.encode(TokenHash::of(app_state).as_bytes())
        ))
    }

    /// The in-memory client mobile tokens are issued to, acting in `org_id`/`project_id`.
    fn client(&self, org_id: OrgId, project_id: ProjectId) -> OAuthClient {
        let now = portcullis_core::now();
        OAuthClient {
            id: self.settings.client_id.clone(),
            org_id,
            project_id,
            name: "Portcullis mobile".into(),
            client_type: ClientType::Public,
            secret_hash: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::RefreshToken],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            access_token_ttl_secs: self.settings.access_token_ttl_secs,
            signing_alg: SigningAlg::EdDSA,
            created_at: now,
            updated_at: now,
        }
    }

    /// A failed step, in the trail support reads (`mobile.ott.exchanged` /
    /// `mobile.refresh.failed` with outcome failure and the reason).
    async fn audit_failure(
        &self,
        meta: &AuditContext,
        org: Option<OrgId>,
        action: Action,
        target: String,
        reason: &str,
    ) -> MobileResult<()> {
        let event = meta
            .event(org, action, target)
            .failed()
            .with_details(json!({"reason": reason}));
        self.store.audit().record_audit(&event).await?;
        Ok(())
    }

    async fn access_token_for(
        &self,
        user: &User,
        family: &RefreshFamily,
    ) -> MobileResult<(String, i64)> {
        let client = self.client(family.org_id, family.project_id);
        let scope = portcullis_core::scope::ScopeSet::granted(&family.scope);
        let grant = Grant {
            client: &client,
            user: Some(user),
            scope: &scope,
            org_id: family.org_id,
            project_id: family.project_id,
            session_id: family.session_id,
            family_id: Some(family.id),
        };
        Ok(self.provider.access_token(&grant).await?)
    }
}
