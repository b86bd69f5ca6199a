//! Project-scoped routes: the project comes from `X-Project-ID`.

use axum::Json;
use axum::extract::State;
use portcullis_core::{Origin, ProjectName, ProjectStatus, RedirectUri};
use portcullis_store::ProjectPatch;

use crate::features::projects::service::{ProjectError, ProjectScope};
use crate::http::dto::{ErrorBody, PatchProjectRequest, ProjectDto};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ProjectCtx};
use crate::state::AppState;

impl From<ProjectError> for ApiError {
    fn from(e: ProjectError) -> Self {
        match e {
            ProjectError::AdminRequired => ApiError::forbidden(e.to_string()),
            ProjectError::Store(e) => e.into(),
        }
    }
}

#[utoipa::path(get, path = "/v1/project", tag = "projects",
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 200, description = "The project named by X-Project-ID", body = ProjectDto),
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
        (status = 200, description = "The project after the change", body = ProjectDto),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed, or a bad or unknown field", body = ErrorBody), (status = 403, description = "forbidden: not a member of the project, or not an admin of it", body = ErrorBody), (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
    ))]
pub async fn patch_project(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    ApiJson(req): ApiJson<PatchProjectRequest>,
) -> ApiResult<Json<ProjectDto>> {
    let admin = ProjectScope {
        access: &ctx.access,
        project_id: ctx.record.project.id,
        role: ctx.role,
        audit: &ctx.auth.audit,
    }
    .admin()?;
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
            .map(|raw| raw.iter().map(|s| RedirectUri::parse(s)).collect())
            .transpose()?,
        allowed_origins: req
            .allowed_origins
            .as_deref()
            .map(|raw| raw.iter().map(|s| Origin::parse(s)).collect())
            .transpose()?,
    };
    let project = admin.update(&*state.store, &patch).await?;
    Ok(Json((&project).into()))
}
