//! Organizations, their members, their members' sessions, projects and audit trail.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use portcullis_core::authz::may_manage_member;
use portcullis_core::{
    AuditEventId, AuditQuery, Email, Org, OrgId, OrgName, Project, ProjectId, ProjectName,
    ProjectStatus, Role, SessionId, Slug, UserId, UserName,
};
use portcullis_core::{Origin, RedirectUri};
use portcullis_store::NewMember;
use serde::Deserialize;
use serde_json::json;

use crate::dto::*;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::routes::auth::default_project;
use crate::state::AppState;

fn org_id(raw: &str) -> ApiResult<OrgId> {
    OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

fn user_id(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).ok_or_else(|| ApiError::not_found("no such member"))
}

#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = CreateOrgRequest,
    responses(
        (status = 201, description = "Created, with a default project; the caller owns both", body = CreateOrgResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 409, description = "conflict: slug taken", body = ErrorBody),
    ))]
pub async fn create_org(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<CreateOrgResponse>)> {
    let name = OrgName::parse(&req.name)?;
    let slug = match &req.slug {
        Some(s) => Slug::parse(s)?,
        None => {
            let id = uuid::Uuid::now_v7().simple().to_string();
            Slug::derive(name.as_str()).with_suffix(&id[24..])
        }
    };
    let now = portcullis_core::now();
    let org = Org {
        id: OrgId::new(),
        name,
        slug,
        personal: false,
        created_at: now,
    };
    let project = default_project(org.id, now)?;
    state
        .store
        .create_org(auth.principal.user_id, &org, &project, &auth.audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateOrgResponse {
            org: (&org).into(),
            project: (&project).into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/orgs", tag = "orgs",
    responses((status = 200, description = "Orgs the caller is an active member of, with the role", body = OrgList)))]
pub async fn list_orgs(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<OrgList>> {
    let views = state
        .store
        .memberships_of_user(auth.principal.user_id)
        .await?;
    Ok(Json(OrgList {
        orgs: views
            .iter()
            .map(|v| OrgWithRole {
                org: (&v.org).into(),
                role: role_str(v.role),
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}", tag = "orgs",
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = OrgDto),
        (status = 403, description = "forbidden: membership ended", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
    ))]
pub async fn get_org(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgDto>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Member).await?;
    Ok(Json((&state.store.org(&access).await?).into()))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "members",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, body = MemberList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<MemberList>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Member).await?;
    let members = state.store.list_members(&access).await?;
    Ok(Json(MemberList {
        members: members.iter().map(MemberDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/members", tag = "members", request_body = AddMemberRequest,
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 201, description = "Added; an account is created (without a password) when none has this email", body = AddMemberResponse),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: already a member", body = ErrorBody),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<AddMemberResponse>)> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let role = Role::parse(&req.role)?;
    if !may_manage_member(access.role(), None, Some(role)) {
        return Err(ApiError::forbidden("only owners may add owners")
            .with_details(json!({"required_role": "owner"})));
    }
    let member = NewMember {
        new_user_id: UserId::new(),
        email: Email::parse(&req.email)?,
        name: req.name.as_deref().map(UserName::parse).transpose()?,
        password_hash: None,
        role,
    };
    let added = state
        .store
        .add_member(&access, &member, &auth.audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AddMemberResponse {
            member: (&added.member).into(),
            user_created: added.user_created,
        }),
    ))
}

#[utoipa::path(patch, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "members", request_body = ChangeRoleRequest,
    params(("org_id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = MemberDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: the org would have no owner left", body = ErrorBody),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, uid)): Path<(String, String)>,
    ApiJson(req): ApiJson<ChangeRoleRequest>,
) -> ApiResult<Json<MemberDto>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let target = user_id(&uid)?;
    let role = Role::parse(&req.role)?;
    let current = state
        .store
        .membership(access.org_id(), target)
        .await?
        .filter(|m| m.is_active())
        .ok_or_else(|| ApiError::not_found("no such member"))?;
    if !may_manage_member(access.role(), Some(current.role), Some(role)) {
        return Err(
            ApiError::forbidden("only owners may grant or change the owner role")
                .with_details(json!({"required_role": "owner"})),
        );
    }
    let record = state
        .store
        .change_member_role(&access, target, role, &auth.audit)
        .await?;
    Ok(Json((&record).into()))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Membership ended (soft delete); a member may remove themselves"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: the org would have no owner left", body = ErrorBody),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let target = user_id(&uid)?;
    let leaving = target == auth.principal.user_id;
    let needed = if leaving { Role::Member } else { Role::Admin };
    let access = auth.org_access(&state, org_id(&id)?, needed).await?;
    let current = state
        .store
        .membership(access.org_id(), target)
        .await?
        .filter(|m| m.is_active())
        .ok_or_else(|| ApiError::not_found("no such member"))?;
    if !leaving && !may_manage_member(access.role(), Some(current.role), None) {
        return Err(ApiError::forbidden("only owners may remove owners")
            .with_details(json!({"required_role": "owner"})));
    }
    state
        .store
        .remove_member(&access, target, &auth.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/sessions", tag = "members",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Active sessions of the org's members", body = OrgSessionList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_org_sessions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgSessionList>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let sessions = state
        .store
        .list_org_sessions(&access, portcullis_core::now())
        .await?;
    let current = auth.principal.session_id;
    Ok(Json(OrgSessionList {
        sessions: sessions
            .iter()
            .map(|s| OrgSessionDto::new(s, current))
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/sessions/{id}", tag = "members",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Revoked on every node"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_org_session(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let sid = SessionId::parse(&sid).ok_or_else(|| ApiError::not_found("no such session"))?;
    if !state
        .store
        .revoke_org_session(&access, sid, &auth.audit)
        .await?
    {
        return Err(ApiError::not_found("no such session"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/projects", tag = "projects",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProjectList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_projects(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectList>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Member).await?;
    let mut projects = state.store.list_projects(&access).await?;
    if !access.role().can_administer() {
        // Members see only the projects they belong to.
        let mine = state
            .store
            .memberships_of_user(auth.principal.user_id)
            .await?;
        let visible: Vec<ProjectId> = mine
            .iter()
            .filter(|m| m.org.id == access.org_id())
            .flat_map(|m| m.projects.iter().map(|p| p.project.id))
            .collect();
        projects.retain(|p| visible.contains(&p.id));
    }
    Ok(Json(ProjectList {
        projects: projects.iter().map(ProjectDto::from).collect(),
    }))
}

pub fn parse_redirect_uris(raw: &[String]) -> ApiResult<Vec<RedirectUri>> {
    Ok(raw
        .iter()
        .map(|s| RedirectUri::parse(s))
        .collect::<Result<_, _>>()?)
}

pub fn parse_origins(raw: &[String]) -> ApiResult<Vec<Origin>> {
    Ok(raw
        .iter()
        .map(|s| Origin::parse(s))
        .collect::<Result<_, _>>()?)
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/projects", tag = "projects", request_body = CreateProjectRequest,
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 201, body = ProjectDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectDto>)> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let now = portcullis_core::now();
    let project = Project {
        id: ProjectId::new(),
        org_id: access.org_id(),
        name: ProjectName::parse(&req.name)?,
        status: ProjectStatus::Active,
        redirect_uris: parse_redirect_uris(&req.redirect_uris)?,
        allowed_origins: parse_origins(&req.allowed_origins)?,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .create_project(&access, &project, &auth.audit)
        .await?;
    Ok((StatusCode::CREATED, Json((&project).into())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    pub correlation_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn parse_time(field: &str, raw: &Option<String>) -> ApiResult<Option<portcullis_core::Timestamp>> {
    raw.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    ApiError::invalid_field(field, format!("{field} must be an RFC 3339 timestamp"))
                },
            )
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/audit", tag = "audit",
    params(("org_id" = uuid::Uuid, Path), AuditParams),
    responses((status = 200, description = "Newest first", body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    query: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let Query(p) = query
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {}", e.body_text())))?;
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 200",
        ));
    }
    let q = AuditQuery {
        correlation_id: p.correlation_id,
        action: p.action,
        actor_id: p
            .actor_id
            .as_deref()
            .map(|s| {
                UserId::parse(s)
                    .ok_or_else(|| ApiError::invalid_field("actor_id", "actor_id must be a UUID"))
            })
            .transpose()?,
        since: parse_time("since", &p.since)?,
        until: parse_time("until", &p.until)?,
        limit: limit + 1,
        before: p
            .cursor
            .as_deref()
            .map(|s| {
                AuditEventId::parse(s).ok_or_else(|| {
                    ApiError::invalid_field("cursor", "cursor is not one this server issued")
                })
            })
            .transpose()?,
    };
    let mut events = state.store.query_audit(&access, &q).await?;
    let next_cursor = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(Json(AuditPage {
        events: events.iter().map(AuditEventDto::from).collect(),
        next_cursor,
    }))
}
