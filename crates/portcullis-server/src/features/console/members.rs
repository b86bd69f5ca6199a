//! Members: the org's members (role, managed or not), inviting someone (the link shown
//! once, with a copy button), pending invitations (revoke), changing a role, removing a
//! member. Everything goes through the orgs and invitations services, so the owner rules
//! and the audit trail are the API's.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::{Email, InvitationId, OrgAccess, OrgId, ProjectId, Role, UserId};

use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, org_id, when};
use crate::features::invitations::accept_url;
use crate::features::invitations::service::{Invitations, NewInvitation};
use crate::features::orgs::service::{OrgError, Orgs, role_to_remove};
use crate::features::platform::service::PlatformService;
use crate::http::error::ApiError;
use crate::state::AppState;

pub const ROLES: &[&str] = &["member", "admin", "owner"];

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub managed: bool,
    pub joined_at: String,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub expires_at: String,
}

pub struct ProjectChoice {
    pub id: String,
    pub name: String,
}

/// An invitation just made: its link exists only in this answer.
pub struct CreatedLink {
    pub email: String,
    pub url: String,
}

#[derive(Template)]
#[template(path = "console/members.html")]
struct MembersPage {
    chrome: Chrome,
    org_id: String,
    admin: bool,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    projects: Vec<ProjectChoice>,
    seats: u64,
    /// The plan's seat limit, shown beside the seats used; None: unlimited.
    seat_limit: Option<u32>,
    /// Every seat taken: the next invitation would be refused (402).
    seats_full: bool,
    created: Option<CreatedLink>,
    invite_error: Option<String>,
    invite_email: String,
    roles: &'static [&'static str],
}

fn orgs(state: &AppState) -> Orgs<'_> {
    Orgs {
        store: &*state.store,
        cache: &state.cache,
    }
}

fn invitations(state: &AppState) -> Invitations<'_> {
    Invitations {
        store: &*state.store,
    }
}

/// What the invite form said, to show again beside its error.
#[derive(Default)]
struct InviteOutcome {
    created: Option<CreatedLink>,
    error: Option<String>,
    email: String,
}

async fn members_page(
    state: &AppState,
    user: &ConsoleUser,
    org: OrgId,
    status: StatusCode,
    notice_text: Option<String>,
    invite: InviteOutcome,
) -> Result<Response, ApiError> {
    let access = user.org_access(state, org, Role::Member).await?;
    let admin = access.role().can_administer();
    let members = orgs(state).members(&access).await?;
    let (pending, projects) = if admin {
        (
            invitations(state).pending(&access).await?,
            orgs(state)
                .projects(&access, user.auth.principal.user_id)
                .await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    // Seats as the plan counts them (members and pending invitations), from the same
    // service as `GET /v1/orgs/{id}/subscription`.
    let subscription = PlatformService {
        store: &*state.store,
    }
    .subscription(&access)
    .await?;
    let page = MembersPage {
        chrome: user
            .chrome(Some(org), "members", "Members")
            .with_notice(notice_text),
        org_id: org.to_string(),
        admin,
        seats: subscription.usage.seats,
        seat_limit: subscription.plan.seat_limit,
        seats_full: subscription
            .plan
            .seat_limit
            .is_some_and(|l| subscription.usage.seats >= u64::from(l)),
        members: members
            .iter()
            .map(|m| MemberRow {
                user_id: m.record.user.id.to_string(),
                email: m.record.user.email.as_str().to_owned(),
                name: m
                    .record
                    .user
                    .name
                    .as_ref()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
                role: m.record.role.as_str(),
                managed: m.managed,
                joined_at: when(m.record.joined_at),
            })
            .collect(),
        invitations: pending
            .iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                email: i.email.as_str().to_owned(),
                role: i.role.as_str(),
                expires_at: when(i.expires_at),
            })
            .collect(),
        projects: projects
            .iter()
            .map(|p| ProjectChoice {
                id: p.id.to_string(),
                name: p.name.as_str().to_owned(),
            })
            .collect(),
        created: invite.created,
        invite_error: invite.error,
        invite_email: invite.email,
        roles: ROLES,
    };
    Ok(page::render(state, status, &page))
}

/// `GET /console/orgs/{org}/members`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result = async {
        let org = org_id(&org)?;
        members_page(
            &state,
            &user,
            org,
            StatusCode::OK,
            notice(q.notice.as_deref()),
            InviteOutcome::default(),
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "members", "Members", e))
}

/// Parses and sends an invitation; a mistake in the form is shown beside it.
async fn invite(
    state: &AppState,
    user: &ConsoleUser,
    access: &OrgAccess,
    form: &crate::http::params::Params,
) -> Result<CreatedLink, ApiError> {
    let email = Email::parse(form.get("email").unwrap_or_default())?;
    let role = Role::parse(form.get("role").unwrap_or("member"))?;
    // Checkboxes are named `project.<id>`: a form posts each parameter once.
    let project_ids: Vec<ProjectId> = orgs(state)
        .projects(access, user.auth.principal.user_id)
        .await?
        .iter()
        .filter(|p| form.get(&format!("project.{}", p.id)).is_some())
        .map(|p| p.id)
        .collect();
    let issued = invitations(state)
        .create(
            access,
            NewInvitation {
                email,
                role,
                project_ids,
            },
            &user.auth.audit,
        )
        .await?;
    Ok(CreatedLink {
        email: issued.invitation.email.as_str().to_owned(),
        url: accept_url(&state.public_url, &issued.token),
    })
}

/// `POST /console/orgs/{org}/invitations`: answers with the page itself, the link shown
/// this once (a redirect would have to carry the secret in a URL).
pub async fn create_invitation(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let (status, outcome) = match invite(&state, &user, &access, &form).await {
            Ok(created) => (
                StatusCode::OK,
                InviteOutcome {
                    created: Some(created),
                    ..InviteOutcome::default()
                },
            ),
            // The form's own mistakes (a bad address, already invited) stay on the form.
            Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => (
                e.status,
                InviteOutcome {
                    created: None,
                    error: Some(e.message),
                    email: form.get("email").unwrap_or_default().to_owned(),
                },
            ),
            Err(e) => return Err(e),
        };
        members_page(&state, &user, org, status, None, outcome).await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "members", "Members", e))
}

/// `POST /console/orgs/{org}/invitations/{id}/revoke`.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let id = InvitationId::parse(&id)
            .ok_or_else(|| ApiError::not_found("no such pending invitation"))?;
        invitations(&state)
            .revoke(&access, id, &user.auth.audit)
            .await?;
        Ok(see_other(&format!(
            "/console/orgs/{org}/members?notice=invitation_revoked"
        )))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "members", "Members", e))
}

fn member_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or_else(|| OrgError::NoSuchMember.into())
}

/// `POST /console/orgs/{org}/members/{user}/role`.
pub async fn change_role(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, uid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let target = member_id(&uid)?;
        let role = Role::parse(form.get("role").unwrap_or_default())?;
        orgs(&state)
            .change_role(&access, target, role, &user.auth.audit)
            .await?;
        Ok(see_other(&format!(
            "/console/orgs/{org}/members?notice=role_changed"
        )))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "members", "Members", e))
}

/// `POST /console/orgs/{org}/members/{user}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, uid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let target = member_id(&uid)?;
        let access = user
            .org_access(
                &state,
                org,
                role_to_remove(user.auth.principal.user_id, target),
            )
            .await?;
        orgs(&state)
            .remove_member(&access, target, &user.auth.audit)
            .await?;
        Ok(see_other(&format!(
            "/console/orgs/{org}/members?notice=member_removed"
        )))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "members", "Members", e))
}
