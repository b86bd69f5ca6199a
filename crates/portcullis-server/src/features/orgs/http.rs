//! Organizations, their members, their members' sessions, projects and audit trail.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use portcullis_core::{
    AuditEventId, AuditQuery, Email, OrgId, OrgName, Origin, ProjectName, RedirectUri, Role,
    SessionId, Slug, UserId, UserName,
};
use serde::Deserialize;
use serde_json::json;

use crate::features::orgs::service::{
    AUDIT_PAGE_SIZE, MemberInvite, NewProject, OrgError, Orgs, role_to_remove,
};
use crate::http::dto::*;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, OrgCaller};
use crate::state::AppState;

impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::OnlyOwnersAddOwners
            | OrgError::OnlyOwnersChangeOwners
            | OrgError::OnlyOwnersRemoveOwners => {
                ApiError::forbidden(e.to_string()).with_details(json!({"required_role": "owner"}))
            }
            OrgError::NoSuchMember | OrgError::NoSuchSession => ApiError::not_found(e.to_string()),
            OrgError::DomainNotVerified(_) => ApiError::domain_not_verified(e.to_string())
                .with_details(json!({"invite": "POST /v1/orgs/{org_id}/invitations"})),
            OrgError::Randomness(_) => ApiError::internal(e),
            OrgError::Invalid(e) => e.into(),
            OrgError::Store(e) => e.into(),
        }
    }
}

fn orgs(state: &AppState) -> Orgs<'_> {
    Orgs {
        store: &*state.store,
        cache: &state.cache,
    }
}

/// Where the owner of an admin-created account sets a first password: the console's page,
/// which posts the token to `POST /v1/auth/password-setup`. The token rides in the
/// fragment, which browsers never send to a server.
fn password_setup_url(public_url: &str, token: &str) -> String {
    format!(
        "{}/password-setup#token={token}",
        public_url.trim_end_matches('/')
    )
}

fn org_id(raw: &str) -> ApiResult<OrgId> {
    OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

fn user_id(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).ok_or_else(|| OrgError::NoSuchMember.into())
}

fn redirect_uris(raw: &[String]) -> ApiResult<Vec<RedirectUri>> {
    Ok(raw
        .iter()
        .map(|s| RedirectUri::parse(s))
        .collect::<Result<_, _>>()?)
}

fn origins(raw: &[String]) -> ApiResult<Vec<Origin>> {
    Ok(raw
        .iter()
        .map(|s| Origin::parse(s))
        .collect::<Result<_, _>>()?)
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
    let slug = req.slug.as_deref().map(Slug::parse).transpose()?;
    let (org, project) = orgs(&state)
        .create(auth.principal.user_id, name, slug, &auth.audit)
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
    let views = orgs(&state).of_user(auth.principal.user_id).await?;
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
        (status = 200, description = "The org", body = OrgDto),
        (status = 403, description = "forbidden: membership ended", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
    ))]
pub async fn get_org(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgDto>> {
    let access = caller
        .org_access(&state, org_id(&id)?, Role::Member)
        .await?;
    Ok(Json((&orgs(&state).get(&access).await?).into()))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "members",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The org's active members with their roles, each marked managed (an email in one of the org's verified domains) or not", body = MemberList), (status = 403, description = "forbidden: membership ended", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<MemberList>> {
    let access = caller
        .org_access(&state, org_id(&id)?, Role::Member)
        .await?;
    let members = orgs(&state).members(&access).await?;
    Ok(Json(MemberList {
        members: members
            .iter()
            .map(|m| MemberDto::new(&m.record, m.managed))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/members", tag = "members", request_body = AddMemberRequest,
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 201, description = "Added. Only a managed account (an email in one of the org's verified domains; platform admins: any) is added directly; when none has this email an account is created, with a one-time `setup_url` for its first password", body = AddMemberResponse),
        (status = 400, description = "invalid_request: a bad or unknown field", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the org, or only owners may add owners; domain_not_verified: the email is not in one of the org's verified domains (invite instead)", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: already a member", body = ErrorBody),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<AddMemberResponse>)> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let role = Role::parse(&req.role)?;
    let invite = MemberInvite {
        email: Email::parse(&req.email)?,
        name: req.name.as_deref().map(UserName::parse).transpose()?,
        role,
    };
    let added = orgs(&state)
        .add_member(&access, invite, caller.audit())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AddMemberResponse {
            member: MemberDto::new(&added.added.member, added.managed),
            user_created: added.added.user_created,
            setup_url: added
                .setup_token
                .map(|t| password_setup_url(&state.public_url, &t)),
        }),
    ))
}

#[utoipa::path(patch, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "members", request_body = ChangeRoleRequest,
    params(("org_id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The membership with its new role", body = MemberDto), (status = 400, description = "invalid_request: unknown role", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the org, or only owners may grant or change the owner role", body = ErrorBody), (status = 404, description = "not_found: no such org or member visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: the org would have no owner left", body = ErrorBody),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path((id, uid)): Path<(String, String)>,
    ApiJson(req): ApiJson<ChangeRoleRequest>,
) -> ApiResult<Json<MemberDto>> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let target = user_id(&uid)?;
    let role = Role::parse(&req.role)?;
    let member = orgs(&state)
        .change_role(&access, target, role, caller.audit())
        .await?;
    Ok(Json(MemberDto::new(&member.record, member.managed)))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Membership ended (soft delete); a member may remove themselves"),
        (status = 403, description = "forbidden: not an admin of the org, or only owners may remove owners", body = ErrorBody), (status = 404, description = "not_found: no such org or member visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: the org would have no owner left", body = ErrorBody),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let target = user_id(&uid)?;
    // Leaving needs no admin rights; a key is nobody, so it never "leaves".
    let needed = caller
        .principal()
        .map_or(Role::Admin, |p| role_to_remove(p.user_id, target));
    let access = caller.org_access(&state, org_id(&id)?, needed).await?;
    orgs(&state)
        .remove_member(&access, target, caller.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/sessions", tag = "members",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Active sessions of the org's managed members (emails in its verified domains); platform admins see every member's", body = OrgSessionList), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody)))]
pub async fn list_org_sessions(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgSessionList>> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let sessions = orgs(&state).sessions(&access).await?;
    let current = caller.principal().and_then(|p| p.session_id);
    Ok(Json(OrgSessionList {
        sessions: sessions
            .iter()
            .map(|s| OrgSessionDto::new(s, current))
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/sessions/{id}", tag = "members",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Revoked on every node"), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such org, or no active session of a managed member (platform admins: of any member)", body = ErrorBody)))]
pub async fn revoke_org_session(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let sid = SessionId::parse(&sid).ok_or(OrgError::NoSuchSession)?;
    orgs(&state)
        .revoke_session(&access, sid, caller.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/projects", tag = "projects",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The org's projects; members see only those they belong to", body = ProjectList), (status = 403, description = "forbidden: membership ended", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody)))]
pub async fn list_projects(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectList>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Member).await?;
    let projects = orgs(&state)
        .projects(&access, auth.principal.user_id)
        .await?;
    Ok(Json(ProjectList {
        projects: projects.iter().map(ProjectDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/projects", tag = "projects", request_body = CreateProjectRequest,
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 201, description = "Created", body = ProjectDto), (status = 400, description = "invalid_request: a bad or unknown field", body = ErrorBody), (status = 402, description = "subscription_inactive or subscription_limit_exceeded (details: limit, used, resource)", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectDto>)> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let new = NewProject {
        name: ProjectName::parse(&req.name)?,
        redirect_uris: redirect_uris(&req.redirect_uris)?,
        allowed_origins: origins(&req.allowed_origins)?,
        mode: req
            .mode
            .as_deref()
            .map(portcullis_core::KeyMode::parse)
            .transpose()?
            .unwrap_or(portcullis_core::KeyMode::Live),
    };
    let project = orgs(&state)
        .create_project(&access, new, &auth.audit)
        .await?;
    Ok((StatusCode::CREATED, Json((&project).into())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    pub correlation_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    /// The secret key that acted, by its prefix (`sk_live_abcd1234`).
    pub actor_key: Option<String>,
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
    responses((status = 200, description = "Newest first: the org's events, and the sign-in and session events of its managed members (platform admins: of every member)", body = AuditPage), (status = 400, description = "invalid_request: a malformed filter or cursor", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    query: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let Query(p) = query
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {}", e.body_text())))?;
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
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
        actor_key: p
            .actor_key
            .as_deref()
            .map(AuditQuery::actor_key_filter)
            .transpose()?,
        since: parse_time("since", &p.since)?,
        until: parse_time("until", &p.until)?,
        limit: p.limit.unwrap_or(AUDIT_PAGE_SIZE),
        before: p
            .cursor
            .as_deref()
            .map(|s| {
                AuditEventId::parse(s).ok_or_else(|| {
                    ApiError::invalid_field("cursor", "cursor is not one this server issued")
                })
            })
            .transpose()?,
        // Decided by the service from the caller's access; nobody's until then.
        oversight: portcullis_core::Oversight::nobody(),
    };
    let page = orgs(&state).audit_page(&access, q).await?;
    Ok(Json(AuditPage {
        events: page.events.iter().map(AuditEventDto::from).collect(),
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}
