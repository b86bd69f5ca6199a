//! Client authentication at the token, introspection and revocation endpoints (RFC 6749
//! §2.3): by the method the client registered, and nothing else.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::oauth::{ClientId, OAuthClient, TokenEndpointAuthMethod};
use portcullis_store::StoreError;

use crate::state::AppState;

/// What a request offers to authenticate its client.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCredentials<'a> {
    /// The `Authorization` header's value, whatever its scheme.
    pub authorization: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// `invalid_request`: RFC 6749 §2.3 allows one method per request.
    #[error("use one client authentication method, not two")]
    TwoMethods,
    /// The request does not say which client it is.
    #[error("client authentication is required (client_id or HTTP Basic)")]
    Missing,
    #[error("malformed HTTP Basic credentials")]
    MalformedBasic,
    #[error("client_id does not match the credentials")]
    IdMismatch,
    /// Unknown client, wrong secret or not the registered method: one answer for all, so a
    /// caller cannot probe which client ids exist.
    #[error("client authentication failed")]
    Failed { via_header: bool },
    /// The client's project is disabled: no tokens, no introspection.
    #[error("this application's project is disabled")]
    ProjectDisabled,
    #[error("client lookup: {0}")]
    Store(#[from] StoreError),
}

impl ClientAuthError {
    /// The client tried HTTP Basic, so the refusal must challenge (RFC 6749 §5.2).
    pub fn via_header(&self) -> bool {
        match self {
            ClientAuthError::MalformedBasic | ClientAuthError::IdMismatch => true,
            ClientAuthError::Failed { via_header } => *via_header,
            _ => false,
        }
    }
}

fn form_decode(s: &str) -> Option<String> {
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
    url::form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .or_else(|| s.is_empty().then(String::new))
}

/// The client id and secret from `Authorization: Basic`, when that scheme is used.
fn basic_credentials(
    authorization: Option<&str>,
) -> Result<Option<(String, String)>, ClientAuthError> {
    let Some((scheme, b64)) = authorization.and_then(|v| v.split_once(' ')) else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || ClientAuthError::MalformedBasic;
    let decoded = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((
        form_decode(id).ok_or_else(bad)?,
        form_decode(secret).ok_or_else(bad)?,
    )))
}

/// Authenticates the calling client by the method it registered.
pub async fn authenticate_client(
    state: &AppState,
    creds: ClientCredentials<'_>,
) -> Result<Arc<OAuthClient>, ClientAuthError> {
    let basic = basic_credentials(creds.authorization)?;
    let via_header = basic.is_some();
    let (id, secret, method) = match (basic, creds.client_secret) {
        (Some(_), Some(_)) => return Err(ClientAuthError::TwoMethods),
        (Some((id, secret)), None) => {
            if creds.client_id.is_some_and(|p| p != id) {
                return Err(ClientAuthError::IdMismatch);
            }
            (id, Some(secret), TokenEndpointAuthMethod::ClientSecretBasic)
        }
        (None, secret) => {
            let id = creds.client_id.ok_or(ClientAuthError::Missing)?.to_owned();
            let method = match secret {
                Some(_) => TokenEndpointAuthMethod::ClientSecretPost,
                None => TokenEndpointAuthMethod::None,
            };
            (id, secret.map(str::to_owned), method)
        }
    };
    let failed = || ClientAuthError::Failed { via_header };
    let client_id = ClientId::parse(&id).ok_or_else(failed)?;
    let cached = super::find_client(state, &client_id)
        .await?
        .ok_or_else(failed)?;
    let client = cached.client.clone();
    if client.token_endpoint_auth_method != method {
        return Err(failed());
    }
    let authenticated = match secret {
        Some(s) => client.verify_secret(&s),
        None => method == TokenEndpointAuthMethod::None,
    };
    if !authenticated {
        return Err(failed());
    }
    if !cached.project_active {
        return Err(ClientAuthError::ProjectDisabled);
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let raw = format!("Basic {}", STANDARD.encode("my%20client:s%2Bcret"));
        assert_eq!(
            basic_credentials(Some(&raw)).unwrap(),
            Some(("my client".into(), "s+cret".into()))
        );
        assert!(matches!(
            basic_credentials(Some("Basic !!!")),
            Err(ClientAuthError::MalformedBasic)
        ));
        assert_eq!(basic_credentials(Some("Bearer x")).unwrap(), None);
        assert_eq!(basic_credentials(None).unwrap(), None);
    }

    #[test]
    fn only_header_failures_challenge() {
        assert!(ClientAuthError::MalformedBasic.via_header());
        assert!(ClientAuthError::Failed { via_header: true }.via_header());
        assert!(!ClientAuthError::Failed { via_header: false }.via_header());
        assert!(!ClientAuthError::Missing.via_header());
    }
}
