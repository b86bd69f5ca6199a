//! How a request to a Portcullis-protected service presents its credentials, in the one
//! order every Portcullis component uses: the session cookie first (any of the three
//! accepted names), then `Authorization: Bearer`. Values are returned exactly as received —
//! no percent-decoding, unquoting or re-encoding — because a token is compared by hash.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

/// Accepted session cookie names, most specific first. The server sets `__Host-…` behind
/// https and the bare name over plain http; `__Secure-…` is accepted for proxies that
/// cannot use the `__Host-` prefix.
pub const SESSION_COOKIE_NAMES: [&str; 3] = [
    "__Host-portcullis_session",
    "__Secure-portcullis_session",
    "portcullis_session",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A session token from a cookie; cookie-authenticated mutations need a CSRF check.
    Cookie { name: &'static str, token: &'a str },
    /// A session token, access token or secret key from `Authorization: Bearer`.
    Bearer(&'a str),
}

impl<'a> Credential<'a> {
    pub fn token(&self) -> &'a str {
        match self {
            Credential::Cookie { token, .. } | Credential::Bearer(token) => token,
        }
    }

    pub fn is_cookie(&self) -> bool {
        matches!(self, Credential::Cookie { .. })
    }
}

/// The request's credential: cookie first, bearer fallback, None when neither is present.
pub fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    session_cookie(headers)
        .map(|(name, token)| Credential::Cookie { name, token })
        .or_else(|| bearer(headers).map(Credential::Bearer))
}

/// Every `name=value` pair of every `Cookie` header, values exactly as received.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim_start().split_once('='))
        .map(|(name, value)| (name.trim_end(), value))
}

/// The value of the first cookie called `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The first non-empty session cookie, by the preference order of [`SESSION_COOKIE_NAMES`].
pub fn session_cookie(headers: &HeaderMap) -> Option<(&'static str, &str)> {
    let mut best: Option<(usize, &str)> = None;
    for (name, value) in cookies(headers) {
        let Some(rank) = SESSION_COOKIE_NAMES.iter().position(|n| *n == name) else {
            continue;
        };
        if !value.is_empty() && best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, value));
        }
    }
    best.map(|(rank, value)| (SESSION_COOKIE_NAMES[rank], value))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn each_cookie_name_is_accepted() {
        for name in SESSION_COOKIE_NAMES {
            let h = headers(&[(&COOKIE, &format!("other=1; {name}=tok123"))]);
            assert_eq!(
                credential(&h),
                Some(Credential::Cookie {
                    name,
                    token: "tok123"
                })
            );
        }
    }

    #[test]
    fn cookie_wins_over_bearer_and_host_prefix_wins() {
        let h = headers(&[
            (
                &COOKIE,
                "portcullis_session=plain; __Host-portcullis_session=host",
            ),
            (&AUTHORIZATION, "Bearer bear"),
        ]);
        assert_eq!(credential(&h).unwrap().token(), "host");
        assert!(credential(&h).unwrap().is_cookie());
    }

    #[test]
    fn bearer_fallback() {
        let h = headers(&[
            (&COOKIE, "portcullis_session="),
            (&AUTHORIZATION, "bearer  abc "),
        ]);
        assert_eq!(credential(&h), Some(Credential::Bearer("abc")));
        assert_eq!(credential(&headers(&[(&AUTHORIZATION, "Basic abc")])), None);
        assert_eq!(credential(&HeaderMap::new()), None);
    }

    #[test]
    fn token_is_never_reencoded() {
        // Standard-base64 tokens with '+', '/' and '=' must arrive byte for byte, and so
        // must anything that looks percent-encoded or quoted.
        let raw = "ab+c/d==";
        let h = headers(&[(&COOKIE, &format!("portcullis_session={raw}"))]);
        assert_eq!(credential(&h).unwrap().token(), raw);
        let h = headers(&[(&COOKIE, "portcullis_session=a%2Bb")]);
        assert_eq!(credential(&h).unwrap().token(), "a%2Bb");
        let h = headers(&[(&AUTHORIZATION, &format!("Bearer {raw}"))]);
        assert_eq!(credential(&h).unwrap().token(), raw);
        let h = headers(&[(&COOKIE, "portcullis_session=\"q=1\"")]);
        assert_eq!(credential(&h).unwrap().token(), "\"q=1\"");
    }
}
