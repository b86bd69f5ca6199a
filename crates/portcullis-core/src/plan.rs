//! Plans and subscriptions: what an org may have (seats, projects, features) and whether it
//! may change anything at all. No payment provider: platform admins set the state.

use crate::{Timestamp, ValidationError};

/// A feature a plan switches on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Sign-in from the mobile app (`/api/v1/mobile/auth/*`).
    MobileAccess,
}

impl Feature {
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::MobileAccess => "mobile_access",
        }
    }
}

/// The key of a plan (`free`, `team`, …): lowercase letters, digits, `-` and `_`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PlanKey(String);

impl PlanKey {
    pub const FREE: &'static str = "free";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= 40
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "plan",
                "a plan key is 1–40 characters of a-z, 0-9, '-' and '_'",
            ))
        }
    }

    pub fn free() -> Self {
        Self(Self::FREE.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plan: its limits (None = unlimited) and features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub key: PlanKey,
    pub seat_limit: Option<u32>,
    pub project_limit: Option<u32>,
    pub features: Vec<Feature>,
}

impl Plan {
    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    pub fn limit(&self, resource: Resource) -> Option<u32> {
        match resource {
            Resource::Seats => self.seat_limit,
            Resource::Projects => self.project_limit,
        }
    }
}

/// The plans every server knows without configuration. Every built-in plan includes
/// `mobile_access`: mobile sign-in worked for every org before plans existed, and taking it
/// away from the free plan would break existing apps on upgrade. A configured plan can drop it.
pub fn built_in_plans() -> Vec<Plan> {
    let plan = |key: &str, seats, projects| Plan {
        key: PlanKey(key.to_owned()),
        seat_limit: seats,
        project_limit: projects,
        features: vec![Feature::MobileAccess],
    };
    vec![
        plan(PlanKey::FREE, Some(3), Some(3)),
        plan("team", Some(25), Some(20)),
        plan("enterprise", None, None),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Canceled,
    Inactive,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Ok(match raw {
            "active" => Self::Active,
            "trialing" => Self::Trialing,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "inactive" => Self::Inactive,
            _ => {
                return Err(ValidationError::new(
                    "status",
                    "status must be one of active, trialing, past_due, canceled, inactive",
                ));
            }
        })
    }

    /// Only a paying (or trialing) org changes things; reads and sign-in always work.
    pub fn allows_changes(self) -> bool {
        matches!(self, Self::Active | Self::Trialing)
    }
}

/// What a plan limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// Active memberships plus pending invitations.
    Seats,
    Projects,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Seats => "seats",
            Resource::Projects => "projects",
        }
    }
}

/// Why a change to an org was refused by its subscription.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanRefusal {
    #[error("the organization's subscription is {}: changes are not allowed", .0.as_str())]
    Inactive(SubscriptionStatus),
    #[error("the plan allows {limit} {}; {used} in use", .resource.as_str())]
    LimitExceeded {
        resource: Resource,
        limit: u32,
        used: u64,
    },
}

/// Whether one more `resource` fits: the subscription must allow changes, and `used + 1`
/// must stay within the plan's limit. The store calls this under the org's lock, on counts
/// read in the same transaction as the insert, so two concurrent adds cannot both pass.
pub fn admit_one(
    status: SubscriptionStatus,
    resource: Resource,
    limit: Option<u32>,
    used: u64,
) -> Result<(), PlanRefusal> {
    if !status.allows_changes() {
        return Err(PlanRefusal::Inactive(status));
    }
    match limit {
        Some(limit) if used >= u64::from(limit) => Err(PlanRefusal::LimitExceeded {
            resource,
            limit,
            used,
        }),
        _ => Ok(()),
    }
}

/// Whether admitting one more `resource` needs the org's current count: only while the
/// subscription allows changes and the plan limits the resource (otherwise the answer does
/// not depend on it, and the store skips the count).
pub fn needs_count(status: SubscriptionStatus, limit: Option<u32>) -> bool {
    status.allows_changes() && limit.is_some()
}

/// [`admit_one`] on what the inserting transaction counted (None when [`needs_count`] said
/// no count was needed). `inserted` rows of this change are already among those counted:
/// adding a member learns only by inserting whether the person was a member already.
pub fn admit_counted(
    status: SubscriptionStatus,
    resource: Resource,
    limit: Option<u32>,
    counted: Option<u64>,
    inserted: u64,
) -> Result<(), PlanRefusal> {
    let used = counted.unwrap_or(0).saturating_sub(inserted);
    admit_one(status, resource, limit, used)
}

/// The limits of `plan` an org using `seats` and `projects` is at or over, with what it
/// uses and the limit (for `doctor`).
pub fn limits_reached(plan: &Plan, seats: u64, projects: u64) -> Vec<(Resource, u64, u32)> {
    [(Resource::Seats, seats), (Resource::Projects, projects)]
        .into_iter()
        .filter_map(|(resource, used)| {
            let limit = plan.limit(resource)?;
            (used >= u64::from(limit)).then_some((resource, used, limit))
        })
        .collect()
}

/// An org's subscription as stored; an org that never had one is on `free`, `active`,
/// since it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub plan: PlanKey,
    pub status: SubscriptionStatus,
    pub current_period_start: Timestamp,
    pub current_period_end: Option<Timestamp>,
}

/// Where a project's secret key stands at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStanding {
    /// The newest key.
    Current,
    /// A newer key exists; this one still works until `until`.
    Superseded { until: Timestamp },
    /// Past its grace period: refused like an unknown key.
    Expired,
}

pub fn key_standing(expires_at: Option<Timestamp>, now: Timestamp) -> KeyStanding {
    match expires_at {
        None => KeyStanding::Current,
        Some(until) if until > now => KeyStanding::Superseded { until },
        Some(_) => KeyStanding::Expired,
    }
}

/// The longest grace period a rotation may give the old key (30 days).
pub const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

pub fn grace_period(seconds: u64) -> Result<time::Duration, ValidationError> {
    if seconds > MAX_GRACE_SECONDS {
        return Err(ValidationError::new(
            "grace_seconds",
            format!("grace_seconds must be at most {MAX_GRACE_SECONDS} (30 days)"),
        ));
    }
    Ok(time::Duration::seconds(seconds as i64))
}

/// The most secret keys one project may have working at once, the new one included. Each
/// rotation with a grace period leaves the old keys working; without a cap, rotating in a loop
/// would keep any number of them alive (each one more secret to leak) and grow the key list
/// every check reads.
pub const MAX_WORKING_SECRET_KEYS: u32 = 10;

/// A rotation that would leave more than [`MAX_WORKING_SECRET_KEYS`] keys working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a project has at most {limit} working secret keys; rotate with grace_seconds = 0 \
     (which ends the old keys now) or wait until an older key's grace period ends"
)]
pub struct TooManyWorkingKeys {
    pub limit: u32,
}

/// Whether a rotation may go ahead when `still_working` older keys would keep working
/// through their grace period beside the new key.
pub fn admit_rotation(still_working: usize) -> Result<(), TooManyWorkingKeys> {
    if still_working.saturating_add(1) > MAX_WORKING_SECRET_KEYS as usize {
        return Err(TooManyWorkingKeys {
            limit: MAX_WORKING_SECRET_KEYS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_leaves_at_most_the_cap_working() {
        assert!(admit_rotation(0).is_ok());
        assert!(admit_rotation(MAX_WORKING_SECRET_KEYS as usize - 1).is_ok());
        assert_eq!(
            admit_rotation(MAX_WORKING_SECRET_KEYS as usize),
            Err(TooManyWorkingKeys { limit: 10 })
        );
        assert!(admit_rotation(usize::MAX).is_err());
    }

    #[test]
    fn only_active_and_trialing_orgs_change_things() {
        for s in [SubscriptionStatus::Active, SubscriptionStatus::Trialing] {
            assert!(admit_one(s, Resource::Seats, None, 1000).is_ok());
        }
        for s in [
            SubscriptionStatus::PastDue,
            SubscriptionStatus::Canceled,
            SubscriptionStatus::Inactive,
        ] {
            assert_eq!(
                admit_one(s, Resource::Seats, None, 0),
                Err(PlanRefusal::Inactive(s))
            );
            assert_eq!(SubscriptionStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(SubscriptionStatus::parse("paid").is_err());
    }

    #[test]
    fn the_last_free_slot_is_taken_then_refused() {
        let active = SubscriptionStatus::Active;
        assert!(admit_one(active, Resource::Projects, Some(3), 2).is_ok());
        assert_eq!(
            admit_one(active, Resource::Projects, Some(3), 3),
            Err(PlanRefusal::LimitExceeded {
                resource: Resource::Projects,
                limit: 3,
                used: 3
            })
        );
        // Already over (the plan was lowered): still refused, with the real count.
        assert!(matches!(
            admit_one(active, Resource::Seats, Some(3), 5),
            Err(PlanRefusal::LimitExceeded { used: 5, .. })
        ));
    }

    #[test]
    fn built_in_plans_have_the_documented_limits() {
        let plans = built_in_plans();
        let find = |k: &str| plans.iter().find(|p| p.key.as_str() == k).unwrap();
        assert_eq!(find("free").seat_limit, Some(3));
        assert_eq!(find("free").project_limit, Some(3));
        assert_eq!(find("team").limit(Resource::Seats), Some(25));
        assert_eq!(find("team").limit(Resource::Projects), Some(20));
        assert_eq!(find("enterprise").limit(Resource::Seats), None);
        assert!(plans.iter().all(|p| p.has(Feature::MobileAccess)));
        assert!(PlanKey::parse("Team").is_err() && PlanKey::parse("").is_err());
        assert_eq!(PlanKey::parse("team-2").unwrap().as_str(), "team-2");
    }

    #[test]
    fn a_superseded_key_works_until_its_grace_ends() {
        let now = crate::now();
        assert_eq!(key_standing(None, now), KeyStanding::Current);
        let later = now + time::Duration::seconds(5);
        assert_eq!(
            key_standing(Some(later), now),
            KeyStanding::Superseded { until: later }
        );
        assert_eq!(key_standing(Some(now), now), KeyStanding::Expired);
        assert!(grace_period(MAX_GRACE_SECONDS).is_ok());
        assert!(grace_period(MAX_GRACE_SECONDS + 1).is_err());
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    fn plan(seats: Option<u32>, projects: Option<u32>) -> Plan {
        Plan {
            key: PlanKey::free(),
            seat_limit: seats,
            project_limit: projects,
            features: Vec::new(),
        }
    }

    #[test]
    fn a_count_is_needed_only_when_it_can_change_the_answer() {
        assert!(needs_count(SubscriptionStatus::Active, Some(3)));
        assert!(!needs_count(SubscriptionStatus::Active, None));
        let inactive = SubscriptionStatus::Inactive;
        assert!(!inactive.allows_changes());
        assert!(!needs_count(inactive, Some(3)));
        assert_eq!(
            admit_counted(inactive, Resource::Seats, Some(3), None, 0),
            Err(PlanRefusal::Inactive(inactive))
        );
    }

    #[test]
    fn rows_already_inserted_are_not_counted_twice() {
        let active = SubscriptionStatus::Active;
        assert_eq!(
            admit_counted(active, Resource::Seats, Some(3), Some(3), 1),
            Ok(())
        );
        assert_eq!(
            admit_counted(active, Resource::Seats, Some(3), Some(3), 0),
            Err(PlanRefusal::LimitExceeded {
                resource: Resource::Seats,
                limit: 3,
                used: 3
            })
        );
        assert_eq!(
            admit_counted(active, Resource::Projects, None, None, 0),
            Ok(())
        );
        assert_eq!(
            admit_counted(active, Resource::Projects, Some(1), Some(0), 1),
            Ok(())
        );
    }

    #[test]
    fn limits_reached_lists_each_limit_at_or_over() {
        let p = plan(Some(3), Some(2));
        assert!(limits_reached(&p, 2, 1).is_empty());
        assert_eq!(
            limits_reached(&p, 3, 5),
            vec![(Resource::Seats, 3, 3), (Resource::Projects, 5, 2)]
        );
        assert!(limits_reached(&plan(None, None), 100, 100).is_empty());
    }
}
