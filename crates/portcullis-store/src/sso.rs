//! Upstream SSO (federation): the OIDC providers org admins register for their org, and the
//! upstream identities (issuer + subject) linked to local users.
//!
//! Providers are tenant-owned: management calls go through the org handle
//! ([`crate::OrgScope::sso_providers`], made from the caller's [`OrgAccess`]). The sign-in
//! routes and the public config know only a provider id or a project, so
//! [`SsoStore::provider_by_id`], [`SsoStore::providers_of_org_slug`] and
//! [`SsoStore::providers_of_org`] look across tenants (platform scope on PostgreSQL).
//! The client secret arrives already sealed by the server (it holds the master key); the
//! store never sees it in the clear. Identities belong to users, not to tenants.

use async_trait::async_trait;
use portcullis_core::{
    Action, AuditContext, AuditEvent, OrgAccess, OrgId, ProjectId, Timestamp, User, UserId,
};
use serde_json::json;
use uuid::Uuid;

use crate::scope::OrgHandle;
use crate::{SignupBootstrap, StoreResult};
use portcullis_core::Session;

/// Who an upstream identity is here, as [`portcullis_core::link::decide`] ruled it, and so
/// what a sign-in writes for the identity.
#[derive(Clone, Copy, Debug)]
pub enum SsoAccount<'a> {
    /// The identity is already linked to this user: nothing to write for it.
    Linked(&'a User),
    /// Link the identity to this existing user (`sso.identity.linked`).
    Link(&'a User),
    /// The verified owner of the address takes this account over
    /// ([`SsoStore::claim_account`]).
    Claim(&'a User),
    /// A new user, with a personal org, linked to the identity.
    Create(&'a SignupBootstrap),
}

/// Everything one upstream sign-in writes, for [`SsoStore::sign_in_via_sso`].
#[derive(Clone, Copy, Debug)]
pub struct SsoSignIn<'a> {
    pub account: SsoAccount<'a>,
    /// The upstream identity, with the signed-in user's id.
    pub identity: &'a UserIdentity,
    /// Signed in through an org's provider: the org and the provider, for just-in-time
    /// membership ([`SsoStore::join_org_via_sso`]).
    pub join: Option<(OrgId, Uuid)>,
    /// The session to open for the user.
    pub session: &'a Session,
    /// Events that go with the session (`login.succeeded`).
    pub also: &'a [AuditEvent],
}

/// An OIDC provider an org registered for its members' sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSsoProvider {
    pub id: Uuid,
    pub org_id: OrgId,
    pub name: String,
    /// The issuer URL exactly as the upstream's discovery document states it.
    pub issuer: String,
    pub client_id: String,
    /// The client secret sealed with the server's master key (associated data: the id).
    pub client_secret_sealed: Vec<u8>,
    /// Requested scopes; empty means the default `openid email profile`.
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields of `PATCH /v1/orgs/{org_id}/sso-providers/{id}`; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct SsoProviderPatch {
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_sealed: Option<Vec<u8>>,
    pub scopes: Option<Vec<String>>,
}

impl SsoProviderPatch {
    /// The names of the fields this patch sets, for the audit trail (never their values).
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if self.name.is_some() {
            f.push("name");
        }
        if self.issuer.is_some() {
            f.push("issuer");
        }
        if self.client_id.is_some() {
            f.push("client_id");
        }
        if self.client_secret_sealed.is_some() {
            f.push("client_secret");
        }
        if self.scopes.is_some() {
            f.push("scopes");
        }
        f
    }

    pub fn apply(&self, p: &mut OrgSsoProvider) {
        if let Some(v) = &self.name {
            p.name = v.clone();
        }
        if let Some(v) = &self.issuer {
            p.issuer = v.clone();
        }
        if let Some(v) = &self.client_id {
            p.client_id = v.clone();
        }
        if let Some(v) = &self.client_secret_sealed {
            p.client_secret_sealed = v.clone();
        }
        if let Some(v) = &self.scopes {
            p.scopes = v.clone();
        }
    }
}

/// An upstream account linked to a local user: `(provider, issuer, subject)` is unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserIdentity {
    pub user_id: UserId,
    /// The sign-in id of the provider it came through (`google`, a configured id,
    /// `org_<uuid>`): an identity signs in only through the provider that made it.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The email the upstream asserted when the identity was linked (informational).
    pub email: String,
    /// The org provider the identity came through, if any (server-wide providers: None).
    pub provider_id: Option<Uuid>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait SsoStore: Send + Sync {
    /// The provider with this id in any live org, for the sign-in routes.
    async fn provider_by_id(&self, id: Uuid) -> StoreResult<Option<OrgSsoProvider>>;

    /// The providers of the live org with this slug (empty for an unknown slug).
    async fn providers_of_org_slug(&self, slug: &str) -> StoreResult<Vec<OrgSsoProvider>>;

    /// The providers of the live org with this id (empty for an unknown or deleted org), for
    /// a project's public config: the org comes from the project, never from the caller.
    async fn providers_of_org(&self, org_id: OrgId) -> StoreResult<Vec<OrgSsoProvider>>;

    /// The live user an upstream identity of `provider` is linked to. Identities linked by
    /// a server-wide provider before identities were keyed by provider match every
    /// server-wide provider (never an org's).
    async fn user_by_identity(
        &self,
        provider: &str,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<User>>;

    /// Links an upstream identity to an existing user (`sso.identity.linked`). `Conflict`
    /// when the identity is already linked.
    async fn link_identity(&self, identity: &UserIdentity, ctx: &AuditContext) -> StoreResult<()>;

    /// The verified owner of an address takes over the account that has it (someone may
    /// have registered it with a password first): the identity is linked, the password
    /// removed, every session and refresh-token family of the account revoked, and
    /// `user.claimed` recorded — in one unit of work.
    async fn claim_account(
        &self,
        user: &User,
        identity: &UserIdentity,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    /// Signup bootstrap (user, personal org, default project, owner memberships,
    /// `user.signup`) and the identity, in one transaction.
    async fn signup_with_identity(
        &self,
        b: &SignupBootstrap,
        identity: &UserIdentity,
        ctx: &AuditContext,
    ) -> StoreResult<User>;

    /// Just-in-time membership through an org's provider: makes the user a `member` of the
    /// org (and of its default project) unless they have or had a membership there — a
    /// member an admin removed is not let back in by signing in. True when added.
    async fn join_org_via_sso(
        &self,
        org_id: OrgId,
        user: &User,
        provider_id: Uuid,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    /// A whole upstream sign-in in one unit of work: the identity's link, claim or new
    /// account, the org membership of an org's provider, the session with its
    /// `session.created` and `also` events, and the change notices — all or nothing.
    /// Returns the signed-in user (the new one, for [`SsoAccount::Create`]). `Conflict`
    /// when the identity was linked meanwhile; `Invalid` when the session or identity is not
    /// the signed-in user's.
    async fn sign_in_via_sso(&self, s: &SsoSignIn<'_>, ctx: &AuditContext) -> StoreResult<User>;

    /// Whether the active project `project_id` lists this origin (`scheme://host[:port]`)
    /// among its allowed origins: where a sign-in for that project may send the browser
    /// back to.
    async fn project_allows_origin(&self, project_id: ProjectId, origin: &str)
    -> StoreResult<bool>;
}

/// One org's SSO providers, reached through [`crate::OrgScope::sso_providers`].
#[async_trait]
pub trait SsoProviderScope: Send + Sync {
    /// Stores a new provider of the access's org with its `sso.provider.created` event.
    async fn create_provider(&self, p: &OrgSsoProvider, ctx: &AuditContext) -> StoreResult<()>;

    /// The org's providers, oldest first.
    async fn list_providers(&self) -> StoreResult<Vec<OrgSsoProvider>>;

    async fn get_provider(&self, id: Uuid) -> StoreResult<Option<OrgSsoProvider>>;

    /// Applies `patch` (`sso.provider.updated` naming the changed fields); `NotFound` when
    /// the org has no such provider.
    async fn update_provider(
        &self,
        id: Uuid,
        patch: &SsoProviderPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OrgSsoProvider>;

    /// Deletes the provider (`sso.provider.deleted`) and the identities that came through
    /// it: nobody signs in through them again. `NotFound` when there is none.
    async fn delete_provider(&self, id: Uuid, ctx: &AuditContext) -> StoreResult<()>;
}

/// What the backends implement; reached only through [`SsoProviderScope`].
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn create_provider(
        &self,
        access: &OrgAccess,
        p: &OrgSsoProvider,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn list_providers(&self, access: &OrgAccess) -> StoreResult<Vec<OrgSsoProvider>>;

    async fn get_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
    ) -> StoreResult<Option<OrgSsoProvider>>;

    async fn update_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
        patch: &SsoProviderPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OrgSsoProvider>;

    async fn delete_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> SsoProviderScope for OrgHandle<'_, S> {
    async fn create_provider(&self, p: &OrgSsoProvider, ctx: &AuditContext) -> StoreResult<()> {
        self.store.create_provider(&self.access, p, ctx).await
    }

    async fn list_providers(&self) -> StoreResult<Vec<OrgSsoProvider>> {
        self.store.list_providers(&self.access).await
    }

    async fn get_provider(&self, id: Uuid) -> StoreResult<Option<OrgSsoProvider>> {
        self.store.get_provider(&self.access, id).await
    }

    async fn update_provider(
        &self,
        id: Uuid,
        patch: &SsoProviderPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OrgSsoProvider> {
        self.store
            .update_provider(&self.access, id, patch, ctx)
            .await
    }

    async fn delete_provider(&self, id: Uuid, ctx: &AuditContext) -> StoreResult<()> {
        self.store.delete_provider(&self.access, id, ctx).await
    }
}

pub(crate) fn provider_created(ctx: &AuditContext, p: &OrgSsoProvider) -> AuditEvent {
    ctx.event(
        Some(p.org_id),
        Action::SsoProviderCreated,
        format!("sso_provider:{}", p.id),
    )
    .with_details(json!({"name": p.name, "issuer": p.issuer}))
}

pub(crate) fn provider_updated(
    ctx: &AuditContext,
    p: &OrgSsoProvider,
    fields: &[&str],
) -> AuditEvent {
    ctx.event(
        Some(p.org_id),
        Action::SsoProviderUpdated,
        format!("sso_provider:{}", p.id),
    )
    .with_details(json!({"fields": fields}))
}

pub(crate) fn provider_deleted(ctx: &AuditContext, p: &OrgSsoProvider) -> AuditEvent {
    ctx.event(
        Some(p.org_id),
        Action::SsoProviderDeleted,
        format!("sso_provider:{}", p.id),
    )
    .with_details(json!({"name": p.name, "issuer": p.issuer}))
}

pub(crate) fn identity_linked(
    ctx: &AuditContext,
    org: Option<OrgId>,
    i: &UserIdentity,
) -> AuditEvent {
    ctx.with_actor(i.user_id)
        .event(
            org,
            Action::SsoIdentityLinked,
            format!("user:{}", i.user_id),
        )
        .with_details(
            json!({"provider": i.provider, "issuer": i.issuer, "provider_id": i.provider_id}),
        )
}

pub(crate) fn user_claimed(
    ctx: &AuditContext,
    i: &UserIdentity,
    had_password: bool,
    sessions_revoked: usize,
) -> AuditEvent {
    ctx.with_actor(i.user_id)
        .event(None, Action::UserClaimed, format!("user:{}", i.user_id))
        .with_details(json!({
            "provider": i.provider,
            "issuer": i.issuer,
            "password_removed": had_password,
            "sessions_revoked": sessions_revoked,
        }))
}

/// The provider key an identity lookup also accepts: identities linked by a server-wide
/// provider before migration 0008 carry '' (org providers' never match them).
pub(crate) fn legacy_key(provider: &str) -> &str {
    if provider.starts_with("org_") {
        provider
    } else {
        ""
    }
}

pub(crate) fn joined_via_sso(
    ctx: &AuditContext,
    org: OrgId,
    user: &User,
    provider_id: Uuid,
) -> AuditEvent {
    ctx.with_actor(user.id)
        .event(Some(org), Action::MemberAdded, format!("user:{}", user.id))
        .with_details(json!({"role": "member", "via": "sso", "provider_id": provider_id}))
}

/// Just-in-time membership refused by the org's plan: who, through which provider, and why
/// (`subscription_inactive` with the status, or `subscription_limit_exceeded` with the
/// seats used and the limit). A failure outcome, so it is never announced as a webhook.
pub(crate) fn join_refused(
    ctx: &AuditContext,
    org: OrgId,
    user: &User,
    provider_id: Uuid,
    refusal: &portcullis_core::plan::PlanRefusal,
) -> AuditEvent {
    use portcullis_core::plan::PlanRefusal;
    let details = match refusal {
        PlanRefusal::Inactive(status) => json!({
            "reason": "subscription_inactive",
            "status": status.as_str(),
            "via": "sso",
            "provider_id": provider_id,
        }),
        PlanRefusal::LimitExceeded {
            resource,
            limit,
            used,
        } => json!({
            "reason": "subscription_limit_exceeded",
            "resource": resource.as_str(),
            "limit": limit,
            "used": used,
            "via": "sso",
            "provider_id": provider_id,
        }),
    };
    ctx.with_actor(user.id)
        .event(
            Some(org),
            Action::MemberJoinRefused,
            format!("user:{}", user.id),
        )
        .failed()
        .with_details(details)
}

pub(crate) fn scopes_json(scopes: &[String]) -> String {
    serde_json::Value::from(scopes.to_vec()).to_string()
}

pub(crate) fn scopes_from(raw: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(raw)
        .map_err(|e| crate::StoreError::Corrupt(format!("sso provider scopes: {e}")))
}
