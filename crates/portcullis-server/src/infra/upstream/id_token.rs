//! Validation of an upstream's ID token (OpenID Connect Core §3.1.3.7): signature with a key
//! of the upstream's JWKS, `iss`, `aud` (and `azp`), `nonce`, `exp`/`iat` with a small leeway.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_core::TokenHash;
use serde_json::Value;

/// Clock skew tolerated between us and the upstream.
pub const LEEWAY_SECS: u64 = 60;

/// Which `iss` the token must carry.
#[derive(Clone, Debug)]
pub enum IssuerRule {
    Exact(String),
    /// Google's tokens say either form.
    OneOf(Vec<String>),
    /// Microsoft multi-tenant: the template's `{tenantid}` is the token's `tid`.
    TenantTemplate(String),
}

impl IssuerRule {
    fn accepts(&self, iss: &str, claims: &Value) -> bool {
        match self {
            IssuerRule::Exact(i) => i == iss,
            IssuerRule::OneOf(list) => list.iter().any(|i| i == iss),
            IssuerRule::TenantTemplate(t) => match claims.get("tid").and_then(Value::as_str) {
                Some(tid)
                    if !tid.is_empty()
                        && tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    t.replace("{tenantid}", tid) == iss
                }
                _ => false,
            },
        }
    }
}

pub struct Expected<'a> {
    pub issuer: &'a IssuerRule,
    pub client_id: &'a str,
    pub nonce: &'a str,
}

/// What the sign-in needs from a valid ID token (completed from userinfo when the token
/// lacks the email claims).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityClaims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// None when the token does not say (then userinfo may).
    pub email_verified: Option<bool>,
    pub name: Option<String>,
}

impl IdentityClaims {
    /// The email, if the upstream says it verified it.
    pub fn verified(&self) -> bool {
        self.email.is_some() && self.email_verified == Some(true)
    }

    /// The ID token leaves the email or its verification to userinfo (Core §5.4: claims
    /// requested by scope are released at userinfo when an access token is issued).
    pub fn needs_userinfo(&self) -> bool {
        self.email.is_none() || self.email_verified.is_none()
    }
}

/// `email_verified` as providers send it: a boolean, or (some) the string `"true"`.
pub fn flag(v: Option<&Value>) -> Option<bool> {
    match v {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdTokenError {
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    #[error("the ID token is signed with {0:?}, which is not accepted")]
    Algorithm(String),
    #[error("the ID token names a signing key the upstream does not publish")]
    UnknownKey,
    #[error("the ID token signature does not verify")]
    Signature,
    #[error("the ID token was issued by {0:?}, not by the configured issuer")]
    Issuer(String),
    #[error("the ID token is not meant for this client (aud/azp)")]
    Audience,
    #[error("the ID token's nonce is not the one this sign-in sent")]
    Nonce,
    #[error("the ID token has expired or is not valid yet")]
    Expired,
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let family_ok = matches!(
        (&jwk.algorithm, alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    let alg_ok = jwk
        .common
        .key_algorithm
        .map(|ka| format!("{ka:?}") == format!("{alg:?}"))
        .unwrap_or(true);
    family_ok && alg_ok
}

/// Validates `token` against `keys`. [`IdTokenError::UnknownKey`] tells the caller to
/// refetch the JWKS once and try again.
pub fn validate(
    token: &str,
    keys: &[Jwk],
    expected: &Expected<'_>,
) -> Result<IdentityClaims, IdTokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => keys.iter().filter(|k| key_fits(k, header.alg)).collect(),
    };
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[expected.client_id]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let mut last = IdTokenError::Signature;
    let mut claims = None;
    for jwk in candidates {
        if !key_fits(jwk, header.alg) {
            last = IdTokenError::Signature;
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Value>(token, &key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                last = match e.kind() {
                    ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                        IdTokenError::Expired
                    }
                    ErrorKind::InvalidAudience => IdTokenError::Audience,
                    ErrorKind::InvalidSignature => IdTokenError::Signature,
                    ErrorKind::MissingRequiredClaim(c) => {
                        IdTokenError::Malformed(format!("the {c} claim is missing"))
                    }
                    other => IdTokenError::Malformed(format!("{other:?}")),
                };
                // A claim problem does not depend on the key: stop trying others.
                if last != IdTokenError::Signature {
                    return Err(last);
                }
            }
        }
    }
    let claims = claims.ok_or(last)?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if !expected.issuer.accepts(iss, &claims) {
        return Err(IdTokenError::Issuer(iss.to_owned()));
    }
    // aud may be a list; with more than one audience, azp must name us (Core §3.1.3.7).
    let audiences = match claims.get("aud") {
        Some(Value::Array(a)) => a.len(),
        _ => 1,
    };
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(IdTokenError::Audience),
        None if audiences > 1 => return Err(IdTokenError::Audience),
        _ => {}
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= now + LEEWAY_SECS as i64 => {}
        _ => return Err(IdTokenError::Expired),
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if nonce.is_empty() || !TokenHash::of(nonce).ct_eq(&TokenHash::of(expected.nonce)) {
        return Err(IdTokenError::Nonce);
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| IdTokenError::Malformed("the sub claim is empty".into()))?;
    // Microsoft's multi-tenant endpoints: any tenant's admin can set any `email` on their
    // users, so it is verified only when Microsoft says the domain owner vouches for it
    // (`xms_edov`, an optional claim the app registration must request).
    let email_verified = match expected.issuer {
        IssuerRule::TenantTemplate(_) => Some(flag(claims.get("xms_edov")) == Some(true)),
        _ => flag(claims.get("email_verified")),
    };
    Ok(IdentityClaims {
        issuer: iss.to_owned(),
        subject: subject.to_owned(),
        email: claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty())
            .map(str::to_owned),
        email_verified,
        name: claims
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    /// A locally made Ed25519 key pair: its JWK (public) and the encoding key.
    fn keypair(kid: &str) -> (Jwk, EncodingKey) {
        let seed = portcullis_core::token::random_bytes::<32>().unwrap();
        // PKCS#8 v1 header for Ed25519 (RFC 8410), then the 32-byte seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let enc = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::EdDSA).unwrap();
        jwk.common.key_id = Some(kid.into());
        (jwk, enc)
    }

    fn sign(enc: &EncodingKey, kid: &str, claims: Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, enc).unwrap()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn good_claims() -> Value {
        json!({
            "iss": "https://idp.example.com",
            "aud": "client-1",
            "sub": "user-42",
            "nonce": "n-123",
            "iat": now(),
            "exp": now() + 300,
            "email": "alice@example.com",
            "email_verified": true,
            "name": "Alice",
        })
    }

    fn check(token: &str, keys: &[Jwk]) -> Result<IdentityClaims, IdTokenError> {
        let rule = IssuerRule::Exact("https://idp.example.com".into());
        validate(
            token,
            keys,
            &Expected {
                issuer: &rule,
                client_id: "client-1",
                nonce: "n-123",
            },
        )
    }

    #[test]
    fn accepts_a_good_token() {
        let (jwk, enc) = keypair("k1");
        let c = check(&sign(&enc, "k1", good_claims()), &[jwk]).unwrap();
        assert_eq!(c.subject, "user-42");
        assert_eq!(c.email.as_deref(), Some("alice@example.com"));
        assert_eq!(c.email_verified, Some(true));
        assert!(c.verified());
        assert!(!c.needs_userinfo());
        assert_eq!(c.name.as_deref(), Some("Alice"));
    }

    #[test]
    fn refuses_tampering_and_wrong_keys() {
        let (jwk, enc) = keypair("k1");
        let token = sign(&enc, "k1", good_claims());
        // Payload swapped for another one: the signature no longer matches.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        use base64::Engine;
        let forged = json!({"iss": "https://idp.example.com", "aud": "client-1", "sub": "mallory",
            "nonce": "n-123", "iat": now(), "exp": now() + 300});
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        assert_eq!(
            check(&parts.join("."), std::slice::from_ref(&jwk)),
            Err(IdTokenError::Signature)
        );
        // Signed by a key with the same kid that the upstream does not publish.
        let (_, impostor) = keypair("k1");
        assert_eq!(
            check(
                &sign(&impostor, "k1", good_claims()),
                std::slice::from_ref(&jwk)
            ),
            Err(IdTokenError::Signature)
        );
        // A kid we do not know: refetch signal.
        assert_eq!(
            check(&sign(&enc, "k9", good_claims()), &[jwk]),
            Err(IdTokenError::UnknownKey)
        );
    }

    #[test]
    fn refuses_wrong_claims() {
        let (jwk, enc) = keypair("k1");
        let keys = [jwk];
        let with = |k: &str, v: Value| {
            let mut c = good_claims();
            c[k] = v;
            sign(&enc, "k1", c)
        };
        assert!(matches!(
            check(&with("iss", json!("https://evil.example.com")), &keys),
            Err(IdTokenError::Issuer(_))
        ));
        assert_eq!(
            check(&with("aud", json!("someone-else")), &keys),
            Err(IdTokenError::Audience)
        );
        assert_eq!(
            check(&with("aud", json!(["client-1", "other"])), &keys),
            Err(IdTokenError::Audience),
            "several audiences need azp"
        );
        let mut c = good_claims();
        c["aud"] = json!(["client-1", "other"]);
        c["azp"] = json!("client-1");
        assert!(check(&sign(&enc, "k1", c), &keys).is_ok());
        assert_eq!(
            check(&with("nonce", json!("replayed")), &keys),
            Err(IdTokenError::Nonce)
        );
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("nonce");
        assert_eq!(check(&sign(&enc, "k1", c), &keys), Err(IdTokenError::Nonce));
        assert_eq!(
            check(&with("exp", json!(now() - 3600)), &keys),
            Err(IdTokenError::Expired)
        );
        assert_eq!(
            check(&with("iat", json!(now() + 3600)), &keys),
            Err(IdTokenError::Expired)
        );
        // Within the leeway is fine.
        assert!(check(&with("exp", json!(now() - 10)), &keys).is_ok());
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("email");
        let claims = check(&sign(&enc, "k1", c), &keys).unwrap();
        assert_eq!(claims.email, None);
        assert!(claims.needs_userinfo());
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("email_verified");
        let claims = check(&sign(&enc, "k1", c), &keys).unwrap();
        assert_eq!(claims.email_verified, None);
        assert!(claims.needs_userinfo() && !claims.verified());
        let claims = check(&with("email_verified", json!("true")), &keys).unwrap();
        assert_eq!(claims.email_verified, Some(true));
        let claims = check(&with("email_verified", json!(false)), &keys).unwrap();
        assert_eq!(claims.email_verified, Some(false));
        assert!(!claims.needs_userinfo());
    }

    #[test]
    fn microsoft_multi_tenant_email_is_verified_only_with_xms_edov() {
        let (jwk, enc) = keypair("k1");
        let keys = [jwk];
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let rule =
            IssuerRule::TenantTemplate("https://login.microsoftonline.com/{tenantid}/v2.0".into());
        let expected = Expected {
            issuer: &rule,
            client_id: "client-1",
            nonce: "n-123",
        };
        let token = |extra: Value| {
            let mut c = good_claims();
            c["iss"] = json!(format!("https://login.microsoftonline.com/{tid}/v2.0"));
            c["tid"] = json!(tid);
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            sign(&enc, "k1", c)
        };
        // `email_verified: true` from a tenant means nothing; only xms_edov counts.
        let c = validate(&token(json!({})), &keys, &expected).unwrap();
        assert_eq!(c.email_verified, Some(false));
        assert!(!c.needs_userinfo(), "nothing userinfo could add");
        let c = validate(&token(json!({"xms_edov": false})), &keys, &expected).unwrap();
        assert_eq!(c.email_verified, Some(false));
        let c = validate(&token(json!({"xms_edov": true})), &keys, &expected).unwrap();
        assert_eq!(c.email_verified, Some(true));
    }

    #[test]
    fn refuses_symmetric_and_unsigned_tokens() {
        let (jwk, _) = keypair("k1");
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good_claims(),
            &EncodingKey::from_secret(b"client secret"),
        )
        .unwrap();
        assert!(matches!(
            check(&hs, std::slice::from_ref(&jwk)),
            Err(IdTokenError::Algorithm(_))
        ));
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!("{}.{}.", b64(json!({"alg": "none"})), b64(good_claims()));
        assert!(matches!(
            check(&none, &[jwk]),
            Err(IdTokenError::Malformed(_))
        ));
    }

    #[test]
    fn microsoft_tenant_template() {
        let rule =
            IssuerRule::TenantTemplate("https://login.microsoftonline.com/{tenantid}/v2.0".into());
        let iss = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
        assert!(rule.accepts(iss, &json!({"tid": "9188040d-6c67-4c5b-b112-36a304b66dad"})));
        assert!(!rule.accepts(iss, &json!({"tid": "00000000-0000-0000-0000-000000000000"})));
        assert!(!rule.accepts(iss, &json!({})));
        assert!(!rule.accepts(
            "https://login.microsoftonline.com/x/v2.0",
            &json!({"tid": "x/../y"})
        ));
    }
}
