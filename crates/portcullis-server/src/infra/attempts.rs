//! Password guessing is paid for in time. Sign-ins are counted per client address and per
//! account from that address (sign-ups per address); past a free allowance each further
//! attempt must wait twice as long after the previous one, up to a cap. Nothing locks an
//! account for good: the per-account count is keyed by account *and* address, so an attacker
//! elsewhere cannot hold its owner back, and every count is forgotten a while after its
//! latest attempt.
//!
//! An attempt is counted *before* the password is checked and given back when it was right,
//! so a burst of concurrent guesses cannot all slip in before the first failure is recorded.
//! The counters live behind [`AttemptStore`]: in this process for now; a store every node
//! shares (Redis) can take its place without changing the rules.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::config::SecurityConfig;

/// Milliseconds since the Unix epoch: a clock the nodes of a cluster share.
pub type Millis = u64;

fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How attempts are paid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts that cost nothing; 0 switches the limit off.
    pub free: u32,
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// A count is forgotten this long after its latest attempt.
    pub forget_after: Duration,
}

impl Backoff {
    /// How long after the latest of `count` counted attempts the next one may come.
    pub fn wait(&self, count: u32) -> Duration {
        if self.free == 0 || count < self.free {
            return Duration::ZERO;
        }
        let doublings = (count - self.free).min(31);
        self.first_wait
            .saturating_mul(1 << doublings)
            .min(self.max_wait)
    }
}

/// The counters. Each call is one atomic step on one key, so a store shared by several
/// nodes can implement it as one script, without a lock held around the caller.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Unless `key` must still wait under `rule` at `now`, counts one attempt (Ok);
    /// otherwise how long it must still wait. A count whose latest attempt is
    /// `rule.forget_after` old starts again from zero.
    async fn attempt(&self, key: &str, rule: &Backoff, now: Millis) -> Result<(), Duration>;
    /// Takes one counted attempt back.
    async fn give_back(&self, key: &str);
    /// Forgets `key`.
    async fn forget(&self, key: &str);
}

/// The counters of this process.
#[derive(Default)]
pub struct MemoryAttempts {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_key: HashMap<String, Count>,
    /// Forgotten counts are swept when the map reaches this size (then twice the survivors),
    /// so a flood of keys costs amortized O(1) per attempt.
    sweep_at: usize,
}

struct Count {
    attempts: u32,
    latest: Millis,
    forget_at: Millis,
}

const SWEEP_MIN: usize = 10_000;

impl MemoryAttempts {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counters stay meaningful after a panic elsewhere; never turn one into an outage.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.counts().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl AttemptStore for MemoryAttempts {
    async fn attempt(&self, key: &str, rule: &Backoff, now: Millis) -> Result<(), Duration> {
        let mut counts = self.counts();
        if counts.by_key.len() >= counts.sweep_at.max(SWEEP_MIN) {
            counts.by_key.retain(|_, c| c.forget_at > now);
            counts.sweep_at = counts.by_key.len() * 2;
        }
        if let Some(c) = counts.by_key.get_mut(key)
            && now < c.forget_at
        {
            // Concurrent callers read the clock before taking the lock, so `now` can be a
            // little older than the latest counted attempt; judge it at that instant, or an
            // attempt within the allowance would be told to wait a few milliseconds.
            let now = now.max(c.latest);
            let ready_at = c.latest.saturating_add(millis(rule.wait(c.attempts)));
            if now < ready_at {
                return Err(Duration::from_millis(ready_at - now));
            }
            c.attempts = c.attempts.saturating_add(1);
            c.latest = now;
            c.forget_at = now.saturating_add(millis(rule.forget_after));
            return Ok(());
        }
        counts.by_key.insert(
            key.to_owned(),
            Count {
                attempts: 1,
                latest: now,
                forget_at: now.saturating_add(millis(rule.forget_after)),
            },
        );
        Ok(())
    }

    async fn give_back(&self, key: &str) {
        if let Some(c) = self.counts().by_key.get_mut(key) {
            c.attempts = c.attempts.saturating_sub(1);
        }
    }

    async fn forget(&self, key: &str) {
        self.counts().by_key.remove(key);
    }
}

/// An attempt refused: how long to wait, and the allowance that ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Whole seconds, at least 1 (`Retry-After`).
    pub retry_after: u64,
    pub limit: u32,
}

impl Refused {
    fn after(wait: Duration, rule: &Backoff) -> Self {
        Self {
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            limit: rule.free,
        }
    }
}

/// The limits on password sign-in and sign-up, shared by every page and route that takes a
/// password.
pub struct SignInLimits {
    store: Arc<dyn AttemptStore>,
    per_ip: Backoff,
    per_account: Backoff,
    signups: Backoff,
}

/// A sign-in let through and counted; [`SignInLimits::succeeded`] gives it back.
#[must_use = "a successful sign-in must be given back"]
pub struct SignInAttempt {
    ip_key: Option<String>,
    account_key: Option<String>,
}

impl SignInLimits {
    pub fn new(c: &SecurityConfig, store: Arc<dyn AttemptStore>) -> Self {
        let rule = |free| Backoff {
            free,
            first_wait: Duration::from_secs(c.sign_in_backoff_secs),
            max_wait: Duration::from_secs(c.sign_in_backoff_max_secs),
            forget_after: Duration::from_secs(c.sign_in_limit_window_secs),
        };
        Self {
            store,
            per_ip: rule(c.sign_in_limit_per_ip),
            per_account: rule(c.sign_in_limit_per_account),
            signups: rule(c.signup_limit_per_ip),
        }
    }

    async fn attempt(&self, key: &str, rule: &Backoff, now: Millis) -> Result<bool, Refused> {
        if rule.free == 0 {
            return Ok(false);
        }
        self.store
            .attempt(key, rule, now)
            .await
            .map(|()| true)
            .map_err(|wait| Refused::after(wait, rule))
    }

    /// Counts a password sign-in for `account` (the email as typed) from `ip`, unless either
    /// count must still wait.
    pub async fn sign_in(&self, ip: Option<&str>, account: &str) -> Result<SignInAttempt, Refused> {
        let now = now_millis();
        let client = client_key(ip);
        let ip_key = format!("sign-in:{client}");
        let account_key = format!("sign-in:{client}:{}", account_key(account));
        let counted_ip = self.attempt(&ip_key, &self.per_ip, now).await?;
        match self.attempt(&account_key, &self.per_account, now).await {
            Ok(counted_account) => Ok(SignInAttempt {
                ip_key: counted_ip.then_some(ip_key),
                account_key: counted_account.then_some(account_key),
            }),
            Err(refused) => {
                if counted_ip {
                    self.store.give_back(&ip_key).await;
                }
                Err(refused)
            }
        }
    }

    /// The password was right: the address gets its attempt back, and the account's count
    /// from this address starts again.
    pub async fn succeeded(&self, attempt: SignInAttempt) {
        if let Some(key) = &attempt.ip_key {
            self.store.give_back(key).await;
        }
        if let Some(key) = &attempt.account_key {
            self.store.forget(key).await;
        }
    }

    /// Counts a sign-up from `ip`, unless it must still wait. Every sign-up counts: each
    /// hashes a password, and a refused one tells whether an email is registered.
    pub async fn sign_up(&self, ip: Option<&str>) -> Result<(), Refused> {
        let key = format!("sign-up:{}", client_key(ip));
        self.attempt(&key, &self.signups, now_millis())
            .await
            .map(drop)
    }
}

/// The client an address stands for: an IPv6 client controls a whole /64, so that is one
/// client; an IPv4-mapped address is its IPv4 address.
fn client_key(ip: Option<&str>) -> String {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}

/// A fixed-size key for the email as typed (case and surrounding space ignored), so a huge
/// "email" cannot grow the counters and no address is kept in memory.
fn account_key(email: &str) -> String {
    let digest = portcullis_core::TokenHash::of(&email.trim().to_lowercase());
    digest.as_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(free: u32) -> Backoff {
        Backoff {
            free,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            forget_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn waits_double_from_the_allowance_up_to_the_cap() {
        let r = rule(3);
        let waits: Vec<u64> = (0..12).map(|n| r.wait(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(r.wait(u32::MAX).as_secs(), 60);
        assert_eq!(rule(0).wait(1000), Duration::ZERO, "0 switches it off");
    }

    #[tokio::test]
    async fn counts_wait_and_are_forgotten() {
        let store = MemoryAttempts::default();
        let r = rule(2);
        let t0 = 1_000_000;
        assert_eq!(store.attempt("k", &r, t0).await, Ok(()));
        assert_eq!(store.attempt("k", &r, t0).await, Ok(()));
        // Two counted: the third waits a second after the latest.
        assert_eq!(
            store.attempt("k", &r, t0 + 400).await,
            Err(Duration::from_millis(600))
        );
        assert_eq!(store.attempt("other", &r, t0 + 400).await, Ok(()));
        // A refused attempt is not counted, so waiting it out is enough.
        assert_eq!(store.attempt("k", &r, t0 + 1000).await, Ok(()));
        assert_eq!(
            store.attempt("k", &r, t0 + 1000).await,
            Err(Duration::from_secs(2))
        );
        store.give_back("k").await;
        assert_eq!(
            store.attempt("k", &r, t0 + 1001).await,
            Err(Duration::from_millis(999))
        );
        // Forgotten after the window: the allowance is back.
        let later = t0 + 1000 + 600_000;
        assert_eq!(store.attempt("k", &r, later).await, Ok(()));
        assert_eq!(store.attempt("k", &r, later).await, Ok(()));
        assert!(store.attempt("k", &r, later).await.is_err());
        store.forget("k").await;
        assert_eq!(store.attempt("k", &r, later).await, Ok(()));
    }

    #[tokio::test]
    async fn a_clock_reading_older_than_the_latest_attempt_is_not_refused_within_the_allowance() {
        // Eight concurrent sign-ups read the clock, then queue for the lock in another order.
        let store = MemoryAttempts::default();
        let r = rule(3);
        let t0 = 1_000_000;
        assert_eq!(store.attempt("k", &r, t0 + 5).await, Ok(()));
        assert_eq!(store.attempt("k", &r, t0).await, Ok(()));
        assert_eq!(store.attempt("k", &r, t0 + 2).await, Ok(()));
        // Past the allowance the wait still runs from the latest attempt.
        assert_eq!(
            store.attempt("k", &r, t0 + 1).await,
            Err(Duration::from_secs(1))
        );
    }

    #[tokio::test]
    async fn forgotten_counts_are_swept() {
        let store = MemoryAttempts::default();
        let r = rule(1);
        for i in 0..SWEEP_MIN {
            store.attempt(&i.to_string(), &r, 0).await.unwrap();
        }
        assert_eq!(store.len(), SWEEP_MIN);
        store.attempt("late", &r, 600_000).await.unwrap();
        assert_eq!(store.len(), 1);
    }

    fn limits(per_ip: u32, per_account: u32) -> SignInLimits {
        let c = SecurityConfig {
            sign_in_limit_per_ip: per_ip,
            sign_in_limit_per_account: per_account,
            signup_limit_per_ip: 1,
            sign_in_backoff_secs: 30,
            ..SecurityConfig::default()
        };
        SignInLimits::new(&c, Arc::new(MemoryAttempts::default()))
    }

    #[tokio::test]
    async fn accounts_are_limited_per_address_and_a_right_password_resets() {
        let l = limits(100, 2);
        let a = Some("192.0.2.1");
        for _ in 0..2 {
            drop(l.sign_in(a, "Victim@example.com").await.unwrap());
        }
        let refused = l.sign_in(a, " victim@EXAMPLE.com").await.err().unwrap();
        assert_eq!(refused.limit, 2);
        assert!((29..=30).contains(&refused.retry_after), "{refused:?}");
        // The owner, elsewhere, is not held back; nor is another account from here.
        let owner = l
            .sign_in(Some("198.51.100.7"), "victim@example.com")
            .await
            .unwrap();
        l.succeeded(owner).await;
        l.succeeded(l.sign_in(a, "other@example.com").await.unwrap())
            .await;
        // A right password from here wipes this address's count for the account.
        let l = limits(100, 3);
        drop(l.sign_in(a, "v@example.com").await.unwrap());
        drop(l.sign_in(a, "v@example.com").await.unwrap());
        l.succeeded(l.sign_in(a, "v@example.com").await.unwrap())
            .await;
        for _ in 0..3 {
            drop(l.sign_in(a, "v@example.com").await.unwrap());
        }
        assert!(l.sign_in(a, "v@example.com").await.is_err());
    }

    #[tokio::test]
    async fn addresses_are_limited_across_accounts_and_ipv6_by_prefix() {
        let l = limits(2, 100);
        drop(
            l.sign_in(Some("2001:db8::1"), "a@example.com")
                .await
                .unwrap(),
        );
        drop(
            l.sign_in(Some("2001:db8::2"), "b@example.com")
                .await
                .unwrap(),
        );
        assert!(
            l.sign_in(Some("2001:db8::ffff:3"), "c@example.com")
                .await
                .is_err(),
            "one /64 is one client"
        );
        assert!(
            l.sign_in(Some("2001:db8:1::1"), "c@example.com")
                .await
                .is_ok()
        );
        // Refused by the account limit: the address's attempt is given back.
        let l = limits(2, 1);
        drop(l.sign_in(Some("192.0.2.9"), "x@example.com").await.unwrap());
        assert!(l.sign_in(Some("192.0.2.9"), "x@example.com").await.is_err());
        assert!(l.sign_in(Some("192.0.2.9"), "y@example.com").await.is_ok());
    }

    #[tokio::test]
    async fn signups_count_per_address_and_zero_is_off() {
        let l = limits(0, 0);
        assert!(l.sign_up(Some("192.0.2.1")).await.is_ok());
        assert!(l.sign_up(Some("192.0.2.1")).await.is_err());
        assert!(l.sign_up(Some("::ffff:192.0.2.1")).await.is_err());
        assert!(l.sign_up(Some("192.0.2.2")).await.is_ok());
        for _ in 0..100 {
            drop(l.sign_in(Some("192.0.2.1"), "a@example.com").await.unwrap());
        }
    }

    #[test]
    fn client_keys() {
        assert_eq!(client_key(Some("127.0.0.1")), "127.0.0.1");
        assert_eq!(client_key(Some("::ffff:127.0.0.2")), "127.0.0.2");
        assert_eq!(client_key(Some("2001:db8:a:b:c::1")), "2001:db8:a:b::/64");
        assert_eq!(client_key(None), "unknown");
        assert_eq!(account_key("A@x.io "), account_key("a@X.IO"));
        assert_eq!(account_key(&"a".repeat(100_000)).len(), 32);
    }
}
