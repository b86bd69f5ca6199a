//! Request bodies are read here, once, up to their route's limit, before any handler or
//! extractor sees them: forms (the OAuth endpoints and the sign-in pages) get
//! `max_form_body_bytes`, everything else `max_json_body_bytes`. A `Content-Length` over the
//! limit is refused before the body is read; a body without one (chunked) is cut at the
//! limit. Refusals are `413` in the shape of the route: the envelope's `payload_too_large`,
//! the RFC 6749 shape on the OAuth endpoints (`invalid_request`, with `code:
//! payload_too_large`), an error page on the sign-in forms.
//!
//! After a refusal the rest of the body is read and thrown away in the background, up to
//! [`DRAIN_BYTES`] and [`DRAIN_TIME`] ("lingering close", as nginx does): closing a socket
//! with unread data resets the connection, and the client would lose the answer.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

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

/// How much of a refused body is read and discarded so the client can read the refusal.
pub const DRAIN_BYTES: usize = 1 << 20;
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and discards what is left of a refused body, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`]; nothing of it is kept or parsed.
fn drain(mut body: Body) {
    tokio::spawn(async move {
        let mut left = DRAIN_BYTES;
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(frame)) = body.frame().await {
                let read = frame.data_ref().map_or(0, Bytes::len);
                left = left.saturating_sub(read);
                if left == 0 {
                    break;
                }
            }
        })
        .await;
    });
}

enum Unread {
    TooLarge,
    Broken(axum::Error),
}

/// The body, unless it is longer than `limit`: then as little past the limit as one frame.
async fn read_within(body: &mut Body, limit: usize) -> Result<Bytes, Unread> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Unread::Broken)?.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            return Err(Unread::TooLarge);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// The middleware: the body within its limit, or the refusal.
pub async fn limit_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    within_limit(limits, req, next).await
}

/// What [`limit_body`] does, callable from another middleware (the throttle runs it inside
/// its own layer, so a rate-limited server pays for one layer, not two).
pub async fn within_limit(limits: BodyLimits, req: Request, next: Next) -> Response {
    let class = BodyClass::of(req.uri().path());
    let limit = class.limit(&limits);
    let (parts, mut body) = req.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > limit as u64) {
        drain(body);
        return class.too_large(limit);
    }
    if body.size_hint().exact() == Some(0) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    match read_within(&mut body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(Unread::TooLarge) => {
            drain(body);
            class.too_large(limit)
        }
        Err(Unread::Broken(e)) => {
            tracing::debug!(error = %e, "request body unreadable");
            class.unreadable()
        }
    }
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
