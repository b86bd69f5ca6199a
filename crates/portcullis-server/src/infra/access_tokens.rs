//! Verification of Portcullis' own access tokens, shared by the OAuth resource endpoints
//! and the API's bearer authentication, and the session token behind a mobile access token.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::access_token::AccessTokenClaims;
use portcullis_core::{SessionId, TokenHash};
use portcullis_store::{Store, StoreError};

use crate::infra::crypto;
use crate::infra::keys::{JwtType, KeyError, KeyRing};
use crate::infra::session_cache::SessionCache;

/// The server failed while checking a token (as opposed to refusing it): callers answer
/// with a server error, never with "invalid token".
#[derive(Debug, thiserror::Error)]
pub enum LiveTokenError {
    #[error("token revocation lookup: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(KeyError),
}

/// A Portcullis access token that verifies, is unexpired, was issued here, and has not been
/// revoked (by itself, or through its refresh family), and, when it ends with its session
/// ([`AccessTokenClaims::ends_with_session`]), whose session is still live. ID tokens never
/// qualify: their header says `typ: JWT`, not `at+jwt`, and their claims do not read as
/// [`AccessTokenClaims`] either.
pub async fn live_access_token(
    cache: &SessionCache,
    keys: &KeyRing,
    store: &dyn Store,
    issuer: &str,
    token: &str,
) -> Result<Option<Arc<AccessTokenClaims>>, LiveTokenError> {
    let hash = TokenHash::of(token);
    let now = portcullis_core::now();
    if let Some(claims) = cache.live_token(&hash) {
        return Ok((!claims.expired(now)).then_some(claims));
    }
    // Read before the checks: a revocation landing meanwhile makes this entry stale at once.
    let epoch = cache.epoch();
    let claims: AccessTokenClaims = match keys.verify(token, JwtType::AccessToken).await {
        Ok(claims) => claims,
        Err(e) if e.is_rejection() => return Ok(None),
        Err(e) => return Err(LiveTokenError::Keys(e)),
    };
    if claims.iss != issuer {
        return Ok(None);
    }
    if store.grants().access_token_revoked(&claims.jti).await? {
        return Ok(None);
    }
    if let Some(fid) = claims.fid
        && store.grants().family_revoked(claims.org_id, fid).await?
    {
        return Ok(None);
    }
    if claims.ends_with_session()
        && let Some(sid) = claims.sid
        && !store.grants().session_live(sid, now).await?
    {
        return Ok(None);
    }
    let claims = Arc::new(claims);
    cache.put_live_token(epoch, hash, claims.clone());
    Ok(Some(claims))
}

/// The session token behind a mobile session. It is never handed out: the app holds only
/// JWTs that name the session (`sid`); deriving the token from the id lets a bearer
/// request resolve the session through the same cached path as a cookie, with the same
/// revocation semantics.
pub fn mobile_session_token(session_key: &[u8; 32], sid: SessionId) -> String {
    let mac = crypto::mac(session_key, sid.0.as_bytes());
    format!(
        "{}{}",
        portcullis_core::token::MOBILE_SESSION_PREFIX,
        URL_SAFE_NO_PAD.encode(mac)
    )
}
