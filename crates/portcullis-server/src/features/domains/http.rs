//! Verified domains over HTTP: claim, list, verify (DNS, or a platform admin's word),
//! delete. Org admins only; other orgs' claims are never visible.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use portcullis_core::{DomainName, OrgDomain, OrgId, Role, VerificationMethod};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::service::{DomainError, Domains};
use crate::http::dto::{ErrorBody, ts};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, parse_json_body, require_json_content_type};
use crate::state::AppState;

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        match e {
            DomainError::NotFound => ApiError::not_found(message),
            DomainError::FreeMail(_) => ApiError::invalid_field("domain", message),
            DomainError::AdminOnly => {
                ApiError::forbidden(message).with_details(json!({"method": "admin"}))
            }
            DomainError::RecordMissing {
                name,
                expected,
                found,
            } => ApiError::invalid_request(message).with_details(json!({
                "reason": "txt_record_missing",
                "expected": {"name": name, "value": expected},
                "found": found,
            })),
            DomainError::DnsFailed { name, expected, .. } => ApiError::invalid_request(message)
                .with_details(json!({
                    "reason": "dns_lookup_failed",
                    "expected": {"name": name, "value": expected},
                })),
            DomainError::Invalid(e) => e.into(),
            DomainError::Store(e) => e.into(),
            DomainError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

fn domains(state: &AppState) -> Domains<'_> {
    Domains {
        store: &*state.store,
        dns: &state.dns,
        free_mail: &state.free_mail_domains,
    }
}

fn org_id(raw: &str) -> ApiResult<OrgId> {
    OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

fn domain_name(raw: &str) -> ApiResult<DomainName> {
    DomainName::parse(raw).map_err(|_| DomainError::NotFound.into())
}

/// The TXT record that proves a claim.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TxtRecordDto {
    /// Where to publish it: `_portcullis-challenge.<domain>`.
    pub name: String,
    /// Its value: `portcullis-verification=<token>` (this claim's own token).
    pub value: String,
}

/// An org's claim on a domain.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DomainDto {
    pub domain: String,
    /// `pending` until proven, then `verified`.
    pub status: String,
    pub txt_record: TxtRecordDto,
    /// How it was verified: `dns` or `admin`.
    pub method: Option<String>,
    pub created_at: String,
    pub verified_at: Option<String>,
}

impl From<&OrgDomain> for DomainDto {
    fn from(d: &OrgDomain) -> Self {
        Self {
            domain: d.domain.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            txt_record: TxtRecordDto {
                name: d.domain.challenge_name(),
                value: d.challenge_value(),
            },
            method: d.method.map(|m| m.as_str().to_owned()),
            created_at: ts(d.created_at),
            verified_at: d.verified_at.map(ts),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DomainList {
    pub domains: Vec<DomainDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomainRequest {
    /// A DNS name like `example.com` (internationalized names in their `xn--` form).
    pub domain: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyDomainRequest {
    /// `dns` (default): look the TXT record up. `admin`: platform admins only — mark it
    /// verified without DNS (offline installs).
    pub method: Option<String>,
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/domains", tag = "domains",
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The org's domain claims, pending and verified, oldest first", body = DomainList),
        (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
    ))]
pub async fn list_domains(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DomainList>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let rows = domains(&state).list(&access).await?;
    Ok(Json(DomainList {
        domains: rows.iter().map(DomainDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/domains", tag = "domains",
    params(("org_id" = uuid::Uuid, Path)), request_body = CreateDomainRequest,
    responses(
        (status = 201, description = "Claimed, pending: publish `txt_record`, then verify", body = DomainDto),
        (status = 400, description = "invalid_request: not a domain, a free-mail domain, or an unknown field", body = ErrorBody),
        (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: this org claimed the domain already, or another org holds it verified", body = ErrorBody),
    ))]
pub async fn create_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateDomainRequest>,
) -> ApiResult<(StatusCode, Json<DomainDto>)> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let claim = domains(&state)
        .claim(&access, &req.domain, &auth.audit)
        .await?;
    Ok((StatusCode::CREATED, Json((&claim).into())))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/domains/{domain}/verify", tag = "domains",
    params(("org_id" = uuid::Uuid, Path), ("domain" = String, Path)),
    request_body(content = Option<VerifyDomainRequest>, description = "Optional; without a body the TXT record is looked up"),
    responses(
        (status = 200, description = "Verified (or it already was)", body = DomainDto),
        (status = 400, description = "invalid_request: the TXT record is missing or wrong (`details.expected` names the record, `details.found` what DNS holds), DNS did not answer, or a bad method", body = ErrorBody),
        (status = 403, description = "forbidden: not an admin of the org, or method `admin` from someone who is not a platform admin", body = ErrorBody),
        (status = 404, description = "not_found: no such claim in this org", body = ErrorBody),
        (status = 409, description = "conflict: another org holds this domain verified", body = ErrorBody),
    ))]
pub async fn verify_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, domain)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<DomainDto>> {
    let access = auth.org_access(&state, org_id(&org)?, Role::Admin).await?;
    let domain = domain_name(&domain)?;
    let method = if body.iter().all(u8::is_ascii_whitespace) {
        VerificationMethod::Dns
    } else {
        require_json_content_type(&headers)?;
        let req: VerifyDomainRequest = parse_json_body(&body)?;
        match req.method.as_deref() {
            None => VerificationMethod::Dns,
            Some(m) => VerificationMethod::parse(m).ok_or_else(|| {
                ApiError::invalid_field("method", "method must be \"dns\" or \"admin\"")
            })?,
        }
    };
    let verified = domains(&state)
        .verify(&access, &auth.principal, &domain, method, &auth.audit)
        .await?;
    Ok(Json((&verified).into()))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/domains/{domain}", tag = "domains",
    params(("org_id" = uuid::Uuid, Path), ("domain" = String, Path)),
    responses(
        (status = 204, description = "Deleted; the org's providers no longer vouch for addresses there"),
        (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody),
        (status = 404, description = "not_found: no such claim in this org", body = ErrorBody),
    ))]
pub async fn delete_domain(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = auth.org_access(&state, org_id(&org)?, Role::Admin).await?;
    let domain = domain_name(&domain)?;
    domains(&state)
        .delete(&access, &domain, &auth.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
