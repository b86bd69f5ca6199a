//! The provider's HTTP edge: handlers read requests into the services' typed input, and
//! each service error becomes its RFC 6749 / 6750 / 7009 / 7662 error here, once.

pub mod authorize;
pub mod logout;
pub mod resources;
pub mod token;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::service::MissingParameter;
use super::service::client_auth::{ClientAuthError, ClientCredentials};
use super::service::resources::{TokenInspectionError, UserinfoError};
use super::service::token::TokenError;
use crate::http::oauth_error::OAuthError;
use crate::http::params::{Params, ParamsError};

/// The Content-Security-Policy source (`form-action`) for where a form's redirect chain
/// may end: an http(s) URL's origin, or a private-use scheme (`myapp:`).
fn csp_source(url: &url::Url) -> String {
    match url.scheme() {
        "http" | "https" => url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    }
}

/// A JSON body that no cache may keep (tokens, introspection, userinfo).
fn no_store(body: impl serde::Serialize) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The client credentials a request carries: the Authorization header and the form's.
fn client_credentials<'a>(headers: &'a HeaderMap, params: &'a Params) -> ClientCredentials<'a> {
    ClientCredentials {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        client_id: params.get("client_id"),
        client_secret: params.get("client_secret"),
    }
}

impl From<ParamsError> for OAuthError {
    fn from(e: ParamsError) -> Self {
        OAuthError::invalid_request(e.to_string())
    }
}

impl From<MissingParameter> for OAuthError {
    fn from(e: MissingParameter) -> Self {
        OAuthError::invalid_request(e.to_string())
    }
}

impl From<ClientAuthError> for OAuthError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::TwoMethods => OAuthError::invalid_request(e.to_string()),
            ClientAuthError::Missing
            | ClientAuthError::MalformedBasic
            | ClientAuthError::IdMismatch
            | ClientAuthError::Failed { .. } => {
                let via_header = e.via_header();
                OAuthError::invalid_client(e.to_string(), via_header)
            }
            ClientAuthError::ProjectDisabled => OAuthError::project_disabled(),
            ClientAuthError::Store(cause) => OAuthError::server_error(cause),
        }
    }
}

impl From<TokenError> for OAuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Client(e) => e.into(),
            TokenError::Missing(e) => e.into(),
            TokenError::UnsupportedGrantType(_) => {
                OAuthError::unsupported_grant_type(e.to_string())
            }
            TokenError::GrantNotAllowed(_) | TokenError::NotConfidential => {
                OAuthError::unauthorized_client(e.to_string())
            }
            TokenError::RefreshReused => {
                OAuthError::invalid_grant(e.to_string()).with_code("refresh_token_reused")
            }
            TokenError::Code(_)
            | TokenError::RefreshRevoked
            | TokenError::RefreshExpired
            | TokenError::RefreshUnknown
            | TokenError::UserGone => OAuthError::invalid_grant(e.to_string()),
            TokenError::UnsupportedScope(_)
            | TokenError::ScopeBeyondGrant
            | TokenError::ScopeNeedsUser => OAuthError::invalid_scope(e.to_string()),
            TokenError::Issue(cause) => OAuthError::server_error(cause),
            TokenError::Store(cause) => OAuthError::server_error(cause),
        }
    }
}

impl From<UserinfoError> for OAuthError {
    fn from(e: UserinfoError) -> Self {
        match e {
            UserinfoError::NoToken | UserinfoError::InvalidToken | UserinfoError::NotAUser => {
                OAuthError::invalid_token(e.to_string())
            }
            UserinfoError::NoOpenidScope => OAuthError::insufficient_scope(e.to_string()),
            UserinfoError::Token(cause) => OAuthError::server_error(cause),
            UserinfoError::Store(cause) => OAuthError::server_error(cause),
        }
    }
}

impl From<TokenInspectionError> for OAuthError {
    fn from(e: TokenInspectionError) -> Self {
        match e {
            TokenInspectionError::Client(e) => e.into(),
            TokenInspectionError::NotConfidential => {
                OAuthError::invalid_client(e.to_string(), false)
            }
            TokenInspectionError::Missing(e) => e.into(),
            TokenInspectionError::Token(cause) => OAuthError::server_error(cause),
            TokenInspectionError::Keys(cause) => OAuthError::server_error(cause),
            TokenInspectionError::Store(cause) => OAuthError::server_error(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::features::oidc::issue::IssueError;
    use portcullis_core::grant::CodeRefused;
    use portcullis_store::StoreError;

    fn mapped(e: impl Into<OAuthError>) -> (StatusCode, &'static str) {
        let e = e.into();
        (e.status, e.error)
    }

    #[test]
    fn store_failures_are_server_errors_everywhere() {
        let store = || StoreError::Corrupt("x".into());
        let server = (StatusCode::INTERNAL_SERVER_ERROR, "server_error");
        assert_eq!(mapped(ClientAuthError::Store(store())), server);
        assert_eq!(mapped(TokenError::Store(store())), server);
        assert_eq!(
            mapped(TokenError::Client(ClientAuthError::Store(store()))),
            server
        );
        assert_eq!(mapped(UserinfoError::Store(store())), server);
        assert_eq!(mapped(TokenInspectionError::Store(store())), server);
        assert_eq!(
            mapped(TokenError::Issue(IssueError::Sign(
                crate::infra::keys::KeyError::Sign("x".into())
            ))),
            server
        );
    }

    #[test]
    fn caller_mistakes_name_their_cause() {
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(
            mapped(TokenError::Code(CodeRefused::Expired)),
            (bad, "invalid_grant")
        );
        assert_eq!(
            mapped(TokenError::GrantNotAllowed(
                portcullis_core::oauth::GrantType::ClientCredentials
            )),
            (bad, "unauthorized_client")
        );
        assert_eq!(
            mapped(TokenError::UnsupportedGrantType("password".into())),
            (bad, "unsupported_grant_type")
        );
        assert_eq!(mapped(TokenError::ScopeBeyondGrant), (bad, "invalid_scope"));
        assert_eq!(mapped(MissingParameter("code")), (bad, "invalid_request"));
        assert_eq!(
            mapped(ClientAuthError::Missing),
            (StatusCode::UNAUTHORIZED, "invalid_client")
        );
        assert_eq!(
            mapped(UserinfoError::NotAUser),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        let reused: OAuthError = TokenError::RefreshReused.into();
        assert_eq!(
            (reused.error, reused.code),
            ("invalid_grant", Some("refresh_token_reused"))
        );
        let challenged: OAuthError = ClientAuthError::Failed { via_header: true }.into();
        assert!(challenged.basic_challenge);
        let quiet: OAuthError = ClientAuthError::Failed { via_header: false }.into();
        assert!(!quiet.basic_challenge);
    }
}
