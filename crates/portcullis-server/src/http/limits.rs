//! Request bodies are read here, once, up to their route's limit, before any handler or
//! extractor sees them: forms (the OAuth endpoints and the sign-in pages) get
//! `max_form_body_bytes`, everything else `max_json_body_bytes`. A `Content-Length` over the
//! limit is refused without reading the body; a body without one (chunked) is cut at the
//! limit. Refusals are `413` in the shape of the route: the envelope's `payload_too_large`,
//! the RFC 6749 shape on the OAuth endpoints (`invalid_request`, with `code:
//! payload_too_large`), an error page on the sign-in forms.

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::http::error::ApiError;
use crate::http::html as pages;
use crate::http::oauth_error::OAuthError;

/// The body limits in force, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub form: usize,
    pub json: usize,
}

impl BodyLimits {
    /// The larger limit: what axum's own extractors are told, as a second line.
    pub fn largest(&self) -> usize {
        self.form.max(self.json)
    }
}

/// How a route reads its body, and how it answers when the body is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyClass {
    /// A form posted from one of our pages: refusals are pages.
    Page,
    /// An OAuth / OpenID Connect endpoint: form bodies, RFC 6749 errors.
    OAuth,
    /// Portcullis' own API: JSON bodies, the envelope.
    Api,
}

/// The sign-in and consent forms our pages post.
const PAGES: &[&str] = &["/oauth2/login", "/oauth2/consent", "/auth/mobile/login"];

impl BodyClass {
    pub fn of(path: &str) -> Self {
        if PAGES.contains(&path) {
            BodyClass::Page
        } else if path.starts_with("/oauth2/") {
            BodyClass::OAuth
        } else {
            BodyClass::Api
        }
    }

    fn limit(self, limits: &BodyLimits) -> usize {
        match self {
            BodyClass::Page | BodyClass::OAuth => limits.form,
            BodyClass::Api => limits.json,
        }
    }

    fn too_large(self, limit: usize) -> Response {
        match self {
            BodyClass::Page => pages::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The form is too large (at most {limit} bytes)."),
            ),
            BodyClass::OAuth => OAuthError::payload_too_large(limit).into_response(),
            BodyClass::Api => ApiError::payload_too_large(limit).into_response(),
        }
    }

    fn unreadable(self) -> Response {
        const WHY: &str = "the request body could not be read";
        match self {
            BodyClass::Page => pages::error(StatusCode::BAD_REQUEST, WHY),
            BodyClass::OAuth => OAuthError::invalid_request(WHY).into_response(),
            BodyClass::Api => ApiError::invalid_request(WHY).into_response(),
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The middleware: the body within its limit, or the refusal.
pub async fn limit_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let class = BodyClass::of(req.uri().path());
    let limit = class.limit(&limits);
    if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return class.too_large(limit);
    }
    let (parts, body) = req.into_parts();
    if body.size_hint().exact() == Some(0) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return class.too_large(limit);
        }
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            return class.unreadable();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(BodyClass::of("/oauth2/token"), BodyClass::OAuth);
        assert_eq!(BodyClass::of("/oauth2/introspect"), BodyClass::OAuth);
        assert_eq!(BodyClass::of("/oauth2/login"), BodyClass::Page);
        assert_eq!(BodyClass::of("/auth/mobile/login"), BodyClass::Page);
        assert_eq!(BodyClass::of("/v1/auth/login"), BodyClass::Api);
        assert_eq!(
            BodyClass::of("/api/v1/mobile/auth/exchange"),
            BodyClass::Api
        );
    }
}
