//! The developer platform's storage: projects' secret keys (digests only), their mode, and
//! orgs' subscriptions. Plans live in configuration; the server hands them to the store once
//! ([`PlatformStore::set_plans`]) so that every insert a plan limits (members, invitations,
//! projects) is checked inside its own transaction, under the org's lock.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use portcullis_core::plan::{Plan, PlanKey, PlanRefusal, Resource, Subscription, built_in_plans};
use portcullis_core::{
    Action, AuditContext, AuditEvent, KeyMode, OrgAccess, OrgId, Project, ProjectId, Timestamp,
    TokenHash,
};
use uuid::Uuid;

use crate::StoreResult;
use crate::scope::{OrgHandle, ProjectHandle};

/// A secret key as stored: never the key, only what may be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyRecord {
    pub id: Uuid,
    pub project_id: ProjectId,
    pub org_id: OrgId,
    /// `sk_live_abcd1234`: safe to show and log.
    pub prefix: String,
    pub created_at: Timestamp,
    /// The end of the grace period, once a newer key superseded this one.
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// A new secret key to store: its digest and display prefix.
#[derive(Clone, Debug)]
pub struct NewSecretKey {
    pub id: Uuid,
    pub hash: TokenHash,
    pub prefix: String,
    pub created_at: Timestamp,
}

/// What a rotation did: the new key, and the keys it superseded (with their new expiry).
#[derive(Clone, Debug)]
pub struct Rotated {
    pub key: SecretKeyRecord,
    pub superseded: Vec<SecretKeyRecord>,
}

/// A presented secret key's record with its project, for authentication.
#[derive(Clone, Debug)]
pub struct KeyHolder {
    pub key: SecretKeyRecord,
    pub project: Project,
    pub mode: KeyMode,
    /// The newest key of the project (the same as `key` unless `key` was superseded).
    pub newest: SecretKeyRecord,
}

/// Seats and projects an org uses now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Active memberships plus pending invitations.
    pub seats: u64,
    pub projects: u64,
}

/// An org's subscription, the plan it names (as configured now), and its usage.
#[derive(Clone, Debug)]
pub struct SubscriptionState {
    pub subscription: Subscription,
    pub plan: Plan,
    pub usage: Usage,
}

/// A superseded key that was used after it was superseded: a backend still runs with it.
#[derive(Clone, Debug)]
pub struct StaleKeyUse {
    pub key: SecretKeyRecord,
}

/// An org at or over one of its plan's limits.
#[derive(Clone, Debug)]
pub struct OrgAtLimit {
    pub org_id: OrgId,
    pub plan: PlanKey,
    pub resource: Resource,
    pub used: u64,
    pub limit: u32,
}

#[async_trait]
pub trait PlatformStore: Send + Sync {
    /// Replaces the plans the store checks limits against (from configuration, at start-up).
    fn set_plans(&self, plans: Vec<Plan>);

    /// The plan behind a key, as configured now; an unknown key falls back to `free`.
    fn plan(&self, key: &PlanKey) -> Plan;

    /// A project and its mode, for public (unauthenticated) reads by publishable key.
    async fn public_project(&self, id: ProjectId) -> StoreResult<Option<(Project, KeyMode)>>;

    /// The key with this digest and its project, whether or not it still works (the caller
    /// weighs expiry); None when there is none.
    async fn key_holder(&self, hash: &TokenHash) -> StoreResult<Option<KeyHolder>>;

    /// Records when keys were last used: one batched write for many requests.
    async fn touch_keys(&self, used: &[(Uuid, Timestamp)]) -> StoreResult<()>;

    /// The subscription of an org the caller has no access value for (sign-in paths that
    /// check a plan feature).
    async fn org_subscription(&self, org_id: OrgId) -> StoreResult<Subscription>;

    /// For `doctor`: superseded keys used since they were superseded.
    async fn stale_key_uses(&self) -> StoreResult<Vec<StaleKeyUse>>;

    /// For `doctor`: orgs at or over a limit of their plan.
    async fn orgs_at_limit(&self) -> StoreResult<Vec<OrgAtLimit>>;
}

/// One project's mode and secret keys, reached through [`crate::ProjectScope::keys`].
#[async_trait]
pub trait SecretKeyScope: Send + Sync {
    /// The project's mode; `NotFound` when it is not the org's.
    async fn project_mode(&self) -> StoreResult<KeyMode>;

    /// The project's secret keys still working at `now`, newest first.
    async fn secret_keys(&self, now: Timestamp) -> StoreResult<Vec<SecretKeyRecord>>;

    /// Stores `key` as the project's newest secret key and gives every other working key
    /// `grace` more life (never more than it had), with `key.rotated` in the audit trail and
    /// the outbox, in one transaction.
    async fn rotate_secret_key(
        &self,
        key: &NewSecretKey,
        grace: time::Duration,
        ctx: &AuditContext,
    ) -> StoreResult<Rotated>;
}

/// What the backends implement; reached only through [`SecretKeyScope`].
#[async_trait]
pub(crate) trait ByProjectAccess: Send + Sync {
    async fn project_mode(&self, access: &OrgAccess, id: ProjectId) -> StoreResult<KeyMode>;

    async fn secret_keys(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        now: Timestamp,
    ) -> StoreResult<Vec<SecretKeyRecord>>;

    async fn rotate_secret_key(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        key: &NewSecretKey,
        grace: time::Duration,
        ctx: &AuditContext,
    ) -> StoreResult<Rotated>;
}

#[async_trait]
impl<S: ByProjectAccess + ?Sized> SecretKeyScope for ProjectHandle<'_, S> {
    async fn project_mode(&self) -> StoreResult<KeyMode> {
        self.store
            .project_mode(self.access.org(), self.access.project_id())
            .await
    }

    async fn secret_keys(&self, now: Timestamp) -> StoreResult<Vec<SecretKeyRecord>> {
        self.store
            .secret_keys(self.access.org(), self.access.project_id(), now)
            .await
    }

    async fn rotate_secret_key(
        &self,
        key: &NewSecretKey,
        grace: time::Duration,
        ctx: &AuditContext,
    ) -> StoreResult<Rotated> {
        self.store
            .rotate_secret_key(self.access.org(), self.access.project_id(), key, grace, ctx)
            .await
    }
}

/// One org's plan and subscription, reached through [`crate::OrgScope::platform`].
#[async_trait]
pub trait PlatformScope: Send + Sync {
    /// Creates a project in `mode`, within the org's project limit (`Refused` otherwise).
    async fn create_project_in_mode(
        &self,
        project: &Project,
        mode: KeyMode,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    /// The org's subscription, plan and usage.
    async fn subscription(&self) -> StoreResult<SubscriptionState>;

    /// Sets the org's subscription (`subscription.changed`, audited and queued for webhooks).
    /// Only an operator's access may; others get `NotFound`.
    async fn set_subscription(
        &self,
        subscription: &Subscription,
        ctx: &AuditContext,
    ) -> StoreResult<SubscriptionState>;
}

/// What the backends implement; reached only through [`PlatformScope`].
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn create_project_in_mode(
        &self,
        access: &OrgAccess,
        project: &Project,
        mode: KeyMode,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn subscription(&self, access: &OrgAccess) -> StoreResult<SubscriptionState>;

    async fn set_subscription(
        &self,
        access: &OrgAccess,
        subscription: &Subscription,
        ctx: &AuditContext,
    ) -> StoreResult<SubscriptionState>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> PlatformScope for OrgHandle<'_, S> {
    async fn create_project_in_mode(
        &self,
        project: &Project,
        mode: KeyMode,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        self.store
            .create_project_in_mode(&self.access, project, mode, ctx)
            .await
    }

    async fn subscription(&self) -> StoreResult<SubscriptionState> {
        self.store.subscription(&self.access).await
    }

    async fn set_subscription(
        &self,
        subscription: &Subscription,
        ctx: &AuditContext,
    ) -> StoreResult<SubscriptionState> {
        // Only the platform (an operator's access) changes a subscription; to anyone else
        // the call names nothing, as on every other tenant-scoped handle.
        if !self.access.is_operator() {
            return Err(crate::StoreError::NotFound);
        }
        self.store
            .set_subscription(&self.access, subscription, ctx)
            .await
    }
}

/// The configured plans, held by each backend. Reads clone one plan; writes happen once.
pub(crate) struct PlanBook(RwLock<Arc<HashMap<String, Plan>>>);

impl Default for PlanBook {
    fn default() -> Self {
        let book = Self(RwLock::new(Arc::new(HashMap::new())));
        book.set(built_in_plans());
        book
    }
}

impl PlanBook {
    pub(crate) fn set(&self, plans: Vec<Plan>) {
        let map = plans
            .into_iter()
            .map(|p| (p.key.as_str().to_owned(), p))
            .collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
    }

    pub(crate) fn plan(&self, key: &str) -> Plan {
        let map = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        map.get(key)
            .or_else(|| map.get(PlanKey::FREE))
            .cloned()
            .or_else(|| built_in_plans().into_iter().next())
            .unwrap_or(Plan {
                key: PlanKey::free(),
                seat_limit: Some(3),
                project_limit: Some(3),
                features: Vec::new(),
            })
    }
}

/// The subscription of an org with no row: `free`, `active`, since the org was created.
pub(crate) fn default_subscription(org_created_at: Timestamp) -> Subscription {
    Subscription {
        plan: PlanKey::free(),
        status: portcullis_core::plan::SubscriptionStatus::Active,
        current_period_start: org_created_at,
        current_period_end: None,
    }
}

pub(crate) fn refused(r: PlanRefusal) -> crate::StoreError {
    crate::StoreError::Refused(r)
}

pub(crate) fn key_rotated(
    ctx: &AuditContext,
    org_id: OrgId,
    project_id: ProjectId,
    rotated: &Rotated,
) -> AuditEvent {
    // Prefixes only: neither the new secret nor its digest leaves the store.
    let superseded: Vec<_> = rotated
        .superseded
        .iter()
        .map(|k| {
            serde_json::json!({
                "prefix": k.prefix,
                "expires_at": k.expires_at.map(rfc3339),
            })
        })
        .collect();
    let details = serde_json::json!({
        "project_id": project_id.to_string(),
        "prefix": rotated.key.prefix,
        "superseded": superseded,
    });
    // Its webhook event (`portcullis_core::webhook::from_audit`) is queued by the unit of
    // work that writes it, with these details as its data.
    ctx.event(
        Some(org_id),
        Action::KeyRotated,
        format!("project:{project_id}"),
    )
    .with_details(details)
}

pub(crate) fn subscription_changed(
    ctx: &AuditContext,
    org_id: OrgId,
    before: &Subscription,
    after: &Subscription,
) -> AuditEvent {
    let view = |s: &Subscription| {
        serde_json::json!({
            "plan": s.plan.as_str(),
            "status": s.status.as_str(),
            "current_period_end": s.current_period_end.map(rfc3339),
        })
    };
    let details = serde_json::json!({
        "org_id": org_id.to_string(),
        "from": view(before),
        "to": view(after),
    });
    // Its webhook event (`portcullis_core::webhook::from_audit`) is queued by the unit of
    // work that writes it, with these details as its data.
    ctx.event(
        Some(org_id),
        Action::SubscriptionChanged,
        format!("org:{org_id}"),
    )
    .with_details(details)
}

fn rfc3339(t: Timestamp) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}
