//! OAuth clients (applications) of the project named by `X-Project-ID`. Any project role
//! reads them; changing them needs the admin role in the project. A secret is shown once,
//! in the reply that issued it, and stored only as its SHA-256.
//!
//! The OAuth endpoints cache clients by id, so changing, rotating or deleting one bumps the
//! cache epoch (other nodes hear of it through the store's change feed). A new client needs
//! no bump: unknown ids are never cached.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::Role;
use portcullis_core::oauth::{
    ClientId, ClientRegistration, ClientSecret, ClientType, OAuthClient, SigningAlg,
    TokenEndpointAuthMethod, parse_access_token_ttl, parse_client_name, parse_client_uris,
    parse_grant_types,
};
use portcullis_store::ClientPatch;

use crate::dto::{
    ClientDto, ClientList, ClientWithSecret, CreateClientRequest, ErrorBody, PatchClientRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ProjectCtx};
use crate::state::AppState;

fn require_admin(ctx: &ProjectCtx) -> ApiResult<()> {
    if ctx.role < Role::Admin {
        return Err(ApiError::forbidden(
            "managing the project's clients requires the admin role in it",
        )
        .with_details(serde_json::json!({"required_role": "admin"})));
    }
    Ok(())
}

/// An id from the path; one that cannot be a client id names no client.
fn client_id(raw: &str) -> ApiResult<ClientId> {
    ClientId::parse(raw).ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::not_found("no such client in this project")
}

/// The reply that carries a secret: never cached by anyone on the way (RFC 6749 §5.1).
fn with_secret(
    status: StatusCode,
    client: &OAuthClient,
    secret: Option<&ClientSecret>,
) -> Response {
    let body = ClientWithSecret {
        client: client.into(),
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(get, path = "/v1/project/clients", tag = "clients",
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 200, description = "The project's clients, oldest first; never with secrets", body = ClientList),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: not a member of the project", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
    ))]
pub async fn list_clients(
    State(state): State<AppState>,
    ctx: ProjectCtx,
) -> ApiResult<Json<ClientList>> {
    let clients = state
        .store
        .clients()
        .list(&ctx.access, ctx.record.project.id)
        .await?;
    Ok(Json(ClientList {
        clients: clients.iter().map(ClientDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/project/clients", tag = "clients", request_body = CreateClientRequest,
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 201, description = "Created. A confidential client's `client_secret` is in this reply and nowhere else", body = ClientWithSecret),
        (status = 400, description = "invalid_request: a bad or unknown field (`details.field`), or fields that do not fit together", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
    ))]
pub async fn create_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    ApiJson(req): ApiJson<CreateClientRequest>,
) -> ApiResult<Response> {
    require_admin(&ctx)?;
    let client_type = ClientType::parse(&req.client_type)?;
    let registration = ClientRegistration {
        name: req.name,
        client_type,
        redirect_uris: parse_client_uris("redirect_uris", &req.redirect_uris)?,
        post_logout_redirect_uris: parse_client_uris(
            "post_logout_redirect_uris",
            &req.post_logout_redirect_uris,
        )?,
        grant_types: req
            .grant_types
            .as_deref()
            .map(parse_grant_types)
            .transpose()?,
        token_endpoint_auth_method: req
            .token_endpoint_auth_method
            .as_deref()
            .map(TokenEndpointAuthMethod::parse)
            .transpose()?,
        access_token_ttl_secs: req
            .access_token_ttl_secs
            .map(parse_access_token_ttl)
            .transpose()?,
        signing_alg: req
            .signing_alg
            .as_deref()
            .map(SigningAlg::parse)
            .transpose()?,
    };
    let secret = match client_type {
        ClientType::Confidential => Some(ClientSecret::generate().map_err(ApiError::internal)?),
        ClientType::Public => None,
    };
    let project = &ctx.record.project;
    let client = OAuthClient::register(
        ClientId::generate().map_err(ApiError::internal)?,
        project.org_id,
        project.id,
        registration,
        secret.as_ref().map(ClientSecret::hash),
        portcullis_core::now(),
    )?;
    state
        .store
        .clients()
        .create(&ctx.access, &client, &ctx.auth.audit)
        .await?;
    Ok(with_secret(StatusCode::CREATED, &client, secret.as_ref()))
}

#[utoipa::path(get, path = "/v1/project/clients/{client_id}", tag = "clients",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 200, body = ClientDto),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "not_found: no such client in this project (deleted, or another project's)", body = ErrorBody),
    ))]
pub async fn get_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientDto>> {
    let client = state
        .store
        .clients()
        .get(&ctx.access, ctx.record.project.id, &client_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json((&client).into()))
}

#[utoipa::path(patch, path = "/v1/project/clients/{client_id}", tag = "clients", request_body = PatchClientRequest,
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 200, body = ClientDto),
        (status = 400, description = "invalid_request: a bad or unknown field (`details.field`), or a result whose fields do not fit together", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn patch_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchClientRequest>,
) -> ApiResult<Json<ClientDto>> {
    require_admin(&ctx)?;
    let id = client_id(&id)?;
    let project_id = ctx.record.project.id;
    if let Some(raw) = &req.client_type {
        let wanted = ClientType::parse(raw)?;
        let current = state
            .store
            .clients()
            .get(&ctx.access, project_id, &id)
            .await?
            .ok_or_else(not_found)?;
        if wanted != current.client_type {
            return Err(ApiError::invalid_field(
                "type",
                "the client type cannot change; register a new client instead",
            ));
        }
    }
    let patch = ClientPatch {
        name: req.name.as_deref().map(parse_client_name).transpose()?,
        redirect_uris: req
            .redirect_uris
            .as_deref()
            .map(|u| parse_client_uris("redirect_uris", u))
            .transpose()?,
        post_logout_redirect_uris: req
            .post_logout_redirect_uris
            .as_deref()
            .map(|u| parse_client_uris("post_logout_redirect_uris", u))
            .transpose()?,
        grant_types: req
            .grant_types
            .as_deref()
            .map(parse_grant_types)
            .transpose()?,
        token_endpoint_auth_method: req
            .token_endpoint_auth_method
            .as_deref()
            .map(TokenEndpointAuthMethod::parse)
            .transpose()?,
        access_token_ttl_secs: req
            .access_token_ttl_secs
            .map(parse_access_token_ttl)
            .transpose()?,
        signing_alg: req
            .signing_alg
            .as_deref()
            .map(SigningAlg::parse)
            .transpose()?,
    };
    let client = state
        .store
        .clients()
        .update(&ctx.access, project_id, &id, &patch, &ctx.auth.audit)
        .await
        .map_err(not_found_in_project)?;
    Ok(Json((&client).into()))
}

#[utoipa::path(delete, path = "/v1/project/clients/{client_id}", tag = "clients",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Deleted (softly): the client no longer authenticates or appears anywhere"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn delete_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&ctx)?;
    state
        .store
        .clients()
        .delete(
            &ctx.access,
            ctx.record.project.id,
            &client_id(&id)?,
            &ctx.auth.audit,
        )
        .await
        .map_err(not_found_in_project)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/project/clients/{client_id}/rotate-secret", tag = "clients",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 200, description = "The client with its new `client_secret`, shown once; the old secret stops working at once", body = ClientWithSecret),
        (status = 400, description = "invalid_request: public clients have no secret (`details.field` = `type`)", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require_admin(&ctx)?;
    let secret = ClientSecret::generate().map_err(ApiError::internal)?;
    let client = state
        .store
        .clients()
        .rotate_secret(
            &ctx.access,
            ctx.record.project.id,
            &client_id(&id)?,
            &secret.hash(),
            &ctx.auth.audit,
        )
        .await
        .map_err(not_found_in_project)?;
    Ok(with_secret(StatusCode::OK, &client, Some(&secret)))
}

/// The store's bare `NotFound`, said in this resource's words.
fn not_found_in_project(e: portcullis_store::StoreError) -> ApiError {
    match e {
        portcullis_store::StoreError::NotFound => not_found(),
        other => other.into(),
    }
}
