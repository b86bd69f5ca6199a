//! Invitations to join an org, and the password-setup links of admin-created accounts:
//! both one-time secrets stored only as digests, both spent atomically.
//!
//! An invitation is tenant-owned and managed in its org's scope; accepting one (signed in,
//! or while signing up) and setting a first password find a bare token in platform scope,
//! since the 256-bit token is the capability (as for mobile one-time tokens).

use async_trait::async_trait;
use portcullis_core::invitation::{AcceptRefusal, Invitation};
use portcullis_core::password::PasswordHash;
use portcullis_core::{AuditContext, Email, InvitationId, OrgAccess, Timestamp, TokenHash, User};

use crate::scope::OrgHandle;
use crate::{MemberRecord, SignupBootstrap, StoreResult};

/// The first-password link of an account an admin creates: its digest and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSetup {
    pub token_hash: TokenHash,
    pub expires_at: Timestamp,
}

/// How an acceptance ended. On a refusal nothing was written.
// Returned once per acceptance and matched at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Acceptance {
    /// The invitation is spent and the user is a member with the invited role.
    Accepted {
        invitation: Invitation,
        member: MemberRecord,
    },
    Refused(AcceptRefusal),
}

/// A pending invitation as the invited person sees it: with the name of the org it is to.
#[derive(Clone, Debug)]
pub struct InvitationToMe {
    pub invitation: Invitation,
    pub org_name: String,
}

#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// Invitations pending at `now` addressed to `email`, in every org, newest first: what
    /// the account with that (its own, verified) email is shown. Read in platform scope,
    /// since they belong to other orgs than the reader's; only the address's owner may ask.
    async fn pending_invitations_to(
        &self,
        email: &Email,
        now: Timestamp,
    ) -> StoreResult<Vec<InvitationToMe>>;

    /// Accepts an invitation for `user`, all or nothing: of concurrent calls with one token
    /// at most one succeeds. The user joins the org with the invited role, the org's
    /// default project and the invited projects (`invitation.accepted`, `member.added`).
    /// `Conflict` when the user is already an active member.
    async fn accept_invitation(
        &self,
        token_hash: &TokenHash,
        user: &User,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Acceptance>;

    /// Self-signup that accepts an invitation in the same transaction: the account and its
    /// personal org ([`crate::Store::bootstrap_signup`]) and the invited membership, or
    /// nothing at all (the user is None when the invitation was refused).
    async fn signup_with_invitation(
        &self,
        bootstrap: &SignupBootstrap,
        token_hash: &TokenHash,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<(Option<User>, Acceptance)>;

    /// Spends a password-setup token: sets the account's first password
    /// (`user.password_set`, in the org whose admin created it) and returns the user; None
    /// when the token is unknown, expired or spent.
    async fn redeem_password_setup(
        &self,
        token_hash: &TokenHash,
        password_hash: &PasswordHash,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Option<User>>;
}

/// One org's invitations, reached through [`crate::OrgScope::invitations`].
#[async_trait]
pub trait InvitationScope: Send + Sync {
    /// Stores a new invitation with its `invitation.created` event. `Invalid` (field
    /// `project_ids`) when a named project is not the org's; `Conflict` when the email is
    /// already an active member's, or has a pending invitation to the org.
    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    /// The org's invitations still pending at `now`, newest first.
    async fn pending_invitations(&self, now: Timestamp) -> StoreResult<Vec<Invitation>>;

    /// How many of the org's invitations are pending at `now`: each holds a seat.
    async fn pending_invitation_count(&self, now: Timestamp) -> StoreResult<u64>;

    /// Revokes a pending invitation (`invitation.revoked`); false when the org has no
    /// pending invitation with this id.
    async fn revoke_invitation(
        &self,
        id: InvitationId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
}

/// What the backends implement; reached only through [`InvitationScope`].
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn create_invitation(
        &self,
        access: &OrgAccess,
        invitation: &Invitation,
        token_hash: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn pending_invitations(
        &self,
        access: &OrgAccess,
        now: Timestamp,
    ) -> StoreResult<Vec<Invitation>>;

    async fn pending_invitation_count(
        &self,
        access: &OrgAccess,
        now: Timestamp,
    ) -> StoreResult<u64>;

    async fn revoke_invitation(
        &self,
        access: &OrgAccess,
        id: InvitationId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> InvitationScope for OrgHandle<'_, S> {
    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        self.store
            .create_invitation(&self.access, invitation, token_hash, ctx)
            .await
    }

    async fn pending_invitations(&self, now: Timestamp) -> StoreResult<Vec<Invitation>> {
        self.store.pending_invitations(&self.access, now).await
    }

    async fn pending_invitation_count(&self, now: Timestamp) -> StoreResult<u64> {
        self.store.pending_invitation_count(&self.access, now).await
    }

    async fn revoke_invitation(
        &self,
        id: InvitationId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        self.store
            .revoke_invitation(&self.access, id, now, ctx)
            .await
    }
}
