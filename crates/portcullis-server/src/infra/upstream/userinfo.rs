//! The userinfo response (OpenID Connect Core §5.3): where a provider that issued an access
//! token may release `email` and `email_verified` instead of putting them in the ID token
//! (Core §5.4). Its `sub` must be the ID token's (§5.3.2), or the answer is someone else's.

use serde_json::Value;

use super::UpstreamError;
use super::id_token::{IdentityClaims, flag};
use super::net::Fetcher;

/// GETs the userinfo endpoint with the access token (JSON answers only; a signed or
/// encrypted userinfo JWT is not supported and counts as unusable).
pub async fn fetch(
    http: &Fetcher,
    endpoint: &str,
    access_token: &str,
) -> Result<Value, UpstreamError> {
    http.get_json(endpoint, Some(access_token)).await
}

/// Completes `claims` from a userinfo answer: the ID token's values win where it has them;
/// a verification flag is taken only for the address it is about.
pub fn complete(mut claims: IdentityClaims, info: &Value) -> Result<IdentityClaims, UpstreamError> {
    let sub = info.get("sub").and_then(Value::as_str).unwrap_or("");
    if sub != claims.subject {
        return Err(UpstreamError::Failed(format!(
            "the userinfo answer is about another subject ({:?}) than the ID token",
            sub.chars().take(64).collect::<String>()
        )));
    }
    let email = info
        .get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let verified = flag(info.get("email_verified"));
    match (&claims.email, email) {
        (None, Some(e)) => {
            claims.email = Some(e.to_owned());
            if claims.email_verified.is_none() {
                claims.email_verified = verified;
            }
        }
        (Some(mine), Some(e))
            if mine.eq_ignore_ascii_case(e) && claims.email_verified.is_none() =>
        {
            claims.email_verified = verified;
        }
        _ => {}
    }
    if claims.name.is_none() {
        claims.name = info.get("name").and_then(Value::as_str).map(str::to_owned);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_token(email: Option<&str>, verified: Option<bool>) -> IdentityClaims {
        IdentityClaims {
            issuer: "https://idp.example.com".into(),
            subject: "sub-1".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
        }
    }

    #[test]
    fn userinfo_fills_what_the_token_left_out() {
        let c = complete(
            from_token(None, None),
            &json!({"sub": "sub-1", "email": "a@example.com", "email_verified": true, "name": "A"}),
        )
        .unwrap();
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        assert_eq!(c.email_verified, Some(true));
        assert_eq!(c.name.as_deref(), Some("A"));
        // The token's email stands; userinfo's flag counts only for that same address.
        let c = complete(
            from_token(Some("a@example.com"), None),
            &json!({"sub": "sub-1", "email": "A@example.com", "email_verified": "true"}),
        )
        .unwrap();
        assert_eq!(c.email_verified, Some(true));
        let c = complete(
            from_token(Some("a@example.com"), None),
            &json!({"sub": "sub-1", "email": "other@example.com", "email_verified": true}),
        )
        .unwrap();
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        assert_eq!(c.email_verified, None);
        // A token that said "not verified" is not overruled.
        let c = complete(
            from_token(Some("a@example.com"), Some(false)),
            &json!({"sub": "sub-1", "email": "a@example.com", "email_verified": true}),
        )
        .unwrap();
        assert_eq!(c.email_verified, Some(false));
        // Nothing there either.
        let c = complete(from_token(None, None), &json!({"sub": "sub-1"})).unwrap();
        assert_eq!(c.email, None);
    }

    #[test]
    fn another_subjects_answer_is_refused() {
        for info in [
            json!({"sub": "sub-2", "email": "victim@example.com", "email_verified": true}),
            json!({"email": "victim@example.com", "email_verified": true}),
        ] {
            assert!(complete(from_token(None, None), &info).is_err(), "{info}");
        }
    }
}
