//! Portcullis storage. Handlers hold an `Arc<dyn Store>`; which database sits behind it is
//! decided once, at start-up, by [`connect`]. Each backend is one module with its own
//! migrations folder; the two folders keep the same version numbers.
//!
//! Tenant-scoped calls take an [`OrgAccess`], which only the domain's authorization check
//! can produce. The backends filter by its org id in SQL, and PostgreSQL checks it a second
//! time with row-level security.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::password::PasswordHash;
use portcullis_core::{
    AuditContext, AuditEvent, AuditQuery, Email, Membership, Org, OrgAccess, OrgId, Oversight,
    Project, ProjectId, ProjectStatus, Role, Session, SessionId, Timestamp, TokenHash, User,
    UserId, UserName,
};

pub mod clients;
pub mod domains;
mod error;
mod events;
pub mod grants;
pub mod invitations;
pub mod keys;
pub mod mobile;
pub mod outbox;
pub mod platform;
mod pool;
pub mod postgres;
pub mod sqlite;
pub mod sso;
pub mod testing;
mod unit;

pub use clients::{ClientPatch, ClientStore};
pub use domains::DomainStore;
pub use error::{StoreError, StoreResult};
pub use grants::{
    AuthCode, CodeRedemption, CodeRedemptionRequest, FamilyStart, GrantStore, RefreshFamily,
    RefreshOutcome, RefreshRotation, RefreshTokenState,
};
pub use invitations::{Acceptance, InvitationStore, PasswordSetup};
pub use keys::{Rotation, SigningKeyRecord, SigningKeyStore};
pub use mobile::{MOBILE_CLIENT_ID, MobileStore, OneTimeToken};
pub use outbox::{OutboxRecord, OutboxStore};
pub use platform::PlatformStore;
pub use pool::PoolStats;
/// Patches are merged in the domain ([`portcullis_core::patch`]); the store persists the result.
pub use portcullis_core::patch::ProjectPatch;
pub use sso::{OrgSsoProvider, SsoProviderPatch, SsoStore, UserIdentity};

/// Which database a store talks to; shown by `/readyz`, `doctor` and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// What self-signup (and `admin create-user` without `--org`) creates in one transaction:
/// the user, a personal org, its default project, and owner memberships of both.
#[derive(Debug)]
pub struct SignupBootstrap {
    pub user_id: UserId,
    pub email: Email,
    pub name: Option<UserName>,
    pub password_hash: Option<PasswordHash>,
    pub org: Org,
    pub project: Project,
    /// `user.signup` for self-signup, `user.created` for admin-created users.
    pub self_signup: bool,
}

/// A user as the store knows it, with the secret needed to sign in.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<PasswordHash>,
}

/// The result of resolving a session token: the session and its user, in one read.
#[derive(Clone, Debug)]
pub struct SessionWithUser {
    pub session: Session,
    pub user: User,
}

/// One org the user belongs to, with the role and the projects visible to them in it.
#[derive(Clone, Debug)]
pub struct MembershipView {
    pub org: Org,
    pub role: Role,
    pub projects: Vec<ProjectView>,
}

/// A project as seen by one user: org admins see every project of the org as `admin` or
/// better; members see the projects they are members of, with that role.
#[derive(Clone, Debug)]
pub struct ProjectView {
    pub project: Project,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub struct MemberRecord {
    pub user: User,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// A member to add to an org; the user is created when no account has this email.
#[derive(Debug)]
pub struct NewMember {
    /// Used only when the user has to be created.
    pub new_user_id: UserId,
    pub email: Email,
    pub name: Option<UserName>,
    pub password_hash: Option<PasswordHash>,
    pub role: Role,
    /// Stored with the user when the user is created (an admin-created account's first
    /// password is set through it); ignored for an existing account.
    pub password_setup: Option<PasswordSetup>,
}

/// A membership change as the store's transaction decided it
/// ([`portcullis_core::authz::may_change_membership`], on the roles read under its lock).
#[derive(Clone, Debug)]
pub enum MemberChange<T> {
    Done(T),
    /// The actor's role (as it is now) does not allow this change; nothing was written.
    NotPermitted,
}

#[derive(Clone, Debug)]
pub struct AddedMember {
    pub member: MemberRecord,
    pub user_created: bool,
}

/// A user's way into a project: the project, and the user's org membership and project
/// role where they exist. Whether that authorizes anything is the domain's call.
#[derive(Clone, Debug)]
pub struct ProjectAccessRecord {
    pub project: Project,
    pub org_membership: Option<Membership>,
    pub project_role: Option<Role>,
}

/// A session as an org admin sees it: with whose it is.
#[derive(Clone, Debug)]
pub struct MemberSession {
    pub session: Session,
    pub user_id: UserId,
    pub email: Email,
}

/// A change a cache must hear about (this process's, through the store's change sink, and
/// other nodes', through the change feed), because it may have cached what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    SessionRevoked(SessionId),
    /// Memberships, roles, profile or platform-admin status of a user changed.
    UserChanged(UserId),
    /// Projects or org details changed, or the org's OAuth clients.
    OrgChanged(OrgId),
    /// Refresh families or access tokens were revoked (introspection answers may change).
    TokensRevoked,
}

/// Receives changes made by other processes sharing the database.
pub trait ChangeSink: Send + Sync {
    fn changed(&self, change: Change);
    /// The feed went down (false) or came back (true). While it is down, anything cached
    /// may be stale without anyone saying so.
    fn feed_up(&self, up: bool);
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// OAuth clients (applications) of projects.
    fn clients(&self) -> &dyn ClientStore;

    /// Authorization codes, refresh families, consents, revoked access tokens.
    fn grants(&self) -> &dyn GrantStore;

    /// The server's JWS signing keys (not tenant-owned).
    fn keys(&self) -> &dyn SigningKeyStore;

    /// Mobile sign-in's one-time tokens.
    fn mobile(&self) -> &dyn MobileStore;

    /// Upstream SSO: org providers and linked identities.
    fn sso(&self) -> &dyn SsoStore;

    /// Orgs' claims on DNS domains, and who holds which domain verified.
    fn domains(&self) -> &dyn DomainStore;

    /// The connection pools' sizes and waits, for `/metrics`; reads counters, no query.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Events queued for delivery outside the database (webhooks).
    fn outbox(&self) -> &dyn OutboxStore;

    /// Invitations to orgs and password-setup links of admin-created accounts.
    fn invitations(&self) -> &dyn InvitationStore;

    /// Projects' secret keys and modes, orgs' subscriptions and the plans that limit them.
    fn platform(&self) -> &dyn PlatformStore;

    /// The database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Every migration this binary knows is applied.
    async fn migrations_current(&self) -> StoreResult<bool>;
    async fn migrate(&self) -> StoreResult<()>;

    /// Tells `sink` of every change this store commits, right after the commit (and never
    /// of a change that did not commit). The changes of other processes sharing the
    /// database arrive through [`Store::listen_changes`] instead.
    fn set_change_sink(&self, sink: Arc<dyn ChangeSink>);

    /// Starts delivering other processes' changes to `sink`. Returns false when the backend
    /// has no cross-process feed (embedded SQLite: one server process owns the file).
    async fn listen_changes(&self, sink: Arc<dyn ChangeSink>) -> StoreResult<bool>;

    // Users and provisioning (not tenant-owned).
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn bootstrap_signup(&self, b: &SignupBootstrap, ctx: &AuditContext) -> StoreResult<User>;
    async fn set_platform_admin(
        &self,
        user_id: UserId,
        on: bool,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    /// Every org, for platform operators.
    async fn list_all_orgs(&self) -> StoreResult<Vec<Org>>;
    /// A project's status, for endpoints that know only a client (the OAuth endpoints).
    async fn project_status(&self, project_id: ProjectId) -> StoreResult<Option<ProjectStatus>>;

    // Sessions (owned by users, not tenants).
    /// Stores a new session with its `session.created` event and any `also` events (the
    /// `login.succeeded` that caused it), all in one transaction.
    async fn create_session(
        &self,
        session: &Session,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<()>;
    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionWithUser>>;
    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>>;
    /// Revokes one of the user's own sessions; false when there is no such active session.
    async fn revoke_user_session(
        &self,
        user_id: UserId,
        id: SessionId,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    // The caller's own memberships (scoped to the user).
    async fn membership(&self, org_id: OrgId, user_id: UserId) -> StoreResult<Option<Membership>>;
    async fn memberships_of_user(&self, user_id: UserId) -> StoreResult<Vec<MembershipView>>;
    async fn project_access(
        &self,
        project_id: ProjectId,
        user_id: UserId,
    ) -> StoreResult<Option<ProjectAccessRecord>>;

    // Orgs (tenant-scoped).
    /// Creates an org with its default project and makes `creator` owner of both.
    async fn create_org(
        &self,
        creator: UserId,
        org: &Org,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    async fn org(&self, access: &OrgAccess) -> StoreResult<Org>;
    async fn list_members(&self, access: &OrgAccess) -> StoreResult<Vec<MemberRecord>>;
    async fn add_member(
        &self,
        access: &OrgAccess,
        member: &NewMember,
        ctx: &AuditContext,
    ) -> StoreResult<AddedMember>;
    /// Whether the access's actor may make the change is decided inside the transaction, on
    /// the roles as they are under its lock. Fails with `NotFound` when `user_id` is no
    /// active member, `Conflict` when it would leave the org without an owner.
    async fn change_member_role(
        &self,
        access: &OrgAccess,
        user_id: UserId,
        role: Role,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<MemberRecord>>;
    /// Ends a membership (softly); decided like [`Store::change_member_role`]. A member may
    /// always remove themselves.
    async fn remove_member(
        &self,
        access: &OrgAccess,
        user_id: UserId,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<()>>;
    /// Active sessions of the org's active members whom `oversight` covers.
    async fn list_org_sessions(
        &self,
        access: &OrgAccess,
        now: Timestamp,
        oversight: &Oversight,
    ) -> StoreResult<Vec<MemberSession>>;
    /// Revokes a session of a current member of the org whom `oversight` covers; false
    /// when there is none such.
    async fn revoke_org_session(
        &self,
        access: &OrgAccess,
        id: SessionId,
        oversight: &Oversight,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
    async fn list_projects(&self, access: &OrgAccess) -> StoreResult<Vec<Project>>;
    async fn create_project(
        &self,
        access: &OrgAccess,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    async fn update_project(
        &self,
        access: &OrgAccess,
        id: ProjectId,
        patch: &ProjectPatch,
        ctx: &AuditContext,
    ) -> StoreResult<Project>;

    // Audit.
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first: the org's events, and the events outside any org (sign-ins, sessions)
    /// of its active members whom `q.oversight` covers.
    async fn query_audit(&self, access: &OrgAccess, q: &AuditQuery)
    -> StoreResult<Vec<AuditEvent>>;
}

/// How a store opens its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The most connections the store's pool holds open (`database_max_connections`). On
    /// SQLite these are the readers; writes queue on one more connection of their own,
    /// because SQLite admits one writer at a time.
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
        }
    }
}

impl ConnectOptions {
    fn check(self) -> StoreResult<Self> {
        if self.max_connections == 0 {
            return Err(StoreError::Config(
                "database_max_connections must be at least 1".into(),
            ));
        }
        Ok(self)
    }
}

/// Opens the store a database URL names (`sqlite://…` or `postgres://…`) without migrating,
/// with the default [`ConnectOptions`].
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    connect_with(url, ConnectOptions::default()).await
}

/// Opens the store a database URL names (`sqlite://…` or `postgres://…`) without migrating.
pub async fn connect_with(url: &str, options: ConnectOptions) -> StoreResult<Arc<dyn Store>> {
    let options = options.check()?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::connect(url, &options).await
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, &options).await?))
    } else {
        Err(StoreError::Config(
            "database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pool_needs_a_connection() {
        let none = ConnectOptions { max_connections: 0 };
        let Err(StoreError::Config(m)) = connect_with("sqlite::memory:", none).await else {
            panic!("a pool of no connections was accepted");
        };
        assert!(m.contains("database_max_connections"), "{m}");
        assert_eq!(
            ConnectOptions::default().check().unwrap().max_connections,
            10
        );
    }
}
