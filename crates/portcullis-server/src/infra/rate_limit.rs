//! A fixed-window request counter per key, in this process. Good enough to stop one client
//! or address hammering an endpoint; limits are per node when several run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

// Built at compile time: naming a header by a string parses it on every insert.
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Where a key stands in its window after counting one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets (at least 1).
    pub reset_secs: u64,
}

impl Quota {
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        self.write_headers_with(
            number(u64::from(self.limit)),
            number(u64::from(self.remaining)),
            headers,
        );
    }

    /// A handler's own limit on its answer: the headers, and the quota itself as a response
    /// extension, so that the route's limiter (`http::throttle`) sees what the handler's
    /// limit left without reading the headers back.
    pub fn apply_to(self, response: &mut axum::response::Response) {
        self.write_headers(response.headers_mut());
        response.extensions_mut().insert(self);
    }

    /// The same, with `RateLimit-Limit`'s and `RateLimit-Remaining`'s values made beforehand
    /// (a route class's limit is fixed at start-up, so its values need not be formatted per
    /// request: `infra::limiter`).
    pub fn write_headers_with(
        &self,
        limit: HeaderValue,
        remaining: HeaderValue,
        headers: &mut HeaderMap,
    ) {
        headers.insert(RATELIMIT_LIMIT, limit);
        headers.insert(RATELIMIT_REMAINING, remaining);
        headers.insert(RATELIMIT_RESET, number(self.reset_secs));
    }
}

/// Numbers below this come from a block made once: these headers are on every limited
/// answer, and a formatted value costs an allocation and a conversion each time.
pub const SMALL_NUMBERS: u64 = 1024;

/// A header value of a non-negative number; the small ones without allocating.
pub fn number(n: u64) -> HeaderValue {
    static SMALL: std::sync::OnceLock<NumberBlock> = std::sync::OnceLock::new();
    SMALL
        .get_or_init(|| NumberBlock::new(0..SMALL_NUMBERS as u32))
        .get(n)
        .unwrap_or_else(|| exact_number(n))
}

/// Header values of the numbers in a range, written once into one block of fixed-width
/// slots that lives as long as the process: a value from it is a slice of static text, no
/// allocation, no reference count. Used for the small numbers (above) and for the top of
/// each large route class's burst (`infra::limiter`), where a client well within its budget
/// is on every request.
pub struct NumberBlock {
    first: u32,
    width: usize,
    digits: &'static str,
}

impl NumberBlock {
    pub fn new(range: std::ops::Range<u32>) -> Self {
        let width = range.end.checked_sub(1).map_or(0, digits_of);
        let mut block = String::with_capacity(range.len() * width);
        for n in range.clone() {
            let text = n.to_string();
            block.push_str(&text);
            block.extend(std::iter::repeat_n(' ', width - text.len()));
        }
        Self {
            first: range.start,
            width,
            digits: Box::leak(block.into_boxed_str()),
        }
    }

    /// `n`'s value from the block; None when `n` is outside its range.
    pub fn get(&self, n: u64) -> Option<HeaderValue> {
        let n = u32::try_from(n).ok()?;
        let slot = n.checked_sub(self.first)? as usize * self.width;
        let text = self.digits.get(slot..slot + digits_of(n))?;
        Some(HeaderValue::from_static(text))
    }
}

/// How many decimal digits `n` is written with.
fn digits_of(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// A header value of a number in a buffer exactly as long as its digits: one allocation.
/// (`HeaderValue::from(u64)` formats into a growable buffer, which then needs a second,
/// shared block to become a header value, and a third operation to free both.)
fn exact_number(mut n: u64) -> HeaderValue {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(&digits[at..]))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A header value of `n` that lives as long as the process: for the few values made once
/// and sent on every limited answer (the table above, each route class's limit).
pub fn static_number(n: u64) -> HeaderValue {
    let text: &'static str = Box::leak(n.to_string().into_boxed_str());
    HeaderValue::from_static(text)
}

pub struct RateLimiter {
    limit: u32,
    window: Duration,
    counters: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Beyond this many keys, expired windows are swept on the next count.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key`: Ok while within the limit, Err once over it.
    pub fn check(&self, key: &str) -> Result<Quota, Quota> {
        let now = Instant::now();
        let Ok(mut map) = self.counters.lock() else {
            // A poisoned lock means a panic elsewhere; do not turn it into an outage here.
            return Ok(Quota {
                limit: self.limit,
                remaining: self.limit,
                reset_secs: self.window.as_secs().max(1),
            });
        };
        if map.len() >= SWEEP_AT {
            map.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        let elapsed = now.duration_since(entry.0);
        let reset_secs = self
            .window
            .saturating_sub(elapsed)
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64;
        let quota = Quota {
            limit: self.limit,
            remaining: self.limit.saturating_sub(entry.1),
            reset_secs,
        };
        if entry.1 > self.limit {
            Err(quota)
        } else {
            Ok(quota)
        }
    }
}

/// A per-key budget of requests. The webhook routes spend from one through this trait so
/// that a shared (cluster-wide) limiter can take this process-local counter's place.
pub trait Budget: Send + Sync {
    /// Spends one request of `key`'s budget; Err (with when it refills) once it is spent.
    fn spend(&self, key: &str) -> Result<(), Quota>;
}

impl Budget for RateLimiter {
    fn spend(&self, key: &str) -> Result<(), Quota> {
        self.check(key).map(|_| ())
    }
}

/// The exchange's own rate limit: per app sign-in attempt (its `state`). Its per-address
/// limit is the `ott_exchange` route class (`infra::limiter`), shared through Redis.
pub struct ExchangeLimits {
    pub per_client: RateLimiter,
}

impl ExchangeLimits {
    pub fn new(c: &crate::config::MobileConfig) -> Self {
        let window = std::time::Duration::from_secs(c.exchange_limit_window_secs);
        Self {
            per_client: RateLimiter::new(c.exchange_limit_per_client, window),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_read_as_written() {
        for n in [0, 1, 9, 10, 599, 1023, 1024, 65_535, u64::from(u32::MAX)] {
            assert_eq!(super::number(n).to_str().unwrap(), n.to_string());
            assert_eq!(super::static_number(n).to_str().unwrap(), n.to_string());
            assert_eq!(super::exact_number(n).to_str().unwrap(), n.to_string());
        }
    }

    #[test]
    fn a_number_block_holds_its_range_only() {
        let block = super::NumberBlock::new(8..12);
        for n in 8..12 {
            assert_eq!(block.get(n).unwrap().to_str().unwrap(), n.to_string());
        }
        for n in [0, 7, 12, 13, u64::from(u32::MAX) + 1] {
            assert!(block.get(n).is_none(), "{n}");
        }
        assert!(super::NumberBlock::new(0..0).get(0).is_none());
    }

    use super::*;

    #[test]
    fn counts_per_key_and_resets() {
        let l = RateLimiter::new(2, Duration::from_millis(200));
        assert_eq!(l.check("a").map(|q| q.remaining), Ok(1));
        assert_eq!(l.check("a").map(|q| q.remaining), Ok(0));
        let over = l.check("a").unwrap_err();
        assert_eq!(over.remaining, 0);
        assert!(over.reset_secs >= 1);
        assert!(l.check("b").is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.check("a").is_ok(), "a new window starts");
    }
}
