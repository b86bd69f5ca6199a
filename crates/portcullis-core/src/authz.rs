//! Authorization by construction: an [`OrgAccess`] can only be obtained by checking a
//! principal against an active membership (or platform-admin status), and every
//! tenant-scoped store call takes one. Forgetting the check is a compile error, not a leak.

use crate::project::effective_project_role;
use crate::{Membership, OrgId, ProjectId, Role, SessionId, UserId};

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
    /// The caller was a member of the org and so knows it exists, but the membership ended.
    #[error("your membership of this organization has ended")]
    MembershipEnded,
    /// A member of the org with no role in this project.
    #[error("you are not a member of this project")]
    NotInProject,
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
    /// Acting as the platform (a platform admin, or the server itself), not as a member.
    operator: bool,
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
            operator: principal.is_platform_admin,
        })
    }

    /// The server acting on its own behalf: bootstrapping an org it just created, or an
    /// operator's command on the machine itself. Never reachable from a request.
    pub fn system(org_id: OrgId) -> Self {
        Self {
            org_id,
            role: Role::Owner,
            actor_id: None,
            operator: true,
        }
    }

    /// A project's secret key acting for its backend: admin of the project's org (members,
    /// sessions, clients), never owner and never operator, so ownership changes and
    /// platform-admin actions stay with people.
    pub fn project_key(org_id: OrgId) -> Self {
        Self {
            org_id,
            role: Role::Admin,
            actor_id: None,
            operator: false,
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

    /// Whether the holder acts for the platform (a platform admin, or the server itself)
    /// rather than as a member: no membership bounds what it may see or change.
    pub fn is_operator(&self) -> bool {
        self.operator
    }
}

/// How a caller stands towards one org, before any role is weighed.
enum Standing {
    /// An active member with this role.
    Member(Role),
    /// A platform admin with no active membership of the org.
    Operator,
}

/// The one rule behind org and project access: an active member is in; a platform admin is
/// in everywhere; someone whose membership ended is told so (403), since they know the org
/// exists; a stranger may not learn that it does (404).
fn standing(
    principal: &Principal,
    org_id: OrgId,
    membership: Option<&Membership>,
) -> Result<Standing, AccessDenied> {
    let own = membership.filter(|m| m.org_id == org_id && m.user_id == principal.user_id);
    match own {
        Some(m) if m.is_active() => Ok(Standing::Member(m.role)),
        _ if principal.is_platform_admin => Ok(Standing::Operator),
        Some(_) => Err(AccessDenied::MembershipEnded),
        None => Err(AccessDenied::NotVisible),
    }
}

/// Access to an org at `needed` role or better, from the principal's membership row of it
/// (active or ended; None when there never was one).
pub fn decide_org_access(
    principal: &Principal,
    org_id: OrgId,
    membership: Option<&Membership>,
    needed: Role,
) -> Result<OrgAccess, AccessDenied> {
    standing(principal, org_id, membership)?;
    OrgAccess::authorize(principal, org_id, membership, needed)
}

/// Access to an org by a project's secret key ([`OrgAccess::project_key`]): only the key's own
/// org, and only what an admin may do there. Any other org is invisible to it (404), exactly
/// as to a stranger; an owner-only action is refused (403).
pub fn decide_key_org_access(
    key: &OrgAccess,
    org_id: OrgId,
    needed: Role,
) -> Result<OrgAccess, AccessDenied> {
    if key.org_id != org_id || key.operator || key.actor_id.is_some() {
        return Err(AccessDenied::NotVisible);
    }
    if key.role < needed {
        return Err(AccessDenied::RoleTooLow(needed));
    }
    Ok(key.clone())
}

#[cfg(test)]
mod key_access_tests {
    use super::*;

    #[test]
    fn a_key_reaches_its_own_org_as_an_admin_and_nothing_else() {
        let mine = OrgId::new();
        let key = OrgAccess::project_key(mine);
        let got = decide_key_org_access(&key, mine, Role::Admin).unwrap();
        assert_eq!(got.org_id(), mine);
        assert_eq!(got.role(), Role::Admin);
        assert!(!got.is_operator());
        assert_eq!(
            decide_key_org_access(&key, mine, Role::Owner),
            Err(AccessDenied::RoleTooLow(Role::Owner))
        );
        assert_eq!(
            decide_key_org_access(&key, OrgId::new(), Role::Member),
            Err(AccessDenied::NotVisible)
        );
        // Only a key's access qualifies: a person's or the server's is not a key.
        assert_eq!(
            decide_key_org_access(&OrgAccess::system(mine), mine, Role::Member),
            Err(AccessDenied::NotVisible)
        );
    }
}

/// The caller's effective role in a project of `org_id`, and the org access it implies.
/// `membership` is their membership row of the org (active or ended), `project_role` their
/// role in the project itself. Platform admins act as owners of every project.
pub fn decide_project_access(
    principal: &Principal,
    org_id: OrgId,
    membership: Option<&Membership>,
    project_role: Option<Role>,
) -> Result<(Role, OrgAccess), AccessDenied> {
    let role = match standing(principal, org_id, membership)? {
        _ if principal.is_platform_admin => Role::Owner,
        Standing::Member(org_role) => {
            effective_project_role(org_role, project_role).ok_or(AccessDenied::NotInProject)?
        }
        Standing::Operator => Role::Owner,
    };
    let access = OrgAccess::authorize(principal, org_id, membership, Role::Member)?;
    Ok((role, access))
}

/// Proof that the holder may act in one project, with its effective role there: the org
/// access the project decision implied, narrowed to the project. Made only by
/// [`decide_project_scope`] (a person), [`ProjectAccess::project_key`] (the project's own
/// secret key) or [`ProjectAccess::system`]; the store's project handle filters by both ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectAccess {
    org: OrgAccess,
    project_id: ProjectId,
    role: Role,
}

impl ProjectAccess {
    /// A project's secret key acting for its backend: an admin of its own project only
    /// (and of its org, as [`OrgAccess::project_key`]).
    pub fn project_key(org_id: OrgId, project_id: ProjectId) -> Self {
        let org = OrgAccess::project_key(org_id);
        Self {
            role: org.role,
            org,
            project_id,
        }
    }

    /// The server acting on its own behalf in a project (an operator's command on the
    /// machine, tests). Never reachable from a request.
    pub fn system(org_id: OrgId, project_id: ProjectId) -> Self {
        Self {
            org: OrgAccess::system(org_id),
            project_id,
            role: Role::Owner,
        }
    }

    /// The org access the project decision implied.
    pub fn org(&self) -> &OrgAccess {
        &self.org
    }

    pub fn org_id(&self) -> OrgId {
        self.org.org_id
    }

    pub fn project_id(&self) -> ProjectId {
        self.project_id
    }

    /// The holder's effective role in the project.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// [`decide_project_access`] for one project of `org_id`, as a [`ProjectAccess`] that the
/// store's project handle accepts.
pub fn decide_project_scope(
    principal: &Principal,
    project_id: ProjectId,
    org_id: OrgId,
    membership: Option<&Membership>,
    project_role: Option<Role>,
) -> Result<ProjectAccess, AccessDenied> {
    let (role, org) = decide_project_access(principal, org_id, membership, project_role)?;
    Ok(ProjectAccess {
        org,
        project_id,
        role,
    })
}

#[cfg(test)]
mod project_scope_tests {
    use super::*;

    #[test]
    fn a_project_access_carries_the_project_decision() {
        let org = OrgId::new();
        let project = ProjectId::new();
        let user = UserId::new();
        let p = Principal {
            user_id: user,
            session_id: None,
            is_platform_admin: false,
        };
        let m = Membership {
            org_id: org,
            user_id: user,
            role: Role::Member,
            created_at: crate::now(),
            deleted_at: None,
        };
        let a = decide_project_scope(&p, project, org, Some(&m), Some(Role::Admin)).unwrap();
        assert_eq!(
            (a.org_id(), a.project_id(), a.role()),
            (org, project, Role::Admin)
        );
        assert_eq!(a.org().role(), Role::Member);
        assert_eq!(
            decide_project_scope(&p, project, org, Some(&m), None),
            Err(AccessDenied::NotInProject)
        );
        assert_eq!(
            decide_project_scope(&p, project, OrgId::new(), Some(&m), Some(Role::Owner)),
            Err(AccessDenied::NotVisible)
        );
        let key = ProjectAccess::project_key(org, project);
        assert_eq!(key.role(), Role::Admin);
        assert!(!key.org().is_operator() && key.org().actor_id().is_none());
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

#[cfg(test)]
mod decide_tests {
    use super::*;

    fn principal(admin: bool) -> Principal {
        Principal {
            user_id: UserId::new(),
            session_id: None,
            is_platform_admin: admin,
        }
    }

    fn membership(p: &Principal, org: OrgId, role: Role, ended: bool) -> Membership {
        Membership {
            org_id: org,
            user_id: p.user_id,
            role,
            created_at: crate::now(),
            deleted_at: ended.then(crate::now),
        }
    }

    #[test]
    fn org_and_project_routes_agree_on_a_removed_member() {
        let org = OrgId::new();
        let p = principal(false);
        let gone = membership(&p, org, Role::Admin, true);
        assert_eq!(
            decide_org_access(&p, org, Some(&gone), Role::Member).unwrap_err(),
            AccessDenied::MembershipEnded
        );
        for project_role in [None, Some(Role::Owner)] {
            assert_eq!(
                decide_project_access(&p, org, Some(&gone), project_role).unwrap_err(),
                AccessDenied::MembershipEnded
            );
        }
    }

    #[test]
    fn strangers_see_nothing() {
        let org = OrgId::new();
        let p = principal(false);
        assert_eq!(
            decide_org_access(&p, org, None, Role::Member).unwrap_err(),
            AccessDenied::NotVisible
        );
        assert_eq!(
            decide_project_access(&p, org, None, None).unwrap_err(),
            AccessDenied::NotVisible
        );
        // Someone else's row, or a row of another org, is no relation either.
        let other = principal(false);
        let theirs = membership(&other, org, Role::Owner, false);
        assert_eq!(
            decide_project_access(&p, org, Some(&theirs), None).unwrap_err(),
            AccessDenied::NotVisible
        );
        let elsewhere = membership(&p, OrgId::new(), Role::Owner, true);
        assert_eq!(
            decide_org_access(&p, org, Some(&elsewhere), Role::Member).unwrap_err(),
            AccessDenied::NotVisible
        );
    }

    #[test]
    fn active_members_get_their_effective_role() {
        let org = OrgId::new();
        let p = principal(false);
        let admin = membership(&p, org, Role::Admin, false);
        let (role, access) = decide_project_access(&p, org, Some(&admin), None).unwrap();
        assert_eq!(
            (role, access.role(), access.org_id()),
            (Role::Admin, Role::Admin, org)
        );
        assert_eq!(
            decide_org_access(&p, org, Some(&admin), Role::Owner).unwrap_err(),
            AccessDenied::RoleTooLow(Role::Owner)
        );
        let plain = membership(&p, org, Role::Member, false);
        assert_eq!(
            decide_project_access(&p, org, Some(&plain), None).unwrap_err(),
            AccessDenied::NotInProject
        );
        let (role, access) =
            decide_project_access(&p, org, Some(&plain), Some(Role::Admin)).unwrap();
        assert_eq!((role, access.role()), (Role::Admin, Role::Member));
    }

    #[test]
    fn platform_admins_act_as_owners_everywhere() {
        let org = OrgId::new();
        let p = principal(true);
        let plain = membership(&p, org, Role::Member, false);
        let gone = membership(&p, org, Role::Member, true);
        for m in [None, Some(&plain), Some(&gone)] {
            assert_eq!(
                decide_org_access(&p, org, m, Role::Owner).unwrap().role(),
                Role::Owner
            );
            let (role, access) = decide_project_access(&p, org, m, None).unwrap();
            assert_eq!((role, access.role()), (Role::Owner, Role::Owner));
        }
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

/// Who asks for a membership change, as the transaction that makes it sees them: the
/// platform (operators, the server itself), or a member with the role they hold *now*
/// (None when their own membership ended meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeActor {
    Operator,
    Member { user_id: UserId, role: Option<Role> },
}

/// Whether `actor` may give `target`, who holds `current`, the role `new` (Some) or remove
/// them (None). Decided inside the transaction that makes the change, on roles read under
/// its lock, so a concurrent change cannot slip between the check and the write. Anyone
/// may leave; everything else is [`may_manage_member`] of the actor's current role.
pub fn may_change_membership(
    actor: ChangeActor,
    target: UserId,
    current: Role,
    new: Option<Role>,
) -> bool {
    match actor {
        ChangeActor::Operator => true,
        ChangeActor::Member { user_id, .. } if user_id == target && new.is_none() => true,
        ChangeActor::Member { role: None, .. } => false,
        ChangeActor::Member {
            role: Some(role), ..
        } => may_manage_member(role, Some(current), new),
    }
}

#[cfg(test)]
mod manage_tests {
    use super::*;

    #[test]
    fn changes_are_judged_on_the_roles_inside_the_transaction() {
        let me = UserId::new();
        let other = UserId::new();
        let admin = ChangeActor::Member {
            user_id: me,
            role: Some(Role::Admin),
        };
        // An admin cannot make themselves owner, nor demote or remove an owner.
        assert!(!may_change_membership(
            admin,
            me,
            Role::Admin,
            Some(Role::Owner)
        ));
        assert!(!may_change_membership(
            admin,
            other,
            Role::Owner,
            Some(Role::Member)
        ));
        assert!(!may_change_membership(admin, other, Role::Owner, None));
        assert!(may_change_membership(
            admin,
            other,
            Role::Member,
            Some(Role::Admin)
        ));
        // Demoted meanwhile, or removed: nothing but leaving.
        let demoted = ChangeActor::Member {
            user_id: me,
            role: Some(Role::Member),
        };
        assert!(!may_change_membership(
            demoted,
            other,
            Role::Member,
            Some(Role::Admin)
        ));
        let gone = ChangeActor::Member {
            user_id: me,
            role: None,
        };
        assert!(!may_change_membership(gone, other, Role::Member, None));
        assert!(may_change_membership(demoted, me, Role::Member, None));
        assert!(may_change_membership(
            ChangeActor::Operator,
            other,
            Role::Owner,
            Some(Role::Member)
        ));
    }

    #[test]
    fn operators_are_marked_on_their_access() {
        let org = OrgId::new();
        let p = Principal {
            user_id: UserId::new(),
            session_id: None,
            is_platform_admin: false,
        };
        let m = Membership {
            org_id: org,
            user_id: p.user_id,
            role: Role::Owner,
            created_at: crate::now(),
            deleted_at: None,
        };
        assert!(
            !decide_org_access(&p, org, Some(&m), Role::Owner)
                .unwrap()
                .is_operator()
        );
        let admin = Principal {
            is_platform_admin: true,
            ..p
        };
        assert!(
            decide_org_access(&admin, org, None, Role::Owner)
                .unwrap()
                .is_operator()
        );
        assert!(OrgAccess::system(org).is_operator());
    }

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

    #[test]
    fn a_project_key_acts_as_an_admin_never_as_owner_or_operator() {
        let org = OrgId::new();
        let access = OrgAccess::project_key(org);
        assert_eq!(access.org_id(), org);
        assert_eq!(access.role(), Role::Admin);
        assert!(access.role() < Role::Owner);
        assert!(!access.is_operator());
        assert_eq!(access.actor_id(), None);
    }
}
