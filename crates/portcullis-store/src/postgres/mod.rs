//! The scale-out backend: one PostgreSQL shared by every node. Tenant-owned tables are
//! guarded twice: each query filters by the caller's org, and every unit of work that touches
//! them first sets a row-level security context (its `Scope`) that the policies of migration
//! 0001 check again. Changes other nodes may have cached are announced with `pg_notify`.
//!
//! The files of this module mirror `sqlite/` one for one (`accounts`, `orgs`, `members`,
//! `projects`, `sessions`, `audit`, `clients`, `grants`, `keys`, `mobile`, `sso`, `domains`,
//! `outbox`, with
//! `rows` for decoding, `statements` for what several operations share and `unit` for the
//! unit of work), so a reviewer
//! can diff the two backends file by file. This file opens the store and delegates.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, Email, Membership, Org, OrgAccess, OrgId, Project, ProjectId,
    ProjectStatus, Session, SessionId, Timestamp, TokenHash, User, UserId,
};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::scope::OrgHandle;
use crate::unit::LocalSink;
use crate::{
    Backend, ChangeSink, ConnectOptions, MembershipView, ProjectAccessRecord, SessionWithUser,
    SignupBootstrap, Store, StoreError, StoreResult, UserCredentials,
};

mod accounts;
mod audit;
mod clients;
mod domains;
mod grants;
mod invitations;
mod keys;
mod listener;
mod members;
mod mobile;
mod orgs;
mod outbox;
mod platform;
mod projects;
mod role;
mod rows;
mod sessions;
mod sso;
mod statements;
mod unit;
mod webhooks;

use role::RoleCheck;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Opens the store without migrating. Lib's [`crate::connect`] dispatches here.
pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(PgStore::connect(url, options).await?))
}

pub struct PgStore {
    pool: PgPool,
    /// Time transactions spent waiting for a pooled connection (and their BEGIN).
    acquire_wait: crate::pool::AcquireWait,
    /// The connecting role itself, without `SET ROLE`: migrations and the change feed.
    owner: PgConnectOptions,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    /// This process's cache, told of each change a unit commits.
    local: LocalSink,
    /// The configured plans, for the limits checked inside inserting units.
    plans: crate::platform::PlanBook,
}

impl PgStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        let mut owner = PgConnectOptions::from_str(url)?;
        if owner.get_application_name().is_none() {
            owner = owner.application_name("portcullis");
        }
        let must_switch = RoleCheck::connect(&owner).await?.must_switch()?;
        let mut pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10));
        if must_switch {
            pool = pool.after_connect(|conn, _| Box::pin(role::switch(conn)));
        }
        // Lazy: on a database nobody migrated yet the role to switch to may not exist, and
        // the connection above already proved the server reachable.
        let pool = pool.connect_lazy_with(owner.clone());
        Ok(Self {
            pool,
            acquire_wait: Default::default(),
            owner,
            listeners: Mutex::new(Vec::new()),
            local: LocalSink::default(),
            plans: Default::default(),
        })
    }

    /// The role queries run as, and whether row-level security binds it; for `doctor` and
    /// for tests proving the switch to `portcullis_app` happened.
    pub async fn acting_role(&self) -> StoreResult<(String, bool)> {
        let row = sqlx::query(
            "SELECT current_user::text AS role, NOT (rolsuper OR rolbypassrls) AS bound \
             FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("role")?, row.try_get("bound")?))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Ok(mut listeners) = self.listeners.lock() {
            for task in listeners.drain(..) {
                task.abort();
            }
        }
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn clients(&self) -> &dyn crate::ClientStore {
        self
    }

    fn grants(&self) -> &dyn crate::GrantStore {
        self
    }

    fn keys(&self) -> &dyn crate::SigningKeyStore {
        self
    }

    fn mobile(&self) -> &dyn crate::MobileStore {
        self
    }

    fn sso(&self) -> &dyn crate::SsoStore {
        self
    }

    fn domains(&self) -> &dyn crate::DomainStore {
        self
    }

    fn outbox(&self) -> &dyn crate::OutboxStore {
        self
    }

    fn invitations(&self) -> &dyn crate::InvitationStore {
        self
    }

    fn webhooks(&self) -> &dyn crate::WebhookStore {
        self
    }

    fn platform(&self) -> &dyn crate::PlatformStore {
        self
    }

    fn pool_stats(&self) -> Vec<crate::PoolStats> {
        vec![crate::pool::stats(
            "main",
            &self.pool,
            Some(&self.acquire_wait),
        )]
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrations_current(&self) -> StoreResult<bool> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(v) => v,
                // No migrations table yet, or no app role yet: nothing was migrated.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                    return Ok(false);
                }
                Err(sqlx::Error::Configuration(_)) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn migrate(&self) -> StoreResult<()> {
        // As the connecting role, which owns the tables, never as the app role.
        let owner = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.owner.clone())
            .await?;
        MIGRATOR.run(&owner).await?;
        let check = RoleCheck::run(&mut *owner.acquire().await?).await?;
        owner.close().await;
        check.after_migration()?;
        Ok(())
    }

    fn set_change_sink(&self, sink: Arc<dyn ChangeSink>) {
        self.local.set(sink);
    }

    async fn listen_changes(&self, sink: Arc<dyn ChangeSink>) -> StoreResult<bool> {
        let task = listener::spawn(self.owner.clone(), sink);
        self.listeners
            .lock()
            .map_err(|_| StoreError::Config("change listener registry poisoned".into()))?
            .push(task);
        Ok(true)
    }

    fn accounts(&self) -> &dyn crate::AccountStore {
        self
    }

    fn sessions(&self) -> &dyn crate::SessionStore {
        self
    }

    fn orgs(&self) -> &dyn crate::OrgStore {
        self
    }

    fn projects(&self) -> &dyn crate::ProjectStore {
        self
    }

    fn audit(&self) -> &dyn crate::AuditStore {
        self
    }

    fn org<'a>(&'a self, access: &OrgAccess) -> Box<dyn crate::OrgScope + 'a> {
        Box::new(OrgHandle::new(self, access))
    }

    fn project<'a>(
        &'a self,
        access: &portcullis_core::ProjectAccess,
    ) -> Box<dyn crate::ProjectScope + 'a> {
        Box::new(crate::scope::ProjectHandle::new(self, access))
    }
}

#[async_trait]
impl crate::AccountStore for PgStore {
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        accounts::user_by_email(self, email).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        accounts::user_by_id(self, id).await
    }

    async fn bootstrap_signup(&self, b: &SignupBootstrap, ctx: &AuditContext) -> StoreResult<User> {
        accounts::bootstrap_signup(self, b, ctx).await
    }

    async fn set_platform_admin(
        &self,
        user_id: UserId,
        on: bool,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        accounts::set_platform_admin(self, user_id, on, ctx).await
    }
}

#[async_trait]
impl crate::SessionStore for PgStore {
    async fn create_session(
        &self,
        s: &Session,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<()> {
        sessions::create_session(self, s, ctx, also).await
    }

    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionWithUser>> {
        sessions::session_by_token(self, hash).await
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sessions::touch_session(self, id, last_seen_at, expires_at).await
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        sessions::list_user_sessions(self, user_id, now).await
    }

    async fn revoke_user_session(
        &self,
        user_id: UserId,
        id: SessionId,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        sessions::revoke_user_session(self, user_id, id, ctx).await
    }
}

#[async_trait]
impl crate::OrgStore for PgStore {
    async fn create_org(
        &self,
        creator: UserId,
        org: &Org,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        orgs::create_org(self, creator, org, project, ctx).await
    }

    async fn list_all_orgs(&self) -> StoreResult<Vec<Org>> {
        orgs::list_all_orgs(self).await
    }

    async fn membership(&self, org_id: OrgId, user_id: UserId) -> StoreResult<Option<Membership>> {
        members::membership(self, org_id, user_id).await
    }

    async fn memberships_of_user(&self, user_id: UserId) -> StoreResult<Vec<MembershipView>> {
        members::memberships_of_user(self, user_id).await
    }
}

#[async_trait]
impl crate::ProjectStore for PgStore {
    async fn project_access(
        &self,
        project_id: ProjectId,
        user_id: UserId,
    ) -> StoreResult<Option<ProjectAccessRecord>> {
        projects::project_access(self, project_id, user_id).await
    }

    async fn project_status(&self, project_id: ProjectId) -> StoreResult<Option<ProjectStatus>> {
        projects::project_status(self, project_id).await
    }
}

#[async_trait]
impl crate::AuditStore for PgStore {
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        audit::record_audit(self, event).await
    }
}
