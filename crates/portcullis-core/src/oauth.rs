//! OAuth 2.0 / OpenID Connect domain types: clients (applications) of a project, what they
//! may do, and the rules for matching what they send against what they registered.

use crate::{OrgId, ProjectId, RedirectUri, Timestamp, TokenHash, ValidationError};

/// JWS algorithms Portcullis signs with. EdDSA (Ed25519) is the default; RS256 exists for
/// relying parties that know nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    EdDSA,
    ES256,
    RS256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "signing_alg",
                    "signing_alg must be one of EdDSA, ES256, RS256",
                )
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Can keep a secret (a server-side web app).
    Confidential,
    /// Cannot (a single-page or native app): PKCE is mandatory, no secret.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            _ => Err(ValidationError::new(
                "type",
                "type must be 'confidential' or 'public'",
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "authorization_code" => Ok(Self::AuthorizationCode),
            "refresh_token" => Ok(Self::RefreshToken),
            "client_credentials" => Ok(Self::ClientCredentials),
            _ => Err(ValidationError::new(
                "grant_types",
                "grant_types must be among authorization_code, refresh_token, client_credentials",
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
            TokenEndpointAuthMethod::None => "none",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "none" => Ok(Self::None),
            _ => Err(ValidationError::new(
                "token_endpoint_auth_method",
                "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none",
            )),
        }
    }
}

/// A client id as issued: `pcc_` + 22 base64url characters. Public, so not hashed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Result<Self, getrandom::Error> {
        use base64::Engine;
        let bytes = crate::token::random_bytes::<16>()?;
        Ok(Self(format!(
            "pcc_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Accepts any plausible id from a request; unknown ones simply match no client.
    pub fn parse(s: &str) -> Option<Self> {
        (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An OAuth client (application) of a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: ClientId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub name: String,
    pub client_type: ClientType,
    /// SHA-256 of the client secret (confidential clients only).
    pub secret_hash: Option<TokenHash>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub access_token_ttl_secs: u32,
    pub signing_alg: SigningAlg,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl OAuthClient {
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }

    /// Constant-time check of a presented client secret against the stored digest.
    pub fn verify_secret(&self, presented: &str) -> bool {
        self.secret_hash
            .is_some_and(|h| h.ct_eq(&TokenHash::of(presented)))
    }

    /// Exact string match against a registered redirect URI — except that for loopback
    /// `http` redirects the port is ignored (RFC 8252 §7.3: native apps bind any free port).
    pub fn redirect_uri_allowed(&self, requested: &str) -> bool {
        uri_allowed(&self.redirect_uris, requested)
    }

    pub fn post_logout_redirect_allowed(&self, requested: &str) -> bool {
        uri_allowed(&self.post_logout_redirect_uris, requested)
    }
}

fn uri_allowed(registered: &[RedirectUri], requested: &str) -> bool {
    if registered.iter().any(|r| r.as_str() == requested) {
        return true;
    }
    let Some(req) = loopback_without_port(requested) else {
        return false;
    };
    registered
        .iter()
        .any(|r| loopback_without_port(r.as_str()).is_some_and(|r| r == req))
}

/// `http://127.0.0.1:1234/cb` → `http://127.0.0.1/cb`; None when not a loopback http URI.
fn loopback_without_port(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d == "localhost",
    };
    if !loopback {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.to_string())
}

/// Scopes Portcullis understands; others are refused with `invalid_scope`.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Parses a space-separated scope list, refusing unknown scopes and keeping order unique.
pub fn parse_scopes(raw: &str) -> Result<Vec<String>, ValidationError> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !SUPPORTED_SCOPES.contains(&s) {
            return Err(ValidationError::new(
                "scope",
                format!("unsupported scope {s:?}"),
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// PKCE S256: base64url(SHA-256(verifier)) compared in constant time (RFC 7636).
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    valid
        && computed.len() == challenge.len()
        && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> OAuthClient {
        OAuthClient {
            id: ClientId::generate().unwrap(),
            org_id: OrgId::new(),
            project_id: ProjectId::new(),
            name: "app".into(),
            client_type: ClientType::Public,
            secret_hash: Some(TokenHash::of("s3cret")),
            redirect_uris: uris
                .iter()
                .map(|u| RedirectUri::parse(u).unwrap())
                .collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            access_token_ttl_secs: 600,
            signing_alg: SigningAlg::EdDSA,
            created_at: crate::now(),
            updated_at: crate::now(),
        }
    }

    #[test]
    fn redirect_matching_is_exact_except_loopback_port() {
        let c = client(&["https://app.example.com/cb", "http://127.0.0.1/cb"]);
        assert!(c.redirect_uri_allowed("https://app.example.com/cb"));
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://APP.example.com/cb",
            "https://app.example.com/c",
        ] {
            assert!(!c.redirect_uri_allowed(bad), "{bad}");
        }
        assert!(c.redirect_uri_allowed("http://127.0.0.1:51234/cb"));
        assert!(!c.redirect_uri_allowed("http://127.0.0.1:51234/other"));
        assert!(!c.redirect_uri_allowed("http://localhost:51234/cb"));
        assert!(c.verify_secret("s3cret") && !c.verify_secret("s3cre"));
    }

    #[test]
    fn scopes_and_pkce() {
        assert_eq!(
            parse_scopes("openid  email openid").unwrap(),
            vec!["openid", "email"]
        );
        assert_eq!(parse_scopes("openid admin").unwrap_err().field, "scope");
        // RFC 7636 appendix B.
        assert!(pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_s256_matches(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()).unwrap(), alg);
        }
    }
}
