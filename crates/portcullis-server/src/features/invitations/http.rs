//! Invitation routes: org admins make, list and revoke them; the invited person accepts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::invitation::AcceptRefusal;
use portcullis_core::oversight::is_managed;
use portcullis_core::{Email, InvitationId, OrgId, ProjectId, Role};
use serde_json::json;

use crate::features::invitations::accept_url;
use crate::features::invitations::dto::{
    AcceptInvitationRequest, AcceptedInvitation, CreateInvitationRequest, CreatedInvitation,
    InvitationDto, InvitationList,
};
use crate::features::invitations::service::{InvitationError, Invitations, NewInvitation};
use crate::features::orgs::service::verified_domains;
use crate::http::dto::{ErrorBody, MemberDto};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, OrgCaller};
use crate::state::AppState;

impl From<InvitationError> for ApiError {
    fn from(e: InvitationError) -> Self {
        match e {
            InvitationError::OnlyOwnersInviteOwners => {
                ApiError::forbidden(e.to_string()).with_details(json!({"required_role": "owner"}))
            }
            InvitationError::NoSuchInvitation
            | InvitationError::Refused(AcceptRefusal::Unavailable) => {
                ApiError::not_found(e.to_string())
            }
            InvitationError::Refused(AcceptRefusal::WrongAccount) => {
                ApiError::forbidden(e.to_string())
            }
            InvitationError::Invalid(e) => e.into(),
            InvitationError::Store(e) => e.into(),
            InvitationError::Randomness(_) => ApiError::internal(e),
        }
    }
}

fn invitations(state: &AppState) -> Invitations<'_> {
    Invitations {
        store: &*state.store,
    }
}

fn org_id(raw: &str) -> ApiResult<OrgId> {
    OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/invitations", tag = "members", request_body = CreateInvitationRequest,
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 201, description = "Invited; `accept_url` carries the one-time token `inv_…` (shown only here). The answer is the same whether or not the address has an account", body = CreatedInvitation),
        (status = 400, description = "invalid_request: a bad or unknown field, or a project not of this org", body = ErrorBody),
        (status = 403, description = "forbidden: not an admin of the org, or only owners may invite owners", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: already a member, or a pending invitation for this email exists", body = ErrorBody),
    ))]
pub async fn create_invitation(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateInvitationRequest>,
) -> ApiResult<(StatusCode, Json<CreatedInvitation>)> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let new = NewInvitation {
        email: Email::parse(&req.email)?,
        role: Role::parse(&req.role)?,
        project_ids: req
            .project_ids
            .iter()
            .map(|p| {
                ProjectId::parse(p).ok_or_else(|| {
                    ApiError::invalid_field(
                        "project_ids",
                        "project_ids must be project ids (UUIDs)",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let issued = invitations(&state)
        .create(&access, new, caller.audit())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvitation {
            invitation: (&issued.invitation).into(),
            accept_url: accept_url(&state.public_url, &issued.token),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/invitations", tag = "members",
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The org's pending invitations, newest first (never their tokens)", body = InvitationList),
        (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
    ))]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<InvitationList>> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let pending = invitations(&state).pending(&access).await?;
    Ok(Json(InvitationList {
        invitations: pending.iter().map(InvitationDto::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/invitations/{id}", tag = "members",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Revoked: its token no longer works"),
        (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody),
        (status = 404, description = "not_found: no such org, or no pending invitation of it with this id", body = ErrorBody),
    ))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path((id, inv)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = caller.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let inv = InvitationId::parse(&inv).ok_or(InvitationError::NoSuchInvitation)?;
    invitations(&state)
        .revoke(&access, inv, caller.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/invitations/accept", tag = "members", request_body = AcceptInvitationRequest,
    responses(
        (status = 200, description = "Accepted: the signed-in user is a member of the org with the invited role", body = AcceptedInvitation),
        (status = 400, description = "invalid_request: a bad or unknown field", body = ErrorBody),
        (status = 401, description = "unauthenticated: sign in (or sign up with the invitation) first", body = ErrorBody),
        (status = 403, description = "forbidden: the invitation is addressed to another email than the signed-in account's", body = ErrorBody),
        (status = 404, description = "not_found: the invitation is unknown, expired, revoked or already used", body = ErrorBody),
        (status = 409, description = "conflict: already a member of the org", body = ErrorBody),
    ))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<AcceptInvitationRequest>,
) -> ApiResult<Json<AcceptedInvitation>> {
    let (invitation, member) = invitations(&state)
        .accept(&auth.session.user, &req.token, &auth.audit)
        .await?;
    let domains = verified_domains(&*state.store, invitation.org_id).await?;
    Ok(Json(AcceptedInvitation {
        invitation_id: invitation.id.0,
        org_id: invitation.org_id.0,
        member: MemberDto::new(&member, is_managed(&member.user.email, &domains)),
    }))
}
