//! The caller's own view: who am I, which sessions do I have.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use portcullis_core::SessionId;
use portcullis_core::oauth::ClientId;

use crate::features::me::service::{Me, MeError};
use crate::http::dto::{
    MeResponse, MembershipDto, ProjectContextDto, SessionDto, SessionList, role_str,
};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Auth, ProjectHeader, authorize_project};
use crate::state::AppState;

impl From<MeError> for ApiError {
    fn from(e: MeError) -> Self {
        match e {
            MeError::NoSuchSession | MeError::NoSuchConsent => ApiError::not_found(e.to_string()),
            MeError::Store(e) => e.into(),
        }
    }
}

/// The service over the caller's own account.
fn own<'a>(state: &'a AppState, auth: &'a Auth) -> Me<'a> {
    Me {
        store: &*state.store,
        cache: &state.cache,
        user_id: auth.principal.user_id,
        audit: &auth.audit,
    }
}

#[utoipa::path(get, path = "/v1/me", tag = "sessions",
    params(("X-Project-ID" = Option<uuid::Uuid>, Header, description = "Optional: also resolve this project's context")),
    responses(
        (status = 200, description = "The caller, the session and every active membership with its projects; with X-Project-ID also the project context", body = MeResponse),
        (status = 400, description = "invalid_request: malformed X-Project-ID", body = crate::http::dto::ErrorBody),
        (status = 401, description = "unauthenticated", body = crate::http::dto::ErrorBody),
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
    let own = own(&state, &auth);
    let memberships = own.memberships().await?;
    let context = match project {
        None => None,
        Some(project_id) => {
            let (record, role, access) =
                authorize_project(&state, &auth.principal, project_id?).await?;
            let context = own
                .project_context(&memberships, record.project, role, &access)
                .await?;
            Some(ProjectContextDto {
                org: (&context.org).into(),
                project: (&context.project).into(),
                role: role_str(context.role),
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
        (status = 401, description = "unauthenticated", body = crate::http::dto::ErrorBody),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<SessionList>> {
    let sessions = own(&state, &auth).sessions().await?;
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
        (status = 401, description = "unauthenticated", body = crate::http::dto::ErrorBody),
        (status = 404, description = "not_found: no such active session of the caller", body = crate::http::dto::ErrorBody),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = SessionId::parse(&id).ok_or(MeError::NoSuchSession)?;
    own(&state, &auth).revoke_session(id).await?;
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
              (status = 401, description = "unauthenticated", body = crate::http::dto::ErrorBody)))]
pub async fn list_consents(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<ConsentList>> {
    let consents = own(&state, &auth).consents().await?;
    Ok(Json(ConsentList {
        consents: consents
            .into_iter()
            .map(|c| ConsentDto {
                client_id: c.client_id.as_str().to_owned(),
                scope: c.scope.to_string(),
                granted_at: crate::http::dto::ts(c.granted_at),
            })
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/me/consents/{client_id}", tag = "sessions",
    params(("client_id" = String, Path)),
    responses((status = 204, description = "Consent withdrawn; the application's refresh tokens for the caller are revoked"),
              (status = 404, description = "not_found: the caller has no consent for this client", body = crate::http::dto::ErrorBody)))]
pub async fn revoke_consent(
    State(state): State<AppState>,
    auth: Auth,
    Path(client_id): Path<String>,
) -> ApiResult<StatusCode> {
    let client_id = ClientId::parse(&client_id).ok_or(MeError::NoSuchConsent)?;
    own(&state, &auth).revoke_consent(&client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
