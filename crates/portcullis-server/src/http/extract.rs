//! Extractors: the only way credentials, bodies and the project context get into a
//! handler. Each one turns its failure into the API's error envelope.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use bytes::Bytes;
use portcullis_core::authz::{self, AccessDenied};
use portcullis_core::plan::{KeyStanding, key_standing};
use portcullis_core::token::SecretKey;
use portcullis_core::{
    AuditContext, OrgAccess, Principal, ProjectAccess, ProjectId, ProjectStatus, Role, TokenHash,
};
use portcullis_store::platform::KeyHolder;
use portcullis_store::{ProjectAccessRecord, SessionWithUser};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::{cookies, correlation};
use crate::infra::access_tokens;
use crate::state::AppState;

pub const PROJECT_HEADER: &str = "x-project-id";

/// A JSON body; malformed JSON, wrong types and unknown fields become `invalid_request`
/// with `details` naming what was wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json_content_type(req.headers())?;
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid_request(format!("cannot read request body: {e}")))?;
        parse_json_body(&body).map(ApiJson)
    }
}

/// `Content-Type: application/json` (parameters such as `charset` allowed), or 400.
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "request body must be JSON (Content-Type: application/json)",
        ))
    }
}

/// A JSON body already read; errors as [`ApiJson`] reports them.
pub fn parse_json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let reason = e.to_string();
        let mut details = json!({"reason": reason});
        // serde names the field between backticks for unknown and missing fields (for
        // type errors the backticks quote the offending value instead).
        if (reason.starts_with("unknown field") || reason.starts_with("missing field"))
            && let Some(field) = reason.split('`').nth(1)
        {
            details["field"] = json!(field);
        }
        ApiError::invalid_request(format!("invalid JSON body: {reason}")).with_details(details)
    })
}

/// Request facts every audited change records.
pub struct RequestMeta(pub AuditContext);

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(RequestMeta(audit_context(parts)))
    }
}

fn audit_context(parts: &Parts) -> AuditContext {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    AuditContext {
        actor_id: None,
        actor_key: None,
        ip,
        user_agent,
        correlation_id: correlation::current(),
    }
}

/// A verified caller. Cookie-authenticated state changes have passed the CSRF check.
pub struct Auth {
    /// The cache epoch read before the session was resolved; answers derived from this
    /// request may be cached under it, never under a later one.
    pub epoch: u64,
    pub principal: Principal,
    pub session: Arc<SessionWithUser>,
    pub audit: AuditContext,
}

/// Resolves a session token: memory first, then the database; slides the expiry.
pub async fn resolve_session(
    state: &AppState,
    token: &str,
) -> Result<Arc<SessionWithUser>, ApiError> {
    let hash = TokenHash::of(token);
    let now = portcullis_core::now();
    let resolved = match state.cache.session(&hash) {
        Some(hit) => hit,
        None => {
            let epoch = state.cache.epoch();
            let found = state.store.sessions().session_by_token(&hash).await?;
            let Some(found) = found else {
                return Err(ApiError::unauthenticated(
                    "session is invalid, expired or revoked",
                ));
            };
            state.cache.put_session(epoch, found)
        }
    };
    if !resolved.session.is_active(now) {
        return Err(ApiError::unauthenticated(
            "session is invalid, expired or revoked",
        ));
    }
    if let Some((seen, expires)) = state.sessions.touch(&resolved.session, now) {
        state
            .store
            .sessions()
            .touch_session(resolved.session.id, seen, expires)
            .await?;
        state.cache.forget_session(&hash);
    }
    Ok(resolved)
}

/// Session tokens are opaque base64url; access tokens are JWS compact (three parts).
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// A bearer JWT on Portcullis' own API: only an access token of the mobile app counts, and
/// it acts through the session it names (`sid`). Revoking that session or the token's
/// refresh family stops it on the next request.
async fn resolve_mobile_access_token(
    state: &AppState,
    token: &str,
) -> Result<Arc<SessionWithUser>, ApiError> {
    let invalid = || ApiError::unauthenticated("access token is invalid, expired or revoked");
    let claims = access_tokens::live_access_token(
        &state.cache,
        &state.keys,
        &*state.store,
        &state.oidc.issuer,
        token,
    )
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(invalid)?;
    if claims.client_id.as_str() != portcullis_store::MOBILE_CLIENT_ID {
        // A third-party application's token speaks for the user to that application, not
        // to the admin API.
        return Err(ApiError::unauthenticated(
            "access tokens of OAuth applications cannot call the Portcullis API; use a session",
        ));
    }
    let sid = claims.sid.ok_or_else(invalid)?;
    let resolved = resolve_session(
        state,
        &access_tokens::mobile_session_token(&state.mobile.session_key, sid),
    )
    .await?;
    if claims.user_id() != Some(resolved.user.id) {
        return Err(invalid());
    }
    Ok(resolved)
}

/// Where a cookie-authenticated state change came from, for the CSRF check.
enum CsrfOutcome {
    Passed,
    /// Not the server's own origin; acceptable only if it is one of the addressed project's
    /// allowed origins.
    NeedsProjectOrigin(String),
}

fn csrf_refused() -> ApiError {
    ApiError::forbidden(
        "cross-site request refused: a cookie-authenticated change must come from this server's origin \
         or an allowed origin of the project",
    )
    .with_details(json!({"reason": "csrf"}))
}

async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
) -> Result<(Auth, CsrfOutcome), ApiError> {
    let Some(credential) = portcullis_guard::credential(&parts.headers, cookies::policy(state))
    else {
        return Err(ApiError::unauthenticated(
            "authentication required: send the session cookie or Authorization: Bearer",
        ));
    };
    let epoch = state.cache.epoch();
    let resolved = match credential {
        portcullis_guard::Credential::Bearer(token) if looks_like_jwt(token) => {
            resolve_mobile_access_token(state, token).await?
        }
        _ => resolve_session(state, credential.token()).await?,
    };
    let mutating = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let csrf = if credential.is_cookie() && mutating {
        match crate::http::origin::request_origin(&parts.headers) {
            Some(origin) if origin == state.public_origin => CsrfOutcome::Passed,
            Some(origin) => CsrfOutcome::NeedsProjectOrigin(origin),
            None => return Err(csrf_refused()),
        }
    } else {
        CsrfOutcome::Passed
    };
    let principal = Principal {
        user_id: resolved.user.id,
        session_id: Some(resolved.session.id),
        is_platform_admin: resolved.user.is_platform_admin,
    };
    let audit = audit_context(parts).with_actor(principal.user_id);
    Ok((
        Auth {
            epoch,
            principal,
            session: resolved,
            audit,
        },
        csrf,
    ))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    #[tracing::instrument(name = "auth", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await? {
            (auth, CsrfOutcome::Passed) => Ok(auth),
            (_, CsrfOutcome::NeedsProjectOrigin(_)) => Err(csrf_refused()),
        }
    }
}

impl Auth {
    /// Access to an org at `needed` role or better ([`authz::decide_org_access`]): a caller
    /// with no relation to the org gets 404, a removed or too-weak member 403.
    pub async fn org_access(
        &self,
        state: &AppState,
        org_id: portcullis_core::OrgId,
        needed: Role,
    ) -> Result<OrgAccess, ApiError> {
        let membership = state
            .store
            .orgs()
            .membership(org_id, self.principal.user_id)
            .await?;
        Ok(authz::decide_org_access(
            &self.principal,
            org_id,
            membership.as_ref(),
            needed,
        )?)
    }
}

/// A request authenticated by a project's secret key (`Authorization: Bearer sk_…`): the
/// key fixes the project, and the key acts as an admin of the project's org
/// ([`OrgAccess::project_key`]).
pub struct KeyAuth {
    pub holder: KeyHolder,
    pub access: OrgAccess,
    /// The key's access to its own project ([`ProjectAccess::project_key`]).
    pub project_access: ProjectAccess,
    pub audit: AuditContext,
    /// Set when a newer key exists: when this one stops working.
    pub superseded_until: Option<portcullis_core::Timestamp>,
}

fn bearer_secret_key(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && SecretKey::claims(token.trim())).then(|| token.trim())
}

/// Checks a presented secret key: its shape and checksum first (a typo never reaches the
/// database), then its digest, its grace period and its project's status.
pub async fn authenticate_secret_key(
    state: &AppState,
    raw: &str,
    parts: &Parts,
) -> Result<KeyAuth, ApiError> {
    let refused = || ApiError::unauthenticated("secret key is invalid, expired or revoked");
    let key = SecretKey::parse(raw)
        .map_err(|e| ApiError::unauthenticated(format!("secret key refused: {e}")))?;
    let holder = state
        .store
        .platform()
        .key_holder(&key.hash())
        .await?
        .ok_or_else(refused)?;
    let now = portcullis_core::now();
    let superseded_until = match key_standing(holder.key.expires_at, now) {
        KeyStanding::Current => None,
        KeyStanding::Superseded { until } => Some(until),
        KeyStanding::Expired => return Err(refused()),
    };
    if holder.project.status != ProjectStatus::Active {
        return Err(ApiError::project_disabled());
    }
    state.key_usage.note(holder.key.id, now);
    tracing::debug!(key = %holder.key.prefix, project = %holder.project.id, "secret key accepted");
    Ok(KeyAuth {
        access: OrgAccess::project_key(holder.project.org_id),
        project_access: ProjectAccess::project_key(holder.project.org_id, holder.project.id),
        // The key is the actor of what it changes: its prefix, never the key.
        audit: audit_context(parts).with_key(&holder.key.prefix),
        holder,
        superseded_until,
    })
}

impl FromRequestParts<AppState> for KeyAuth {
    type Rejection = ApiError;

    #[tracing::instrument(name = "secret_key", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(raw) = bearer_secret_key(parts) else {
            return Err(ApiError::unauthenticated(
                "this route needs the project's secret key: Authorization: Bearer sk_live_…",
            ));
        };
        authenticate_secret_key(state, raw, parts).await
    }
}

/// Who calls an org route: a signed-in user, or a project's secret key acting for its
/// project's org — a backend managing members, invitations and sessions. A key reaches no
/// other org (404, as for a stranger) and nothing beyond an admin's rights (403).
pub enum OrgCaller {
    User(Box<Auth>),
    Key(Box<KeyAuth>),
}

impl OrgCaller {
    /// Access to `org_id` at `needed` role or better.
    pub async fn org_access(
        &self,
        state: &AppState,
        org_id: portcullis_core::OrgId,
        needed: Role,
    ) -> Result<OrgAccess, ApiError> {
        match self {
            OrgCaller::User(auth) => auth.org_access(state, org_id, needed).await,
            OrgCaller::Key(key) => Ok(authz::decide_key_org_access(&key.access, org_id, needed)?),
        }
    }

    pub fn audit(&self) -> &AuditContext {
        match self {
            OrgCaller::User(auth) => &auth.audit,
            OrgCaller::Key(key) => &key.audit,
        }
    }

    /// The signed-in user; None for a secret key.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            OrgCaller::User(auth) => Some(&auth.principal),
            OrgCaller::Key(_) => None,
        }
    }
}

impl FromRequestParts<AppState> for OrgCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(raw) = bearer_secret_key(parts) {
            let key = authenticate_secret_key(state, raw, parts).await?;
            return Ok(OrgCaller::Key(Box::new(key)));
        }
        Ok(OrgCaller::User(Box::new(
            Auth::from_request_parts(parts, state).await?,
        )))
    }
}

/// Who is behind a project-scoped request; every change it makes is audited under `audit`.
pub struct ProjectCaller {
    pub audit: AuditContext,
    /// The signed-in user; None when a secret key authenticated the request.
    pub principal: Option<Principal>,
    /// The display prefix of the secret key that authenticated the request.
    pub key_prefix: Option<String>,
}

/// The project a project-scoped route acts on, from `X-Project-ID` (or from the secret
/// key), with the caller's access to it checked.
pub struct ProjectCtx {
    pub auth: ProjectCaller,
    pub record: ProjectAccessRecord,
    /// The caller's effective role in the project.
    pub role: Role,
    pub access: OrgAccess,
    /// The project access the role was decided as: what the store's project handle takes.
    pub project_access: ProjectAccess,
}

pub fn project_id_header(headers: &HeaderMap) -> Result<ProjectId, ApiError> {
    let Some(raw) = headers.get(PROJECT_HEADER) else {
        return Err(ApiError::invalid_request(
            "X-Project-ID header is required for this operation",
        )
        .with_details(json!({"field": "X-Project-ID", "reason": "missing"})));
    };
    raw.to_str()
        .ok()
        .and_then(|s| ProjectId::parse(s.trim()))
        .ok_or_else(|| {
            ApiError::invalid_request("X-Project-ID header must be a project id (UUID)")
                .with_details(json!({"field": "X-Project-ID", "reason": "malformed"}))
        })
}

/// The caller's access to a project: its record and the project access decided from it
/// ([`authz::decide_project_scope`], the same rule as the org routes). A project of an org
/// they never belonged to is 404; one of an org they left, or of their org but not theirs,
/// is 403.
pub async fn authorize_project_scope(
    state: &AppState,
    principal: &Principal,
    project_id: ProjectId,
) -> Result<(ProjectAccessRecord, ProjectAccess), ApiError> {
    let not_found = || ApiError::not_found("no such project");
    let record = state
        .store
        .projects()
        .project_access(project_id, principal.user_id)
        .await?
        .ok_or_else(not_found)?;
    let access = authz::decide_project_scope(
        principal,
        record.project.id,
        record.project.org_id,
        record.org_membership.as_ref(),
        record.project_role,
    )
    .map_err(|denied| match denied {
        AccessDenied::NotVisible => not_found(),
        denied => denied.into(),
    })?;
    Ok((record, access))
}

/// [`authorize_project_scope`], answered as the caller's effective role in the project and
/// the org access it implies.
pub async fn authorize_project(
    state: &AppState,
    principal: &Principal,
    project_id: ProjectId,
) -> Result<(ProjectAccessRecord, Role, OrgAccess), ApiError> {
    let (record, access) = authorize_project_scope(state, principal, project_id).await?;
    Ok((record, access.role(), access.org().clone()))
}

impl FromRequestParts<AppState> for ProjectCtx {
    type Rejection = ApiError;

    #[tracing::instrument(name = "project_context", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(raw) = bearer_secret_key(parts) {
            return project_from_key(state, raw, parts).await;
        }
        // The header is checked first: a missing project context is the same 400 for
        // everybody, authenticated or not, so clients can fix it deterministically.
        let project_id = project_id_header(&parts.headers)?;
        let (auth, csrf) = authenticate(parts, state).await?;
        let (record, project_access) =
            authorize_project_scope(state, &auth.principal, project_id).await?;
        if let CsrfOutcome::NeedsProjectOrigin(origin) = csrf
            && !record
                .project
                .allowed_origins
                .iter()
                .any(|o| o.as_str() == origin)
        {
            return Err(csrf_refused());
        }
        Ok(ProjectCtx {
            auth: ProjectCaller {
                audit: auth.audit,
                principal: Some(auth.principal),
                key_prefix: None,
            },
            record,
            role: project_access.role(),
            access: project_access.org().clone(),
            project_access,
        })
    }
}

/// The project of a secret key. An `X-Project-ID` naming another project is refused rather
/// than ignored: the caller would otherwise change a project it did not mean to.
async fn project_from_key(
    state: &AppState,
    raw: &str,
    parts: &Parts,
) -> Result<ProjectCtx, ApiError> {
    let key = authenticate_secret_key(state, raw, parts).await?;
    if parts.headers.contains_key(PROJECT_HEADER)
        && project_id_header(&parts.headers)? != key.holder.project.id
    {
        return Err(ApiError::forbidden(
            "this secret key belongs to another project than X-Project-ID names; omit the header",
        ));
    }
    Ok(ProjectCtx {
        auth: ProjectCaller {
            audit: key.audit,
            principal: None,
            key_prefix: Some(key.holder.key.prefix.clone()),
        },
        project_access: key.project_access,
        record: ProjectAccessRecord {
            project: key.holder.project,
            org_membership: None,
            project_role: None,
        },
        role: key.access.role(),
        access: key.access,
    })
}

/// `X-Project-ID` when the request has one (parsed, or the 400 it earns); for routes where
/// the project context is optional. Reads the header in place.
pub struct ProjectHeader(pub Option<Result<ProjectId, ApiError>>);

impl<S: Send + Sync> FromRequestParts<S> for ProjectHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ProjectHeader(
            parts
                .headers
                .contains_key(PROJECT_HEADER)
                .then(|| project_id_header(&parts.headers)),
        ))
    }
}
