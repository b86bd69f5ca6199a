//! Invitations to join an org, and the one-time secrets of account onboarding. An
//! invitation is addressed to an email; only the account with that email can accept it,
//! once, before it expires, unless an admin revoked it first. The secrets (`inv_…`,
//! `pst_…`) are 256 random bits, handed out once and stored only as SHA-256 digests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::token::random_bytes;
use crate::{Email, InvitationId, OrgId, ProjectId, Role, Timestamp, TokenHash, UserId};

/// Prefix of an invitation token.
pub const INVITATION_TOKEN_PREFIX: &str = "inv_";
/// Prefix of a password-setup token (an admin-created account's first password).
pub const PASSWORD_SETUP_TOKEN_PREFIX: &str = "pst_";
/// How long an invitation can be accepted.
pub const INVITATION_TTL: time::Duration = time::Duration::days(7);
/// How long an admin-created account's password-setup link works.
pub const PASSWORD_SETUP_TTL: time::Duration = time::Duration::days(3);
/// Most projects one invitation may name.
pub const MAX_INVITED_PROJECTS: usize = 50;

/// A fresh secret: `prefix` + 256 random bits (base64url), and its digest.
pub fn new_secret(prefix: &str) -> Result<(String, TokenHash), getrandom::Error> {
    let raw = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}

/// An invitation as stored (never with its token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub org_id: OrgId,
    pub email: Email,
    /// The org role the invitee gets.
    pub role: Role,
    /// Projects of the org the invitee also joins (as `member`), beside the default one.
    pub project_ids: Vec<ProjectId>,
    pub invited_by: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationState {
    /// From the stored facts: accepted and revoked are final, expiry applies to the rest.
    pub fn of(accepted: bool, revoked: bool, expires_at: Timestamp, now: Timestamp) -> Self {
        if accepted {
            InvitationState::Accepted
        } else if revoked {
            InvitationState::Revoked
        } else if expires_at <= now {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        }
    }
}

/// Why an invitation cannot be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcceptRefusal {
    /// Unknown, expired, revoked or already used: one answer, so a token reveals nothing.
    #[error("this invitation is unknown, expired, revoked or already used")]
    Unavailable,
    /// Valid, but addressed to another email than the account's.
    #[error("this invitation is addressed to another email address; sign in with that account")]
    WrongAccount,
}

/// Whether the account with `email` may accept an invitation in `state` addressed to
/// `invited` (emails are stored lower-cased, so equality is case-insensitive).
pub fn check_acceptance(
    state: InvitationState,
    invited: &Email,
    email: &Email,
) -> Result<(), AcceptRefusal> {
    if state != InvitationState::Pending {
        return Err(AcceptRefusal::Unavailable);
    }
    if invited != email {
        return Err(AcceptRefusal::WrongAccount);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_their_prefix_and_256_bits() {
        let (a, ha) = new_secret(INVITATION_TOKEN_PREFIX).unwrap();
        let (b, _) = new_secret(INVITATION_TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        let body = a.strip_prefix("inv_").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_eq!(ha, TokenHash::of(&a));
        assert!(
            new_secret(PASSWORD_SETUP_TOKEN_PREFIX)
                .unwrap()
                .0
                .starts_with("pst_")
        );
    }

    #[test]
    fn states_and_acceptance() {
        let now = crate::now();
        let later = now + time::Duration::hours(1);
        let before = now - time::Duration::hours(1);
        assert_eq!(
            InvitationState::of(false, false, later, now),
            InvitationState::Pending
        );
        assert_eq!(
            InvitationState::of(false, false, before, now),
            InvitationState::Expired
        );
        assert_eq!(
            InvitationState::of(true, false, later, now),
            InvitationState::Accepted
        );
        assert_eq!(
            InvitationState::of(false, true, later, now),
            InvitationState::Revoked
        );
        let invited = Email::parse("Ann@Example.com").unwrap();
        let same = Email::parse("ann@example.COM").unwrap();
        let other = Email::parse("bob@example.com").unwrap();
        assert_eq!(
            check_acceptance(InvitationState::Pending, &invited, &same),
            Ok(())
        );
        assert_eq!(
            check_acceptance(InvitationState::Pending, &invited, &other),
            Err(AcceptRefusal::WrongAccount)
        );
        for s in [
            InvitationState::Accepted,
            InvitationState::Revoked,
            InvitationState::Expired,
        ] {
            assert_eq!(
                check_acceptance(s, &invited, &same),
                Err(AcceptRefusal::Unavailable)
            );
            // A spent token says nothing more to the wrong account either.
            assert_eq!(
                check_acceptance(s, &invited, &other),
                Err(AcceptRefusal::Unavailable)
            );
        }
    }
}
