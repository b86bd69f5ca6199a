//! OAuth clients (applications) of the project named by `X-Project-ID`; the rules are in
//! [`service`](crate::features::clients::service).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::oauth::{
    ClientId, ClientRegistration, ClientSecret, ClientType, OAuthClient, SigningAlg,
    TokenEndpointAuthMethod, parse_access_token_ttl, parse_client_name, parse_client_uris,
    parse_grant_types,
};
use portcullis_store::ClientPatch;

use crate::features::clients::service::{ClientError, ProjectClients};
use crate::http::dto::{
    ClientDto, ClientList, ClientWithSecret, CreateClientRequest, ErrorBody, PatchClientRequest,
};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ProjectCtx};
use crate::state::AppState;

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::AdminRequired => ApiError::forbidden(e.to_string())
                .with_details(serde_json::json!({"required_role": "admin"})),
            ClientError::NotFound => ApiError::not_found(e.to_string()),
            ClientError::Invalid(e) => e.into(),
            ClientError::Store(e) => e.into(),
            ClientError::Randomness(_) => ApiError::internal(e),
        }
    }
}

fn clients<'a>(state: &'a AppState, ctx: &'a ProjectCtx) -> ProjectClients<'a> {
    ProjectClients {
        scope: state.store.project(&ctx.project_access),
        cache: &state.cache,
        project: &ctx.record.project,
        role: ctx.role,
        audit: &ctx.auth.audit,
    }
}

/// An id from the path; one that cannot be a client id names no client.
fn client_id(raw: &str) -> Result<ClientId, ClientError> {
    ClientId::parse(raw).ok_or(ClientError::NotFound)
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
    let list = clients(&state, &ctx).list().await?;
    Ok(Json(ClientList {
        clients: list.iter().map(ClientDto::from).collect(),
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
    let clients = clients(&state, &ctx);
    let admin = clients.manage()?;
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
    let (client, secret) = admin.create(registration).await?;
    Ok(with_secret(StatusCode::CREATED, &client, secret.as_ref()))
}

#[utoipa::path(get, path = "/v1/project/clients/{client_id}", tag = "clients",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 200, description = "The client (never its secret)", body = ClientDto),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody), (status = 403, description = "forbidden: not a member of the project", body = ErrorBody),
        (status = 404, description = "not_found: no such client in this project (deleted, or another project's)", body = ErrorBody),
    ))]
pub async fn get_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientDto>> {
    let client = clients(&state, &ctx).get(&client_id(&id)?).await?;
    Ok(Json((&client).into()))
}

#[utoipa::path(patch, path = "/v1/project/clients/{client_id}", tag = "clients", request_body = PatchClientRequest,
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 200, description = "The client after the change", body = ClientDto),
        (status = 400, description = "invalid_request: a bad or unknown field (`details.field`), or a result whose fields do not fit together", body = ErrorBody),
        (status = 403, description = "forbidden: not an admin of the project", body = ErrorBody), (status = 404, description = "not_found: no such client in this project", body = ErrorBody),
    ))]
pub async fn patch_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchClientRequest>,
) -> ApiResult<Json<ClientDto>> {
    let clients = clients(&state, &ctx);
    let admin = clients.manage()?;
    let id = client_id(&id)?;
    let patch = ClientPatch {
        client_type: req
            .client_type
            .as_deref()
            .map(ClientType::parse)
            .transpose()?,
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
    let client = admin.update(&id, &patch).await?;
    Ok(Json((&client).into()))
}

#[utoipa::path(delete, path = "/v1/project/clients/{client_id}", tag = "clients",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Deleted (softly): the client no longer authenticates or appears anywhere"),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the project", body = ErrorBody), (status = 404, description = "not_found: no such client in this project", body = ErrorBody),
    ))]
pub async fn delete_client(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    clients(&state, &ctx)
        .manage()?
        .delete(&client_id(&id)?)
        .await?;
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
        (status = 403, description = "forbidden: not an admin of the project", body = ErrorBody), (status = 404, description = "not_found: no such client in this project", body = ErrorBody),
    ))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (client, secret) = clients(&state, &ctx)
        .manage()?
        .rotate_secret(&client_id(&id)?)
        .await?;
    Ok(with_secret(StatusCode::OK, &client, Some(&secret)))
}
