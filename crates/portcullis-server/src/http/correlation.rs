//! Correlation ids: kept when the caller sends a well-formed one, made otherwise, set on
//! every response, and carried in a task-local so error bodies and audit events can quote
//! it without threading it through every call.

use axum::http::HeaderValue;

tokio::task_local! {
    static CURRENT: String;
}

pub const HEADER: &str = "x-correlation-id";

/// 1–128 characters of `[A-Za-z0-9._:-]` (api.md).
pub fn is_well_formed(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

pub fn from_header(v: Option<&HeaderValue>) -> String {
    match v.and_then(|v| v.to_str().ok()) {
        Some(s) if is_well_formed(s) => s.to_owned(),
        _ => new_id(),
    }
}

/// A new id: 64 random bits fixed per process, then a counter — 32 hex characters, unique
/// across nodes without a system call per request (a UUID would read the OS RNG each time).
/// Also the `jti` of access tokens.
pub fn new_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        portcullis_core::token::random_bytes::<8>()
            .map(u64::from_le_bytes)
            .unwrap_or_else(|_| uuid::Uuid::now_v7().as_u64_pair().1)
    });
    format!(
        "{prefix:016x}{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The current request's correlation id (empty outside a request).
pub fn current() -> String {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}

pub async fn scope<F: Future>(id: String, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids() {
        assert!(is_well_formed("abc-123_X.y:z"));
        assert!(is_well_formed(&"a".repeat(128)));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(!is_well_formed("has space"));
        assert!(!is_well_formed("semi;colon"));
        assert_eq!(
            from_header(Some(&HeaderValue::from_static("keep-me"))),
            "keep-me"
        );
        assert_eq!(
            from_header(Some(&HeaderValue::from_static("bad id!"))).len(),
            32
        );
        assert_eq!(from_header(None).len(), 32);
        assert_ne!(from_header(None), from_header(None));
        assert!(is_well_formed(&from_header(None)));
    }
}
