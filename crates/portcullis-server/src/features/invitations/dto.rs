//! Request and response bodies of the invitation routes.

use portcullis_core::invitation::Invitation;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::dto::{MemberDto, ts};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    pub email: String,
    #[schema(example = "member")]
    pub role: String,
    /// Projects of the org the invitee also joins (as `member`), beside the default one.
    #[serde(default)]
    pub project_ids: Vec<String>,
}

/// A pending invitation (never its token).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvitationDto {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub project_ids: Vec<Uuid>,
    pub invited_by: Option<Uuid>,
    pub created_at: String,
    pub expires_at: String,
}

impl From<&Invitation> for InvitationDto {
    fn from(i: &Invitation) -> Self {
        Self {
            id: i.id.0,
            email: i.email.as_str().to_owned(),
            role: i.role.as_str().to_owned(),
            project_ids: i.project_ids.iter().map(|p| p.0).collect(),
            invited_by: i.invited_by.map(|u| u.0),
            created_at: ts(i.created_at),
            expires_at: ts(i.expires_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedInvitation {
    #[serde(flatten)]
    pub invitation: InvitationDto,
    /// Where the invitee accepts; carries the one-time token `inv_…`, shown only here.
    pub accept_url: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<InvitationDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The `inv_…` token from the accept URL.
    pub token: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AcceptedInvitation {
    pub invitation_id: Uuid,
    pub org_id: Uuid,
    pub member: MemberDto,
}
