//! A person's own account: their sessions (revoke any), the applications they consented to
//! (withdraw), and accepting an invitation from its link (`/invitations/accept#token=…`,
//! the page `features::invitations::accept_url` points at).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::SessionId;
use portcullis_core::oauth::ClientId;

use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, when};
use crate::features::console::sessions::SessionRow;
use crate::features::invitations::service::Invitations;
use crate::features::me::service::{Me, MeError};
use crate::http::error::ApiError;
use crate::state::AppState;

pub struct ConsentRow {
    pub client_id: String,
    pub scope: String,
    pub granted_at: String,
}

pub struct MembershipRow {
    pub org_id: String,
    pub org: String,
    pub role: &'static str,
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    chrome: Chrome,
    name: String,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
    memberships: Vec<MembershipRow>,
}

fn me<'a>(state: &'a AppState, user: &'a ConsoleUser) -> Me<'a> {
    Me {
        store: &*state.store,
        cache: &state.cache,
        user_id: user.auth.principal.user_id,
        audit: &user.auth.audit,
    }
}

/// `GET /console/account`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result: Result<Response, ApiError> = async {
        let own = me(&state, &user);
        let current = user.auth.principal.session_id;
        let sessions = own
            .sessions()
            .await?
            .iter()
            .map(|s| SessionRow {
                id: s.id.to_string(),
                device: s.device.as_ref().map_or_else(
                    || "Browser".to_owned(),
                    |d| format!("{} {}", d.platform, d.model.clone().unwrap_or_default()),
                ),
                ip: s.ip.clone().unwrap_or_default(),
                user_agent: s.user_agent.clone().unwrap_or_default(),
                last_seen: when(s.last_seen_at),
                created: when(s.created_at),
                current: Some(s.id) == current,
            })
            .collect();
        let consents = own
            .consents()
            .await?
            .iter()
            .map(|c| ConsentRow {
                client_id: c.client_id.as_str().to_owned(),
                scope: c.scope.to_string(),
                granted_at: when(c.granted_at),
            })
            .collect();
        let page = AccountPage {
            chrome: user
                .chrome(None, "account", "My account")
                .with_notice(notice(q.notice.as_deref())),
            name: user
                .auth
                .session
                .user
                .name
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            sessions,
            consents,
            memberships: user
                .memberships
                .iter()
                .map(|m| MembershipRow {
                    org_id: m.org.id.to_string(),
                    org: m.org.name.as_str().to_owned(),
                    role: m.role.as_str(),
                })
                .collect(),
        };
        Ok(page::render(&state, StatusCode::OK, &page))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "account", "My account")), e)
    })
}

/// `POST /console/account/sessions/{id}/revoke`: one of the person's own sessions (their
/// current one signs them out here).
pub async fn revoke_session(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        user.form(&state, &headers, &body)?;
        let sid = SessionId::parse(&sid).ok_or(MeError::NoSuchSession)?;
        me(&state, &user).revoke_session(sid).await?;
        Ok::<_, ApiError>(see_other("/console/account?notice=session_revoked"))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "account", "My account")), e)
    })
}

/// `POST /console/account/consents/{client_id}/revoke`.
pub async fn revoke_consent(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(client): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        user.form(&state, &headers, &body)?;
        let client = ClientId::parse(&client).ok_or(MeError::NoSuchConsent)?;
        me(&state, &user).revoke_consent(&client).await?;
        Ok::<_, ApiError>(see_other("/console/account?notice=consent_revoked"))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "account", "My account")), e)
    })
}

#[derive(Template)]
#[template(path = "console/accept.html")]
struct AcceptPage {
    chrome: Chrome,
    error: Option<String>,
}

/// `GET /invitations/accept`: the invitation link's page. The token travels in the
/// fragment; the console's script copies it into the form (without script, the person
/// pastes it). Not signed in: the sign-in page first, coming back here.
pub async fn accept_form(State(state): State<AppState>, user: ConsoleUser) -> Response {
    page::render(
        &state,
        StatusCode::OK,
        &AcceptPage {
            chrome: user.chrome(None, "account", "Accept an invitation"),
            error: None,
        },
    )
}

/// `POST /invitations/accept`: the invitations service accepts for the signed-in person
/// (only the invited email may), then shows the org.
pub async fn accept(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match user.form(&state, &headers, &body) {
        Ok(f) => f,
        Err(e) => return page::failure(&state, None, e),
    };
    let raw = form.get("token").unwrap_or_default().trim();
    // A pasted link works as well as the bare token.
    let token = raw.rsplit_once("token=").map_or(raw, |(_, t)| t);
    match (Invitations {
        store: &*state.store,
    })
    .accept(&user.auth.session.user, token, &user.auth.audit)
    .await
    {
        Ok((invitation, _)) => see_other(&format!(
            "/console/orgs/{}/members?notice=invitation_accepted",
            invitation.org_id
        )),
        Err(e) => {
            let e = ApiError::from(e);
            let message = e.message.clone();
            e.into_page(|status, _| {
                page::render(
                    &state,
                    status,
                    &AcceptPage {
                        chrome: user.chrome(None, "account", "Accept an invitation"),
                        error: Some(message),
                    },
                )
            })
        }
    }
}
