//! Project-scoped routes: the project comes from `X-Project-ID`.

use axum::Json;
use axum::extract::State;
use portcullis_core::{ProjectName, ProjectStatus, Role};
use portcullis_store::ProjectPatch;

use crate::dto::{ErrorBody, PatchProjectRequest, ProjectDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ProjectCtx};
use crate::routes::orgs::{parse_origins, parse_redirect_uris};
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/project", tag = "projects",
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 200, body = ProjectDto),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: not a member of the project", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
    ))]
pub async fn get_project(ctx: ProjectCtx) -> Json<ProjectDto> {
    Json((&ctx.record.project).into())
}

#[utoipa::path(patch, path = "/v1/project", tag = "projects", request_body = PatchProjectRequest,
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 200, body = ProjectDto),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn patch_project(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    ApiJson(req): ApiJson<PatchProjectRequest>,
) -> ApiResult<Json<ProjectDto>> {
    if ctx.role < Role::Admin {
        return Err(ApiError::forbidden(
            "changing a project requires the admin role in it",
        ));
    }
    let patch = ProjectPatch {
        name: req.name.as_deref().map(ProjectName::parse).transpose()?,
        status: req
            .status
            .as_deref()
            .map(ProjectStatus::parse)
            .transpose()?,
        redirect_uris: req
            .redirect_uris
            .as_deref()
            .map(parse_redirect_uris)
            .transpose()?,
        allowed_origins: req
            .allowed_origins
            .as_deref()
            .map(parse_origins)
            .transpose()?,
    };
    let project = state
        .store
        .update_project(&ctx.access, ctx.record.project.id, &patch, &ctx.auth.audit)
        .await?;
    Ok(Json((&project).into()))
}
