//! The embedded backend: one SQLite file in WAL mode. Write transactions start with
//! `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing on a
//! read-to-write upgrade.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::password::PasswordHash;
use portcullis_core::{
    AuditContext, AuditEvent, AuditEventId, AuditQuery, Email, Membership, Org, OrgAccess, OrgId,
    OrgName, Outcome, PosixId, Project, ProjectId, ProjectName, ProjectStatus, Role, Session,
    SessionId, Slug, Timestamp, TokenHash, User, UserId, UserName,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::{
    AddedMember, Backend, ChangeSink, MemberRecord, MemberSession, MembershipView, NewMember,
    ProjectAccessRecord, ProjectPatch, ProjectView, SessionWithUser, SignupBootstrap, Store,
    StoreError, StoreResult, UserCredentials,
};

mod clients;
mod grants;
mod keys;
mod mobile;
mod sso;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Reads, and the few single-statement writes that run outside a write transaction.
    pool: SqlitePool,
    /// The one connection write transactions use. SQLite admits one writer at a time; with
    /// several connections, waiting writers sleep in SQLite's busy handler (1, 2, 5 … 100 ms
    /// naps), which made the refresh benchmark's p99 0.2–0.5 s. Queued here they wait their
    /// turn in order and are woken the moment the writer before them commits.
    writer: SqlitePool,
    /// Time write transactions spent queued for the writer.
    write_wait: crate::pool::AcquireWait,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode is durable against process crashes; only an OS crash can
            // lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
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
        })
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        let begin = self.writer.begin_with("BEGIN IMMEDIATE");
        Ok(self.write_wait.time(begin).await?)
    }
}

// ---- value conversions -------------------------------------------------------------------

fn micros(t: Timestamp) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn from_micros(v: i64) -> StoreResult<Timestamp> {
    Timestamp::from_unix_timestamp_nanos(v as i128 * 1000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {v}: {e}")))
}

fn opt_micros(v: Option<i64>) -> StoreResult<Option<Timestamp>> {
    v.map(from_micros).transpose()
}

fn role(s: &str) -> StoreResult<Role> {
    Ok(Role::parse(s)?)
}

fn json_list<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, portcullis_core::ValidationError>,
) -> StoreResult<Vec<T>> {
    let items: Vec<String> =
        serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("json list: {e}")))?;
    items
        .iter()
        .map(|s| parse(s).map_err(StoreError::from))
        .collect()
}

fn to_json_list<T>(items: &[T], as_str: impl Fn(&T) -> &str) -> String {
    serde_json::Value::from(
        items
            .iter()
            .map(|i| as_str(i).to_owned())
            .collect::<Vec<_>>(),
    )
    .to_string()
}

macro_rules! user_cols {
    () => {
        "u.id AS u_id, u.email AS u_email, u.name AS u_name, u.posix_uid AS u_posix_uid, \
         u.posix_gid AS u_posix_gid, u.is_platform_admin AS u_admin, u.created_at AS u_created_at"
    };
}
macro_rules! org_cols {
    () => {
        "o.id AS o_id, o.name AS o_name, o.slug AS o_slug, o.personal AS o_personal, o.created_at AS o_created_at"
    };
}
macro_rules! project_cols {
    () => {
        "p.id AS p_id, p.org_id AS p_org_id, p.name AS p_name, p.status AS p_status, \
         p.redirect_uris AS p_redirect_uris, p.allowed_origins AS p_allowed_origins, \
         p.created_at AS p_created_at, p.updated_at AS p_updated_at"
    };
}
macro_rules! session_cols {
    () => {
        "s.id AS s_id, s.user_id AS s_user_id, s.token_hash AS s_token_hash, s.created_at AS s_created_at, \
         s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at, s.revoked_at AS s_revoked_at, \
         s.ip AS s_ip, s.user_agent AS s_user_agent, s.device_platform AS s_device_platform, \
         s.device_model AS s_device_model, s.app_version AS s_app_version"
    };
}

fn user_from(row: &SqliteRow) -> StoreResult<User> {
    let name: Option<String> = row.try_get("u_name")?;
    Ok(User {
        id: UserId(row.try_get("u_id")?),
        email: Email::parse(row.try_get::<&str, _>("u_email")?)?,
        name: name.as_deref().map(UserName::parse).transpose()?,
        posix: PosixId {
            uid: row.try_get::<i64, _>("u_posix_uid")? as u32,
            gid: row.try_get::<i64, _>("u_posix_gid")? as u32,
        },
        is_platform_admin: row.try_get("u_admin")?,
        created_at: from_micros(row.try_get("u_created_at")?)?,
    })
}

fn org_from(row: &SqliteRow) -> StoreResult<Org> {
    Ok(Org {
        id: OrgId(row.try_get("o_id")?),
        name: OrgName::parse(row.try_get::<&str, _>("o_name")?)?,
        slug: Slug::parse(row.try_get::<&str, _>("o_slug")?)?,
        personal: row.try_get("o_personal")?,
        created_at: from_micros(row.try_get("o_created_at")?)?,
    })
}

fn project_from(row: &SqliteRow) -> StoreResult<Project> {
    Ok(Project {
        id: ProjectId(row.try_get("p_id")?),
        org_id: OrgId(row.try_get("p_org_id")?),
        name: ProjectName::parse(row.try_get::<&str, _>("p_name")?)?,
        status: ProjectStatus::parse(row.try_get::<&str, _>("p_status")?)?,
        redirect_uris: json_list(
            row.try_get("p_redirect_uris")?,
            portcullis_core::RedirectUri::parse,
        )?,
        allowed_origins: json_list(
            row.try_get("p_allowed_origins")?,
            portcullis_core::Origin::parse,
        )?,
        created_at: from_micros(row.try_get("p_created_at")?)?,
        updated_at: from_micros(row.try_get("p_updated_at")?)?,
    })
}

fn session_from(row: &SqliteRow) -> StoreResult<Session> {
    let hash: Vec<u8> = row.try_get("s_token_hash")?;
    Ok(Session {
        id: SessionId(row.try_get("s_id")?),
        user_id: UserId(row.try_get("s_user_id")?),
        token_hash: TokenHash::from_slice(&hash)
            .ok_or_else(|| StoreError::Corrupt("token hash length".into()))?,
        created_at: from_micros(row.try_get("s_created_at")?)?,
        last_seen_at: from_micros(row.try_get("s_last_seen_at")?)?,
        expires_at: from_micros(row.try_get("s_expires_at")?)?,
        revoked_at: opt_micros(row.try_get("s_revoked_at")?)?,
        ip: row.try_get("s_ip")?,
        user_agent: row.try_get("s_user_agent")?,
        device: row
            .try_get::<Option<String>, _>("s_device_platform")?
            .map(|platform| -> StoreResult<_> {
                Ok(portcullis_core::DeviceInfo {
                    platform,
                    model: row.try_get("s_device_model")?,
                    app_version: row.try_get("s_app_version")?,
                })
            })
            .transpose()?,
    })
}

fn membership_from(row: &SqliteRow) -> StoreResult<Membership> {
    Ok(Membership {
        org_id: OrgId(row.try_get("org_id")?),
        user_id: UserId(row.try_get("user_id")?),
        role: role(row.try_get("role")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        deleted_at: opt_micros(row.try_get("deleted_at")?)?,
    })
}

fn audit_from(row: &SqliteRow) -> StoreResult<AuditEvent> {
    let details: String = row.try_get("details")?;
    Ok(AuditEvent {
        id: AuditEventId(row.try_get("id")?),
        at: from_micros(row.try_get("at")?)?,
        org_id: row.try_get::<Option<Uuid>, _>("org_id")?.map(OrgId),
        actor_id: row.try_get::<Option<Uuid>, _>("actor_id")?.map(UserId),
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: Outcome::parse(row.try_get("outcome")?),
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        correlation_id: row.try_get("correlation_id")?,
        details: serde_json::from_str(&details).unwrap_or_default(),
    })
}

// ---- statements shared by several operations ------------------------------------------------

async fn insert_audit(tx: &mut Transaction<'static, Sqlite>, e: &AuditEvent) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, org_id, at, actor_id, action, target, outcome, ip, user_agent, correlation_id, details) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.id.0)
    .bind(e.org_id.map(|o| o.0))
    .bind(micros(e.at))
    .bind(e.actor_id.map(|u| u.0))
    .bind(&e.action)
    .bind(&e.target)
    .bind(e.outcome.as_str())
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.correlation_id)
    .bind(e.details.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new session with its `session.created` event.
async fn insert_session(
    tx: &mut Transaction<'static, Sqlite>,
    s: &Session,
    ctx: &AuditContext,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, ip, user_agent, \
         device_platform, device_model, app_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s.id.0)
    .bind(s.user_id.0)
    .bind(&s.token_hash.0[..])
    .bind(micros(s.created_at))
    .bind(micros(s.last_seen_at))
    .bind(micros(s.expires_at))
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.device.as_ref().map(|d| &d.platform))
    .bind(s.device.as_ref().and_then(|d| d.model.as_ref()))
    .bind(s.device.as_ref().and_then(|d| d.app_version.as_ref()))
    .execute(&mut **tx)
    .await?;
    insert_audit(tx, &crate::events::session_created(ctx, s)).await
}

async fn insert_user(
    tx: &mut Transaction<'static, Sqlite>,
    id: UserId,
    email: &Email,
    name: Option<&UserName>,
    password_hash: Option<&PasswordHash>,
    now: Timestamp,
) -> StoreResult<User> {
    let n: i64 = sqlx::query_scalar("INSERT INTO posix_ids DEFAULT VALUES RETURNING id")
        .fetch_one(&mut **tx)
        .await?;
    let posix = PosixId::from_allocated(n as u32);
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, posix_uid, posix_gid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.0)
    .bind(email.as_str())
    .bind(name.map(UserName::as_str))
    .bind(password_hash.map(PasswordHash::as_str))
    .bind(posix.uid as i64)
    .bind(posix.gid as i64)
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(User {
        id,
        email: email.clone(),
        name: name.cloned(),
        posix,
        is_platform_admin: false,
        created_at: now,
    })
}

async fn insert_org_with_default_project(
    tx: &mut Transaction<'static, Sqlite>,
    owner: UserId,
    org: &Org,
    project: &Project,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO orgs (id, name, slug, personal, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(org.id.0)
        .bind(org.name.as_str())
        .bind(org.slug.as_str())
        .bind(org.personal)
        .bind(micros(org.created_at))
        .execute(&mut **tx)
        .await?;
    insert_project(tx, project, true).await?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)",
    )
    .bind(org.id.0)
    .bind(owner.0)
    .bind(micros(org.created_at))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) VALUES (?, ?, ?, 'owner', ?)",
    )
    .bind(project.id.0)
    .bind(org.id.0)
    .bind(owner.0)
    .bind(micros(org.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Self-signup's rows in the caller's transaction: the user, a personal org with its default
/// project, owner memberships of both, and the bootstrap's audit events.
pub(super) async fn insert_signup_bootstrap(
    tx: &mut Transaction<'static, Sqlite>,
    b: &SignupBootstrap,
    ctx: &AuditContext,
) -> StoreResult<User> {
    let user = insert_user(
        tx,
        b.user_id,
        &b.email,
        b.name.as_ref(),
        b.password_hash.as_ref(),
        b.org.created_at,
    )
    .await?;
    insert_org_with_default_project(tx, user.id, &b.org, &b.project).await?;
    for e in crate::events::bootstrap(ctx, b, &user) {
        insert_audit(tx, &e).await?;
    }
    Ok(user)
}

async fn insert_project(
    tx: &mut Transaction<'static, Sqlite>,
    p: &Project,
    is_default: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, org_id, name, is_default, status, redirect_uris, allowed_origins, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(p.id.0)
    .bind(p.org_id.0)
    .bind(p.name.as_str())
    .bind(is_default)
    .bind(p.status.as_str())
    .bind(to_json_list(&p.redirect_uris, |u| u.as_str()))
    .bind(to_json_list(&p.allowed_origins, |o| o.as_str()))
    .bind(micros(p.created_at))
    .bind(micros(p.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn member_record(
    tx: &mut Transaction<'static, Sqlite>,
    org_id: OrgId,
    user_id: UserId,
) -> StoreResult<MemberRecord> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        ", m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = ? AND m.user_id = ? AND m.deleted_at IS NULL"
    ))
    .bind(org_id.0)
    .bind(user_id.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(MemberRecord {
        user: user_from(&row)?,
        role: role(row.try_get("role")?)?,
        joined_at: from_micros(row.try_get("joined_at")?)?,
    })
}

/// The active membership, or NotFound; refuses to take away the org's last owner.
async fn guard_last_owner(
    tx: &mut Transaction<'static, Sqlite>,
    org_id: OrgId,
    user_id: UserId,
    new_role: Option<Role>,
) -> StoreResult<Role> {
    let current: String = sqlx::query_scalar(
        "SELECT role FROM memberships WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL",
    )
    .bind(org_id.0)
    .bind(user_id.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let current = role(&current)?;
    if current == Role::Owner && new_role != Some(Role::Owner) {
        let owners: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM memberships WHERE org_id = ? AND role = 'owner' AND deleted_at IS NULL",
        )
        .bind(org_id.0)
        .fetch_one(&mut **tx)
        .await?;
        if owners <= 1 {
            return Err(StoreError::Conflict(
                "an organization must keep at least one owner".into(),
            ));
        }
    }
    Ok(current)
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

    async fn listen_changes(&self, _sink: Arc<dyn ChangeSink>) -> StoreResult<bool> {
        Ok(false)
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            ", u.password_hash FROM users u WHERE u.email = ? AND u.deleted_at IS NULL"
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
            " FROM users u WHERE u.id = ? AND u.deleted_at IS NULL"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn bootstrap_signup(&self, b: &SignupBootstrap, ctx: &AuditContext) -> StoreResult<User> {
        let mut tx = self.write_tx().await?;
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
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE users SET is_platform_admin = ? WHERE id = ? AND deleted_at IS NULL",
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
        tx.commit().await?;
        Ok(())
    }

    async fn project_status(&self, project_id: ProjectId) -> StoreResult<Option<ProjectStatus>> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM projects WHERE id = ?")
            .bind(project_id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(status.as_deref().map(ProjectStatus::parse).transpose()?)
    }

    async fn list_all_orgs(&self) -> StoreResult<Vec<Org>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            " FROM orgs o WHERE o.deleted_at IS NULL ORDER BY o.created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(org_from).collect()
    }

    async fn create_session(
        &self,
        s: &Session,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_session(&mut tx, s, ctx).await?;
        for e in also {
            insert_audit(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionWithUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            ", ",
            user_cols!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND u.deleted_at IS NULL"
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
        sqlx::query("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(micros(last_seen_at))
            .bind(micros(expires_at))
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
            " FROM sessions s WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? ORDER BY s.created_at DESC"
        ))
        .bind(user_id.0)
        .bind(micros(now))
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
        let mut tx = self.write_tx().await?;
        let now = portcullis_core::now();
        let n = sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL")
            .bind(micros(now))
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
        tx.commit().await?;
        Ok(true)
    }

    async fn membership(&self, org_id: OrgId, user_id: UserId) -> StoreResult<Option<Membership>> {
        let row = sqlx::query(
            "SELECT m.org_id, m.user_id, m.role, m.created_at, m.deleted_at FROM memberships m \
             JOIN orgs o ON o.id = m.org_id WHERE m.org_id = ? AND m.user_id = ? AND o.deleted_at IS NULL",
        )
        .bind(org_id.0)
        .bind(user_id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(membership_from).transpose()
    }

    async fn memberships_of_user(&self, user_id: UserId) -> StoreResult<Vec<MembershipView>> {
        let orgs = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            ", m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = ? AND m.deleted_at IS NULL AND o.deleted_at IS NULL ORDER BY o.created_at"
        ))
        .bind(user_id.0)
        .fetch_all(&self.pool)
        .await?;
        let projects = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            ", pm.role AS project_role FROM projects p \
             JOIN memberships m ON m.org_id = p.org_id AND m.user_id = ? AND m.deleted_at IS NULL \
             LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = m.user_id \
             ORDER BY p.created_at"
        ))
        .bind(user_id.0)
        .fetch_all(&self.pool)
        .await?;
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
            let project_role = row
                .try_get::<Option<String>, _>("project_role")?
                .as_deref()
                .map(role)
                .transpose()?;
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
        let row = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            ", m.org_id, m.user_id, m.role, m.created_at, m.deleted_at, pm.role AS project_role \
             FROM projects p JOIN orgs o ON o.id = p.org_id AND o.deleted_at IS NULL \
             LEFT JOIN memberships m ON m.org_id = p.org_id AND m.user_id = ? \
             LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = ? \
             WHERE p.id = ?"
        ))
        .bind(user_id.0)
        .bind(user_id.0)
        .bind(project_id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let has_membership = row.try_get::<Option<String>, _>("role")?.is_some();
        Ok(Some(ProjectAccessRecord {
            project: project_from(&row)?,
            org_membership: if has_membership {
                Some(membership_from(&row)?)
            } else {
                None
            },
            project_role: row
                .try_get::<Option<String>, _>("project_role")?
                .as_deref()
                .map(role)
                .transpose()?,
        }))
    }

    async fn create_org(
        &self,
        creator: UserId,
        org: &Org,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_org_with_default_project(&mut tx, creator, org, project).await?;
        for e in crate::events::org_created(ctx, org, project) {
            insert_audit(&mut tx, &e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn org(&self, access: &OrgAccess) -> StoreResult<Org> {
        let row = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            " FROM orgs o WHERE o.id = ? AND o.deleted_at IS NULL"
        ))
        .bind(access.org_id().0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        org_from(&row)
    }

    async fn list_members(&self, access: &OrgAccess) -> StoreResult<Vec<MemberRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            ", m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = ? AND m.deleted_at IS NULL ORDER BY m.created_at"
        ))
        .bind(access.org_id().0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRecord {
                    user: user_from(r)?,
                    role: role(r.try_get("role")?)?,
                    joined_at: from_micros(r.try_get("joined_at")?)?,
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
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.email = ? AND u.deleted_at IS NULL"
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
        let previous: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT deleted_at FROM memberships WHERE org_id = ? AND user_id = ?",
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
                sqlx::query("UPDATE memberships SET role = ?, created_at = ?, deleted_at = NULL WHERE org_id = ? AND user_id = ?")
                    .bind(m.role.as_str())
                    .bind(micros(now))
                    .bind(org_id.0)
                    .bind(user.id.0)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)")
                    .bind(org_id.0)
                    .bind(user.id.0)
                    .bind(m.role.as_str())
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) \
             SELECT p.id, p.org_id, ?, 'member', ? FROM projects p WHERE p.org_id = ? AND p.is_default = 1 \
             ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(user.id.0)
        .bind(micros(now))
        .bind(org_id.0)
        .execute(&mut *tx)
        .await?;
        for e in crate::events::member_added(ctx, org_id, &user, m.role, user_created) {
            insert_audit(&mut tx, &e).await?;
        }
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
        let mut tx = self.write_tx().await?;
        let old = guard_last_owner(&mut tx, org_id, user_id, Some(new_role)).await?;
        sqlx::query("UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL")
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
        let mut tx = self.write_tx().await?;
        guard_last_owner(&mut tx, org_id, user_id, None).await?;
        sqlx::query("UPDATE memberships SET deleted_at = ? WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL")
            .bind(micros(portcullis_core::now()))
            .bind(org_id.0)
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM project_memberships WHERE org_id = ? AND user_id = ?")
            .bind(org_id.0)
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            &crate::events::member_removed(ctx, org_id, user_id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_org_sessions(
        &self,
        access: &OrgAccess,
        now: Timestamp,
    ) -> StoreResult<Vec<MemberSession>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            ", u.email AS u_email FROM sessions s \
             JOIN memberships m ON m.user_id = s.user_id AND m.org_id = ? AND m.deleted_at IS NULL \
             JOIN users u ON u.id = s.user_id \
             WHERE s.revoked_at IS NULL AND s.expires_at > ? ORDER BY s.created_at DESC"
        ))
        .bind(access.org_id().0)
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
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
        let mut tx = self.write_tx().await?;
        let owner: Option<Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL \
             AND user_id IN (SELECT user_id FROM memberships WHERE org_id = ? AND deleted_at IS NULL) RETURNING user_id",
        )
        .bind(micros(portcullis_core::now()))
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
        tx.commit().await?;
        Ok(true)
    }

    async fn list_projects(&self, access: &OrgAccess) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            " FROM projects p WHERE p.org_id = ? ORDER BY p.created_at"
        ))
        .bind(access.org_id().0)
        .fetch_all(&self.pool)
        .await?;
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
        let mut tx = self.write_tx().await?;
        insert_project(&mut tx, project, false).await?;
        insert_audit(&mut tx, &crate::events::project_created(ctx, project)).await?;
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
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            " FROM projects p WHERE p.id = ? AND p.org_id = ?"
        ))
        .bind(id.0)
        .bind(access.org_id().0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let (project, changed) = patch.apply(project_from(&row)?, portcullis_core::now());
        sqlx::query("UPDATE projects SET name = ?, status = ?, redirect_uris = ?, allowed_origins = ?, updated_at = ? WHERE id = ?")
            .bind(project.name.as_str())
            .bind(project.status.as_str())
            .bind(to_json_list(&project.redirect_uris, |u| u.as_str()))
            .bind(to_json_list(&project.allowed_origins, |o| o.as_str()))
            .bind(micros(project.updated_at))
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            &crate::events::project_updated(ctx, &project, &changed),
        )
        .await?;
        tx.commit().await?;
        Ok(project)
    }

    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn query_audit(
        &self,
        access: &OrgAccess,
        q: &AuditQuery,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, org_id, at, actor_id, action, target, outcome, ip, user_agent, correlation_id, details \
             FROM audit_events e \
             WHERE (e.org_id = ?1 OR (e.org_id IS NULL AND e.actor_id IN \
                    (SELECT user_id FROM memberships WHERE org_id = ?1 AND deleted_at IS NULL))) \
               AND (?2 IS NULL OR e.correlation_id = ?2) \
               AND (?3 IS NULL OR e.action = ?3) \
               AND (?4 IS NULL OR e.actor_id = ?4) \
               AND (?5 IS NULL OR e.at >= ?5) \
               AND (?6 IS NULL OR e.at < ?6) \
               AND (?7 IS NULL OR e.id < ?7) \
             ORDER BY e.id DESC LIMIT ?8",
        )
        .bind(access.org_id().0)
        .bind(&q.correlation_id)
        .bind(&q.action)
        .bind(q.actor_id.map(|a| a.0))
        .bind(q.since.map(micros))
        .bind(q.until.map(micros))
        .bind(q.before.map(|b| b.0))
        .bind(q.limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }
}
