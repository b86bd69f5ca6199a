//! The browser leg of an upstream sign-in: the state cookie that binds `state`, `nonce` and
//! the PKCE verifier to the browser that started, the authorization redirect, the code
//! exchange, and where the browser may be sent back to.
//!
//! The cookie is sealed (AES-256-GCM under a key derived from the master key), so any node
//! can open it and no table is needed; it lives 10 minutes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::MasterKey;
use crate::infra::crypto::SecretBox;
use crate::infra::upstream::discovery::Metadata;
use crate::infra::upstream::net::Fetcher;
use crate::infra::upstream::{Upstream, UpstreamError};

/// HKDF purpose of the state cookie's key (distinct from every other sealed secret).
pub const STATE_PURPOSE: &str = "portcullis sso state cookie";
const STATE_AAD: &[u8] = b"sso-state-v1";
pub const STATE_TTL_SECS: i64 = 600;

/// The cookie's name: `__Host-` (with `Secure`) behind https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-portcullis_sso"
    } else {
        "portcullis_sso"
    }
}

/// What the callback must find again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingSignIn {
    /// Provider id as in the route.
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub return_to: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl PendingSignIn {
    pub fn new(provider: &str, return_to: String) -> Result<Self, UpstreamError> {
        Ok(Self {
            provider: provider.to_owned(),
            state: random()?,
            nonce: random()?,
            verifier: random()?,
            return_to,
            expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + STATE_TTL_SECS,
        })
    }

    pub fn seal(&self, master: &MasterKey) -> Result<String, UpstreamError> {
        let json = serde_json::to_vec(self).map_err(|e| UpstreamError::Internal(e.to_string()))?;
        let sealed = SecretBox::new(master, STATE_PURPOSE)
            .and_then(|b| b.seal(&json, STATE_AAD))
            .map_err(|e| UpstreamError::Internal(e.to_string()))?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// None for anything that is not a live cookie this server sealed.
    pub fn open(master: &MasterKey, cookie: &str) -> Option<Self> {
        let sealed = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        let plain = SecretBox::new(master, STATE_PURPOSE)
            .ok()?
            .open(&sealed, STATE_AAD)
            .ok()?;
        let p: Self = serde_json::from_slice(&plain).ok()?;
        (p.expires_at > time::OffsetDateTime::now_utc().unix_timestamp()).then_some(p)
    }

    /// `state` from the callback is this cookie's, compared in constant time.
    pub fn state_matches(&self, presented: &str) -> bool {
        portcullis_core::TokenHash::of(presented)
            .ct_eq(&portcullis_core::TokenHash::of(&self.state))
    }

    /// The PKCE S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(self.verifier.as_bytes()))
    }
}

fn random() -> Result<String, UpstreamError> {
    portcullis_core::token::random_bytes::<32>()
        .map(|b| URL_SAFE_NO_PAD.encode(b))
        .map_err(|e| UpstreamError::Internal(format!("no randomness: {e}")))
}

/// The upstream authorization request the browser is sent to.
pub fn authorize_url(
    meta: &Metadata,
    upstream: &Upstream,
    redirect_uri: &str,
    pending: &PendingSignIn,
    login_hint: Option<&str>,
) -> Result<String, UpstreamError> {
    let mut url = url::Url::parse(&meta.discovery.authorization_endpoint)
        .map_err(|e| UpstreamError::Failed(format!("authorization_endpoint: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &upstream.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &upstream.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
            q.append_pair("login_hint", hint);
        }
    }
    Ok(url.into())
}

/// What the token endpoint hands back that the sign-in uses.
pub struct Tokens {
    pub id_token: String,
    /// For userinfo, when the ID token leaves the email claims to it.
    pub access_token: Option<String>,
}

/// Redeems the code at the upstream's token endpoint.
pub async fn exchange_code(
    http: &Fetcher,
    meta: &Metadata,
    upstream: &Upstream,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, UpstreamError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let secret = upstream.client_secret();
    let mut authorization = None;
    if meta.discovery.uses_basic_auth() {
        // RFC 6749 §2.3.1: both parts form-urlencoded before the Basic encoding.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&upstream.client_id),
            enc(secret)
        ));
        authorization = Some(format!("Basic {basic}"));
    } else {
        form.push(("client_id", &upstream.client_id));
        form.push(("client_secret", secret));
    }
    let (status, body) = http
        .post_form(&meta.discovery.token_endpoint, authorization, &form)
        .await?;
    if !status.is_success() {
        let error = body.get("error").and_then(|v| v.as_str()).unwrap_or("?");
        return Err(UpstreamError::Failed(format!(
            "token endpoint refused the code: HTTP {} {}",
            status.as_u16(),
            error.chars().take(64).collect::<String>()
        )));
    }
    let text = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let id_token = text("id_token").ok_or_else(|| {
        UpstreamError::Failed(
            "token endpoint answered without an id_token (is `openid` among the scopes?)".into(),
        )
    })?;
    Ok(Tokens {
        id_token,
        access_token: text("access_token"),
    })
}

/// Where a sign-in may send the browser back to.
#[derive(Debug, PartialEq, Eq)]
pub enum ReturnTo {
    /// Accepted as is.
    Ok(String),
    /// An absolute URL whose origin must be a project's allowed origin.
    NeedsOrigin {
        url: String,
        origin: String,
    },
    Refused,
}

/// Relative paths (`/…`, not `//…`) and this server's own origin are fine; another
/// absolute URL is fine only if its origin is allowed by the project the sign-in is for
/// (the caller asks the store). Anything else would be an open redirect.
pub fn classify_return_to(raw: Option<&str>, public_origin: &str) -> ReturnTo {
    let raw = match raw.map(str::trim) {
        None | Some("") => return ReturnTo::Ok("/".into()),
        Some(r) => r,
    };
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control()) {
        return ReturnTo::Refused;
    }
    if raw.starts_with('/') {
        // `//host` and `/\host` are network-path references browsers follow off-site.
        if raw.starts_with("//") || raw.starts_with("/\\") {
            return ReturnTo::Refused;
        }
        return ReturnTo::Ok(raw.to_owned());
    }
    let Ok(url) = url::Url::parse(raw) else {
        return ReturnTo::Refused;
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return ReturnTo::Refused;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return ReturnTo::Refused;
    }
    let origin = url.origin().ascii_serialization();
    if origin == public_origin {
        ReturnTo::Ok(url.into())
    } else {
        ReturnTo::NeedsOrigin {
            url: url.into(),
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        crate::Config {
            master_key: Some(
                base64::engine::general_purpose::STANDARD
                    .encode([3u8; 32])
                    .into(),
            ),
            ..crate::Config::default()
        }
        .master_key()
        .unwrap()
    }

    #[test]
    fn state_cookie_round_trip_and_tamper() {
        let m = master();
        let p = PendingSignIn::new("google", "/after".into()).unwrap();
        let sealed = p.seal(&m).unwrap();
        let opened = PendingSignIn::open(&m, &sealed).unwrap();
        assert_eq!(opened, p);
        assert!(opened.state_matches(&p.state));
        assert!(!opened.state_matches("forged"));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        bytes[20] ^= 1;
        assert!(PendingSignIn::open(&m, &URL_SAFE_NO_PAD.encode(bytes)).is_none());
        assert!(PendingSignIn::open(&m, "garbage").is_none());
        let mut expired = p.clone();
        expired.expires_at = 1;
        assert!(PendingSignIn::open(&m, &expired.seal(&m).unwrap()).is_none());
        // PKCE S256 of the RFC 7636 appendix B example.
        let mut known = p;
        known.verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into();
        assert_eq!(
            known.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn return_to_rules() {
        let me = "https://auth.example.com";
        assert_eq!(classify_return_to(None, me), ReturnTo::Ok("/".into()));
        assert_eq!(
            classify_return_to(Some("/console?x=1"), me),
            ReturnTo::Ok("/console?x=1".into())
        );
        assert_eq!(
            classify_return_to(Some("https://auth.example.com/x"), me),
            ReturnTo::Ok("https://auth.example.com/x".into())
        );
        assert_eq!(
            classify_return_to(Some("https://app.example.com/x"), me),
            ReturnTo::NeedsOrigin {
                url: "https://app.example.com/x".into(),
                origin: "https://app.example.com".into()
            }
        );
        for bad in [
            "//evil.example.com/x",
            "/\\evil.example.com",
            "javascript:alert(1)",
            "evil.example.com",
            "https://user@auth.example.com.evil.com/",
            "/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(
                classify_return_to(Some(bad), me),
                ReturnTo::Refused,
                "{bad}"
            );
        }
    }
}
