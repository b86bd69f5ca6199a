//! Portcullis storage. Handlers hold an `Arc<dyn Store>`; which database sits behind it is
//! decided once, at start-up, by [`connect`]. Each backend is one module with its own
//! migrations folder; the two folders keep the same version numbers.
//!
//! `Store` itself is small: each area has its own trait, reached through an accessor
//! (`accounts()`, `sessions()`, `orgs()`, `clients()` …). An org's own data (details,
//! members, projects, its sessions and audit trail, domains, SSO providers, invitations,
//! subscription) is reached only through [`Store::org`], a handle bound to an
//! [`OrgAccess`]; a project's own data (clients, secret keys, webhooks) only through
//! [`Store::project`], bound to a [`ProjectAccess`]. Only the domain's authorization
//! decisions produce either. The backends filter by their ids in SQL, and PostgreSQL checks
//! the org a second time with row-level security.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::password::PasswordHash;
use portcullis_core::{
    Email, Membership, Org, OrgAccess, OrgId, Project, ProjectAccess, Role, Session, SessionId,
    Timestamp, User, UserId, UserName,
};

pub mod accounts;
pub mod audit;
pub mod clients;
pub mod domains;
mod error;
mod events;
pub mod grants;
pub mod invitations;
pub mod keys;
pub mod members;
pub mod mobile;
pub mod orgs;
pub mod outbox;
pub mod platform;
mod pool;
pub mod postgres;
pub mod projects;
mod scope;
pub mod sessions;
pub mod sqlite;
pub mod sso;
pub mod testing;
mod unit;
pub mod webhooks;

pub use accounts::AccountStore;
pub use audit::{AuditScope, AuditStore};
pub use clients::{ClientPatch, ClientScope, ClientStore};
pub use domains::{DomainScope, DomainStore};
pub use error::{StoreError, StoreResult};
pub use grants::{
    AuthCode, CodeRedemption, CodeRedemptionRequest, FamilyStart, GrantStore, RefreshFamily,
    RefreshOutcome, RefreshRotation, RefreshTokenState,
};
pub use invitations::{Acceptance, InvitationScope, InvitationStore, PasswordSetup};
pub use keys::{Rotation, SigningKeyRecord, SigningKeyStore};
pub use members::MemberScope;
pub use mobile::{MOBILE_CLIENT_ID, MobileStore, OneTimeToken};
pub use orgs::{OrgScope, OrgStore};
pub use outbox::{OutboxRecord, OutboxStore};
pub use platform::{PlatformScope, PlatformStore, SecretKeyScope};
pub use pool::PoolStats;
/// Patches are merged in the domain ([`portcullis_core::patch`]); the store persists the result.
pub use portcullis_core::patch::ProjectPatch;
pub use projects::{OrgProjectScope, ProjectScope, ProjectStore};
pub use sessions::{OrgSessionScope, SessionStore};
pub use sso::{
    OrgSsoProvider, SsoAccount, SsoProviderPatch, SsoProviderScope, SsoSignIn, SsoStore,
    UserIdentity,
};
pub use webhooks::{WebhookScope, WebhookStore};

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
    /// A unit committed work for the webhook worker: outbox rows, or a delivery made due
    /// now (a test send, a manual retry, an endpoint enabled). Not a cache change, so
    /// sinks that only hold caches keep this default.
    fn webhooks_due(&self) {}
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// OAuth clients by id, across tenants (the OAuth endpoints); a project's own clients
    /// are reached through [`Store::project`].
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

    /// Outgoing webhooks: endpoints, deliveries and their attempts.
    fn webhooks(&self) -> &dyn WebhookStore;

    /// Projects' secret keys and modes, orgs' subscriptions and the plans that limit them.
    fn platform(&self) -> &dyn PlatformStore;

    /// The database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Every migration this binary knows is applied.
    async fn migrations_current(&self) -> StoreResult<bool>;
    async fn migrate(&self) -> StoreResult<()>;

    /// Tells `sink` of every change this store commits, and of every unit that committed
    /// webhook work ([`ChangeSink::webhooks_due`]), right after the commit (and never of a
    /// unit that did not commit). Other processes' arrive through [`Store::listen_changes`]
    /// instead.
    fn set_change_sink(&self, sink: Arc<dyn ChangeSink>);

    /// Starts delivering other processes' changes (and their webhook work) to `sink`.
    /// Returns false when the backend has no cross-process feed (embedded SQLite: one
    /// server process owns the file).
    async fn listen_changes(&self, sink: Arc<dyn ChangeSink>) -> StoreResult<bool>;

    /// Users and the sign-up bootstrap (not tenant-owned).
    fn accounts(&self) -> &dyn AccountStore;

    /// Browser sessions, owned by users rather than tenants.
    fn sessions(&self) -> &dyn SessionStore;

    /// Creating orgs, listing them for operators, and a user's own memberships.
    fn orgs(&self) -> &dyn OrgStore;

    /// What a user may reach of a project before any decision, and a project's status.
    fn projects(&self) -> &dyn ProjectStore;

    /// Audit events written outside any other change.
    fn audit(&self) -> &dyn AuditStore;

    /// The one way to reach an org's own data: a handle bound to `access`, which only
    /// [`portcullis_core::authz`] decisions produce. Every call through it is filtered by the
    /// access's org (and, on PostgreSQL, checked again by row-level security).
    fn org<'a>(&'a self, access: &OrgAccess) -> Box<dyn OrgScope + 'a>;

    /// The one way to reach a project's own data (clients, secret keys, webhooks): a handle bound to `access`,
    /// which only [`portcullis_core::authz`] decisions (or the project's secret key) produce.
    fn project<'a>(&'a self, access: &ProjectAccess) -> Box<dyn ProjectScope + 'a>;
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
