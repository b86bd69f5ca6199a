//! The caller's own view: who am I, which sessions do I have.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::SessionId;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::dto::{MeResponse, MembershipDto, ProjectContextDto, SessionDto, SessionList, role_str};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, ProjectHeader, authorize_project};
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/me", tag = "sessions",
    params(("X-Project-ID" = Option<uuid::Uuid>, Header, description = "Optional: also resolve this project's context")),
    responses(
        (status = 200, description = "The caller, the session and every active membership with its projects; with X-Project-ID also the project context", body = MeResponse),
        (status = 400, description = "invalid_request: malformed X-Project-ID", body = crate::dto::ErrorBody),
        (status = 401, description = "unauthenticated", body = crate::dto::ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    auth: Auth,
    ProjectHeader(project): ProjectHeader,
) -> ApiResult<Response> {
    let wants_context = project.is_some();
    let hash = auth.session.session.token_hash;
    if !wants_context && let Some(body) = state.cache.me_body(&hash) {
        return Ok(json_bytes(body));
    }
    let user_id = auth.principal.user_id;
    let memberships = match state.cache.memberships(user_id) {
        Some(m) => m,
        None => {
            let epoch = state.cache.epoch();
            let fresh = state.store.memberships_of_user(user_id).await?;
            state.cache.put_memberships(epoch, user_id, fresh)
        }
    };
    let context = match project {
        None => None,
        Some(project_id) => {
            let project_id = project_id?;
            let (record, role, access) =
                authorize_project(&state, &auth.principal, project_id).await?;
            let org = match memberships.iter().find(|m| m.org.id == access.org_id()) {
                Some(m) => (&m.org).into(),
                None => (&state.store.org(&access).await?).into(),
            };
            Some(ProjectContextDto {
                org,
                project: (&record.project).into(),
                role: role_str(role),
            })
        }
    };
    let s = &auth.session;
    let body = MeResponse {
        context,
        user: (&s.user).into(),
        session: SessionDto::new(&s.session, Some(s.session.id)),
        memberships: memberships.iter().map(MembershipDto::from).collect(),
    };
    let body = Bytes::from(serde_json::to_vec(&body).map_err(ApiError::internal)?);
    if !wants_context {
        // Stamped with the epoch read before the session was resolved: any change since
        // then makes this body stale at once.
        state.cache.put_me_body(auth.epoch, hash, body.clone());
    }
    Ok(json_bytes(body))
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    responses(
        (status = 200, description = "The caller's active sessions, newest first", body = SessionList),
        (status = 401, description = "unauthenticated", body = crate::dto::ErrorBody),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<SessionList>> {
    let sessions = state
        .store
        .list_user_sessions(auth.principal.user_id, portcullis_core::now())
        .await?;
    let current = auth.principal.session_id;
    Ok(Json(SessionList {
        sessions: sessions
            .iter()
            .map(|s| SessionDto::new(s, current))
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked; it fails on every node from the next request"),
        (status = 401, description = "unauthenticated", body = crate::dto::ErrorBody),
        (status = 404, description = "not_found: no such active session of the caller", body = crate::dto::ErrorBody),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = SessionId::parse(&id).ok_or_else(|| ApiError::not_found("no such session"))?;
    if !state
        .store
        .revoke_user_session(auth.principal.user_id, id, &auth.audit)
        .await?
    {
        return Err(ApiError::not_found("no such session"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ConsentDto {
    pub client_id: String,
    pub scope: String,
    pub granted_at: String,
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ConsentList {
    pub consents: Vec<ConsentDto>,
}

#[utoipa::path(get, path = "/v1/me/consents", tag = "sessions",
    responses((status = 200, description = "Third-party applications the caller has consented to", body = ConsentList),
              (status = 401, body = crate::dto::ErrorBody)))]
pub async fn list_consents(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<ConsentList>> {
    let consents = state
        .store
        .grants()
        .consents_of_user(auth.principal.user_id)
        .await?;
    Ok(Json(ConsentList {
        consents: consents
            .into_iter()
            .map(|(client_id, scope, at)| ConsentDto {
                client_id: client_id.as_str().to_owned(),
                scope,
                granted_at: crate::dto::ts(at),
            })
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/me/consents/{client_id}", tag = "sessions",
    params(("client_id" = String, Path)),
    responses((status = 204, description = "Consent withdrawn; the application's refresh tokens for the caller are revoked"),
              (status = 404, body = crate::dto::ErrorBody)))]
pub async fn revoke_consent(
    State(state): State<AppState>,
    auth: Auth,
    Path(client_id): Path<String>,
) -> ApiResult<StatusCode> {
    let client_id = portcullis_core::oauth::ClientId::parse(&client_id)
        .ok_or_else(|| ApiError::not_found("no such consent"))?;
    if !state
        .store
        .grants()
        .revoke_consent(auth.principal.user_id, &client_id, &auth.audit)
        .await?
    {
        return Err(ApiError::not_found("no such consent"));
    }
    Ok(StatusCode::NO_CONTENT)
}
