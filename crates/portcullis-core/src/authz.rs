//! Authorization by construction: an [`OrgAccess`] can only be obtained by checking a
//! principal against an active membership (or platform-admin status), and every
//! tenant-scoped store call takes one. Forgetting the check is a compile error, not a leak.

use crate::{Membership, OrgId, Role, SessionId, UserId};

/// Who is making a request, once their credentials were verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    /// The session the request came with (None for other credential kinds).
    pub session_id: Option<SessionId>,
    pub is_platform_admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// The caller may not know this org exists.
    #[error("no such organization")]
    NotVisible,
    /// The caller is a member, but their role is too weak.
    #[error("this action requires the {0:?} role or higher")]
    RoleTooLow(Role),
}

/// Proof that the holder may act in one org, with the role it may act as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAccess {
    org_id: OrgId,
    role: Role,
    actor_id: Option<UserId>,
}

impl OrgAccess {
    /// Grants access when `membership` is the principal's *active* membership of the org and
    /// its role is at least `needed`. Platform admins may act in every org as owners.
    pub fn authorize(
        principal: &Principal,
        org_id: OrgId,
        membership: Option<&Membership>,
        needed: Role,
    ) -> Result<Self, AccessDenied> {
        let role = match membership {
            Some(m) if m.is_active() && m.org_id == org_id && m.user_id == principal.user_id => {
                Some(m.role)
            }
            _ => None,
        };
        let role = match (role, principal.is_platform_admin) {
            (_, true) => Role::Owner,
            (Some(r), false) => r,
            (None, false) => return Err(AccessDenied::NotVisible),
        };
        if role < needed {
            return Err(AccessDenied::RoleTooLow(needed));
        }
        Ok(Self {
            org_id,
            role,
            actor_id: Some(principal.user_id),
        })
    }

    /// The server acting on its own behalf: bootstrapping an org it just created, or an
    /// operator's command on the machine itself. Never reachable from a request.
    pub fn system(org_id: OrgId) -> Self {
        Self {
            org_id,
            role: Role::Owner,
            actor_id: None,
        }
    }

    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn actor_id(&self) -> Option<UserId> {
        self.actor_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(org: OrgId, user: UserId, role: Role, deleted: bool) -> Membership {
        Membership {
            org_id: org,
            user_id: user,
            role,
            created_at: crate::now(),
            deleted_at: deleted.then(crate::now),
        }
    }

    #[test]
    fn only_active_matching_memberships_authorize() {
        let org = OrgId::new();
        let user = UserId::new();
        let p = Principal {
            user_id: user,
            session_id: None,
            is_platform_admin: false,
        };
        let m = member(org, user, Role::Admin, false);
        assert_eq!(
            OrgAccess::authorize(&p, org, Some(&m), Role::Admin)
                .unwrap()
                .role(),
            Role::Admin
        );
        assert_eq!(
            OrgAccess::authorize(&p, org, Some(&m), Role::Owner).unwrap_err(),
            AccessDenied::RoleTooLow(Role::Owner)
        );
        let gone = member(org, user, Role::Owner, true);
        assert_eq!(
            OrgAccess::authorize(&p, org, Some(&gone), Role::Member).unwrap_err(),
            AccessDenied::NotVisible
        );
        let other_org = member(OrgId::new(), user, Role::Owner, false);
        assert!(OrgAccess::authorize(&p, org, Some(&other_org), Role::Member).is_err());
        let other_user = member(org, UserId::new(), Role::Owner, false);
        assert!(OrgAccess::authorize(&p, org, Some(&other_user), Role::Member).is_err());
        assert!(OrgAccess::authorize(&p, org, None, Role::Member).is_err());
        let admin = Principal {
            is_platform_admin: true,
            ..p
        };
        assert_eq!(
            OrgAccess::authorize(&admin, org, None, Role::Owner)
                .unwrap()
                .role(),
            Role::Owner
        );
    }
}

/// Whether a member acting as `actor` may give someone holding `current` (None for a new
/// member) the role `new`, or remove them (`new` = None). Admins manage members and admins;
/// only owners create, change or remove owners.
pub fn may_manage_member(actor: Role, current: Option<Role>, new: Option<Role>) -> bool {
    if !actor.can_administer() {
        return false;
    }
    let touches_owner = current == Some(Role::Owner) || new == Some(Role::Owner);
    !touches_owner || actor == Role::Owner
}

#[cfg(test)]
mod manage_tests {
    use super::*;

    #[test]
    fn owner_changes_need_an_owner() {
        assert!(may_manage_member(Role::Admin, None, Some(Role::Member)));
        assert!(may_manage_member(
            Role::Admin,
            Some(Role::Member),
            Some(Role::Admin)
        ));
        assert!(!may_manage_member(Role::Admin, None, Some(Role::Owner)));
        assert!(!may_manage_member(Role::Admin, Some(Role::Owner), None));
        assert!(may_manage_member(
            Role::Owner,
            Some(Role::Owner),
            Some(Role::Admin)
        ));
        assert!(!may_manage_member(Role::Member, None, Some(Role::Member)));
    }
}
