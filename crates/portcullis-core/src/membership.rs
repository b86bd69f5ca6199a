//! The rules of changing who belongs to an org, which both store backends apply inside
//! their transactions: whether a user may be added (again), and that an org never loses
//! its last owner. The store reads the facts and does the SQL; these functions decide.

use crate::Role;

/// A user's earlier membership of the org they are being added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorMembership {
    Never,
    Active,
    /// Removed before (memberships are soft-deleted).
    Removed,
}

/// How an addition is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new membership row.
    Insert,
    /// The removed membership comes back, with the new role and a new join date.
    Reinstate,
}

/// Why a membership change is refused. The messages are safe to show to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipConflict {
    #[error("this user is already a member of the organization")]
    AlreadyMember,
    #[error("an organization must keep at least one owner")]
    LastOwner,
}

/// Adds a member: anyone but a current member.
pub fn admit_member(prior: PriorMembership) -> Result<Admission, MembershipConflict> {
    match prior {
        PriorMembership::Never => Ok(Admission::Insert),
        PriorMembership::Removed => Ok(Admission::Reinstate),
        PriorMembership::Active => Err(MembershipConflict::AlreadyMember),
    }
}

/// Changes a member's role (`new` = Some) or removes them (`new` = None), given their
/// `current` role and how many active owners the org has now, them included.
pub fn change_membership(
    current: Role,
    new: Option<Role>,
    owners: u64,
) -> Result<(), MembershipConflict> {
    let loses_an_owner = current == Role::Owner && new != Some(Role::Owner);
    if loses_an_owner && owners <= 1 {
        return Err(MembershipConflict::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_current_member_cannot_be_added() {
        assert_eq!(admit_member(PriorMembership::Never), Ok(Admission::Insert));
        assert_eq!(
            admit_member(PriorMembership::Removed),
            Ok(Admission::Reinstate)
        );
        assert_eq!(
            admit_member(PriorMembership::Active),
            Err(MembershipConflict::AlreadyMember)
        );
    }

    #[test]
    fn the_last_owner_stays_an_owner() {
        for new in [Some(Role::Admin), Some(Role::Member), None] {
            assert_eq!(
                change_membership(Role::Owner, new, 1),
                Err(MembershipConflict::LastOwner),
                "{new:?}"
            );
            assert_eq!(change_membership(Role::Owner, new, 2), Ok(()), "{new:?}");
        }
        assert_eq!(change_membership(Role::Owner, Some(Role::Owner), 1), Ok(()));
    }

    #[test]
    fn others_come_and_go_whatever_the_owners() {
        for current in [Role::Admin, Role::Member] {
            for new in [
                Some(Role::Owner),
                Some(Role::Admin),
                Some(Role::Member),
                None,
            ] {
                assert_eq!(
                    change_membership(current, new, 1),
                    Ok(()),
                    "{current:?} {new:?}"
                );
            }
        }
    }

    #[test]
    fn conflicts_say_what_is_wrong() {
        assert_eq!(
            MembershipConflict::LastOwner.to_string(),
            "an organization must keep at least one owner"
        );
        assert_eq!(
            MembershipConflict::AlreadyMember.to_string(),
            "this user is already a member of the organization"
        );
    }
}
