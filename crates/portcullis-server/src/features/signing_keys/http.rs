//! The published JWKS, and the platform admins' view and rotation of the signing keys.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use portcullis_core::oauth::SigningAlg;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::features::signing_keys::service::{self, SigningKeyError};
use crate::http::dto::{ErrorBody, ts};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::infra::keys::KeyInfo;
use crate::state::AppState;

impl From<SigningKeyError> for ApiError {
    fn from(e: SigningKeyError) -> Self {
        match e {
            SigningKeyError::Keys(e) => e.into(),
        }
    }
}

/// Relying parties may cache the set this long; they refetch on an unknown kid anyway.
const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// A caller who is a platform admin (operator); anyone else authenticated gets 403.
pub struct PlatformAdmin(pub Auth);

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        if !auth.principal.is_platform_admin {
            return Err(ApiError::forbidden("only platform admins may do this"));
        }
        Ok(PlatformAdmin(auth))
    }
}

/// One public key of the set (RFC 7517); which parameters appear depends on `kty`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JwkDto {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    pub kty: String,
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `Ed25519` or `P-256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct JwkSetDto {
    pub keys: Vec<JwkDto>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SigningKeyDto {
    pub kid: String,
    pub alg: String,
    /// Signs new tokens (one per algorithm); otherwise retired and only published.
    pub active: bool,
    pub created_at: String,
    pub retired_at: Option<String>,
    /// Until when a retired key stays in the JWKS.
    pub publish_until: Option<String>,
}

impl From<&KeyInfo> for SigningKeyDto {
    fn from(k: &KeyInfo) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.as_str().to_owned(),
            active: k.retired_at.is_none(),
            created_at: ts(k.created_at),
            retired_at: k.retired_at.map(ts),
            publish_until: k.publish_until.map(ts),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SigningKeyList {
    /// Every published key, newest first.
    pub keys: Vec<SigningKeyDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSigningKeyRequest {
    /// `EdDSA` (default), `ES256` or `RS256`.
    pub alg: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RotateSigningKeyResponse {
    /// The new active key.
    pub kid: String,
    pub alg: String,
    /// The keys it replaced, still published until `publish_until`.
    pub retired: Vec<String>,
    pub publish_until: String,
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oidc", security(()),
    responses((status = 200, description = "The public keys that verify Portcullis tokens (`Cache-Control: public, max-age=300`)", body = JwkSetDto)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    match service::published(&state.keys).await {
        Ok(body) => (
            [
                (header::CACHE_CONTROL, JWKS_CACHE_CONTROL),
                (header::CONTENT_TYPE, "application/json"),
            ],
            body,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[utoipa::path(get, path = "/v1/admin/signing-keys", tag = "admin",
    responses(
        (status = 200, description = "Published signing keys (no private material)", body = SigningKeyList),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden: not a platform admin", body = ErrorBody),
    ))]
pub async fn list_signing_keys(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
) -> ApiResult<Json<SigningKeyList>> {
    let keys = service::list(&state.keys).await?;
    Ok(Json(SigningKeyList {
        keys: keys.iter().map(SigningKeyDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/admin/signing-keys/rotate", tag = "admin", request_body = RotateSigningKeyRequest,
    responses(
        (status = 200, description = "A new active key; the previous one stays published until every token it signed has expired. Audited as `signing_key.rotated`.", body = RotateSigningKeyResponse),
        (status = 400, description = "invalid_request: unknown alg or field", body = ErrorBody),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden: not a platform admin", body = ErrorBody),
    ))]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    PlatformAdmin(auth): PlatformAdmin,
    ApiJson(req): ApiJson<RotateSigningKeyRequest>,
) -> ApiResult<Json<RotateSigningKeyResponse>> {
    let alg = req
        .alg
        .as_deref()
        .map(|s| {
            SigningAlg::parse(s).map_err(|_| {
                ApiError::invalid_field("alg", "alg must be one of EdDSA, ES256, RS256")
            })
        })
        .transpose()?;
    let rotated = service::rotate(&state.keys, alg, &auth.audit).await?;
    Ok(Json(RotateSigningKeyResponse {
        kid: rotated.kid,
        alg: rotated.alg.as_str().to_owned(),
        retired: rotated.retired,
        publish_until: ts(rotated.publish_until),
    }))
}
