//! The developer platform's use cases: a project's keys and their rotation, its public
//! sign-in config, a backend's key health, and an org's subscription.

use portcullis_core::plan::{PlanKey, Subscription, SubscriptionStatus, grace_period};
use portcullis_core::token::{PublishableKey, SecretKey};
use portcullis_core::{
    AuditContext, KeyMode, OrgAccess, Project, ProjectAccess, ProjectId, Role, Timestamp,
    ValidationError,
};
use portcullis_store::platform::{NewSecretKey, Rotated, SecretKeyRecord, SubscriptionState};
use portcullis_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Managing keys needs the project's admin role (or the project's own secret key).
    #[error("managing the project's keys requires the admin role in the project")]
    NotAdmin,
    /// Changing a subscription is a platform admin's action.
    #[error("only platform admins change subscriptions")]
    NotOperator,
    #[error("no project has this publishable key")]
    UnknownPublishableKey,
    #[error("cannot draw random bytes: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A project's keys as its admins see them.
pub struct ProjectKeys {
    pub publishable_key: String,
    pub mode: KeyMode,
    pub secret_keys: Vec<SecretKeyRecord>,
}

/// A rotation's result: the new secret, shown once, and what happened to the old keys.
pub struct IssuedKey {
    pub secret: SecretKey,
    pub rotated: Rotated,
}

/// The publishable key of a project in `mode`.
pub fn publishable_key(project_id: ProjectId, mode: KeyMode) -> String {
    PublishableKey { mode, project_id }.encode()
}

pub struct PlatformService<'a> {
    pub store: &'a dyn Store,
}

impl PlatformService<'_> {
    pub async fn keys(&self, access: &ProjectAccess) -> Result<ProjectKeys, PlatformError> {
        if access.role() < Role::Admin {
            return Err(PlatformError::NotAdmin);
        }
        let project = self.store.project(access);
        let keys = project.keys();
        let mode = keys.project_mode().await?;
        let secret_keys = keys.secret_keys(portcullis_core::now()).await?;
        Ok(ProjectKeys {
            publishable_key: publishable_key(access.project_id(), mode),
            mode,
            secret_keys,
        })
    }

    /// Issues a new secret key; the project's other working keys keep working for
    /// `grace_seconds` (the first key of a project supersedes nothing).
    pub async fn rotate(
        &self,
        access: &ProjectAccess,
        grace_seconds: u64,
        audit: &AuditContext,
    ) -> Result<IssuedKey, PlatformError> {
        if access.role() < Role::Admin {
            return Err(PlatformError::NotAdmin);
        }
        let grace = grace_period(grace_seconds)?;
        let project = self.store.project(access);
        let keys = project.keys();
        let mode = keys.project_mode().await?;
        let secret = SecretKey::generate(mode).map_err(PlatformError::Random)?;
        let new = NewSecretKey {
            id: uuid::Uuid::now_v7(),
            hash: secret.hash(),
            prefix: secret.display_prefix(),
            created_at: portcullis_core::now(),
        };
        let rotated = keys.rotate_secret_key(&new, grace, audit).await?;
        Ok(IssuedKey { secret, rotated })
    }

    /// The public sign-in config behind a publishable key; a malformed, mistyped or unknown
    /// key is the same "unknown".
    pub async fn public_project(
        &self,
        publishable: &str,
    ) -> Result<(Project, KeyMode), PlatformError> {
        let key =
            PublishableKey::parse(publishable).map_err(|_| PlatformError::UnknownPublishableKey)?;
        match self.store.platform().public_project(key.project_id).await? {
            // A key of the wrong mode names no project: a test key never reaches live config.
            Some((project, mode)) if mode == key.mode => Ok((project, mode)),
            _ => Err(PlatformError::UnknownPublishableKey),
        }
    }

    /// The newest expiry among the project's other keys still in their grace period.
    pub async fn superseded_until(
        &self,
        access: &ProjectAccess,
        presented: uuid::Uuid,
    ) -> Result<Option<Timestamp>, PlatformError> {
        let keys = self
            .store
            .project(access)
            .keys()
            .secret_keys(portcullis_core::now())
            .await?;
        Ok(keys
            .iter()
            .filter(|k| k.id != presented)
            .filter_map(|k| k.expires_at)
            .max())
    }

    pub async fn subscription(
        &self,
        access: &OrgAccess,
    ) -> Result<SubscriptionState, PlatformError> {
        Ok(self.store.org(access).platform().subscription().await?)
    }

    /// Sets an org's plan and status; a platform admin's action. Starts a new period.
    pub async fn set_subscription(
        &self,
        access: &OrgAccess,
        plan: &str,
        status: &str,
        current_period_end: Option<Timestamp>,
        audit: &AuditContext,
    ) -> Result<SubscriptionState, PlatformError> {
        if !access.is_operator() {
            return Err(PlatformError::NotOperator);
        }
        let plan = PlanKey::parse(plan)?;
        let platform = self.store.platform();
        // An unknown plan would silently fall back to `free`: refuse it instead.
        if platform.plan(&plan).key != plan {
            return Err(ValidationError::new(
                "plan",
                format!("no plan {:?} is configured", plan.as_str()),
            )
            .into());
        }
        let now = portcullis_core::now();
        if current_period_end.is_some_and(|end| end <= now) {
            return Err(ValidationError::new(
                "current_period_end",
                "current_period_end must be in the future",
            )
            .into());
        }
        let subscription = Subscription {
            plan,
            status: SubscriptionStatus::parse(status)?,
            current_period_start: now,
            current_period_end,
        };
        Ok(self
            .store
            .org(access)
            .platform()
            .set_subscription(&subscription, audit)
            .await?)
    }
}
