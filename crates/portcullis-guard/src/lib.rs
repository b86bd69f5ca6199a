//! How a request to a Portcullis-protected service presents its credentials, in the one
//! order every Portcullis component uses: the session cookie first (by the names the
//! deployment's [`CookiePolicy`] accepts), then `Authorization: Bearer`. Values are returned
//! exactly as received — no percent-decoding, unquoting or re-encoding — because a token is
//! compared by hash.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

/// Session cookie names, most specific first. The server sets `__Host-…` behind https and
/// the bare name over plain http; `__Secure-…` is accepted for proxies that cannot use the
/// `__Host-` prefix. Which of them a deployment reads is its [`CookiePolicy`].
pub const SESSION_COOKIE_NAMES: [&str; 3] = [
    "__Host-portcullis_session",
    "__Secure-portcullis_session",
    "portcullis_session",
];

/// Which session cookie names count. Browsers accept a `__Host-` or `__Secure-` cookie only
/// from a secure origin (`__Host-` only from this very host), so behind https only those
/// are read: an unprefixed cookie can be planted by a sibling subdomain or by anyone on the
/// network path of a plain-http request, and would sign the browser in as someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookiePolicy {
    /// The public URL is https: `__Host-portcullis_session` and `__Secure-portcullis_session`.
    PrefixedOnly,
    /// The public URL is plain http (development): every name, `portcullis_session` included.
    AnyName,
}

impl CookiePolicy {
    /// The policy of a deployment reached at `public_url`.
    pub fn for_public_url(public_url: &str) -> Self {
        let https = public_url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        if https {
            CookiePolicy::PrefixedOnly
        } else {
            CookiePolicy::AnyName
        }
    }

    /// The accepted names, in [`SESSION_COOKIE_NAMES`]' order of preference.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            CookiePolicy::PrefixedOnly => &SESSION_COOKIE_NAMES[..2],
            CookiePolicy::AnyName => &SESSION_COOKIE_NAMES,
        }
    }
}

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

/// The request's credential: a session cookie `policy` accepts first, bearer fallback, None
/// when neither is present.
pub fn credential(headers: &HeaderMap, policy: CookiePolicy) -> Option<Credential<'_>> {
    session_cookie(headers, policy)
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

/// The first non-empty session cookie `policy` accepts, by the preference order of
/// [`SESSION_COOKIE_NAMES`].
pub fn session_cookie(headers: &HeaderMap, policy: CookiePolicy) -> Option<(&'static str, &str)> {
    let names = policy.names();
    let mut best: Option<(usize, &str)> = None;
    for (name, value) in cookies(headers) {
        let Some(rank) = names.iter().position(|n| *n == name) else {
            continue;
        };
        if !value.is_empty() && best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, value));
        }
    }
    best.map(|(rank, value)| (names[rank], value))
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
                credential(&h, CookiePolicy::AnyName),
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
        assert_eq!(
            credential(&h, CookiePolicy::AnyName).unwrap().token(),
            "host"
        );
        assert!(credential(&h, CookiePolicy::AnyName).unwrap().is_cookie());
    }

    #[test]
    fn bearer_fallback() {
        let h = headers(&[
            (&COOKIE, "portcullis_session="),
            (&AUTHORIZATION, "bearer  abc "),
        ]);
        assert_eq!(
            credential(&h, CookiePolicy::AnyName),
            Some(Credential::Bearer("abc"))
        );
        assert_eq!(
            credential(
                &headers(&[(&AUTHORIZATION, "Basic abc")]),
                CookiePolicy::AnyName
            ),
            None
        );
        assert_eq!(credential(&HeaderMap::new(), CookiePolicy::AnyName), None);
    }

    #[test]
    fn https_deployments_read_only_prefixed_names() {
        let secure = CookiePolicy::for_public_url("https://auth.example.com");
        assert_eq!(secure, CookiePolicy::PrefixedOnly);
        assert_eq!(
            CookiePolicy::for_public_url("HTTPS://auth.example.com"),
            CookiePolicy::PrefixedOnly
        );
        assert_eq!(
            CookiePolicy::for_public_url("http://127.0.0.1:8080"),
            CookiePolicy::AnyName
        );
        // A planted unprefixed cookie is not read, and does not hide the bearer token.
        let h = headers(&[
            (&COOKIE, "portcullis_session=planted"),
            (&AUTHORIZATION, "Bearer bear"),
        ]);
        assert_eq!(credential(&h, secure), Some(Credential::Bearer("bear")));
        assert_eq!(session_cookie(&h, secure), None);
        for name in &SESSION_COOKIE_NAMES[..2] {
            let h = headers(&[(&COOKIE, &format!("portcullis_session=planted; {name}=real"))]);
            assert_eq!(session_cookie(&h, secure), Some((*name, "real")));
        }
        let h = headers(&[(
            &COOKIE,
            "portcullis_session=p; __Secure-portcullis_session=s; __Host-portcullis_session=h",
        )]);
        assert_eq!(
            session_cookie(&h, secure),
            Some((SESSION_COOKIE_NAMES[0], "h"))
        );
    }

    #[test]
    fn token_is_never_reencoded() {
        // Standard-base64 tokens with '+', '/' and '=' must arrive byte for byte, and so
        // must anything that looks percent-encoded or quoted.
        let raw = "ab+c/d==";
        let h = headers(&[(&COOKIE, &format!("portcullis_session={raw}"))]);
        assert_eq!(credential(&h, CookiePolicy::AnyName).unwrap().token(), raw);
        let h = headers(&[(&COOKIE, "portcullis_session=a%2Bb")]);
        assert_eq!(
            credential(&h, CookiePolicy::AnyName).unwrap().token(),
            "a%2Bb"
        );
        let h = headers(&[(&AUTHORIZATION, &format!("Bearer {raw}"))]);
        assert_eq!(credential(&h, CookiePolicy::AnyName).unwrap().token(), raw);
        let h = headers(&[(&COOKIE, "portcullis_session=\"q=1\"")]);
        assert_eq!(
            credential(&h, CookiePolicy::AnyName).unwrap().token(),
            "\"q=1\""
        );
    }
}
