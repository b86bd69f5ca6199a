//! Verification of Portcullis' own access tokens, shared by the OAuth resource endpoints
//! and the API's bearer authentication, and the session token behind a mobile access token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::{SessionId, TokenHash};
use portcullis_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::infra::crypto;
use crate::infra::keys::KeyRing;
use crate::infra::session_cache::SessionCache;

/// A Portcullis access token that verifies, is unexpired, was issued here, and has not been
/// revoked (by itself, or through its refresh family).
pub async fn live_access_token(
    cache: &SessionCache,
    keys: &KeyRing,
    store: &dyn Store,
    issuer: &str,
    token: &str,
) -> Result<Option<Value>, StoreError> {
    let hash = TokenHash::of(token);
    let now = portcullis_core::now().unix_timestamp();
    if let Some(claims) = cache.live_token(&hash) {
        if claims["exp"].as_i64().is_some_and(|exp| exp > now) {
            return Ok(Some(Value::clone(&claims)));
        }
        return Ok(None);
    }
    // Read before the checks: a revocation landing meanwhile makes this entry stale at once.
    let epoch = cache.epoch();
    let Ok(claims) = keys.verify(token).await else {
        return Ok(None);
    };
    if claims["iss"] != json!(issuer) || claims.get("client_id").is_none() {
        return Ok(None);
    }
    if let Some(jti) = claims["jti"].as_str()
        && store.grants().access_token_revoked(jti).await?
    {
        return Ok(None);
    }
    if let (Some(fid), Some(org)) = (claims["fid"].as_str(), claims["org_id"].as_str())
        && let (Ok(fid), Some(org)) = (
            uuid::Uuid::parse_str(fid),
            portcullis_core::OrgId::parse(org),
        )
        && store.grants().family_revoked(org, fid).await?
    {
        return Ok(None);
    }
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
