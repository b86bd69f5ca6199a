//! Forms posted from this server's own sign-in pages (the provider's and the mobile
//! hand-off's): they must come from our origin, and password sign-in must be on.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::html as pages;
use crate::http::params::Params;
use crate::state::AppState;

/// Form posts from our own pages must come from our own origin (login CSRF).
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => o == state.public_origin,
        // Browsers send Origin on every form POST; without one, fall back to Referer.
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .is_some_and(|u| u.origin().ascii_serialization() == state.public_origin),
    }
}

/// A sign-in form posted from one of our pages: the way back, and the credentials.
pub struct PasswordForm {
    /// The query of the request that led to the sign-in page.
    pub continue_query: String,
    pub email: String,
    pub password: String,
}

/// Why a posted sign-in form is refused; answered as an error page.
pub struct FormRefused {
    status: StatusCode,
    message: &'static str,
}

impl IntoResponse for FormRefused {
    fn into_response(self) -> Response {
        pages::error(self.status, self.message)
    }
}

/// Reads a posted sign-in form, unless it was not sent from this server, password sign-in
/// is off, or it is malformed.
pub fn password_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PasswordForm, FormRefused> {
    if !same_origin(state, headers) {
        return Err(FormRefused {
            status: StatusCode::FORBIDDEN,
            message: "This sign-in form was not sent from this server.",
        });
    }
    if !state.password_login {
        return Err(FormRefused {
            status: StatusCode::FORBIDDEN,
            message: "Password sign-in is switched off on this server (feature_disabled).",
        });
    }
    let Ok(form) = Params::parse(body) else {
        return Err(FormRefused {
            status: StatusCode::BAD_REQUEST,
            message: "The sign-in form was malformed.",
        });
    };
    Ok(PasswordForm {
        continue_query: form.get("continue").unwrap_or_default().to_owned(),
        email: form.get("email").unwrap_or_default().to_owned(),
        password: form.get("password").unwrap_or_default().to_owned(),
    })
}
