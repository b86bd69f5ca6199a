//! The authorization endpoint's rules (code flow): which requests are refused on an error
//! page (until the client and its redirect URI are known to be registered — never a
//! redirect, or the endpoint would be an open redirector), which go back to the client
//! with `error=…`, and when the user must sign in or consent before a code is issued.

use portcullis_core::oauth::{ClientId, ClientType, GrantType, OAuthClient};
use portcullis_core::scope::ScopeSet;
use portcullis_core::{AuditContext, Timestamp, pkce};
use portcullis_store::{AuthCode, SessionWithUser, StoreError};

use crate::features::oidc::issue::{self, IssueError};
use crate::state::AppState;
use AuthorizeErrorCode as E;

const CODE_TTL: time::Duration = time::Duration::seconds(60);

/// The authorization request's parameters (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorizeParams<'a> {
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub response_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub max_age: Option<&'a str>,
    /// `request` or `request_uri` was sent (request objects are not supported).
    pub request_object: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    None,
    Login,
    Consent,
}

/// A request whose client and redirect URI are registered, and which asks for something
/// this server does.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Option<Prompt>,
    pub max_age: Option<i64>,
}

/// The `error` of an authorization error response (RFC 6749 §4.1.2.1, OpenID Connect
/// Core §3.1.2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizeErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
}

impl AuthorizeErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeErrorCode::InvalidRequest => "invalid_request",
            AuthorizeErrorCode::UnauthorizedClient => "unauthorized_client",
            AuthorizeErrorCode::AccessDenied => "access_denied",
            AuthorizeErrorCode::UnsupportedResponseType => "unsupported_response_type",
            AuthorizeErrorCode::InvalidScope => "invalid_scope",
            AuthorizeErrorCode::LoginRequired => "login_required",
            AuthorizeErrorCode::ConsentRequired => "consent_required",
            AuthorizeErrorCode::RequestNotSupported => "request_not_supported",
        }
    }
}

/// A refusal sent back to the client on its (registered) redirect URI.
#[derive(Debug)]
pub struct ClientRefusal {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: AuthorizeErrorCode,
    pub description: String,
}

impl ClientRefusal {
    fn to(req: &AuthorizeRequest, error: AuthorizeErrorCode, description: &str) -> Self {
        Self {
            redirect_uri: req.redirect_uri.clone(),
            state: req.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    // Shown on an error page: nothing is known to be safe to redirect to.
    #[error("The request names no client (client_id is missing).")]
    NoClient,
    #[error("The application asking you to sign in is not known here (unknown client_id).")]
    UnknownClient,
    #[error("This application's project is disabled, so sign-in stops here (project_disabled).")]
    ProjectDisabled,
    #[error("The request has no redirect_uri.")]
    NoRedirectUri,
    #[error("The redirect_uri is not registered for this application, so sign-in stops here.")]
    UnregisteredRedirectUri,
    #[error("Password sign-in is switched off on this server (feature_disabled).")]
    PasswordSignInOff,
    /// Sent back to the client.
    #[error("{}: {}", .0.error.as_str(), .0.description)]
    Refused(ClientRefusal),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("authorization store: {0}")]
    Store(#[from] StoreError),
}

/// Checks an authorization request: first that its client and redirect URI are
/// registered, then everything else (refused to the client from there on).
pub async fn validate(
    state: &AppState,
    p: &AuthorizeParams<'_>,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let client_id = p
        .client_id
        .and_then(ClientId::parse)
        .ok_or(AuthorizeError::NoClient)?;
    let cached = super::find_client(state, &client_id)
        .await?
        .ok_or(AuthorizeError::UnknownClient)?;
    if !cached.project_active {
        return Err(AuthorizeError::ProjectDisabled);
    }
    let client = OAuthClient::clone(&cached.client);
    let redirect_uri = p.redirect_uri.ok_or(AuthorizeError::NoRedirectUri)?;
    if !client.redirect_uri_allowed(redirect_uri) {
        return Err(AuthorizeError::UnregisteredRedirectUri);
    }
    let mut req = AuthorizeRequest {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state: p.state.map(str::to_owned),
        scope: ScopeSet::default(),
        nonce: p.nonce.map(str::to_owned),
        code_challenge: None,
        prompt: None,
        max_age: None,
    };
    let refuse = |req: &AuthorizeRequest, error, description: &str| {
        AuthorizeError::Refused(ClientRefusal::to(req, error, description))
    };
    if p.request_object {
        return Err(refuse(
            &req,
            E::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if p.response_type != Some("code") {
        return Err(refuse(
            &req,
            E::UnsupportedResponseType,
            "only response_type=code is supported",
        ));
    }
    if !req.client.allows_grant(GrantType::AuthorizationCode) {
        return Err(refuse(
            &req,
            E::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    req.scope = match ScopeSet::parse(p.scope.unwrap_or_default()) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return Err(refuse(&req, E::InvalidScope, "scope is required")),
        Err(e) => return Err(refuse(&req, E::InvalidScope, &e.message)),
    };
    req.code_challenge = match (p.code_challenge, p.code_challenge_method) {
        (Some(c), Some("S256")) => {
            if !pkce::challenge_well_formed(c) {
                return Err(refuse(
                    &req,
                    E::InvalidRequest,
                    "code_challenge is not a base64url SHA-256",
                ));
            }
            Some(c.to_owned())
        }
        (Some(_), _) => {
            return Err(refuse(
                &req,
                E::InvalidRequest,
                "code_challenge_method must be S256; plain is not accepted",
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                &req,
                E::InvalidRequest,
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None) if req.client.client_type == ClientType::Public => {
            return Err(refuse(
                &req,
                E::InvalidRequest,
                "PKCE (code_challenge with S256) is required for public clients",
            ));
        }
        (None, None) => None,
    };
    req.prompt = match p.prompt {
        None => None,
        Some("none") => Some(Prompt::None),
        Some("login") => Some(Prompt::Login),
        Some("consent") => Some(Prompt::Consent),
        Some(other) => {
            return Err(refuse(
                &req,
                E::InvalidRequest,
                &format!("prompt {other:?} is not supported"),
            ));
        }
    };
    req.max_age = match p.max_age {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(refuse(
                    &req,
                    E::InvalidRequest,
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    Ok(req)
}

/// What the browser sees next.
#[derive(Debug)]
pub enum Decision {
    /// The sign-in page.
    SignIn,
    /// The consent page for the request's scopes.
    Consent,
    /// Back to the client with a fresh code.
    Issued {
        redirect_uri: String,
        code: String,
        state: Option<String>,
    },
}

fn needs_login(req: &AuthorizeRequest, session: Option<&SessionWithUser>, now: Timestamp) -> bool {
    let Some(s) = session else { return true };
    if req.prompt == Some(Prompt::Login) {
        return true;
    }
    req.max_age
        .is_some_and(|max| (now - s.session.created_at).whole_seconds() > max)
}

/// First-party: the user belongs to the client's project, so no consent is asked (unless
/// the redirect cannot prove which app receives the code).
async fn is_first_party(
    state: &AppState,
    client: &OAuthClient,
    session: &SessionWithUser,
) -> Result<bool, StoreError> {
    let access = state
        .store
        .projects()
        .project_access(client.project_id, session.user.id)
        .await?;
    Ok(access.is_some_and(|a| {
        a.org_membership
            .filter(|m| m.is_active())
            .and_then(|m| portcullis_core::project::effective_project_role(m.role, a.project_role))
            .is_some()
    }))
}

/// Decides a valid request for the browser's session (if it has one): sign in, consent, or
/// a code.
pub async fn decide(
    state: &AppState,
    req: &AuthorizeRequest,
    session: Option<&SessionWithUser>,
    now: Timestamp,
) -> Result<Decision, AuthorizeError> {
    let session = match session {
        Some(s) if !needs_login(req, Some(s), now) => s,
        _ if req.prompt == Some(Prompt::None) => {
            return Err(AuthorizeError::Refused(ClientRefusal::to(
                req,
                AuthorizeErrorCode::LoginRequired,
                "the user is not signed in",
            )));
        }
        _ if !state.password_login => return Err(AuthorizeError::PasswordSignInOff),
        _ => return Ok(Decision::SignIn),
    };
    // A public client redirecting to a scheme any app can claim gets the user's explicit
    // approval at least once, first-party or not: otherwise a malicious app that claims the
    // same scheme could start a sign-in and receive a code without the user noticing.
    let needs_approval = req.client.needs_user_approval(&req.redirect_uri);
    if needs_approval || !is_first_party(state, &req.client, session).await? {
        let granted = state
            .store
            .grants()
            .consent(req.client.org_id, session.user.id, &req.client.id)
            .await?;
        let covered = granted.is_some_and(|g| g.covers(&req.scope));
        if !covered || req.prompt == Some(Prompt::Consent) {
            if req.prompt == Some(Prompt::None) {
                return Err(AuthorizeError::Refused(ClientRefusal::to(
                    req,
                    AuthorizeErrorCode::ConsentRequired,
                    "the user has not consented",
                )));
            }
            return Ok(Decision::Consent);
        }
    }
    let (raw, hash) = issue::random_code()?;
    let code = AuthCode {
        code_hash: hash,
        client_id: req.client.id.clone(),
        org_id: req.client.org_id,
        project_id: req.client.project_id,
        user_id: session.user.id,
        session_id: Some(session.session.id),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.to_string(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: session.session.created_at,
        created_at: now,
        expires_at: now + CODE_TTL,
    };
    state.store.grants().insert_code(&code).await?;
    Ok(Decision::Issued {
        redirect_uri: req.redirect_uri.clone(),
        code: raw,
        state: req.state.clone(),
    })
}

/// The user allowed the request's scopes for its client.
pub async fn grant_consent(
    state: &AppState,
    req: &AuthorizeRequest,
    session: &SessionWithUser,
    meta: &AuditContext,
) -> Result<(), AuthorizeError> {
    let meta = meta.with_actor(session.user.id);
    state
        .store
        .grants()
        .grant_consent(
            req.client.org_id,
            session.user.id,
            &req.client.id,
            &req.scope.to_string(),
            &meta,
        )
        .await?;
    Ok(())
}

/// The user denied the request: the client hears `access_denied`.
pub fn denied(req: &AuthorizeRequest) -> ClientRefusal {
    ClientRefusal::to(
        req,
        AuthorizeErrorCode::AccessDenied,
        "the user denied access",
    )
}
