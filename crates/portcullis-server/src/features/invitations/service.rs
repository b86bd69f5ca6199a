//! Invitations: how someone who is not a managed account of an org joins it. An org admin
//! invites an email with a role; only the account with that email can accept, once, before
//! the invitation expires (or while signing up with it). Creating one answers the same
//! whether or not the address has an account, so invitations reveal nobody.

use portcullis_core::authz::may_manage_member;
use portcullis_core::invitation::{
    AcceptRefusal, INVITATION_TOKEN_PREFIX, INVITATION_TTL, Invitation, MAX_INVITED_PROJECTS,
    new_secret,
};
use portcullis_core::{
    AuditContext, Email, InvitationId, OrgAccess, ProjectId, Role, TokenHash, User, ValidationError,
};
use portcullis_store::{Acceptance, MemberRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("only owners may invite owners")]
    OnlyOwnersInviteOwners,
    #[error("no such pending invitation")]
    NoSuchInvitation,
    #[error(transparent)]
    Refused(#[from] AcceptRefusal),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("could not generate an invitation token: {0}")]
    Randomness(#[from] getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An invitation to make, as parsed from the request.
pub struct NewInvitation {
    pub email: Email,
    pub role: Role,
    pub project_ids: Vec<ProjectId>,
}

/// A new invitation and its token, which exists only in this answer.
pub struct Issued {
    pub invitation: Invitation,
    pub token: String,
}

/// The digest of a presented invitation token; None for anything that is not one (a
/// token of another kind never matches).
pub fn invitation_token_hash(raw: &str) -> Option<TokenHash> {
    raw.starts_with(INVITATION_TOKEN_PREFIX)
        .then(|| TokenHash::of(raw))
}

pub struct Invitations<'a> {
    pub store: &'a dyn Store,
}

impl Invitations<'_> {
    /// Invites `new.email` to the access's org. An admin invites members and admins; only
    /// owners invite owners (the rule of adding members).
    pub async fn create(
        &self,
        access: &OrgAccess,
        new: NewInvitation,
        audit: &AuditContext,
    ) -> Result<Issued, InvitationError> {
        if !may_manage_member(access.role(), None, Some(new.role)) {
            return Err(InvitationError::OnlyOwnersInviteOwners);
        }
        let mut project_ids = new.project_ids;
        project_ids.sort();
        project_ids.dedup();
        if project_ids.len() > MAX_INVITED_PROJECTS {
            return Err(ValidationError::new(
                "project_ids",
                format!("an invitation names at most {MAX_INVITED_PROJECTS} projects"),
            )
            .into());
        }
        let (token, token_hash) = new_secret(INVITATION_TOKEN_PREFIX)?;
        let now = portcullis_core::now();
        let invitation = Invitation {
            id: InvitationId::new(),
            org_id: access.org_id(),
            email: new.email,
            role: new.role,
            project_ids,
            invited_by: access.actor_id(),
            created_at: now,
            expires_at: now + INVITATION_TTL,
        };
        self.store
            .org(access)
            .invitations()
            .create_invitation(&invitation, &token_hash, audit)
            .await?;
        Ok(Issued { invitation, token })
    }

    /// The org's pending invitations, newest first (never their tokens).
    pub async fn pending(&self, access: &OrgAccess) -> Result<Vec<Invitation>, InvitationError> {
        Ok(self
            .store
            .org(access)
            .invitations()
            .pending_invitations(portcullis_core::now())
            .await?)
    }

    /// Seats the org's pending invitations hold (plan limits count them with members).
    pub async fn pending_seats(&self, access: &OrgAccess) -> Result<u64, InvitationError> {
        Ok(self
            .store
            .org(access)
            .invitations()
            .pending_invitation_count(portcullis_core::now())
            .await?)
    }

    pub async fn revoke(
        &self,
        access: &OrgAccess,
        id: InvitationId,
        audit: &AuditContext,
    ) -> Result<(), InvitationError> {
        if !self
            .store
            .org(access)
            .invitations()
            .revoke_invitation(id, portcullis_core::now(), audit)
            .await?
        {
            return Err(InvitationError::NoSuchInvitation);
        }
        Ok(())
    }

    /// Accepts an invitation for the signed-in `user`, whose email must be the invited one.
    pub async fn accept(
        &self,
        user: &User,
        token: &str,
        audit: &AuditContext,
    ) -> Result<(Invitation, MemberRecord), InvitationError> {
        let hash = invitation_token_hash(token).ok_or(AcceptRefusal::Unavailable)?;
        match self
            .store
            .invitations()
            .accept_invitation(&hash, user, portcullis_core::now(), audit)
            .await?
        {
            Acceptance::Accepted { invitation, member } => Ok((invitation, member)),
            Acceptance::Refused(refusal) => Err(refusal.into()),
        }
    }
}
