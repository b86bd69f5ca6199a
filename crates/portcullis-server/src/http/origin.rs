//! Where a browser request comes from, for the CSRF checks of cookie-authenticated changes
//! (`extract.rs`) and of the forms our own pages post (`forms.rs`): one reading of the
//! headers, so the two checks cannot disagree.

use axum::http::{HeaderMap, header};

/// The origin (`scheme://host[:port]`) a request says it comes from: `Origin`, or, when a
/// browser sent none, the origin of `Referer`. `Origin: null` (a sandboxed frame, a
/// `data:` page, a cross-origin redirect) is an opaque origin that is nobody's: it never
/// falls back to `Referer`, which such a request may still carry with our URL in it.
pub fn request_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().ok()?;
        return (origin != "null").then(|| origin.to_owned());
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Whether the request comes from `ours` (the server's public origin).
pub fn is_same_origin(headers: &HeaderMap, ours: &str) -> bool {
    request_origin(headers).is_some_and(|o| o == ours)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const OURS: &str = "https://auth.example.com";

    fn headers(origin: Option<&'static str>, referer: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        if let Some(r) = referer {
            h.insert(header::REFERER, HeaderValue::from_static(r));
        }
        h
    }

    #[test]
    fn origin_first_then_referer() {
        assert!(is_same_origin(&headers(Some(OURS), None), OURS));
        assert!(!is_same_origin(
            &headers(
                Some("https://evil.example"),
                Some("https://auth.example.com/x")
            ),
            OURS
        ));
        assert!(is_same_origin(
            &headers(None, Some("https://auth.example.com/v1/page?x=1")),
            OURS
        ));
        assert!(!is_same_origin(&headers(None, None), OURS));
    }

    #[test]
    fn a_null_origin_is_never_ours_even_with_our_referer() {
        let h = headers(Some("null"), Some("https://auth.example.com/login"));
        assert_eq!(request_origin(&h), None);
        assert!(!is_same_origin(&h, OURS));
    }

    #[test]
    fn an_opaque_referer_has_no_origin() {
        assert_eq!(
            request_origin(&headers(None, Some("data:text/html,hi"))),
            None
        );
    }
}
