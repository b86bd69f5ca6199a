//! Forms posted from this server's own sign-in pages (the provider's and the mobile
//! hand-off's sign-in and confirmation): they must come from our origin, and password
//! sign-in must be on for the sign-in forms.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::html as pages;
use crate::http::params::Params;
use crate::state::AppState;

/// Form posts from our own pages must come from our own origin (login CSRF).
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    crate::http::origin::is_same_origin(headers, &state.public_origin)
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

/// The mobile hand-off's confirmation, posted from its page: the way back, the page's token
/// and the button pressed.
pub struct ConfirmForm {
    /// The hand-off query the page was shown for.
    pub continue_query: String,
    /// The per-page token bound to the browser's session and `continue_query`.
    pub csrf_token: String,
    /// `continue` or `cancel`.
    pub decision: String,
}

/// Reads a posted confirmation, unless it was not sent from this server or is malformed.
/// Checking the token is the caller's: it needs the browser's session.
pub fn confirm_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ConfirmForm, FormRefused> {
    if !same_origin(state, headers) {
        return Err(FormRefused {
            status: StatusCode::FORBIDDEN,
            message: "This confirmation was not sent from this server.",
        });
    }
    let Ok(form) = Params::parse(body) else {
        return Err(FormRefused {
            status: StatusCode::BAD_REQUEST,
            message: "The confirmation form was malformed.",
        });
    };
    Ok(ConfirmForm {
        continue_query: form.get("continue").unwrap_or_default().to_owned(),
        csrf_token: form.get("csrf_token").unwrap_or_default().to_owned(),
        decision: form.get("decision").unwrap_or_default().to_owned(),
    })
}
