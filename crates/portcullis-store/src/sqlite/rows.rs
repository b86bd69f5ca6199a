//! Value conversions, column lists and row decoders: what a `SELECT` hands back, turned
//! into domain types.

use portcullis_core::{
    AuditEvent, AuditEventId, Email, Membership, Org, OrgId, OrgName, Outcome, PosixId, Project,
    ProjectId, ProjectName, ProjectStatus, Role, Session, SessionId, Slug, Timestamp, TokenHash,
    User, UserId, UserName,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::grants::{AuthCode, RefreshFamily, RefreshTokenState};
use crate::outbox::OutboxRecord;
use crate::{StoreError, StoreResult};
use portcullis_core::OutboxEvent;
use portcullis_core::oauth::ClientId;

pub(super) fn micros(t: Timestamp) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub(super) fn from_micros(v: i64) -> StoreResult<Timestamp> {
    Timestamp::from_unix_timestamp_nanos(v as i128 * 1000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {v}: {e}")))
}

pub(super) fn opt_micros(v: Option<i64>) -> StoreResult<Option<Timestamp>> {
    v.map(from_micros).transpose()
}

pub(super) fn role(s: &str) -> StoreResult<Role> {
    Ok(Role::parse(s)?)
}

pub(super) fn json_list<T>(
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

pub(super) fn to_json_list<T>(items: &[T], as_str: impl Fn(&T) -> &str) -> String {
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

pub(super) use {org_cols, project_cols, session_cols, user_cols};

pub(super) fn user_from(row: &SqliteRow) -> StoreResult<User> {
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

pub(super) fn org_from(row: &SqliteRow) -> StoreResult<Org> {
    Ok(Org {
        id: OrgId(row.try_get("o_id")?),
        name: OrgName::parse(row.try_get::<&str, _>("o_name")?)?,
        slug: Slug::parse(row.try_get::<&str, _>("o_slug")?)?,
        personal: row.try_get("o_personal")?,
        created_at: from_micros(row.try_get("o_created_at")?)?,
    })
}

pub(super) fn project_from(row: &SqliteRow) -> StoreResult<Project> {
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

pub(super) fn session_from(row: &SqliteRow) -> StoreResult<Session> {
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

pub(super) fn membership_from(row: &SqliteRow) -> StoreResult<Membership> {
    Ok(Membership {
        org_id: OrgId(row.try_get("org_id")?),
        user_id: UserId(row.try_get("user_id")?),
        role: role(row.try_get("role")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        deleted_at: opt_micros(row.try_get("deleted_at")?)?,
    })
}

pub(super) fn audit_from(row: &SqliteRow) -> StoreResult<AuditEvent> {
    let details: String = row.try_get("details")?;
    Ok(AuditEvent {
        id: AuditEventId(row.try_get("id")?),
        at: from_micros(row.try_get("at")?)?,
        org_id: row.try_get::<Option<Uuid>, _>("org_id")?.map(OrgId),
        actor_id: row.try_get::<Option<Uuid>, _>("actor_id")?.map(UserId),
        actor_key: row.try_get("actor_key")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: Outcome::parse(row.try_get("outcome")?),
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        correlation_id: row.try_get("correlation_id")?,
        details: serde_json::from_str(&details).unwrap_or_default(),
    })
}

// ---- OAuth grants ---------------------------------------------------------------------------

pub(super) fn client_id(s: String) -> StoreResult<ClientId> {
    ClientId::parse(&s).ok_or_else(|| StoreError::Corrupt("client id".into()))
}

pub(super) fn hash(bytes: Vec<u8>) -> StoreResult<TokenHash> {
    TokenHash::from_slice(&bytes).ok_or_else(|| StoreError::Corrupt("hash length".into()))
}

macro_rules! family_cols {
    () => {
        "f.id AS f_id, f.client_id AS f_client_id, f.org_id AS f_org_id, f.project_id AS f_project_id, \
         f.user_id AS f_user_id, f.session_id AS f_session_id, f.scope AS f_scope, f.auth_time AS f_auth_time, \
         f.created_at AS f_created_at, f.revoked_at AS f_revoked_at, \
         f.ends_with_session AS f_ends_with_session, f.expires_at AS f_expires_at"
    };
}

macro_rules! token_cols {
    () => {
        "t.created_at AS t_created_at, t.expires_at AS t_expires_at, t.used_at AS t_used_at, \
         t.successor_hash AS t_successor_hash"
    };
}
pub(super) use {family_cols, token_cols};

/// A refresh token with its family (`token_cols!` and `family_cols!`).
pub(super) fn token_state_from(row: &SqliteRow) -> StoreResult<RefreshTokenState> {
    let used_at = opt_micros(row.try_get("t_used_at")?)?;
    Ok(RefreshTokenState {
        family: family_from(row)?,
        created_at: from_micros(row.try_get("t_created_at")?)?,
        expires_at: from_micros(row.try_get("t_expires_at")?)?,
        used: used_at.is_some(),
        family_revoked: row.try_get::<Option<i64>, _>("f_revoked_at")?.is_some(),
        used_at,
        family_expires_at: opt_micros(row.try_get("f_expires_at")?)?,
        ends_with_session: row.try_get("f_ends_with_session")?,
        successor: row
            .try_get::<Option<Vec<u8>>, _>("t_successor_hash")?
            .map(hash)
            .transpose()?,
    })
}

pub(super) fn family_from(row: &SqliteRow) -> StoreResult<RefreshFamily> {
    Ok(RefreshFamily {
        id: portcullis_core::FamilyId(row.try_get("f_id")?),
        client_id: client_id(row.try_get("f_client_id")?)?,
        org_id: OrgId(row.try_get("f_org_id")?),
        project_id: ProjectId(row.try_get("f_project_id")?),
        user_id: UserId(row.try_get("f_user_id")?),
        session_id: row
            .try_get::<Option<Uuid>, _>("f_session_id")?
            .map(SessionId),
        scope: row.try_get("f_scope")?,
        auth_time: from_micros(row.try_get("f_auth_time")?)?,
        created_at: from_micros(row.try_get("f_created_at")?)?,
    })
}

pub(super) fn code_from(row: &SqliteRow) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        code_hash: hash(row.try_get("code_hash")?)?,
        client_id: client_id(row.try_get("client_id")?)?,
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        user_id: UserId(row.try_get("user_id")?),
        session_id: row.try_get::<Option<Uuid>, _>("session_id")?.map(SessionId),
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        auth_time: from_micros(row.try_get("auth_time")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
    })
}

// ---- the outbox ----------------------------------------------------------------------------

macro_rules! outbox_cols {
    () => {
        "o.id, o.org_id, o.project_id, o.event_type, o.payload, o.created_at, o.attempts, \
         o.next_attempt_at, o.delivered_at"
    };
}
pub(super) use outbox_cols;

pub(super) fn outbox_from(row: &SqliteRow) -> StoreResult<OutboxRecord> {
    let payload: String = row.try_get("payload")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(OutboxRecord {
        id: row.try_get("id")?,
        event: OutboxEvent {
            org_id: OrgId(row.try_get("org_id")?),
            project_id: row.try_get::<Option<Uuid>, _>("project_id")?.map(ProjectId),
            event_type: row.try_get("event_type")?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
        },
        created_at: from_micros(row.try_get("created_at")?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("outbox attempts {attempts}")))?,
        next_attempt_at: from_micros(row.try_get("next_attempt_at")?)?,
        delivered_at: opt_micros(row.try_get("delivered_at")?)?,
    })
}
