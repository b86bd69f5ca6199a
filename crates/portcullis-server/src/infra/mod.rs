//! What features use but do not own: signing keys, sealing and key derivation, the
//! in-process caches and where change notices go, password hashing, metrics, rate limiters, sign-in attempt limits,
//! upstream providers and DNS lookups.

pub mod access_tokens;
pub mod attempts;
pub mod changes;
pub mod crypto;
pub mod dns;
pub mod key_usage;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod passwords;
pub mod rate_limit;
pub mod session_cache;
pub mod upstream;
pub mod webhooks;
