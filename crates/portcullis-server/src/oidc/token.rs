//! `POST /oauth2/token`: authorization_code (with PKCE), refresh_token (rotation with reuse
//! detection and a grace window for concurrent retries) and client_credentials.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use portcullis_core::oauth::{ClientType, GrantType, OAuthClient, parse_scopes, pkce_s256_matches};
use portcullis_core::{AuditContext, TokenHash};
use portcullis_store::{CodeRedemption, RefreshFamily, RefreshOutcome, RefreshRotation};
use serde_json::{Value, json};
use uuid::Uuid;

use super::issue::{self, Grant, IdTokenInput};
use super::oauth_error::OAuthError;
use super::params::{Params, authenticate_client};
use crate::extract::RequestMeta;
use crate::state::AppState;

fn token_response(body: Value) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

#[utoipa::path(post, path = "/oauth2/token", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "RFC 6749 §4.1.3 / §6 / §4.4: grant_type=authorization_code|refresh_token|client_credentials"),
    responses(
        (status = 200, description = "access_token, token_type, expires_in, scope; id_token and refresh_token where they apply"),
        (status = 400, description = "invalid_request, invalid_grant (code = refresh_token_reused when a rotated refresh token came back), unauthorized_client, unsupported_grant_type, invalid_scope"),
        (status = 401, description = "invalid_client"),
    ))]
pub async fn token(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::parse(&body)?;
    let client = authenticate_client(&state, &headers, &params).await?;
    let grant_type = params.require("grant_type")?;
    let grant = GrantType::parse(grant_type).map_err(|_| {
        OAuthError::unsupported_grant_type(format!("grant_type {grant_type:?} is not supported"))
    })?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use the {} grant",
            grant.as_str()
        )));
    }
    let body = match grant {
        GrantType::AuthorizationCode => authorization_code(&state, &client, &params, &meta).await?,
        GrantType::RefreshToken => refresh(&state, &client, &params, &meta).await?,
        GrantType::ClientCredentials => client_credentials(&state, &client, &params).await?,
    };
    Ok(token_response(body))
}

async fn authorization_code(
    state: &AppState,
    client: &OAuthClient,
    params: &Params,
    meta: &AuditContext,
) -> Result<Value, OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let now = portcullis_core::now();
    let code_hash = TokenHash::of(code);
    let code = match state
        .store
        .grants()
        .redeem_code(client.org_id, &code_hash, now, meta)
        .await?
    {
        CodeRedemption::Redeemed(c) => c,
        CodeRedemption::Replayed { .. } => {
            return Err(OAuthError::invalid_grant(
                "authorization code was already used; tokens issued from it are revoked",
            ));
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant("authorization code is invalid"));
        }
    };
    // The code is spent from here on, whatever the outcome: a failed attempt cannot be retried.
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("authorization code has expired"));
    }
    if code.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&code.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce_s256_matches(verifier, challenge) => {}
        (Some(_), _) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code challenge",
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but no code challenge was",
            ));
        }
        (None, None) if client.client_type == ClientType::Public => {
            return Err(OAuthError::invalid_grant(
                "PKCE is required for public clients",
            ));
        }
        (None, None) => {}
    }
    let user = state
        .store
        .user_by_id(code.user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let family_id = client
        .allows_grant(GrantType::RefreshToken)
        .then(Uuid::now_v7);
    let grant = Grant {
        client,
        user: Some(&user),
        scope: &code.scope,
        org_id: code.org_id,
        project_id: code.project_id,
        session_id: code.session_id,
        family_id,
    };
    let access = issue::access_token(state, &grant, now).await?;
    let mut body = json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "scope": code.scope,
    });
    if let Some(fid) = family_id {
        let (raw, hash) = issue::new_refresh_token()?;
        let family = RefreshFamily {
            id: fid,
            client_id: client.id.clone(),
            org_id: code.org_id,
            project_id: code.project_id,
            user_id: user.id,
            session_id: code.session_id,
            scope: code.scope.clone(),
            auth_time: code.auth_time,
            created_at: now,
        };
        state
            .store
            .grants()
            .start_family(
                &family,
                &hash,
                now + state.oidc.refresh_ttl,
                Some(&code_hash),
            )
            .await?;
        body["refresh_token"] = json!(raw);
    }
    if code.scope.split(' ').any(|s| s == "openid") {
        let input = IdTokenInput {
            client,
            user: &user,
            scope: &code.scope,
            nonce: code.nonce.as_deref(),
            auth_time: code.auth_time,
            session_id: code.session_id,
            org_id: code.org_id,
            project_id: code.project_id,
        };
        body["id_token"] = json!(issue::id_token(state, &input, now).await?);
    }
    Ok(body)
}

async fn refresh(
    state: &AppState,
    client: &OAuthClient,
    params: &Params,
    meta: &AuditContext,
) -> Result<Value, OAuthError> {
    let presented = params.require("refresh_token")?;
    let now = portcullis_core::now();
    let (successor, successor_hash) = issue::successor_of(state, presented)?;
    let outcome = state
        .store
        .grants()
        .rotate_refresh(
            &RefreshRotation {
                org_id: client.org_id,
                client_id: &client.id,
                presented: &TokenHash::of(presented),
                successor: &successor_hash,
                now,
                grace: state.oidc.refresh_grace,
                successor_expires_at: now + state.oidc.refresh_ttl,
                on_success: &[],
                reuse_ends_session: false,
            },
            meta,
        )
        .await?;
    let family = match outcome {
        RefreshOutcome::Rotated(f) | RefreshOutcome::Retried(f) => f,
        RefreshOutcome::ReuseDetected(_) => {
            return Err(OAuthError::invalid_grant(
                "refresh token was already used; every token of its family is now revoked",
            )
            .with_code("refresh_token_reused"));
        }
        RefreshOutcome::Revoked(_) => {
            return Err(OAuthError::invalid_grant("refresh token has been revoked"));
        }
        RefreshOutcome::Expired(_) => {
            return Err(OAuthError::invalid_grant("refresh token has expired"));
        }
        RefreshOutcome::Unknown => {
            return Err(OAuthError::invalid_grant("refresh token is invalid"));
        }
    };
    // A narrower scope may be asked for (RFC 6749 §6), never a wider one.
    let scope = match params.get("scope") {
        None => family.scope.clone(),
        Some(requested) => {
            let requested =
                parse_scopes(requested).map_err(|e| OAuthError::invalid_scope(e.message))?;
            if requested
                .iter()
                .any(|s| !family.scope.split(' ').any(|g| g == s))
            {
                return Err(OAuthError::invalid_scope(
                    "requested scope exceeds the original grant",
                ));
            }
            requested.join(" ")
        }
    };
    let user = state
        .store
        .user_by_id(family.user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let grant = Grant {
        client,
        user: Some(&user),
        scope: &scope,
        org_id: family.org_id,
        project_id: family.project_id,
        session_id: family.session_id,
        family_id: Some(family.id),
    };
    let access = issue::access_token(state, &grant, now).await?;
    let mut body = json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "scope": scope,
        "refresh_token": successor,
    });
    if scope.split(' ').any(|s| s == "openid") {
        let input = IdTokenInput {
            client,
            user: &user,
            scope: &scope,
            nonce: None,
            auth_time: family.auth_time,
            session_id: family.session_id,
            org_id: family.org_id,
            project_id: family.project_id,
        };
        body["id_token"] = json!(issue::id_token(state, &input, now).await?);
    }
    Ok(body)
}

async fn client_credentials(
    state: &AppState,
    client: &OAuthClient,
    params: &Params,
) -> Result<Value, OAuthError> {
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::unauthorized_client(
            "client_credentials needs a confidential client",
        ));
    }
    let scope = match params.get("scope") {
        None => Vec::new(),
        Some(s) => parse_scopes(s).map_err(|e| OAuthError::invalid_scope(e.message))?,
    };
    if scope.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::invalid_scope(
            "openid and offline_access need a user; client_credentials has none",
        ));
    }
    let scope = scope.join(" ");
    let grant = Grant {
        client,
        user: None,
        scope: &scope,
        org_id: client.org_id,
        project_id: client.project_id,
        session_id: None,
        family_id: None,
    };
    let access = issue::access_token(state, &grant, portcullis_core::now()).await?;
    Ok(json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "scope": scope,
    }))
}
