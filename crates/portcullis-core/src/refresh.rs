//! The rules of refresh-token rotation, which both store backends and the token endpoints
//! apply: what a presented refresh token means, decided from what the store knows about it.
//! The store does only the SQL each decision calls for.

use crate::scope::ScopeSet;
use crate::{Timestamp, TokenHash};

/// The scope that makes a grant outlive the browser session it was made in (OpenID Connect
/// Core §11): without it, a refresh family and every access token minted from it end with
/// that session (sign-out, revocation, expiry).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Whether a grant of `scope` ends with the session it was made in.
pub fn ends_with_session(scope: &ScopeSet) -> bool {
    !scope.contains(OFFLINE_ACCESS)
}

/// What the store knows about a presented refresh token, as far as rotation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentedRefresh {
    /// The token was issued to the client presenting it.
    pub client_matches: bool,
    pub family_revoked: bool,
    pub expires_at: Timestamp,
    /// When the token was rotated, if it was.
    pub used_at: Option<Timestamp>,
    /// The successor it was rotated into.
    pub successor: Option<TokenHash>,
    /// The family's absolute end, whatever its tokens' own expiry says.
    pub family_expires_at: Option<Timestamp>,
    /// The family ends with its session ([`ends_with_session`]) and that session is no
    /// longer live.
    pub session_ended: bool,
}

/// What presenting a refresh token amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Another client's token: it learns nothing, and the token is left as it was.
    ForeignClient,
    /// The family was revoked before (sign-out, reuse, code replay).
    Revoked,
    /// The session the family is bound to has ended: the family must be revoked now.
    SessionEnded,
    /// A retry of a rotation moments ago with the same successor (two tabs refreshing at
    /// once): answered with that successor, not treated as theft.
    Retry,
    /// A rotated token came back: theft is assumed and the whole family must be revoked.
    Reuse,
    Expired,
    /// First use: spend the token and store its successor.
    Rotate,
}

impl RefreshDecision {
    /// The presenter gets tokens (a fresh rotation or the answer to a retry).
    pub fn succeeds(self) -> bool {
        matches!(self, RefreshDecision::Rotate | RefreshDecision::Retry)
    }
}

/// Classifies a presentation of `token` that would rotate it into `successor` at `now`. A
/// retry counts as such only within `grace` of the first rotation.
pub fn classify_refresh(
    token: &PresentedRefresh,
    successor: &TokenHash,
    now: Timestamp,
    grace: time::Duration,
) -> RefreshDecision {
    if !token.client_matches {
        return RefreshDecision::ForeignClient;
    }
    if token.family_revoked {
        return RefreshDecision::Revoked;
    }
    if token.session_ended {
        return RefreshDecision::SessionEnded;
    }
    if token.family_expires_at.is_some_and(|end| end <= now) {
        return RefreshDecision::Expired;
    }
    if let Some(used_at) = token.used_at {
        let same_successor = token.successor.is_some_and(|s| s.ct_eq(successor));
        return if same_successor && now - used_at <= grace {
            RefreshDecision::Retry
        } else {
            RefreshDecision::Reuse
        };
    }
    if token.expires_at <= now {
        return RefreshDecision::Expired;
    }
    RefreshDecision::Rotate
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn token(now: Timestamp) -> PresentedRefresh {
        PresentedRefresh {
            client_matches: true,
            family_revoked: false,
            expires_at: now + Duration::days(1),
            used_at: None,
            successor: None,
            family_expires_at: None,
            session_ended: false,
        }
    }

    const GRACE: Duration = Duration::seconds(10);

    #[test]
    fn a_live_unused_token_rotates() {
        let now = crate::now();
        let next = TokenHash::of("rt_next");
        assert_eq!(
            classify_refresh(&token(now), &next, now, GRACE),
            RefreshDecision::Rotate
        );
    }

    #[test]
    fn another_clients_token_is_foreign_whatever_its_state() {
        let now = crate::now();
        let t = PresentedRefresh {
            client_matches: false,
            family_revoked: true,
            used_at: Some(now),
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&t, &TokenHash::of("x"), now, GRACE),
            RefreshDecision::ForeignClient
        );
    }

    #[test]
    fn a_revoked_family_wins_over_reuse_and_expiry() {
        let now = crate::now();
        let t = PresentedRefresh {
            family_revoked: true,
            used_at: Some(now - Duration::hours(1)),
            expires_at: now - Duration::hours(1),
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&t, &TokenHash::of("x"), now, GRACE),
            RefreshDecision::Revoked
        );
    }

    #[test]
    fn a_used_token_is_a_retry_only_with_the_same_successor_inside_the_grace() {
        let now = crate::now();
        let next = TokenHash::of("rt_next");
        let used = |at, successor| PresentedRefresh {
            used_at: Some(at),
            successor: Some(successor),
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&used(now - Duration::seconds(3), next), &next, now, GRACE),
            RefreshDecision::Retry
        );
        assert_eq!(
            classify_refresh(&used(now - GRACE, next), &next, now, GRACE),
            RefreshDecision::Retry
        );
        assert_eq!(
            classify_refresh(&used(now - Duration::seconds(11), next), &next, now, GRACE),
            RefreshDecision::Reuse
        );
        assert_eq!(
            classify_refresh(&used(now, TokenHash::of("rt_other")), &next, now, GRACE),
            RefreshDecision::Reuse
        );
    }

    #[test]
    fn reuse_is_detected_even_after_expiry() {
        let now = crate::now();
        let t = PresentedRefresh {
            used_at: Some(now - Duration::days(2)),
            expires_at: now - Duration::days(1),
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&t, &TokenHash::of("x"), now, GRACE),
            RefreshDecision::Reuse
        );
    }

    #[test]
    fn an_unused_token_expires_at_its_deadline() {
        let now = crate::now();
        let t = PresentedRefresh {
            expires_at: now,
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&t, &TokenHash::of("x"), now, GRACE),
            RefreshDecision::Expired
        );
        assert!(!RefreshDecision::Expired.succeeds());
        assert!(RefreshDecision::Retry.succeeds());
    }

    #[test]
    fn an_ended_session_ends_the_family_before_anything_else_is_decided() {
        let now = crate::now();
        let t = PresentedRefresh {
            session_ended: true,
            used_at: Some(now - Duration::days(2)),
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&t, &TokenHash::of("x"), now, GRACE),
            RefreshDecision::SessionEnded
        );
        assert!(!RefreshDecision::SessionEnded.succeeds());
        let revoked = PresentedRefresh {
            family_revoked: true,
            ..t
        };
        assert_eq!(
            classify_refresh(&revoked, &TokenHash::of("x"), now, GRACE),
            RefreshDecision::Revoked
        );
    }

    #[test]
    fn a_family_past_its_absolute_lifetime_is_expired_even_with_a_fresh_token() {
        let now = crate::now();
        let t = |end| PresentedRefresh {
            family_expires_at: Some(end),
            ..token(now)
        };
        assert_eq!(
            classify_refresh(&t(now), &TokenHash::of("x"), now, GRACE),
            RefreshDecision::Expired
        );
        assert_eq!(
            classify_refresh(
                &t(now + Duration::seconds(1)),
                &TokenHash::of("x"),
                now,
                GRACE
            ),
            RefreshDecision::Rotate
        );
    }

    #[test]
    fn only_offline_access_outlives_the_session() {
        assert!(ends_with_session(&ScopeSet::granted("openid email")));
        assert!(!ends_with_session(&ScopeSet::granted(
            "openid offline_access"
        )));
    }
}
