//! Sessions of an org's members, for the runbook "revoke the session, confirm the user must
//! sign in again": org admins see their managed members' sessions (platform admins
//! everyone's), per member, and revoke one or all of them — the orgs service decides whom
//! the caller oversees, exactly as the API does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::{OrgId, Role, SessionId, UserId};
use portcullis_store::MemberSession;

use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, org_id, when};
use crate::features::orgs::service::{OrgError, Orgs};
use crate::http::error::ApiError;
use crate::state::AppState;

pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub user_agent: String,
    pub last_seen: String,
    pub created: String,
    pub current: bool,
}

/// One member's active sessions.
pub struct MemberSessions {
    pub user_id: String,
    pub email: String,
    pub sessions: Vec<SessionRow>,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    org_id: String,
    members: Vec<MemberSessions>,
    platform_admin: bool,
}

fn orgs(state: &AppState) -> Orgs<'_> {
    Orgs {
        store: &*state.store,
        cache: &state.cache,
    }
}

/// Sessions grouped by member (emails in order), newest first within each.
pub fn by_member(sessions: &[MemberSession], current: Option<SessionId>) -> Vec<MemberSessions> {
    let mut groups: Vec<MemberSessions> = Vec::new();
    let mut sorted: Vec<&MemberSession> = sessions.iter().collect();
    sorted.sort_by(|a, b| {
        a.email
            .as_str()
            .cmp(b.email.as_str())
            .then(b.session.created_at.cmp(&a.session.created_at))
    });
    for s in sorted {
        let device = s.session.device.as_ref().map_or_else(
            || "Browser".to_owned(),
            |d| {
                [
                    Some(d.platform.as_str()),
                    d.model.as_deref(),
                    d.app_version.as_deref().map(|v| v.trim()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ")
            },
        );
        let row = SessionRow {
            id: s.session.id.to_string(),
            device,
            ip: s.session.ip.clone().unwrap_or_default(),
            user_agent: s.session.user_agent.clone().unwrap_or_default(),
            last_seen: when(s.session.last_seen_at),
            created: when(s.session.created_at),
            current: Some(s.session.id) == current,
        };
        match groups.last_mut() {
            Some(g) if g.user_id == s.user_id.to_string() => g.sessions.push(row),
            _ => groups.push(MemberSessions {
                user_id: s.user_id.to_string(),
                email: s.email.as_str().to_owned(),
                sessions: vec![row],
            }),
        }
    }
    groups
}

async fn sessions_page(
    state: &AppState,
    user: &ConsoleUser,
    org: OrgId,
    notice_text: Option<String>,
) -> Result<Response, ApiError> {
    let access = user.org_access(state, org, Role::Admin).await?;
    let sessions = orgs(state).sessions(&access).await?;
    let page = SessionsPage {
        chrome: user
            .chrome(Some(org), "sessions", "Sessions")
            .with_notice(notice_text),
        org_id: org.to_string(),
        members: by_member(&sessions, user.auth.principal.session_id),
        platform_admin: user.is_platform_admin(),
    };
    Ok(page::render(state, StatusCode::OK, &page))
}

/// `GET /console/orgs/{org}/sessions`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result =
        async { sessions_page(&state, &user, org_id(&org)?, notice(q.notice.as_deref())).await }
            .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "sessions", "Sessions")), e)
    })
}

/// `POST /console/orgs/{org}/sessions/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let sid = SessionId::parse(&sid).ok_or(OrgError::NoSuchSession)?;
        orgs(&state)
            .revoke_session(&access, sid, &user.auth.audit)
            .await?;
        Ok(see_other(&format!(
            "/console/orgs/{org}/sessions?notice=session_revoked"
        )))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "sessions", "Sessions")), e)
    })
}

/// `POST /console/orgs/{org}/members/{user}/sessions/revoke`: every active session of one
/// overseen member, each revoked (and audited) as the single revocation is.
pub async fn revoke_all(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, uid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let target = UserId::parse(&uid).ok_or(OrgError::NoSuchMember)?;
        let theirs: Vec<SessionId> = orgs(&state)
            .sessions(&access)
            .await?
            .iter()
            .filter(|s| s.user_id == target)
            .map(|s| s.session.id)
            .collect();
        if theirs.is_empty() {
            return Err(OrgError::NoSuchSession.into());
        }
        for sid in theirs {
            match orgs(&state)
                .revoke_session(&access, sid, &user.auth.audit)
                .await
            {
                // Ended meanwhile (signed out, expired): nothing left to revoke.
                Ok(()) | Err(OrgError::NoSuchSession) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(see_other(&format!(
            "/console/orgs/{org}/sessions?notice=sessions_revoked"
        )))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "sessions", "Sessions")), e)
    })
}
