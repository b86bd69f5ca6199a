//! Mobile sign-in: a browser hand-off that ends in a one-time token (OTT) on the app's deep
//! link, the OTT's exchange for an access token and a refresh token, and their rotation.
//! The HTTP handlers live in `routes/mobile.rs`; the sign-in rules they call are in
//! [`tokens`], and this module holds what the hand-off and the tokens share.
//!
//! Mobile refresh tokens are refresh families of the OAuth grant store, issued to the
//! reserved first-party client [`MOBILE_CLIENT_ID`], so rotation, the grace window and reuse
//! detection are the provider's own code. Each exchange also creates a session (with the
//! device on it): the access token names it (`sid`), and revoking it stops the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use portcullis_core::oauth::{
    ClientId, ClientType, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod,
};
use portcullis_core::{OrgId, ProjectId, SessionId, TokenHash};
use sha2::{Digest, Sha256};

pub use portcullis_store::MOBILE_CLIENT_ID;

use crate::state::AppState;

pub mod handoff;
pub mod settings;
pub mod tokens;

pub use settings::MobileSettings;

/// The exchange's rate limits: per client IP, and per app sign-in attempt (its `state`).
pub struct ExchangeLimits {
    pub per_ip: crate::rate_limit::RateLimiter,
    pub per_client: crate::rate_limit::RateLimiter,
}

impl ExchangeLimits {
    pub fn new(c: &crate::config::Config) -> Self {
        let window = std::time::Duration::from_secs(c.mobile_exchange_limit_window_secs);
        Self {
            per_ip: crate::rate_limit::RateLimiter::new(c.mobile_exchange_limit_per_ip, window),
            per_client: crate::rate_limit::RateLimiter::new(
                c.mobile_exchange_limit_per_client,
                window,
            ),
        }
    }
}

/// What a mobile access token may do: everything the user's session may.
pub const MOBILE_SCOPE: &str = "openid profile email";

pub const OTT_PREFIX: &str = "ott_";

/// The in-memory client mobile tokens are issued to, acting in `org_id`/`project_id`.
pub fn client(state: &AppState, org_id: OrgId, project_id: ProjectId) -> OAuthClient {
    let now = portcullis_core::now();
    OAuthClient {
        id: state.mobile.client_id.clone(),
        org_id,
        project_id,
        name: "Portcullis mobile".into(),
        client_type: ClientType::Public,
        secret_hash: None,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::RefreshToken],
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        access_token_ttl_secs: state.mobile.access_token_ttl_secs,
        signing_alg: SigningAlg::EdDSA,
        created_at: now,
        updated_at: now,
    }
}

pub fn client_id() -> Option<ClientId> {
    ClientId::parse(MOBILE_CLIENT_ID)
}

/// The key that names mobile sessions, derived from the master key.
pub fn session_key(master: &[u8; 32]) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(master) else {
        return [0; 32];
    };
    mac.update(b"portcullis/mobile-session/v1");
    mac.finalize().into_bytes().into()
}

/// The session token behind a mobile session. It is never handed out: the app holds only
/// JWTs that name the session (`sid`); deriving the token from the id lets a bearer
/// request resolve the session through the same cached path as a cookie, with the same
/// revocation semantics.
pub fn session_token(state: &AppState, sid: SessionId) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.mobile.session_key) else {
        return String::new();
    };
    mac.update(sid.0.as_bytes());
    format!(
        "pms_{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// A fresh one-time token: `ott_` + 256 random bits, and its digest.
pub fn new_ott() -> Result<(String, TokenHash), getrandom::Error> {
    let bytes = portcullis_core::token::random_bytes::<32>()?;
    let raw = format!("{OTT_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}

/// PKCE S256: does `verifier` hash to `challenge`? Compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    TokenHash::of(&computed).ct_eq(&TokenHash::of(challenge))
}

/// A well-formed S256 challenge: base64url of 32 bytes.
pub fn challenge_well_formed(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether the org may use mobile sign-in. Plans do not exist yet, so every org may; when
/// they do, this is the one place that asks the org's plan (answering `feature_disabled`
/// on the hand-off, the exchange and refresh).
pub async fn allowed_for_org(_state: &AppState, _org_id: OrgId) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(challenge_well_formed(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("other", challenge));
    }

    #[test]
    fn client_id_is_reserved_shape() {
        assert_eq!(
            client_id().map(|c| c.as_str().to_owned()).as_deref(),
            Some(MOBILE_CLIENT_ID)
        );
    }
}
