//! What mobile sign-in borrows from the OpenID provider: minting tokens
//! (`features::oidc::issue`) and resolving the session a token names. Those still take the
//! whole server state, so this handle is the one place mobile reaches it; it is swapped for
//! typed parts in one place when they take them.

use portcullis_core::{SessionId, TokenHash};

use crate::features::oidc::issue::{self, Grant};
use crate::state::AppState;

#[derive(Clone, Copy)]
pub struct Provider<'a>(&'a AppState);

/// The provider could not mint a token (no randomness, signing failed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MintError(String);

impl<'a> Provider<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Self(state)
    }

    /// A signed access token for `grant` and its lifetime in seconds.
    pub async fn access_token(&self, grant: &Grant<'_>) -> Result<(String, i64), MintError> {
        let token = issue::access_token(self.0, grant, portcullis_core::now())
            .await
            .map_err(|e| MintError(e.to_string()))?;
        Ok((token.token, token.expires_in))
    }

    /// A fresh refresh token and its digest.
    pub fn new_refresh_token(&self) -> Result<(String, TokenHash), MintError> {
        issue::new_refresh_token().map_err(|e| MintError(e.to_string()))
    }

    /// The one successor a refresh token can have, and its digest.
    pub fn successor_of(&self, presented: &str) -> (String, TokenHash) {
        issue::successor_of(self.0, presented)
    }

    /// Whether the mobile session `sid` is live; resolving it also slides its expiry. Any
    /// failure to resolve it counts as ended.
    pub async fn session_live(&self, sid: SessionId) -> bool {
        let token =
            crate::infra::access_tokens::mobile_session_token(&self.0.mobile.session_key, sid);
        crate::http::extract::resolve_session(self.0, &token)
            .await
            .is_ok()
    }
}
