//! Rate limits per route class, keyed by client address (and by secret key where one is
//! presented). One node: GCRA in memory (governor). Several nodes: one budget shared through
//! Redis, one round trip per check: the same GCRA as a Lua script, on Redis's clock, so no
//! window edge lets twice the burst through.
//! When Redis cannot be reached the local limiter answers instead, the outage is logged
//! once, and Redis is tried again after a pause: a limiter's store never takes sign-in down.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota as Gcra, RateLimiter};

use crate::config::platform::{PlatformConfig, QuotaConfig, RateLimitHeaders};
use crate::infra::rate_limit::{NumberBlock, Quota, SMALL_NUMBERS, number, static_number};

/// What a route is limited as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    PasswordSignIn,
    Signup,
    OttExchange,
    Token,
    PublicConfig,
    Management,
}

impl RouteClass {
    const ALL: [RouteClass; 6] = [
        RouteClass::PasswordSignIn,
        RouteClass::Signup,
        RouteClass::OttExchange,
        RouteClass::Token,
        RouteClass::PublicConfig,
        RouteClass::Management,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::PasswordSignIn => "password_sign_in",
            RouteClass::Signup => "signup",
            RouteClass::OttExchange => "ott_exchange",
            RouteClass::Token => "token",
            RouteClass::PublicConfig => "public_config",
            RouteClass::Management => "management",
        }
    }

    /// The class of a matched route; None for routes without a limit (health, metrics,
    /// discovery, the sign-in pages' GETs).
    pub fn of(method: &Method, route: &str) -> Option<Self> {
        match (method, route) {
            (&Method::POST, "/v1/auth/login") => Some(RouteClass::PasswordSignIn),
            (&Method::POST, "/v1/auth/signup") => Some(RouteClass::Signup),
            (&Method::POST, "/api/v1/mobile/auth/exchange") => Some(RouteClass::OttExchange),
            (&Method::POST, "/oauth2/token") => Some(RouteClass::Token),
            (_, "/v1/public/config") => Some(RouteClass::PublicConfig),
            (_, r) if r.starts_with("/v1/") => Some(RouteClass::Management),
            _ => None,
        }
    }

    fn quota(self, c: &crate::config::platform::RateLimitsConfig) -> QuotaConfig {
        match self {
            RouteClass::PasswordSignIn => c.password_sign_in,
            RouteClass::Signup => c.signup,
            RouteClass::OttExchange => c.ott_exchange,
            RouteClass::Token => c.token,
            RouteClass::PublicConfig => c.public_config,
            RouteClass::Management => c.management,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whose budget a request spends: a client address, or a secret key (the first half of the
/// whole key's SHA-256). Copy, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKey {
    Ip(IpAddr),
    SecretKey([u8; 16]),
}

/// One write per key instead of the derived hash's three or four (variant, address family,
/// bytes): it runs on every limited request. Equal keys write the same; keys of different
/// kinds may share a hash, which costs a comparison, never a wrong budget.
impl std::hash::Hash for LimitKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(match self {
            LimitKey::Ip(IpAddr::V4(v4)) => u128::from(v4.to_bits()),
            LimitKey::Ip(IpAddr::V6(v6)) => v6.to_bits(),
            LimitKey::SecretKey(digest) => u128::from_le_bytes(*digest),
        });
    }
}

impl LimitKey {
    /// The budget of a client address. An IPv6 client holds a whole /64 (its provider hands
    /// out the prefix; picking another address in it costs nothing), so the /64 is one
    /// client; an IPv4-mapped address is its IPv4 address. Without this, each of 2^64
    /// addresses would get a budget of its own.
    pub fn client(ip: IpAddr) -> Self {
        LimitKey::Ip(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
            },
            v4 => v4,
        })
    }

    /// The secret key of `Authorization: Bearer sk_…`, if the request carries one.
    ///
    /// Keyed by the whole key's digest, not its display prefix: the budget is spent before
    /// the key is checked, and a prefix is no secret (audit trails and logs show it), so a
    /// prefix-keyed budget could be drained by anyone sending made-up keys that start like
    /// a victim's. A made-up key now spends only its own budget.
    ///
    /// Read as bytes: a session token in `Authorization` (the bearer fallback of every
    /// session check) is passed over after its first bytes instead of being validated as
    /// text, and a key that is not text is refused by authentication, not here.
    pub fn secret_key(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
        let token = value.strip_prefix(b"Bearer ")?;
        if !(token.starts_with(b"sk_live_") || token.starts_with(b"sk_test_")) {
            return None;
        }
        let digest = portcullis_core::TokenHash::of_bytes(token).0;
        let mut half = [0u8; 16];
        half.copy_from_slice(&digest[..16]);
        Some(LimitKey::SecretKey(half))
    }

    fn write_redis_key(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            LimitKey::Ip(ip) => write!(out, "ip:{ip}"),
            LimitKey::SecretKey(digest) => {
                out.push_str("sk:");
                digest.iter().try_for_each(|b| write!(out, "{b:02x}"))
            }
        };
    }
}

/// A check's outcome, with what the `RateLimit-*` headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub quota: Quota,
}

impl Decision {
    /// Of two checks of one request, the one with less left decides.
    pub fn tighter(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (false, _) => self,
            (_, false) => other,
            _ if other.quota.remaining < self.quota.remaining => other,
            _ => self,
        }
    }
}

/// The keyed state's hasher: foldhash with a seed drawn per process, not SipHash. The keys
/// are addresses (an IPv6 client's /64) and key prefixes, hashed on every limited request;
/// the random seed keeps their placement unpredictable to whoever picks them.
type KeyHasher = foldhash::fast::RandomState;

type Local = RateLimiter<
    LimitKey,
    DashMapStateStore<LimitKey, KeyHasher>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// How many values below a large class limit `Class::near_full` holds (≤ 10 KiB a class).
const NEAR_FULL: u32 = 1024;

struct Class {
    limit: u32,
    /// `RateLimit-Limit`'s value, made once.
    limit_header: HeaderValue,
    /// `RateLimit-Remaining`'s values at the top of the burst (`limit - NEAR_FULL` to
    /// `limit - 1`) of a class whose limit is past the small-number block, when every
    /// answer carries the headers: a client well within its budget is there on every
    /// request. Empty for a small limit, and when only answers near the limit carry them.
    near_full: NumberBlock,
    /// One cell of the burst (window / limit) in nanoseconds: `RateLimit-Reset` in integer
    /// arithmetic (a float `ceil` is a libm call on baseline x86-64, twice per request).
    cell_ns: u64,
    local: Local,
}

impl Class {
    fn new(q: QuotaConfig, headers: RateLimitHeaders) -> Option<Self> {
        let limit = NonZeroU32::new(q.limit)?;
        let window = Duration::from_secs(q.window_secs.max(1));
        // GCRA: a burst of `limit`, refilled evenly over the window.
        let gcra = Gcra::with_period(window / limit.get())?.allow_burst(limit);
        Some(Self {
            limit: limit.get(),
            limit_header: static_number(u64::from(limit.get())),
            near_full: NumberBlock::new(
                if headers == RateLimitHeaders::Always && u64::from(limit.get()) > SMALL_NUMBERS {
                    limit.get() - NEAR_FULL.min(limit.get())..limit.get()
                } else {
                    0..0
                },
            ),
            cell_ns: (window.as_nanos() / u128::from(limit.get())) as u64,
            local: RateLimiter::dashmap_with_clock_and_hasher(
                gcra,
                DefaultClock::default(),
                KeyHasher::default(),
            )
            .with_middleware::<StateInformationMiddleware>(),
        })
    }

    fn check_local(&self, key: &LimitKey, clock: &DefaultClock) -> Decision {
        match self.local.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.limit.saturating_sub(remaining);
                Decision {
                    allowed: true,
                    quota: Quota {
                        limit: self.limit,
                        remaining,
                        // Until the whole burst is available again.
                        reset_secs: whole_seconds(u64::from(used).saturating_mul(self.cell_ns)),
                    },
                }
            }
            Err(not_until) => self.refused(&not_until, clock),
        }
    }

    /// `RateLimit-Remaining`'s value: from the class's block when it holds it.
    fn remaining_header(&self, remaining: u32) -> HeaderValue {
        self.near_full
            .get(u64::from(remaining))
            .unwrap_or_else(|| number(u64::from(remaining)))
    }

    /// A refusal's decision: out of line, so the admitted path's code stays dense.
    #[cold]
    #[inline(never)]
    fn refused(
        &self,
        not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>,
        clock: &DefaultClock,
    ) -> Decision {
        let wait = not_until.wait_time_from(clock.now());
        Decision {
            allowed: false,
            quota: Quota {
                limit: self.limit,
                remaining: 0,
                reset_secs: whole_seconds(wait.as_nanos().min(u128::from(u64::MAX)) as u64),
            },
        }
    }
}

/// Whether an admitted answer that leaves `remaining` of `limit` carries the `RateLimit-*`
/// headers: always, or (`near_limit`) once at most half of the budget is left.
fn carries_headers(mode: RateLimitHeaders, limit: u32, remaining: u32) -> bool {
    match mode {
        RateLimitHeaders::Always => true,
        RateLimitHeaders::NearLimit => u64::from(remaining) * 2 <= u64::from(limit),
    }
}

/// Nanoseconds as the whole seconds a client waits: rounded up, and at least 1.
fn whole_seconds(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000).max(1)
}

/// After a failed Redis call, how long checks stay local before Redis is tried again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The most a check waits for Redis before answering locally.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// GCRA over one key, atomically (a script runs alone): the key holds the theoretical
/// arrival time (TAT, microseconds on Redis's clock, so every node agrees). A request is
/// admitted when, after adding one emission interval (ARGV[1] = window / limit), the TAT is
/// at most one burst (ARGV[2] = limit intervals) ahead of now; the key expires when the
/// burst is full again. Answers {admitted, remaining, milliseconds until the burst is full
/// again (admitted) or until the next request may pass (refused)}.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > burst then
  return {0, 0, math.ceil((ahead - burst) / 1000)}
end
local ttl = math.ceil(ahead / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, math.floor((burst - ahead) / interval), ttl}
";

struct Shared {
    client: redis::Client,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    script: redis::Script,
    prefix: String,
    /// Milliseconds since `started` until which Redis is skipped (after a failure).
    skip_until_ms: AtomicU64,
    started: Instant,
    /// Whether the current outage was logged (once per outage).
    down_logged: AtomicBool,
}

impl Shared {
    fn usable(&self) -> bool {
        self.started.elapsed().as_millis() as u64 >= self.skip_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self, error: &str) {
        let until = self.started.elapsed() + REDIS_RETRY_AFTER;
        self.skip_until_ms
            .store(until.as_millis() as u64, Ordering::Relaxed);
        if !self.down_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "Redis for rate limits is unreachable; limiting per node until it is back"
            );
        }
    }

    fn recovered(&self) {
        if self.down_logged.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis for rate limits is reachable again; budgets are shared");
        }
    }

    async fn check(
        &self,
        class: RouteClass,
        c: &Class,
        key: &LimitKey,
    ) -> Result<Decision, String> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut conn = conn.clone();
        let mut redis_key = String::with_capacity(self.prefix.len() + 48);
        redis_key.push_str(&self.prefix);
        redis_key.push_str(":rl:");
        redis_key.push_str(class.as_str());
        redis_key.push(':');
        key.write_redis_key(&mut redis_key);
        // The same cells as the local limiter: `limit` of them, one every window / limit.
        let interval_us = (c.cell_ns / 1000).max(1);
        let mut invocation = self.script.key(redis_key);
        invocation
            .arg(interval_us)
            .arg(interval_us * u64::from(c.limit));
        let call = invocation.invoke_async::<(i64, i64, i64)>(&mut conn);
        let (admitted, remaining, wait_ms) = tokio::time::timeout(REDIS_TIMEOUT, call)
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(Decision {
            allowed: admitted == 1,
            quota: Quota {
                limit: c.limit,
                remaining: remaining.clamp(0, i64::from(c.limit)) as u32,
                reset_secs: (wait_ms.max(1) as u64).div_ceil(1000),
            },
        })
    }
}

/// Every class's limiter, and the shared budget when `redis_url` is set.
pub struct Limiter {
    classes: [Option<Class>; 6],
    shared: Option<Shared>,
    clock: DefaultClock,
    trusted_proxies: Vec<IpAddr>,
    headers: RateLimitHeaders,
}

impl Limiter {
    /// None when rate limiting is off.
    pub fn new(c: &PlatformConfig) -> Result<Option<Self>, crate::config::ConfigError> {
        if !c.rate_limit_enabled {
            return Ok(None);
        }
        let classes = RouteClass::ALL
            .map(|class| Class::new(class.quota(&c.rate_limits), c.rate_limit_headers));
        let shared = match &c.redis_url {
            Some(url) => Some(Shared {
                client: redis::Client::open(url.expose().as_str())
                    .map_err(|e| crate::config::ConfigError::Invalid(format!("redis_url: {e}")))?,
                conn: tokio::sync::OnceCell::new(),
                script: redis::Script::new(SCRIPT),
                prefix: c.redis_key_prefix.clone(),
                skip_until_ms: AtomicU64::new(0),
                started: Instant::now(),
                down_logged: AtomicBool::new(false),
            }),
            None => None,
        };
        Ok(Some(Self {
            classes,
            shared,
            clock: DefaultClock::default(),
            trusted_proxies: c.trusted_proxies()?,
            headers: c.rate_limit_headers,
        }))
    }

    pub fn shares_budgets(&self) -> bool {
        self.shared.is_some()
    }

    /// Counts one request of `class` for `key` in this process, when no Redis shares the
    /// budgets: no future to build and poll on the hot path. None when the class has no limit.
    pub fn check_here(&self, class: RouteClass, key: &LimitKey) -> Option<Decision> {
        let c = self.classes[class.index()].as_ref()?;
        Some(c.check_local(key, &self.clock))
    }

    /// Counts one request of `class` for `key`; None when the class has no limit.
    pub async fn check(&self, class: RouteClass, key: &LimitKey) -> Option<Decision> {
        let c = self.classes[class.index()].as_ref()?;
        if let Some(shared) = &self.shared
            && shared.usable()
        {
            match shared.check(class, c, key).await {
                Ok(d) => {
                    shared.recovered();
                    return Some(d);
                }
                Err(e) => shared.failed(&e),
            }
        }
        Some(c.check_local(key, &self.clock))
    }

    /// Whether an admitted answer carries the `RateLimit-*` headers of `d`
    /// (`rate_limit_headers`).
    pub fn tells(&self, d: &Decision) -> bool {
        carries_headers(self.headers, d.quota.limit, d.quota.remaining)
    }

    /// Writes the `RateLimit-*` headers of a decision on `class` (its limit's value made once).
    pub fn write_headers(&self, class: RouteClass, d: &Decision, headers: &mut HeaderMap) {
        match &self.classes[class.index()] {
            Some(c) if c.limit == d.quota.limit => d.quota.write_headers_with(
                c.limit_header.clone(),
                c.remaining_header(d.quota.remaining),
                headers,
            ),
            _ => d.quota.write_headers(headers),
        }
    }

    /// The client's address: the socket's, or the right-most `X-Forwarded-For` entry not
    /// itself a trusted proxy when the socket's peer is one.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        self.forwarded_client(peer, headers)
    }

    /// Behind a trusted proxy: out of line, as most requests do not take this path.
    #[inline(never)]
    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else { continue };
            for hop in value.split(',').rev() {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                    return client;
                };
                client = ip;
                if !self.trusted_proxies.contains(&ip) {
                    return client;
                }
            }
        }
        client
    }

    /// Forgets keys whose budget is full again, so memory follows the active clients.
    pub fn sweep(&self) {
        for c in self.classes.iter().flatten() {
            c.local.retain_recent();
        }
    }
}

/// A stable hash of a key, for tests of sharding-independent behaviour.
#[cfg(test)]
fn key_hash(k: &LimitKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    k.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u32, proxies: &[&str]) -> Limiter {
        let mut c = PlatformConfig::default();
        c.rate_limits.password_sign_in = QuotaConfig {
            limit,
            window_secs: 60,
        };
        c.trusted_proxies = proxies.iter().map(|s| (*s).to_owned()).collect();
        Limiter::new(&c).unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_burst_of_the_limit_passes_then_the_next_waits() {
        let l = limiter(3, &[]);
        let key = LimitKey::Ip("10.0.0.1".parse().unwrap());
        for left in [2, 1, 0] {
            let d = l.check(RouteClass::PasswordSignIn, &key).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.quota.remaining, left);
            assert_eq!(d.quota.limit, 3);
        }
        let d = l.check(RouteClass::PasswordSignIn, &key).await.unwrap();
        assert!(!d.allowed);
        // One cell comes back every 20 s.
        assert!((1..=20).contains(&d.quota.reset_secs), "{d:?}");
        let other = LimitKey::Ip("10.0.0.2".parse().unwrap());
        assert!(
            l.check(RouteClass::PasswordSignIn, &other)
                .await
                .unwrap()
                .allowed
        );
        assert_ne!(key_hash(&key), key_hash(&other));
    }

    #[test]
    fn remaining_values_read_as_written() {
        for limit in [1, 1024, 1025, 2048, 10_000, 10_001, 60_000, u32::MAX] {
            let quota = QuotaConfig {
                limit,
                window_secs: 60,
            };
            let class = Class::new(quota, RateLimitHeaders::Always).unwrap();
            // Near the limit only: the top of the burst is never written, nothing is kept.
            let lean = Class::new(quota, RateLimitHeaders::NearLimit).unwrap();
            assert!(lean.near_full.get(u64::from(limit - 1)).is_none());
            let near = &class.near_full;
            let below = limit.saturating_sub(2 * NEAR_FULL);
            for n in (below..limit).chain([limit, limit.saturating_add(1), 0, 1023, 1024]) {
                let from_block = near.get(u64::from(n));
                if u64::from(limit) > SMALL_NUMBERS && n < limit && n >= limit - NEAR_FULL {
                    assert_eq!(
                        from_block.as_ref().map(|v| v.to_str().unwrap()),
                        Some(&*n.to_string())
                    );
                } else {
                    assert!(from_block.is_none(), "{n} of {limit}");
                }
                assert_eq!(class.remaining_header(n).to_str().unwrap(), n.to_string());
                assert_eq!(lean.remaining_header(n).to_str().unwrap(), n.to_string());
            }
        }
    }

    #[test]
    fn answers_near_the_limit_carry_the_headers() {
        let near = RateLimitHeaders::NearLimit;
        // At most half left: 1 of 3, 1 of 2, 0 of 1, 30,000 of 60,000.
        for (limit, remaining, tells) in [
            (3, 2, false),
            (3, 1, true),
            (2, 1, true),
            (1, 0, true),
            (60_000, 59_999, false),
            (60_000, 30_001, false),
            (60_000, 30_000, true),
            (u32::MAX, u32::MAX / 2 + 1, false),
            (u32::MAX, u32::MAX / 2, true),
        ] {
            assert_eq!(
                carries_headers(near, limit, remaining),
                tells,
                "{remaining} of {limit}"
            );
            assert!(carries_headers(RateLimitHeaders::Always, limit, remaining));
        }
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(0), 1);
        assert_eq!(whole_seconds(1), 1);
        assert_eq!(whole_seconds(1_000_000_000), 1);
        assert_eq!(whole_seconds(1_000_000_001), 2);
        assert_eq!(whole_seconds(59_999_999_997), 60);
        assert_eq!(whole_seconds(u64::MAX), u64::MAX.div_ceil(1_000_000_000));
    }

    #[tokio::test]
    async fn an_ipv6_slash_64_is_one_client() {
        let l = limiter(2, &[]);
        let ip = |s: &str| LimitKey::client(s.parse().unwrap());
        assert_eq!(
            ip("2001:db8:1:2::1"),
            ip("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(ip("192.0.2.7"), LimitKey::Ip("192.0.2.7".parse().unwrap()));
        // Hopping addresses inside one /64 spends one budget.
        for (n, allowed) in [(1, true), (2, true), (3, false)] {
            let d = l
                .check(RouteClass::PasswordSignIn, &ip(&format!("2001:db8::{n}")))
                .await
                .unwrap();
            assert_eq!(d.allowed, allowed, "address {n}");
        }
        let elsewhere = ip("2001:db8:0:1::1");
        assert!(
            l.check(RouteClass::PasswordSignIn, &elsewhere)
                .await
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn routes_fall_into_classes() {
        assert_eq!(
            RouteClass::of(&Method::POST, "/v1/auth/login"),
            Some(RouteClass::PasswordSignIn)
        );
        assert_eq!(
            RouteClass::of(&Method::GET, "/v1/public/config"),
            Some(RouteClass::PublicConfig)
        );
        assert_eq!(
            RouteClass::of(&Method::GET, "/v1/me"),
            Some(RouteClass::Management)
        );
        assert_eq!(RouteClass::of(&Method::GET, "/healthz"), None);
        assert_eq!(RouteClass::of(&Method::GET, "/oauth2/authorize"), None);
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let l = limiter(3, &["10.0.0.9"]);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.9".parse().unwrap());
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            l.client_ip(Some(proxy), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(l.client_ip(Some(stranger), &h), stranger);
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(l.client_ip(Some(proxy), &h), proxy);
    }

    #[test]
    fn secret_keys_are_keyed_by_their_whole_digest() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "Bearer sk_live_abcdefgh12345678".parse().unwrap(),
        );
        let key = LimitKey::secret_key(&h).unwrap();
        let digest = portcullis_core::TokenHash::of("sk_live_abcdefgh12345678").0;
        assert_eq!(key, LimitKey::SecretKey(digest[..16].try_into().unwrap()));
        // Another key with the same display prefix is another budget.
        h.insert(
            "authorization",
            "Bearer sk_live_abcdefgh87654321".parse().unwrap(),
        );
        assert_ne!(LimitKey::secret_key(&h), Some(key));
        let mut redis_key = String::new();
        key.write_redis_key(&mut redis_key);
        assert_eq!(redis_key.len(), 3 + 32, "{redis_key}");
        assert!(!redis_key.contains("abcdefgh"), "{redis_key}");
        h.insert("authorization", "Bearer session-token".parse().unwrap());
        assert_eq!(LimitKey::secret_key(&h), None);
    }
}
