//! Form and query parameters of the OAuth endpoints: RFC 6749 §3.1 forbids repeating a
//! parameter, so they are parsed into a list and checked, not into a map that would
//! silently keep one of them.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use portcullis_core::oauth::{ClientId, OAuthClient, TokenEndpointAuthMethod};

use crate::http::oauth_error::OAuthError;
use crate::state::AppState;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw).into_owned().collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(other, _)| other == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k:?} must not be repeated"
                )));
            }
        }
        Ok(Self(pairs))
    }

    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name:?}")))
    }

    /// The parameters as a query string, without the named ones.
    pub fn to_query_without(&self, drop: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }
}

fn form_decode(s: &str) -> Option<String> {
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
    url::form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .or_else(|| s.is_empty().then(String::new))
}

/// The client id and secret from `Authorization: Basic`, when that header is used.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, b64)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || OAuthError::invalid_client("malformed HTTP Basic credentials", true);
    let decoded = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((
        form_decode(id).ok_or_else(bad)?,
        form_decode(secret).ok_or_else(bad)?,
    )))
}

/// Authenticates the calling client by the method it registered. Every failure is the same
/// `invalid_client`, so a caller cannot probe which client ids exist.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<OAuthClient>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let used_basic = basic.is_some();
    let (id, secret, method) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_client(
                    "client_id does not match the credentials",
                    true,
                ));
            }
            (id, Some(secret), TokenEndpointAuthMethod::ClientSecretBasic)
        }
        (None, Some(secret)) => (
            params.require("client_id")?.to_owned(),
            Some(secret.to_owned()),
            TokenEndpointAuthMethod::ClientSecretPost,
        ),
        (None, None) => (
            params.require("client_id")?.to_owned(),
            None,
            TokenEndpointAuthMethod::None,
        ),
    };
    let refused = || OAuthError::invalid_client("client authentication failed", used_basic);
    let client_id = ClientId::parse(&id).ok_or_else(refused)?;
    let cached = super::find_client(state, &client_id)
        .await?
        .ok_or_else(refused)?;
    let client = cached.client.clone();
    if client.token_endpoint_auth_method != method {
        return Err(refused());
    }
    let authenticated = match secret {
        Some(s) => client.verify_secret(&s),
        None => method == TokenEndpointAuthMethod::None,
    };
    if !authenticated {
        return Err(refused());
    }
    if !cached.project_active {
        return Err(OAuthError::project_disabled());
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::parse(b"a=1&b=2&a=3").is_err());
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.to_query_without(&["a"]), "b=&c=x+y");
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let raw = STANDARD.encode("my%20client:s%2Bcret");
        h.insert(
            axum::http::header::AUTHORIZATION,
            format!("Basic {raw}").parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my client".into(), "s+cret".into()))
        );
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Basic !!!".parse().unwrap(),
        );
        assert!(basic_credentials(&h).is_err());
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer x".parse().unwrap(),
        );
        assert_eq!(basic_credentials(&h).unwrap(), None);
    }
}
