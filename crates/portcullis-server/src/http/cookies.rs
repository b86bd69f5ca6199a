//! The session cookie, per api.md: `__Host-portcullis_session` with `Secure` behind https,
//! the bare name over plain http; and which names are read back.

use axum::http::HeaderValue;
use portcullis_guard::CookiePolicy;

use crate::state::AppState;

/// The session cookie names this deployment reads: behind https only the prefixed ones,
/// which nobody but this origin can set in a browser.
pub fn policy(state: &AppState) -> CookiePolicy {
    if state.secure_cookies {
        CookiePolicy::PrefixedOnly
    } else {
        CookiePolicy::AnyName
    }
}

/// Builds the `Set-Cookie` value for a new session, per api.md: `__Host-` + `Secure`
/// behind https, the bare name over plain http.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let max_age = state.sessions.absolute_ttl.whole_seconds();
    let value = if state.secure_cookies {
        format!(
            "__Host-portcullis_session={token}; HttpOnly; Secure; Path=/; SameSite=Lax; Max-Age={max_age}"
        )
    } else {
        format!("portcullis_session={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age={max_age}")
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear_cookie(state: &AppState) -> HeaderValue {
    HeaderValue::from_static(if state.secure_cookies {
        "__Host-portcullis_session=; HttpOnly; Secure; Path=/; SameSite=Lax; Max-Age=0"
    } else {
        "portcullis_session=; HttpOnly; Path=/; SameSite=Lax; Max-Age=0"
    })
}
