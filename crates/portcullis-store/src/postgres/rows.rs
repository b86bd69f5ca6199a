//! Column lists and row decoders: what a `SELECT` hands back, turned into domain types.

use portcullis_core::{
    AuditEvent, AuditEventId, Email, Membership, Org, OrgId, OrgName, Origin, Outcome, PosixId,
    Project, ProjectId, ProjectName, ProjectStatus, RedirectUri, Role, Session, SessionId, Slug,
    TokenHash, User, UserId, UserName,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::grants::{AuthCode, RefreshFamily, RefreshTokenState};
use crate::outbox::OutboxRecord;
use crate::{StoreError, StoreResult};
use portcullis_core::OutboxEvent;
use portcullis_core::Timestamp;
use portcullis_core::oauth::ClientId;

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

pub(super) fn role(s: &str) -> StoreResult<Role> {
    Ok(Role::parse(s)?)
}

pub(super) fn opt_role(s: Option<String>) -> StoreResult<Option<Role>> {
    s.as_deref().map(role).transpose()
}

fn posix_part(row: &PgRow, col: &str) -> StoreResult<u32> {
    let n: i64 = row.try_get(col)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{col} {n} out of range")))
}

/// A JSON array of strings, as the project's list columns hold them.
pub(super) fn json_list<T>(
    row: &PgRow,
    col: &str,
    parse: impl Fn(&str) -> Result<T, portcullis_core::ValidationError>,
) -> StoreResult<Vec<T>> {
    let Json(items): Json<Vec<String>> = row.try_get(col)?;
    items
        .iter()
        .map(|s| parse(s).map_err(StoreError::from))
        .collect()
}

pub(super) fn to_json_list<T>(items: &[T], as_str: impl Fn(&T) -> &str) -> Json<Vec<&str>> {
    Json(items.iter().map(as_str).collect())
}

pub(super) fn user_from(row: &PgRow) -> StoreResult<User> {
    let name: Option<String> = row.try_get("u_name")?;
    Ok(User {
        id: UserId(row.try_get("u_id")?),
        email: Email::parse(row.try_get::<&str, _>("u_email")?)?,
        name: name.as_deref().map(UserName::parse).transpose()?,
        posix: PosixId {
            uid: posix_part(row, "u_posix_uid")?,
            gid: posix_part(row, "u_posix_gid")?,
        },
        is_platform_admin: row.try_get("u_admin")?,
        created_at: row.try_get("u_created_at")?,
    })
}

pub(super) fn org_from(row: &PgRow) -> StoreResult<Org> {
    Ok(Org {
        id: OrgId(row.try_get("o_id")?),
        name: OrgName::parse(row.try_get::<&str, _>("o_name")?)?,
        slug: Slug::parse(row.try_get::<&str, _>("o_slug")?)?,
        personal: row.try_get("o_personal")?,
        created_at: row.try_get("o_created_at")?,
    })
}

pub(super) fn project_from(row: &PgRow) -> StoreResult<Project> {
    Ok(Project {
        id: ProjectId(row.try_get("p_id")?),
        org_id: OrgId(row.try_get("p_org_id")?),
        name: ProjectName::parse(row.try_get::<&str, _>("p_name")?)?,
        status: ProjectStatus::parse(row.try_get::<&str, _>("p_status")?)?,
        redirect_uris: json_list(row, "p_redirect_uris", RedirectUri::parse)?,
        allowed_origins: json_list(row, "p_allowed_origins", Origin::parse)?,
        created_at: row.try_get("p_created_at")?,
        updated_at: row.try_get("p_updated_at")?,
    })
}

pub(super) fn session_from(row: &PgRow) -> StoreResult<Session> {
    let hash: Vec<u8> = row.try_get("s_token_hash")?;
    Ok(Session {
        id: SessionId(row.try_get("s_id")?),
        user_id: UserId(row.try_get("s_user_id")?),
        token_hash: TokenHash::from_slice(&hash)
            .ok_or_else(|| StoreError::Corrupt("token hash length".into()))?,
        created_at: row.try_get("s_created_at")?,
        last_seen_at: row.try_get("s_last_seen_at")?,
        expires_at: row.try_get("s_expires_at")?,
        revoked_at: row.try_get("s_revoked_at")?,
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

pub(super) fn membership_from(row: &PgRow) -> StoreResult<Membership> {
    Ok(Membership {
        org_id: OrgId(row.try_get("org_id")?),
        user_id: UserId(row.try_get("user_id")?),
        role: role(row.try_get("role")?)?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

pub(super) fn audit_from(row: &PgRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: AuditEventId(row.try_get("id")?),
        at: row.try_get("at")?,
        org_id: row.try_get::<Option<Uuid>, _>("org_id")?.map(OrgId),
        actor_id: row.try_get::<Option<Uuid>, _>("actor_id")?.map(UserId),
        actor_key: row.try_get("actor_key")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: Outcome::parse(row.try_get("outcome")?),
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        correlation_id: row.try_get("correlation_id")?,
        details: row.try_get("details")?,
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
pub(super) fn token_state_from(row: &PgRow) -> StoreResult<RefreshTokenState> {
    let used_at: Option<Timestamp> = row.try_get("t_used_at")?;
    Ok(RefreshTokenState {
        family: family_from(row)?,
        created_at: row.try_get("t_created_at")?,
        expires_at: row.try_get("t_expires_at")?,
        used: used_at.is_some(),
        family_revoked: row
            .try_get::<Option<Timestamp>, _>("f_revoked_at")?
            .is_some(),
        used_at,
        family_expires_at: row.try_get("f_expires_at")?,
        ends_with_session: row.try_get("f_ends_with_session")?,
        successor: row
            .try_get::<Option<Vec<u8>>, _>("t_successor_hash")?
            .map(hash)
            .transpose()?,
    })
}

pub(super) fn family_from(row: &PgRow) -> StoreResult<RefreshFamily> {
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
        auth_time: row.try_get("f_auth_time")?,
        created_at: row.try_get("f_created_at")?,
    })
}

pub(super) fn code_from(row: &PgRow) -> StoreResult<AuthCode> {
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
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
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

pub(super) fn outbox_from(row: &PgRow) -> StoreResult<OutboxRecord> {
    let attempts: i32 = row.try_get("attempts")?;
    Ok(OutboxRecord {
        id: row.try_get("id")?,
        event: OutboxEvent {
            org_id: OrgId(row.try_get("org_id")?),
            project_id: row.try_get::<Option<Uuid>, _>("project_id")?.map(ProjectId),
            event_type: row.try_get("event_type")?,
            payload: row.try_get("payload")?,
        },
        created_at: row.try_get("created_at")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("outbox attempts {attempts}")))?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}
