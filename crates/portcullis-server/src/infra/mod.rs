//! What features use but do not own: signing keys, sealing and key derivation, the
//! in-process caches, password hashing, metrics, rate limiters and sign-in attempt limits and upstream providers.

pub mod access_tokens;
pub mod attempts;
pub mod crypto;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod rate_limit;
pub mod session_cache;
pub mod upstream;
