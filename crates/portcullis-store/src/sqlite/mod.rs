//! The embedded backend: one SQLite file in WAL mode. Every write is a unit of work
//! (`unit.rs`) on the one writer connection, started with `BEGIN IMMEDIATE` so it never
//! fails on a read-to-write upgrade; reads use a pool of their own.
//!
//! The files of this module mirror `postgres/` one for one (`accounts`, `orgs`, `members`,
//! `projects`, `sessions`, `audit`, `clients`, `grants`, `keys`, `mobile`, `sso`, `domains`,
//! `outbox`, with
//! `rows` for decoding, `statements` for what several operations share and `unit` for the
//! unit of work), so a reviewer
//! can diff the two backends file by file. This file opens the store and delegates.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, Email, Membership, Org, OrgAccess, OrgId, Project, ProjectId,
    ProjectStatus, Session, SessionId, Timestamp, TokenHash, User, UserId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::scope::OrgHandle;
use crate::unit::LocalSink;
use crate::{
    Backend, ChangeSink, ConnectOptions, MembershipView, ProjectAccessRecord, SessionWithUser,
    SignupBootstrap, Store, StoreResult, UserCredentials,
};

mod accounts;
mod audit;
mod clients;
mod domains;
mod grants;
mod invitations;
mod keys;
mod members;
mod mobile;
mod orgs;
mod outbox;
mod platform;
mod projects;
mod rows;
mod sessions;
mod sso;
mod statements;
mod unit;
mod webhooks;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// The one connection write transactions use. SQLite admits one writer at a time; with
    /// several connections, waiting writers sleep in SQLite's busy handler (1, 2, 5 … 100 ms
    /// naps), which made the refresh benchmark's p99 0.2–0.5 s. Queued here they wait their
    /// turn in order and are woken the moment the writer before them commits.
    writer: SqlitePool,
    /// Time write transactions spent queued for the writer.
    write_wait: crate::pool::AcquireWait,
    /// This process's cache, told of each change a unit commits.
    local: LocalSink,
    /// The configured plans, for the limits checked inside inserting units.
    plans: crate::platform::PlanBook,
}

impl SqliteStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        let readers = options.max_connections;
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode is durable against process crashes; only an OS crash can
            // lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(readers)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer,
            write_wait: Default::default(),
            local: LocalSink::default(),
            plans: Default::default(),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
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
        vec![
            crate::pool::stats("read", &self.pool, None),
            crate::pool::stats("write", &self.writer, Some(&self.write_wait)),
        ]
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrations_current(&self) -> StoreResult<bool> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&self.pool)
                .await
            {
                Ok(v) => v,
                Err(_) => return Ok(false),
            };
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    fn set_change_sink(&self, sink: Arc<dyn ChangeSink>) {
        self.local.set(sink);
    }

    async fn listen_changes(&self, _sink: Arc<dyn ChangeSink>) -> StoreResult<bool> {
        Ok(false)
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
impl crate::AccountStore for SqliteStore {
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
impl crate::SessionStore for SqliteStore {
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
impl crate::OrgStore for SqliteStore {
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
impl crate::ProjectStore for SqliteStore {
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
impl crate::AuditStore for SqliteStore {
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        audit::record_audit(self, event).await
    }
}
