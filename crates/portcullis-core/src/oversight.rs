//! Whose personal activity an org's admins may see. A membership says that a person works
//! with the org, not that the org governs their account: admins see the sessions and
//! sign-ins of *managed* members only, those whose email is in one of the org's verified
//! domains (the org controls that mailbox, so the account is the org's). Platform
//! operators see everyone.

use crate::{Email, OrgAccess, UserId};

/// The domain part of an email address (after the one `@`), lower-cased like the address.
pub fn email_domain(email: &Email) -> &str {
    email
        .as_str()
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or_default()
}

/// Whether `email` belongs to one of `verified_domains`: the same domain exactly, not a
/// subdomain (a verified `example.com` says nothing of who runs `mail.example.com`).
pub fn is_managed(email: &Email, verified_domains: &[String]) -> bool {
    let domain = email_domain(email);
    verified_domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
}

/// What the holder of an org access oversees of the org's members' own accounts. The
/// default is an operator's view; requests of org members get theirs from [`Oversight::of`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Oversight {
    /// Every member (platform operators).
    #[default]
    Everyone,
    /// Members whose email is in one of `domains` (lower case, the org's verified ones),
    /// and the viewer's own account: seeing one's own sign-ins is no surveillance.
    Managed {
        domains: Vec<String>,
        viewer: Option<UserId>,
    },
}

impl Oversight {
    /// An operator oversees everyone; a member of the org (however high their role) only
    /// the org's managed accounts.
    pub fn of(access: &OrgAccess, verified_domains: Vec<String>) -> Self {
        if access.is_operator() {
            Oversight::Everyone
        } else {
            Oversight::Managed {
                domains: verified_domains
                    .into_iter()
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
                viewer: access.actor_id(),
            }
        }
    }

    /// Nobody's account (a placeholder until the caller's access is known).
    pub fn nobody() -> Self {
        Oversight::Managed {
            domains: Vec::new(),
            viewer: None,
        }
    }

    /// Whether the account with this email is a managed one (or everyone is overseen):
    /// what an org admin may add directly.
    pub fn covers(&self, email: &Email) -> bool {
        match self {
            Oversight::Everyone => true,
            Oversight::Managed { domains, .. } => is_managed(email, domains),
        }
    }

    /// Whether the account `user` (with `email`) is overseen.
    pub fn sees(&self, user: UserId, email: &Email) -> bool {
        self.covers(email) || self.viewer() == Some(user)
    }

    /// The viewer whose own account is always overseen.
    pub fn viewer(&self) -> Option<UserId> {
        match self {
            Oversight::Everyone => None,
            Oversight::Managed { viewer, .. } => *viewer,
        }
    }

    /// True when no filter applies.
    pub fn is_everyone(&self) -> bool {
        matches!(self, Oversight::Everyone)
    }

    /// The domains overseen (empty for [`Oversight::Everyone`], which needs none).
    pub fn domains(&self) -> &[String] {
        match self {
            Oversight::Everyone => &[],
            Oversight::Managed { domains, .. } => domains,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrgId, Principal, UserId};

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn managed_means_exactly_a_verified_domain() {
        let domains = vec!["acme.test".to_owned()];
        assert!(is_managed(&email("Ann@ACME.test"), &domains));
        assert!(!is_managed(&email("ann@mail.acme.test"), &domains));
        assert!(!is_managed(&email("ann@acme.test.evil"), &domains));
        assert!(!is_managed(&email("acme.test@evil.test"), &domains));
        assert!(!is_managed(&email("ann@acme.test"), &[]));
        assert_eq!(email_domain(&email("a@b.example")), "b.example");
    }

    #[test]
    fn operators_oversee_everyone_members_only_their_domains() {
        let org = OrgId::new();
        assert_eq!(
            Oversight::of(&OrgAccess::system(org), vec!["acme.test".into()]),
            Oversight::Everyone
        );
        let p = Principal {
            user_id: UserId::new(),
            session_id: None,
            is_platform_admin: false,
        };
        let m = crate::Membership {
            org_id: org,
            user_id: p.user_id,
            role: crate::Role::Owner,
            created_at: crate::now(),
            deleted_at: None,
        };
        let owner = crate::authz::decide_org_access(&p, org, Some(&m), crate::Role::Admin).unwrap();
        let o = Oversight::of(&owner, vec!["ACME.test".into()]);
        assert!(o.covers(&email("x@acme.test")));
        assert!(!o.covers(&email("x@gmail.test")));
        assert_eq!(o.domains(), ["acme.test".to_owned()]);
        assert!(Oversight::Everyone.covers(&email("x@gmail.test")));
        // The viewer always sees their own account, and only theirs beyond the domains.
        assert!(o.sees(p.user_id, &email("me@gmail.test")));
        assert!(!o.sees(UserId::new(), &email("me@gmail.test")));
        assert!(!Oversight::nobody().sees(p.user_id, &email("x@acme.test")));
    }
}
