//! Account linking: who an upstream (SSO) sign-in becomes locally, and when it must be
//! refused. A pure rule; the server's SSO callback looks the users up, asks [`decide`], and
//! does what the decision says.
//!
//! Who vouches for an address decides everything:
//! - a provider the **operator** configured is trusted for any address it says it verified;
//! - an **org admin's** provider vouches only for addresses in that org's verified domains
//!   (anyone can run an identity provider that claims any address), and never signs in a
//!   platform admin;
//! - an address the upstream did **not verify** never creates an account and never links
//!   to one.
//!
//! When a verified owner arrives at an account someone registered with a password first
//! (pre-account takeover), the owner wins: the account is *claimed* — the password goes,
//! every session ends. Never the other way round: a password never takes over an account
//! an upstream identity holds.

use crate::{DomainName, Email, User};

/// Who vouches for the asserted address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voucher<'a> {
    /// A server-wide provider: the operator's configuration.
    Operator,
    /// An org's provider, with the domains that org holds verified.
    Org { verified_domains: &'a [DomainName] },
}

impl Voucher<'_> {
    fn covers(&self, email: &Email) -> bool {
        match self {
            Voucher::Operator => true,
            Voucher::Org { verified_domains } => verified_domains.iter().any(|d| d.covers(email)),
        }
    }
}

/// What the upstream asserted about the person signing in.
#[derive(Clone, Copy, Debug)]
pub struct Assertion<'a> {
    pub email: &'a Email,
    /// The upstream says it verified the address.
    pub email_verified: bool,
    pub voucher: Voucher<'a>,
}

/// The account that has the asserted address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub user: User,
    /// Someone can sign in to it with a password.
    pub has_password: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The identity is already linked to this user.
    SignIn(User),
    /// Link the identity to this user (who has no password), then sign in.
    Link(User),
    /// The verified owner takes the account over from whoever set its password: link the
    /// identity, remove the password, end every session — then sign in.
    Claim(User),
    /// Nobody has this address: create the account with the identity.
    Create,
    Refuse(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The upstream did not verify the address, and a verified one is needed.
    EmailNotVerified,
    /// An org's provider asserted an address outside the org's verified domains.
    DomainNotVerified,
    /// An org's provider tried to sign in a platform admin.
    PlatformAdmin,
}

/// `by_identity`: the user this identity is linked to; `by_email`: the account with the
/// asserted address.
pub fn decide(by_identity: Option<User>, by_email: Option<Holder>, a: &Assertion<'_>) -> Decision {
    let org = matches!(a.voucher, Voucher::Org { .. });
    if org {
        // An org's provider vouches for nothing it does not verify, outside its domains.
        if !a.email_verified {
            return Decision::Refuse(Refusal::EmailNotVerified);
        }
        if !a.voucher.covers(a.email) {
            return Decision::Refuse(Refusal::DomainNotVerified);
        }
    }
    match (by_identity, by_email) {
        (Some(user), _) => {
            if org && user.is_platform_admin {
                Decision::Refuse(Refusal::PlatformAdmin)
            } else if !a.voucher.covers(&user.email) {
                // Linked earlier, but the account's address is no longer in a verified domain
                // of the org (the domain was deleted or the account's address changed).
                Decision::Refuse(Refusal::DomainNotVerified)
            } else {
                Decision::SignIn(user)
            }
        }
        (None, Some(_)) if !a.email_verified => Decision::Refuse(Refusal::EmailNotVerified),
        (None, Some(holder)) if org && holder.user.is_platform_admin => {
            Decision::Refuse(Refusal::PlatformAdmin)
        }
        (None, Some(holder)) if holder.has_password => Decision::Claim(holder.user),
        (None, Some(holder)) => Decision::Link(holder.user),
        (None, None) if !a.email_verified => Decision::Refuse(Refusal::EmailNotVerified),
        (None, None) => Decision::Create,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PosixId, UserId};

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

    fn admin(email: &str) -> User {
        User {
            is_platform_admin: true,
            ..user(email)
        }
    }

    fn holder(u: &User, has_password: bool) -> Option<Holder> {
        Some(Holder {
            user: u.clone(),
            has_password,
        })
    }

    fn operator(email: &Email, verified: bool) -> Assertion<'_> {
        Assertion {
            email,
            email_verified: verified,
            voucher: Voucher::Operator,
        }
    }

    fn org<'a>(email: &'a Email, verified: bool, domains: &'a [DomainName]) -> Assertion<'a> {
        Assertion {
            email,
            email_verified: verified,
            voucher: Voucher::Org {
                verified_domains: domains,
            },
        }
    }

    #[test]
    fn operator_providers_are_trusted_for_verified_addresses() {
        let alice = user("alice@example.com");
        let email = alice.email.clone();
        // Linked: signs in whatever the email flag says.
        for verified in [true, false] {
            assert_eq!(
                decide(Some(alice.clone()), None, &operator(&email, verified)),
                Decision::SignIn(alice.clone())
            );
        }
        // Not linked: an account without a password is linked, one with is claimed.
        assert_eq!(
            decide(None, holder(&alice, false), &operator(&email, true)),
            Decision::Link(alice.clone())
        );
        assert_eq!(
            decide(None, holder(&alice, true), &operator(&email, true)),
            Decision::Claim(alice.clone())
        );
        // Platform admins too: the operator's provider is the operator's word.
        let root = admin("root@example.com");
        assert_eq!(
            decide(None, holder(&root, false), &operator(&root.email, true)),
            Decision::Link(root.clone())
        );
        assert_eq!(
            decide(None, None, &operator(&email, true)),
            Decision::Create
        );
    }

    #[test]
    fn an_unverified_address_never_creates_or_links() {
        let alice = user("alice@example.com");
        let email = alice.email.clone();
        for has_password in [true, false] {
            assert_eq!(
                decide(None, holder(&alice, has_password), &operator(&email, false)),
                Decision::Refuse(Refusal::EmailNotVerified)
            );
        }
        assert_eq!(
            decide(None, None, &operator(&email, false)),
            Decision::Refuse(Refusal::EmailNotVerified)
        );
        let domains = [DomainName::parse("example.com").unwrap()];
        assert_eq!(
            decide(Some(alice.clone()), None, &org(&email, false, &domains)),
            Decision::Refuse(Refusal::EmailNotVerified)
        );
    }

    #[test]
    fn an_org_provider_vouches_only_inside_its_verified_domains() {
        let victim = user("victim@example.com");
        let root = admin("root@example.com");
        let none: [DomainName; 0] = [];
        let other = [DomainName::parse("attacker.example").unwrap()];
        // The attack: any address, verified by the attacker's own upstream.
        for domains in [&none[..], &other[..]] {
            for target in [&victim, &root] {
                for has_password in [true, false] {
                    assert_eq!(
                        decide(
                            None,
                            holder(target, has_password),
                            &org(&target.email, true, domains)
                        ),
                        Decision::Refuse(Refusal::DomainNotVerified)
                    );
                }
                assert_eq!(
                    decide(
                        Some(target.clone()),
                        None,
                        &org(&target.email, true, domains)
                    ),
                    Decision::Refuse(Refusal::DomainNotVerified)
                );
            }
            let nobody = Email::parse("new@example.com").unwrap();
            assert_eq!(
                decide(None, None, &org(&nobody, true, domains)),
                Decision::Refuse(Refusal::DomainNotVerified)
            );
        }
        // Inside its verified domain it creates, links, claims and signs in.
        let mine = [DomainName::parse("example.com").unwrap()];
        let fresh = Email::parse("dave@example.com").unwrap();
        assert_eq!(
            decide(None, None, &org(&fresh, true, &mine)),
            Decision::Create
        );
        assert_eq!(
            decide(
                None,
                holder(&victim, false),
                &org(&victim.email, true, &mine)
            ),
            Decision::Link(victim.clone())
        );
        assert_eq!(
            decide(
                None,
                holder(&victim, true),
                &org(&victim.email, true, &mine)
            ),
            Decision::Claim(victim.clone())
        );
        assert_eq!(
            decide(Some(victim.clone()), None, &org(&victim.email, true, &mine)),
            Decision::SignIn(victim.clone())
        );
        // Subdomains are not covered.
        let sub = Email::parse("eve@eu.example.com").unwrap();
        assert_eq!(
            decide(None, None, &org(&sub, true, &mine)),
            Decision::Refuse(Refusal::DomainNotVerified)
        );
        // Never a platform admin, even inside the domain.
        for has_password in [true, false] {
            assert_eq!(
                decide(
                    None,
                    holder(&root, has_password),
                    &org(&root.email, true, &mine)
                ),
                Decision::Refuse(Refusal::PlatformAdmin)
            );
        }
        assert_eq!(
            decide(Some(root.clone()), None, &org(&root.email, true, &mine)),
            Decision::Refuse(Refusal::PlatformAdmin)
        );
    }

    #[test]
    fn a_linked_identity_needs_its_account_inside_the_domain() {
        // Linked while example.com was verified; the upstream now asserts an address in
        // another verified domain, but the account's own address is outside them.
        let linked = user("carol@example.com");
        let domains = [DomainName::parse("example.org").unwrap()];
        let asserted = Email::parse("carol@example.org").unwrap();
        assert_eq!(
            decide(Some(linked), None, &org(&asserted, true, &domains)),
            Decision::Refuse(Refusal::DomainNotVerified)
        );
    }
}
