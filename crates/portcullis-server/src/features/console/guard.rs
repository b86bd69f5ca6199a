//! Who is at the console, and whether a form they posted is theirs.
//!
//! The console is a browser surface: only the session cookie signs a person in here (a
//! bearer token is an API client's, and would skip the CSRF defences below). Every form
//! carries a token bound to the session ([`csrf_token`]), and is also checked to come from
//! this server's origin (`http::forms::same_origin`), so a forged post needs both.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::{OrgAccess, OrgId, Principal, ProjectAccess, ProjectId, Role, SessionId};
use portcullis_store::{MembershipView, ProjectAccessRecord};
use ring::hmac;

use crate::features::console::assets;
use crate::features::console::page::{self, Chrome, NavLink, ORG_SECTIONS, OrgChoice, to_sign_in};
use crate::features::me::service::Me;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{Auth, RequestMeta, authorize_project_scope, resolve_session};
use crate::http::forms::same_origin;
use crate::http::params::Params;
use crate::infra::crypto::derive_key;
use crate::state::AppState;

/// The console's CSRF key is derived from the master key under its own label, so a token
/// of this kind means nothing anywhere else.
const CSRF_LABEL: &[u8] = b"portcullis/console-csrf/v1";

/// The form field carrying the token.
pub const CSRF_FIELD: &str = "csrf_token";

fn csrf_key(state: &AppState) -> hmac::Key {
    hmac::Key::new(
        hmac::HMAC_SHA256,
        &derive_key(&state.master_key, CSRF_LABEL),
    )
}

/// The session's form token: stateless (an HMAC of the session id), so it lives exactly as
/// long as the session and is worthless once the session is revoked.
pub fn csrf_token(state: &AppState, session: SessionId) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(&csrf_key(state), session.0.as_bytes()).as_ref())
}

/// Whether `presented` is this session's token (compared in constant time by ring).
pub fn csrf_matches(state: &AppState, session: SessionId, presented: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(presented)
        .is_ok_and(|tag| hmac::verify(&csrf_key(state), session.0.as_bytes(), &tag).is_ok())
}

/// A signed-in person at the console: their session (as the API's extractor would have
/// made it), their form token, and their memberships for the org switcher.
pub struct ConsoleUser {
    pub auth: Auth,
    pub csrf: String,
    pub memberships: Arc<Vec<MembershipView>>,
}

impl ConsoleUser {
    /// A page of a signed-in person; `org` when the page is about one of their orgs.
    pub fn chrome(&self, org: Option<OrgId>, section: &'static str, title: &str) -> Chrome {
        let user = self;
        let org_id = org.map(|o| o.to_string()).unwrap_or_default();
        let mut orgs: Vec<OrgChoice> = user
            .memberships
            .iter()
            .map(|m| OrgChoice {
                id: m.org.id.to_string(),
                name: m.org.name.as_str().to_owned(),
                selected: m.org.id.to_string() == org_id,
            })
            .collect();
        // A platform admin looking at an org they are not in still sees which one it is.
        if !org_id.is_empty() && !orgs.iter().any(|o| o.selected) {
            orgs.push(OrgChoice {
                id: org_id.clone(),
                name: format!("Organization {org_id}"),
                selected: true,
            });
        }
        let mut nav = Vec::new();
        if !org_id.is_empty() {
            nav.extend(ORG_SECTIONS.iter().map(|(slug, label)| NavLink {
                label,
                href: format!("/console/orgs/{org_id}/{slug}"),
                current: *slug == section,
            }));
        }
        nav.push(NavLink {
            label: "My account",
            href: "/console/account".into(),
            current: section == "account",
        });
        if user.is_platform_admin() {
            nav.push(NavLink {
                label: "Platform",
                href: "/console/platform".into(),
                current: section == "platform",
            });
        }
        Chrome {
            title: title.to_owned(),
            signed_in: true,
            email: user.email().to_owned(),
            csrf: user.csrf.clone(),
            orgs,
            org_id,
            section: if org.is_some() { section } else { "members" },
            nav,
            notice: None,
            assets: assets::version(),
        }
    }

    pub fn email(&self) -> &str {
        self.auth.session.user.email.as_str()
    }

    pub fn is_platform_admin(&self) -> bool {
        self.auth.principal.is_platform_admin
    }

    /// The same decision the API makes for the org routes ([`Auth::org_access`]).
    pub async fn org_access(
        &self,
        state: &AppState,
        org_id: OrgId,
        needed: Role,
    ) -> Result<OrgAccess, ApiError> {
        self.auth.org_access(state, org_id, needed).await
    }

    /// A failure on a page of the org named by `org` (raw, from the path). A refusal by
    /// the org's plan (402) comes only after access was granted, so its page keeps the
    /// org's navigation and links to its subscription; other failures show no org, which
    /// may not be the caller's.
    pub fn failed_in_org(
        &self,
        state: &AppState,
        org: &str,
        section: &'static str,
        title: &str,
        e: ApiError,
    ) -> Response {
        let org = if e.status == StatusCode::PAYMENT_REQUIRED {
            OrgId::parse(org)
        } else {
            None
        };
        page::failure(state, Some(self.chrome(org, section, title)), e)
    }

    /// A posted console form: from this server's origin, carrying this session's token.
    pub fn form(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Params, ApiError> {
        if !same_origin(state, headers) {
            return Err(ApiError::forbidden(
                "this form was not sent from this console (cross-site request refused)",
            )
            .with_details(serde_json::json!({"reason": "csrf"})));
        }
        let params = Params::parse(body)
            .map_err(|e| ApiError::invalid_request(format!("malformed form: {e}")))?;
        let presented = params.get(CSRF_FIELD).unwrap_or_default();
        let Some(session) = self.auth.principal.session_id else {
            return Err(ApiError::unauthenticated("no session"));
        };
        if !csrf_matches(state, session, presented) {
            return Err(ApiError::forbidden(
                "this form has expired or was not issued to this session; reload the page and try again",
            )
            .with_details(serde_json::json!({"reason": "csrf"})));
        }
        Ok(params)
    }
}

/// A project named in a console path (`/console/orgs/{org}/projects/{project}/…`), as the
/// signed-in person may act on it: the API's project rule, and the project must be of the
/// path's org.
pub struct ProjectAt {
    pub org: OrgId,
    pub record: ProjectAccessRecord,
    pub role: Role,
    pub access: ProjectAccess,
}

impl ConsoleUser {
    /// The project of a console path. One of another org than the path's is the same 404
    /// as one the caller cannot see, so no path mixes two tenants.
    pub async fn project(
        &self,
        state: &AppState,
        org: &str,
        project: &str,
    ) -> Result<ProjectAt, ApiError> {
        let org = page::org_id(org)?;
        let project_id =
            ProjectId::parse(project).ok_or_else(|| ApiError::not_found("no such project"))?;
        let (record, access) =
            authorize_project_scope(state, &self.auth.principal, project_id).await?;
        let role = access.role();
        if record.project.org_id != org {
            return Err(ApiError::not_found("no such project"));
        }
        Ok(ProjectAt {
            org,
            record,
            role,
            access,
        })
    }

    /// A form posted to a project's page: checked as [`ConsoleUser::form`] first (nothing
    /// is looked up for a forged post), then the project as [`ConsoleUser::project`].
    pub async fn project_form(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        body: &[u8],
        org: &str,
        project: &str,
    ) -> Result<(Params, ProjectAt), ApiError> {
        let form = self.form(state, headers, body)?;
        Ok((form, self.project(state, org, project).await?))
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    #[tracing::instrument(name = "console_auth", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let back = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/console", |pq| pq.as_str())
                .to_owned()
        } else {
            "/console".to_owned()
        };
        let token = match portcullis_guard::credential(&parts.headers, cookies::policy(state)) {
            Some(c) if c.is_cookie() => c.token().to_owned(),
            _ => return Err(to_sign_in(state, &back, false)),
        };
        let epoch = state.cache.epoch();
        let session = match resolve_session(state, &token).await {
            Ok(s) => s,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                return Err(to_sign_in(state, &back, true));
            }
            Err(e) => return Err(page::failure(state, None, e)),
        };
        let principal = Principal {
            user_id: session.user.id,
            session_id: Some(session.session.id),
            is_platform_admin: session.user.is_platform_admin,
        };
        let RequestMeta(meta) = RequestMeta::from_request_parts(parts, state)
            .await
            .map_err(|e| page::failure(state, None, e))?;
        let audit = meta.with_actor(principal.user_id);
        let memberships = Me {
            store: &*state.store,
            cache: &state.cache,
            user_id: principal.user_id,
            audit: &audit,
        }
        .memberships()
        .await
        .map_err(|e| page::failure(state, None, e.into()))?;
        Ok(ConsoleUser {
            csrf: csrf_token(state, session.session.id),
            auth: Auth {
                epoch,
                principal,
                session,
                audit,
            },
            memberships,
        })
    }
}

/// `HeaderValue` for a redirect after a successful post (303: the browser fetches the
/// page with GET, so a reload does not post again).
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
