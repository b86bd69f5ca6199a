//! Account linking: who an upstream (SSO) sign-in becomes locally. A pure rule; the
//! server's SSO callback looks the users up and does what the decision says.

use crate::User;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The identity (issuer, subject) is already linked to this user.
    SignIn(User),
    /// A user with the asserted email exists and the upstream verified that email: link
    /// the identity to them, then sign in.
    Link(User),
    /// Nobody has this email: create the user (signup bootstrap) with the identity.
    Create,
    /// A user with this email exists but the upstream does not vouch for the email;
    /// linking would let anyone who types that address at the upstream take the account.
    RefuseUnverified,
}

/// `by_identity`: the user linked to (issuer, subject); `by_email`: the user with the
/// asserted email.
pub fn decide(by_identity: Option<User>, by_email: Option<User>, email_verified: bool) -> Decision {
    match (by_identity, by_email) {
        (Some(user), _) => Decision::SignIn(user),
        (None, Some(user)) if email_verified => Decision::Link(user),
        (None, Some(_)) => Decision::RefuseUnverified,
        (None, None) => Decision::Create,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Email, PosixId, UserId};

    fn user(email: &str) -> User {
        User {
            id: UserId::new(),
            email: Email::parse(email).unwrap(),
            name: None,
            posix: PosixId::from_allocated(10_001),
            is_platform_admin: false,
            created_at: crate::now(),
        }
    }

    #[test]
    fn a_linked_identity_wins_whatever_the_email_says() {
        let linked = user("alice@example.com");
        let other = user("bob@example.com");
        for verified in [true, false] {
            assert_eq!(
                decide(Some(linked.clone()), Some(other.clone()), verified),
                Decision::SignIn(linked.clone())
            );
            assert_eq!(
                decide(Some(linked.clone()), None, verified),
                Decision::SignIn(linked.clone())
            );
        }
    }

    #[test]
    fn links_by_email_only_when_verified() {
        let existing = user("alice@example.com");
        assert_eq!(
            decide(None, Some(existing.clone()), true),
            Decision::Link(existing.clone())
        );
        assert_eq!(
            decide(None, Some(existing), false),
            Decision::RefuseUnverified
        );
    }

    #[test]
    fn creates_when_nobody_has_the_email() {
        assert_eq!(decide(None, None, true), Decision::Create);
        assert_eq!(decide(None, None, false), Decision::Create);
    }
}
