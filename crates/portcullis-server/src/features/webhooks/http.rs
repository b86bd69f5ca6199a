//! Webhook endpoints of the project named by `X-Project-ID`; the rules are in
//! [`service`](crate::features::webhooks::service).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::webhook::{
    CATALOGUE, DeliveryId, DeliveryStatus, SigningSecret, TEST_EVENT, WebhookId,
};
use portcullis_store::webhooks::{DeliveryLog, DeliveryQuery, WebhookEndpoint};

use crate::features::webhooks::dto::{
    CreateWebhookRequest, DeliveryDto, DeliveryList, DeliveryParams, EventTypeDto, EventTypeList,
    PatchWebhookRequest, RecoverRequest, Recovered, WebhookDto, WebhookList, WebhookWithSecret,
};
use crate::features::webhooks::service::{Change, NewEndpoint, ProjectWebhooks, WebhookError};
use crate::http::dto::ErrorBody;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, ProjectCtx};
use crate::state::AppState;

/// Deliveries per page of the log.
const PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::AdminRequired => ApiError::forbidden(e.to_string())
                .with_details(serde_json::json!({"required_role": "admin"})),
            WebhookError::NotFound | WebhookError::DeliveryNotFound => {
                ApiError::not_found(e.to_string())
            }
            WebhookError::Invalid(e) => e.into(),
            WebhookError::TooManyEndpoints(limit) => {
                ApiError::conflict(e.to_string()).with_details(serde_json::json!({"limit": limit}))
            }
            WebhookError::SendBudget(secs) => ApiError::rate_limited(e.to_string(), secs),
            WebhookError::Store(e) => e.into(),
            WebhookError::Seal(_) | WebhookError::Randomness(_) => ApiError::internal(e),
        }
    }
}

fn webhooks<'a>(state: &'a AppState, ctx: &'a ProjectCtx) -> ProjectWebhooks<'a> {
    ProjectWebhooks {
        scope: state.store.project(&ctx.project_access),
        sender: &state.webhooks,
        project: &ctx.record.project,
        role: ctx.role,
        audit: &ctx.auth.audit,
    }
}

/// An id from the path; one that cannot be an id names nothing.
fn webhook_id(raw: &str) -> Result<WebhookId, WebhookError> {
    WebhookId::parse(raw).ok_or(WebhookError::NotFound)
}

/// The reply that carries a secret: never cached by anyone on the way.
fn with_secret(status: StatusCode, e: &WebhookEndpoint, secret: &SigningSecret) -> Response {
    let body = WebhookWithSecret {
        webhook: e.into(),
        secret: secret.expose(),
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn parse_time(field: &'static str, raw: &str) -> Result<portcullis_core::Timestamp, ApiError> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(|_| {
        ApiError::invalid_field(field, format!("{field} must be an RFC 3339 timestamp"))
    })
}

#[utoipa::path(get, path = "/v1/webhooks/event-types", tag = "webhooks",
    responses(
        (status = 200, description = "Every event type endpoints may subscribe to, with an example body each", body = EventTypeList),
        (status = 401, description = "unauthenticated", body = ErrorBody),
    ))]
pub async fn event_types(_auth: Auth) -> Json<EventTypeList> {
    Json(EventTypeList {
        event_types: CATALOGUE
            .iter()
            .filter(|t| t.name != TEST_EVENT)
            .chain(CATALOGUE.iter().filter(|t| t.name == TEST_EVENT))
            .map(EventTypeDto::from)
            .collect(),
    })
}

#[utoipa::path(get, path = "/v1/project/webhooks", tag = "webhooks",
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 200, description = "The project's endpoints, oldest first; never with secrets", body = WebhookList),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
    ))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    ctx: ProjectCtx,
) -> ApiResult<Json<WebhookList>> {
    let list = webhooks(&state, &ctx).list().await?;
    Ok(Json(WebhookList {
        webhooks: list.iter().map(WebhookDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/project/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    params(("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on")),
    responses(
        (status = 201, description = "Created. The `secret` is in this reply and nowhere else", body = WebhookWithSecret),
        (status = 400, description = "invalid_request: a bad or unknown field (`details.field`): an unknown event type, a URL that is not https or names a private address", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: the project already has the most endpoints allowed (`webhook_max_endpoints_per_project`, default 20; `details.limit`)", body = ErrorBody),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> ApiResult<Response> {
    let (endpoint, secret) = webhooks(&state, &ctx)
        .create(NewEndpoint {
            url: req.url,
            events: req.events,
            description: req.description,
            enabled: req.enabled,
        })
        .await?;
    Ok(with_secret(StatusCode::CREATED, &endpoint, &secret))
}

#[utoipa::path(get, path = "/v1/project/webhooks/{id}", tag = "webhooks",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 200, description = "The endpoint (never its secret)", body = WebhookDto),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookDto>> {
    let e = webhooks(&state, &ctx).get(webhook_id(&id)?).await?;
    Ok(Json((&e).into()))
}

#[utoipa::path(patch, path = "/v1/project/webhooks/{id}", tag = "webhooks", request_body = PatchWebhookRequest,
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 200, description = "The endpoint after the change", body = WebhookDto),
        (status = 400, description = "invalid_request: a bad or unknown field (`details.field`)", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
    ))]
pub async fn patch_webhook(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchWebhookRequest>,
) -> ApiResult<Json<WebhookDto>> {
    let hooks = webhooks(&state, &ctx);
    let id = webhook_id(&id)?;
    let e = hooks
        .update(
            id,
            Change {
                url: req.url,
                events: req.events,
                description: req.description,
                enabled: req.enabled,
            },
        )
        .await?;
    Ok(Json((&e).into()))
}

#[utoipa::path(delete, path = "/v1/project/webhooks/{id}", tag = "webhooks",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 204, description = "Deleted: nothing more is sent to it, pending deliveries included"),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    webhooks(&state, &ctx).delete(webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/project/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 200, description = "The endpoint with its new `secret`, shown once. For 24 h deliveries carry two signatures, one per secret", body = WebhookWithSecret),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
    ))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (e, secret) = webhooks(&state, &ctx)
        .rotate_secret(webhook_id(&id)?)
        .await?;
    Ok(with_secret(StatusCode::OK, &e, &secret))
}

#[utoipa::path(post, path = "/v1/project/webhooks/{id}/test", tag = "webhooks",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 202, description = "A `webhook.test` delivery, queued for this endpoint and due now", body = DeliveryDto),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
        (status = 429, description = "rate_limited: the project's budget of test and recover requests is spent (`webhook_sends_per_minute`, default 10); `Retry-After` says when it refills", body = ErrorBody),
    ))]
pub async fn test_webhook(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<DeliveryDto>)> {
    let delivery = webhooks(&state, &ctx).test(webhook_id(&id)?).await?;
    let log = DeliveryLog {
        delivery,
        attempts: Vec::new(),
    };
    Ok((StatusCode::ACCEPTED, Json((&log).into())))
}

#[utoipa::path(get, path = "/v1/project/webhooks/{id}/deliveries", tag = "webhooks",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
        DeliveryParams,
    ),
    responses(
        (status = 200, description = "The endpoint's deliveries, newest first, each with its attempts", body = DeliveryList),
        (status = 400, description = "invalid_request: a malformed filter or cursor", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
    ))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
    query: Result<Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DeliveryList>> {
    let Query(p) = query
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {}", e.body_text())))?;
    let limit = p.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "limit must be 1–200"));
    }
    let q = DeliveryQuery {
        status: p.status.as_deref().map(DeliveryStatus::parse).transpose()?,
        event_type: p.event_type,
        since: p
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        cursor: p
            .cursor
            .as_deref()
            .map(|s| {
                DeliveryId::parse(s).ok_or_else(|| {
                    ApiError::invalid_field("cursor", "cursor is not one this server issued")
                })
            })
            .transpose()?,
        limit,
    };
    let logs = webhooks(&state, &ctx)
        .deliveries(webhook_id(&id)?, &q)
        .await?;
    let next_cursor = (logs.len() == limit as usize)
        .then(|| logs.last().map(|l| l.delivery.id.to_string()))
        .flatten();
    Ok(Json(DeliveryList {
        deliveries: logs.iter().map(DeliveryDto::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(post, path = "/v1/project/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
        ("delivery_id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 202, description = "The delivery is due now (same `webhook-id`)"),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project, or no such delivery of it", body = ErrorBody),
    ))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let delivery = DeliveryId::parse(&delivery).ok_or(WebhookError::DeliveryNotFound)?;
    webhooks(&state, &ctx)
        .retry(webhook_id(&id)?, delivery)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/v1/project/webhooks/{id}/recover", tag = "webhooks", request_body = RecoverRequest,
    params(
        ("X-Project-ID" = uuid::Uuid, Header, description = "The project to act on"),
        ("id" = uuid::Uuid, Path),
    ),
    responses(
        (status = 202, description = "Every delivery that failed since `since` is due again", body = Recovered),
        (status = 400, description = "invalid_request: `since` missing or not RFC 3339", body = ErrorBody),
        (status = 403, description = "forbidden: needs the admin role in the project", body = ErrorBody),
        (status = 404, description = "not_found: no such endpoint in this project", body = ErrorBody),
        (status = 429, description = "rate_limited: the project's budget of test and recover requests is spent (`webhook_sends_per_minute`, default 10); `Retry-After` says when it refills", body = ErrorBody),
    ))]
pub async fn recover(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RecoverRequest>,
) -> ApiResult<(StatusCode, Json<Recovered>)> {
    let since = parse_time("since", &req.since)?;
    let requeued = webhooks(&state, &ctx)
        .recover(webhook_id(&id)?, since)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Recovered { requeued })))
}
