use crate::{SessionId, Timestamp, TokenHash, UserId};
use time::Duration;

/// A signed-in browser or API client. The token itself is never stored: `token_hash` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_hash: TokenHash,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The app and device a mobile session was signed in from; None for browsers.
    pub device: Option<DeviceInfo>,
}

/// What a mobile app says about itself at sign-in, shown in session lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// e.g. `ios`, `android`.
    pub platform: String,
    pub model: Option<String>,
    pub app_version: Option<String>,
}

impl Session {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// How long sessions live. Expiry slides: every use pushes it to `last use + idle_ttl`,
/// capped at `created + absolute_ttl` so a stolen-but-used token cannot live forever.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub idle_ttl: Duration,
    pub absolute_ttl: Duration,
    /// Writing `last_seen_at` on every request would turn the hottest read into a write;
    /// the sliding window moves only when it is at least this stale.
    pub touch_interval: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_ttl: Duration::days(7),
            absolute_ttl: Duration::days(30),
            touch_interval: Duration::minutes(1),
        }
    }
}

impl SessionPolicy {
    pub fn new_session(
        &self,
        user_id: UserId,
        token_hash: TokenHash,
        now: Timestamp,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Session {
        Session {
            id: SessionId::new(),
            user_id,
            token_hash,
            created_at: now,
            last_seen_at: now,
            expires_at: (now + self.idle_ttl).min(now + self.absolute_ttl),
            revoked_at: None,
            ip,
            user_agent,
            device: None,
        }
    }

    /// The new `(last_seen_at, expires_at)` if this use should slide the window, else None.
    pub fn touch(&self, session: &Session, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
        if now - session.last_seen_at < self.touch_interval {
            return None;
        }
        let expires = (now + self.idle_ttl).min(session.created_at + self.absolute_ttl);
        Some((now, expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_expiry_is_capped_and_throttled() {
        let p = SessionPolicy::default();
        let t0 = crate::now();
        let s = p.new_session(UserId::new(), TokenHash::of("t"), t0, None, None);
        assert_eq!(s.expires_at, t0 + Duration::days(7));
        assert!(s.is_active(t0));
        assert!(!s.is_active(t0 + Duration::days(8)));
        assert_eq!(p.touch(&s, t0 + Duration::seconds(30)), None);
        let t1 = t0 + Duration::days(3);
        assert_eq!(p.touch(&s, t1), Some((t1, t1 + Duration::days(7))));
        let t2 = t0 + Duration::days(29);
        assert_eq!(p.touch(&s, t2), Some((t2, t0 + Duration::days(30))));
        let revoked = Session {
            revoked_at: Some(t0),
            ..s
        };
        assert!(!revoked.is_active(t0));
    }
}
