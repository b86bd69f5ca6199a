//! The scale-out backend: one PostgreSQL shared by every node. Tenant-owned tables are
//! guarded twice: each query filters by the caller's org, and every transaction that touches
//! them first sets a row-level security context ([`Scope`]) that the policies of migration
//! 0001 check again. Changes other nodes may have cached are announced with `pg_notify`.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::password::PasswordHash;
use portcullis_core::{
    AuditContext, AuditEvent, AuditQuery, Email, Membership, Org, OrgAccess, OrgId, Project,
    ProjectId, Role, Session, SessionId, Timestamp, TokenHash, User, UserId,
};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::{
    AddedMember, Backend, Change, ChangeSink, MemberRecord, MemberSession, MembershipView,
    NewMember, ProjectAccessRecord, ProjectPatch, ProjectView, SessionWithUser, SignupBootstrap,
    Store, StoreError, StoreResult, UserCredentials,
};

mod clients;
mod grants;
mod keys;
mod listener;
mod mobile;
mod role;
mod rows;
mod sso;
mod statements;

use role::RoleCheck;
use rows::{
    audit_from, membership_from, opt_role, org_cols, org_from, project_cols, project_from, role,
    session_cols, session_from, to_json_list, user_cols, user_from,
};
use statements::{
    Tx, guard_last_owner, insert_audit, insert_org_with_default_project, insert_project,
    insert_session, insert_signup_bootstrap, insert_user, lock_org, member_record, notify,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Opens the store without migrating. Lib's [`crate::connect`] dispatches here.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(PgStore::connect(url).await?))
}

pub struct PgStore {
    pool: PgPool,
    acquire_wait: crate::pool::AcquireWait,
    /// The connecting role itself, without `SET ROLE`: migrations and the change feed.
    owner: PgConnectOptions,
    listeners: Mutex<Vec<JoinHandle<()>>>,
}

/// Whose rows a transaction may see, set as three transaction-local settings that the
/// row-level security policies read.
#[derive(Clone, Copy, Debug)]
enum Scope {
    /// One org's rows: every call that holds an `OrgAccess`, and creating an org.
    Org(OrgId),
    /// A user's own memberships, and the orgs and projects of their active memberships.
    User(UserId),
    /// Everything: platform-wide reads and platform-admin operations.
    Platform,
    /// No tenant rows; only audit events outside any org may be written.
    Nobody,
}

impl Scope {
    fn settings(self) -> (String, String, &'static str) {
        match self {
            Scope::Org(id) => (id.to_string(), String::new(), ""),
            Scope::User(id) => (String::new(), id.to_string(), ""),
            Scope::Platform => (String::new(), String::new(), "on"),
            Scope::Nobody => (String::new(), String::new(), ""),
        }
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut owner = PgConnectOptions::from_str(url)?;
        if owner.get_application_name().is_none() {
            owner = owner.application_name("portcullis");
        }
        let must_switch = RoleCheck::connect(&owner).await?.must_switch()?;
        let mut pool = PgPoolOptions::new()
            .max_connections(10)
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

    /// The project with `user_id`'s org membership and project role, read in `scope`;
    /// with `ended_only`, only when that org membership exists and has ended.
    async fn project_access_in(
        &self,
        scope: Scope,
        project_id: ProjectId,
        user_id: UserId,
        ended_only: bool,
    ) -> StoreResult<Option<ProjectAccessRecord>> {
        let mut tx = self.begin(scope).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            ", m.org_id, m.user_id, m.role, m.created_at, m.deleted_at, pm.role AS project_role \
             FROM projects p JOIN orgs o ON o.id = p.org_id AND o.deleted_at IS NULL \
             LEFT JOIN memberships m ON m.org_id = p.org_id AND m.user_id = $1 \
             LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = $1 \
             WHERE p.id = $2 AND (NOT $3 OR m.deleted_at IS NOT NULL)"
        ))
        .bind(user_id.0)
        .bind(project_id.0)
        .bind(ended_only)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let has_membership = row.try_get::<Option<String>, _>("role")?.is_some();
        Ok(Some(ProjectAccessRecord {
            project: project_from(&row)?,
            org_membership: if has_membership {
                Some(membership_from(&row)?)
            } else {
                None
            },
            project_role: opt_role(row.try_get("project_role")?)?,
        }))
    }

    /// Starts a transaction whose row-level security context is `scope`. One statement, with
    /// bind parameters (`SET LOCAL` cannot take them); `true` makes each setting end with
    /// the transaction, so a pooled connection never carries it into the next one.
    async fn begin(&self, scope: Scope) -> StoreResult<Tx> {
        let (org_id, user_id, platform) = scope.settings();
        let mut tx = self.acquire_wait.time(self.pool.begin()).await?;
        sqlx::query(
            "SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true), \
             set_config('app.platform', $3, true)",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(platform)
        .execute(&mut *tx)
        .await?;
        Ok(tx)
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

    async fn listen_changes(&self, sink: Arc<dyn ChangeSink>) -> StoreResult<bool> {
        let task = listener::spawn(self.owner.clone(), sink);
        self.listeners
            .lock()
            .map_err(|_| StoreError::Config("change listener registry poisoned".into()))?
            .push(task);
        Ok(true)
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            ", u.password_hash FROM users u WHERE u.email = $1 AND u.deleted_at IS NULL"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserCredentials {
                user: user_from(&r)?,
                password_hash: r
                    .try_get::<Option<String>, _>("password_hash")?
                    .map(PasswordHash::from_stored),
            })
        })
        .transpose()
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn bootstrap_signup(&self, b: &SignupBootstrap, ctx: &AuditContext) -> StoreResult<User> {
        let mut tx = self.begin(Scope::Org(b.org.id)).await?;
        let user = insert_signup_bootstrap(&mut tx, b, ctx).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn set_platform_admin(
        &self,
        user_id: UserId,
        on: bool,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut tx = self.begin(Scope::Platform).await?;
        let n = sqlx::query(
            "UPDATE users SET is_platform_admin = $1 WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(on)
        .bind(user_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, &crate::events::platform_admin(ctx, user_id, on)).await?;
        notify(&mut tx, &Change::UserChanged(user_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn project_status(
        &self,
        project_id: ProjectId,
    ) -> StoreResult<Option<portcullis_core::ProjectStatus>> {
        let mut tx = self.begin(Scope::Platform).await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM projects WHERE id = $1")
                .bind(project_id.0)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(status
            .as_deref()
            .map(portcullis_core::ProjectStatus::parse)
            .transpose()?)
    }

    async fn list_all_orgs(&self) -> StoreResult<Vec<Org>> {
        let mut tx = self.begin(Scope::Platform).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            " FROM orgs o WHERE o.deleted_at IS NULL ORDER BY o.created_at"
        ))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(org_from).collect()
    }

    async fn create_session(
        &self,
        s: &Session,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.begin(Scope::User(s.user_id)).await?;
        insert_session(&mut tx, s, ctx).await?;
        for e in also {
            insert_audit(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // The hot path: sessions and users are not tenant-owned, so one query, no transaction.
    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionWithUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            ", ",
            user_cols!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND u.deleted_at IS NULL"
        ))
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionWithUser {
                session: session_from(&r)?,
                user: user_from(&r)?,
            })
        })
        .transpose()
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(last_seen_at)
        .bind(expires_at)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.created_at DESC"
        ))
        .bind(user_id.0)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from).collect()
    }

    async fn revoke_user_session(
        &self,
        user_id: UserId,
        id: SessionId,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut tx = self.begin(Scope::User(user_id)).await?;
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(portcullis_core::now())
        .bind(id.0)
        .bind(user_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        insert_audit(
            &mut tx,
            &crate::events::session_revoked(ctx, None, user_id, id),
        )
        .await?;
        notify(&mut tx, &Change::SessionRevoked(id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn membership(&self, org_id: OrgId, user_id: UserId) -> StoreResult<Option<Membership>> {
        let mut tx = self.begin(Scope::User(user_id)).await?;
        // The user context sees an org only through an active membership, so a removed
        // membership comes back without its org; it authorizes nothing either way.
        let row = sqlx::query(
            "SELECT m.org_id, m.user_id, m.role, m.created_at, m.deleted_at FROM memberships m \
             LEFT JOIN orgs o ON o.id = m.org_id \
             WHERE m.org_id = $1 AND m.user_id = $2 \
               AND (m.deleted_at IS NOT NULL OR (o.id IS NOT NULL AND o.deleted_at IS NULL))",
        )
        .bind(org_id.0)
        .bind(user_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(membership_from).transpose()
    }

    async fn memberships_of_user(&self, user_id: UserId) -> StoreResult<Vec<MembershipView>> {
        let mut tx = self.begin(Scope::User(user_id)).await?;
        let orgs = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            ", m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = $1 AND m.deleted_at IS NULL AND o.deleted_at IS NULL ORDER BY o.created_at"
        ))
        .bind(user_id.0)
        .fetch_all(&mut *tx)
        .await?;
        let projects = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            ", pm.role AS project_role FROM projects p \
             JOIN memberships m ON m.org_id = p.org_id AND m.user_id = $1 AND m.deleted_at IS NULL \
             LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = m.user_id \
             ORDER BY p.created_at"
        ))
        .bind(user_id.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut views = Vec::with_capacity(orgs.len());
        for row in &orgs {
            views.push(MembershipView {
                org: org_from(row)?,
                role: role(row.try_get("role")?)?,
                projects: Vec::new(),
            });
        }
        for row in &projects {
            let project = project_from(row)?;
            let project_role = opt_role(row.try_get("project_role")?)?;
            if let Some(view) = views.iter_mut().find(|v| v.org.id == project.org_id)
                && let Some(r) =
                    portcullis_core::project::effective_project_role(view.role, project_role)
            {
                view.projects.push(ProjectView { project, role: r });
            }
        }
        Ok(views)
    }

    async fn project_access(
        &self,
        project_id: ProjectId,
        user_id: UserId,
    ) -> StoreResult<Option<ProjectAccessRecord>> {
        // Platform admins may act in every org, so they must see projects of orgs they are
        // not members of; anyone else sees only projects of their active memberships.
        let platform_admin: Option<bool> = sqlx::query_scalar(
            "SELECT is_platform_admin FROM users WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(user_id.0)
        .fetch_optional(&self.pool)
        .await?;
        if platform_admin == Some(true) {
            return self
                .project_access_in(Scope::Platform, project_id, user_id, false)
                .await;
        }
        let found = self
            .project_access_in(Scope::User(user_id), project_id, user_id, false)
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        // Someone whose membership of the project's org ended knows the org exists: they get
        // the record (with that ended membership), as on SQLite, so the domain can tell them
        // why they lost access. Strangers still find nothing.
        self.project_access_in(Scope::Platform, project_id, user_id, true)
            .await
    }

    async fn create_org(
        &self,
        creator: UserId,
        org: &Org,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut tx = self.begin(Scope::Org(org.id)).await?;
        insert_org_with_default_project(&mut tx, creator, org, project).await?;
        for e in crate::events::org_created(ctx, org, project) {
            insert_audit(&mut tx, &e).await?;
        }
        notify(&mut tx, &Change::UserChanged(creator)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn org(&self, access: &OrgAccess) -> StoreResult<Org> {
        let mut tx = self.begin(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            " FROM orgs o WHERE o.id = $1 AND o.deleted_at IS NULL"
        ))
        .bind(access.org_id().0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        org_from(&row)
    }

    async fn list_members(&self, access: &OrgAccess) -> StoreResult<Vec<MemberRecord>> {
        let mut tx = self.begin(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            ", m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.deleted_at IS NULL ORDER BY m.created_at"
        ))
        .bind(access.org_id().0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRecord {
                    user: user_from(r)?,
                    role: role(r.try_get("role")?)?,
                    joined_at: r.try_get("joined_at")?,
                })
            })
            .collect()
    }

    async fn add_member(
        &self,
        access: &OrgAccess,
        m: &NewMember,
        ctx: &AuditContext,
    ) -> StoreResult<AddedMember> {
        let org_id = access.org_id();
        let now = portcullis_core::now();
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        lock_org(&mut tx, org_id).await?;
        let existing = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.email = $1 AND u.deleted_at IS NULL"
        ))
        .bind(m.email.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let (user, user_created) = match existing {
            Some(row) => (user_from(&row)?, false),
            None => (
                insert_user(
                    &mut tx,
                    m.new_user_id,
                    &m.email,
                    m.name.as_ref(),
                    m.password_hash.as_ref(),
                    now,
                )
                .await?,
                true,
            ),
        };
        let previous: Option<Option<Timestamp>> = sqlx::query_scalar(
            "SELECT deleted_at FROM memberships WHERE org_id = $1 AND user_id = $2",
        )
        .bind(org_id.0)
        .bind(user.id.0)
        .fetch_optional(&mut *tx)
        .await?;
        match previous {
            Some(None) => {
                return Err(StoreError::Conflict(
                    "this user is already a member of the organization".into(),
                ));
            }
            Some(Some(_)) => {
                sqlx::query(
                    "UPDATE memberships SET role = $1, created_at = $2, deleted_at = NULL \
                     WHERE org_id = $3 AND user_id = $4",
                )
                .bind(m.role.as_str())
                .bind(now)
                .bind(org_id.0)
                .bind(user.id.0)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(org_id.0)
                .bind(user.id.0)
                .bind(m.role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) \
             SELECT p.id, p.org_id, $1, 'member', $2 FROM projects p WHERE p.org_id = $3 AND p.is_default \
             ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(user.id.0)
        .bind(now)
        .bind(org_id.0)
        .execute(&mut *tx)
        .await?;
        for e in crate::events::member_added(ctx, org_id, &user, m.role, user_created) {
            insert_audit(&mut tx, &e).await?;
        }
        notify(&mut tx, &Change::UserChanged(user.id)).await?;
        tx.commit().await?;
        Ok(AddedMember {
            member: MemberRecord {
                user,
                role: m.role,
                joined_at: now,
            },
            user_created,
        })
    }

    async fn change_member_role(
        &self,
        access: &OrgAccess,
        user_id: UserId,
        new_role: Role,
        ctx: &AuditContext,
    ) -> StoreResult<MemberRecord> {
        let org_id = access.org_id();
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        lock_org(&mut tx, org_id).await?;
        let old = guard_last_owner(&mut tx, org_id, user_id, Some(new_role)).await?;
        sqlx::query(
            "UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3 AND deleted_at IS NULL",
        )
        .bind(new_role.as_str())
        .bind(org_id.0)
        .bind(user_id.0)
        .execute(&mut *tx)
        .await?;
        let record = member_record(&mut tx, org_id, user_id).await?;
        insert_audit(
            &mut tx,
            &crate::events::role_changed(ctx, org_id, user_id, old, new_role),
        )
        .await?;
        notify(&mut tx, &Change::UserChanged(user_id)).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn remove_member(
        &self,
        access: &OrgAccess,
        user_id: UserId,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let org_id = access.org_id();
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        lock_org(&mut tx, org_id).await?;
        guard_last_owner(&mut tx, org_id, user_id, None).await?;
        sqlx::query(
            "UPDATE memberships SET deleted_at = $1 WHERE org_id = $2 AND user_id = $3 AND deleted_at IS NULL",
        )
        .bind(portcullis_core::now())
        .bind(org_id.0)
        .bind(user_id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM project_memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id.0)
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            &crate::events::member_removed(ctx, org_id, user_id),
        )
        .await?;
        notify(&mut tx, &Change::UserChanged(user_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_org_sessions(
        &self,
        access: &OrgAccess,
        now: Timestamp,
    ) -> StoreResult<Vec<MemberSession>> {
        let mut tx = self.begin(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            ", u.email AS u_email FROM sessions s \
             JOIN memberships m ON m.user_id = s.user_id AND m.org_id = $1 AND m.deleted_at IS NULL \
             JOIN users u ON u.id = s.user_id \
             WHERE s.revoked_at IS NULL AND s.expires_at > $2 ORDER BY s.created_at DESC"
        ))
        .bind(access.org_id().0)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let session = session_from(r)?;
                Ok(MemberSession {
                    user_id: session.user_id,
                    email: Email::parse(r.try_get::<&str, _>("u_email")?)?,
                    session,
                })
            })
            .collect()
    }

    async fn revoke_org_session(
        &self,
        access: &OrgAccess,
        id: SessionId,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let org_id = access.org_id();
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        let owner: Option<Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND user_id IN (SELECT user_id FROM memberships WHERE org_id = $3 AND deleted_at IS NULL) \
             RETURNING user_id",
        )
        .bind(portcullis_core::now())
        .bind(id.0)
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(owner) = owner else { return Ok(false) };
        insert_audit(
            &mut tx,
            &crate::events::session_revoked(ctx, Some(org_id), UserId(owner), id),
        )
        .await?;
        notify(&mut tx, &Change::SessionRevoked(id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_projects(&self, access: &OrgAccess) -> StoreResult<Vec<Project>> {
        let mut tx = self.begin(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            " FROM projects p WHERE p.org_id = $1 ORDER BY p.created_at"
        ))
        .bind(access.org_id().0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(project_from).collect()
    }

    async fn create_project(
        &self,
        access: &OrgAccess,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        if project.org_id != access.org_id() {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.begin(Scope::Org(project.org_id)).await?;
        insert_project(&mut tx, project, false).await?;
        insert_audit(&mut tx, &crate::events::project_created(ctx, project)).await?;
        notify(&mut tx, &Change::OrgChanged(project.org_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_project(
        &self,
        access: &OrgAccess,
        id: ProjectId,
        patch: &ProjectPatch,
        ctx: &AuditContext,
    ) -> StoreResult<Project> {
        let mut tx = self.begin(Scope::Org(access.org_id())).await?;
        // FOR UPDATE: two concurrent patches of different fields must not undo each other.
        let row = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            " FROM projects p WHERE p.id = $1 AND p.org_id = $2 FOR UPDATE"
        ))
        .bind(id.0)
        .bind(access.org_id().0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let (project, changed) = patch.apply(project_from(&row)?, portcullis_core::now());
        sqlx::query(
            "UPDATE projects SET name = $1, status = $2, redirect_uris = $3, allowed_origins = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(project.name.as_str())
        .bind(project.status.as_str())
        .bind(to_json_list(&project.redirect_uris, |u| u.as_str()))
        .bind(to_json_list(&project.allowed_origins, |o| o.as_str()))
        .bind(project.updated_at)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            &crate::events::project_updated(ctx, &project, &changed),
        )
        .await?;
        notify(&mut tx, &Change::OrgChanged(project.org_id)).await?;
        tx.commit().await?;
        Ok(project)
    }

    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let scope = event.org_id.map_or(Scope::Nobody, Scope::Org);
        let mut tx = self.begin(scope).await?;
        insert_audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn query_audit(
        &self,
        access: &OrgAccess,
        q: &AuditQuery,
    ) -> StoreResult<Vec<AuditEvent>> {
        let mut tx = self.begin(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(
            "SELECT id, org_id, at, actor_id, action, target, outcome, ip, user_agent, correlation_id, details \
             FROM audit_events e \
             WHERE (e.org_id = $1 OR (e.org_id IS NULL AND e.actor_id IN \
                    (SELECT user_id FROM memberships WHERE org_id = $1 AND deleted_at IS NULL))) \
               AND ($2::text IS NULL OR e.correlation_id = $2) \
               AND ($3::text IS NULL OR e.action = $3) \
               AND ($4::uuid IS NULL OR e.actor_id = $4) \
               AND ($5::timestamptz IS NULL OR e.at >= $5) \
               AND ($6::timestamptz IS NULL OR e.at < $6) \
               AND ($7::uuid IS NULL OR e.id < $7) \
             ORDER BY e.id DESC LIMIT $8",
        )
        .bind(access.org_id().0)
        .bind(&q.correlation_id)
        .bind(&q.action)
        .bind(q.actor_id.map(|a| a.0))
        .bind(q.since)
        .bind(q.until)
        .bind(q.before.map(|b| b.0))
        .bind(i64::from(q.limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(audit_from).collect()
    }
}
