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

impl<'de> serde::Deserialize<'de> for ClientId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ClientId::parse(&raw).ok_or_else(|| serde::de::Error::custom("malformed client_id"))
    }
}

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

    /// Whether an authorization for `redirect_uri` needs the user's explicit approval at
    /// least once, first-party or not: a public client redirecting to a scheme any app may
    /// claim cannot prove that the app receiving the code is this client (RFC 8252 §8.6),
    /// so a malicious app registering the same scheme could otherwise start a sign-in and
    /// get a code silently.
    pub fn needs_user_approval(&self, redirect_uri: &str) -> bool {
        self.client_type == ClientType::Public && redirect_claimable_by_any_app(redirect_uri)
    }
}

/// A redirect URI that any app on the user's device may claim: a private-use scheme
/// (`com.example.app:/cb`, RFC 8252 §7.1) — anything but `https` and loopback `http`.
pub fn redirect_claimable_by_any_app(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return true;
    };
    match url.scheme() {
        "https" => false,
        "http" => loopback_without_port(uri).is_none(),
        _ => true,
    }
}

/// Allowed access-token lifetimes, in seconds.
pub const ACCESS_TOKEN_TTL_SECS: std::ops::RangeInclusive<u32> = 300..=3600;
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u32 = 600;
pub const DEFAULT_GRANT_TYPES: [GrantType; 2] =
    [GrantType::AuthorizationCode, GrantType::RefreshToken];
/// Per list (redirect URIs, post-logout redirect URIs): enough for every real deployment,
/// small enough that matching stays trivial.
pub const MAX_CLIENT_URIS: usize = 20;

/// A client secret as issued: `pcs_` + 256 random bits in base64url. Shown once; the store
/// keeps only its SHA-256 ([`ClientSecret::hash`]), which [`OAuthClient::verify_secret`] checks.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        use base64::Engine;
        let bytes = crate::token::random_bytes::<32>()?;
        Ok(Self(format!(
            "pcs_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

/// A client's display name: 1–100 characters, trimmed, no control characters.
pub fn parse_client_name(raw: &str) -> Result<String, ValidationError> {
    crate::org::parse_name("name", raw)
}

/// Parses the redirect URIs of a client for `field` (`redirect_uris` or
/// `post_logout_redirect_uris`): each a [`RedirectUri`], no wildcards, no duplicates kept.
/// Loopback `http` URIs are registered without caring about the port: any port matches
/// (RFC 8252 §7.3), so `http://127.0.0.1:*/cb` is neither needed nor accepted.
pub fn parse_client_uris(
    field: &'static str,
    raw: &[String],
) -> Result<Vec<RedirectUri>, ValidationError> {
    if raw.len() > MAX_CLIENT_URIS {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_CLIENT_URIS} URIs"),
        ));
    }
    let mut out: Vec<RedirectUri> = Vec::with_capacity(raw.len());
    for s in raw {
        if s.contains('*') {
            return Err(ValidationError::new(
                field,
                format!(
                    "{s:?}: wildcards are not allowed; URIs match exactly, except that a loopback \
                     http URI (http://127.0.0.1/cb) matches any port"
                ),
            ));
        }
        let uri = RedirectUri::parse(s).map_err(|e| ValidationError::new(field, e.message))?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// Parses grant type names, keeping the order and dropping repeats.
pub fn parse_grant_types(raw: &[String]) -> Result<Vec<GrantType>, ValidationError> {
    let mut out: Vec<GrantType> = Vec::with_capacity(raw.len());
    for s in raw {
        let g = GrantType::parse(s)?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// An access-token lifetime from a request, which may be any integer.
pub fn parse_access_token_ttl(raw: i64) -> Result<u32, ValidationError> {
    u32::try_from(raw)
        .ok()
        .filter(|t| ACCESS_TOKEN_TTL_SECS.contains(t))
        .ok_or_else(ttl_out_of_range)
}

fn ttl_out_of_range() -> ValidationError {
    ValidationError::new(
        "access_token_ttl_secs",
        format!(
            "access_token_ttl_secs must be between {} and {}",
            ACCESS_TOKEN_TTL_SECS.start(),
            ACCESS_TOKEN_TTL_SECS.end()
        ),
    )
}

impl ClientType {
    /// How a client of this type authenticates at the token endpoint unless it says otherwise.
    pub fn default_auth_method(self) -> TokenEndpointAuthMethod {
        match self {
            ClientType::Confidential => TokenEndpointAuthMethod::ClientSecretBasic,
            ClientType::Public => TokenEndpointAuthMethod::None,
        }
    }
}

/// What a caller chose when registering a client; `None` takes the default.
#[derive(Clone, Debug)]
pub struct ClientRegistration {
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Default: `authorization_code`, `refresh_token`.
    pub grant_types: Option<Vec<GrantType>>,
    /// Default: `client_secret_basic` for confidential clients, `none` for public ones.
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Default: 600.
    pub access_token_ttl_secs: Option<u32>,
    /// Default: EdDSA.
    pub signing_alg: Option<SigningAlg>,
}

impl OAuthClient {
    /// A new client from a registration, with defaults filled in and the combination of
    /// fields checked ([`OAuthClient::validate`]). Confidential clients need the hash of
    /// the secret issued to them; public clients must have none.
    pub fn register(
        id: ClientId,
        org_id: OrgId,
        project_id: ProjectId,
        reg: ClientRegistration,
        secret_hash: Option<TokenHash>,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        let client = OAuthClient {
            id,
            org_id,
            project_id,
            name: parse_client_name(&reg.name)?,
            client_type: reg.client_type,
            secret_hash,
            redirect_uris: reg.redirect_uris,
            post_logout_redirect_uris: reg.post_logout_redirect_uris,
            grant_types: reg
                .grant_types
                .unwrap_or_else(|| DEFAULT_GRANT_TYPES.to_vec()),
            token_endpoint_auth_method: reg
                .token_endpoint_auth_method
                .unwrap_or_else(|| reg.client_type.default_auth_method()),
            access_token_ttl_secs: reg
                .access_token_ttl_secs
                .unwrap_or(DEFAULT_ACCESS_TOKEN_TTL_SECS),
            signing_alg: reg.signing_alg.unwrap_or(SigningAlg::EdDSA),
            created_at: now,
            updated_at: now,
        };
        client.validate()?;
        Ok(client)
    }

    /// Public clients cannot keep a secret, so PKCE is what binds their codes.
    pub fn requires_pkce(&self) -> bool {
        self.client_type == ClientType::Public
    }

    /// Checks that the fields make sense together; each error names the field to fix.
    /// Run on every new client and on every client a patch produces.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if parse_client_name(&self.name)? != self.name {
            return Err(ValidationError::new(
                "name",
                "name must not start or end with whitespace",
            ));
        }
        if self.grant_types.is_empty() {
            return Err(ValidationError::new(
                "grant_types",
                "grant_types must name at least one grant type",
            ));
        }
        match self.client_type {
            ClientType::Public => {
                if self.token_endpoint_auth_method != TokenEndpointAuthMethod::None {
                    return Err(ValidationError::new(
                        "token_endpoint_auth_method",
                        "public clients cannot keep a secret: token_endpoint_auth_method must be \
                         'none' (PKCE is required instead)",
                    ));
                }
                if self.allows_grant(GrantType::ClientCredentials) {
                    return Err(ValidationError::new(
                        "grant_types",
                        "client_credentials needs a confidential client",
                    ));
                }
                if self.secret_hash.is_some() {
                    return Err(ValidationError::new(
                        "type",
                        "public clients have no secret",
                    ));
                }
            }
            ClientType::Confidential => {
                if self.token_endpoint_auth_method == TokenEndpointAuthMethod::None {
                    return Err(ValidationError::new(
                        "token_endpoint_auth_method",
                        "confidential clients authenticate with client_secret_basic or \
                         client_secret_post",
                    ));
                }
                if self.secret_hash.is_none() {
                    return Err(ValidationError::new(
                        "type",
                        "confidential clients need a secret",
                    ));
                }
            }
        }
        if self.allows_grant(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(ValidationError::new(
                "redirect_uris",
                "authorization_code needs at least one redirect URI",
            ));
        }
        if self.allows_grant(GrantType::RefreshToken)
            && !self.allows_grant(GrantType::AuthorizationCode)
        {
            return Err(ValidationError::new(
                "grant_types",
                "refresh_token is only issued together with authorization_code",
            ));
        }
        for (field, uris) in [
            ("redirect_uris", &self.redirect_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
        ] {
            if uris.len() > MAX_CLIENT_URIS {
                return Err(ValidationError::new(
                    field,
                    format!("at most {MAX_CLIENT_URIS} URIs"),
                ));
            }
        }
        if !ACCESS_TOKEN_TTL_SECS.contains(&self.access_token_ttl_secs) {
            return Err(ttl_out_of_range());
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algs_and_client_ids() {
        let id: ClientId = serde_json::from_str("\"pcc_x\"").unwrap();
        assert_eq!(id.as_str(), "pcc_x");
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()).unwrap(), alg);
        }
    }

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

    fn registration(client_type: ClientType) -> ClientRegistration {
        ClientRegistration {
            name: "  Web app ".into(),
            client_type,
            redirect_uris: vec![RedirectUri::parse("https://app.example.com/cb").unwrap()],
            post_logout_redirect_uris: vec![],
            grant_types: None,
            token_endpoint_auth_method: None,
            access_token_ttl_secs: None,
            signing_alg: None,
        }
    }

    fn register(
        reg: ClientRegistration,
        secret: Option<&ClientSecret>,
    ) -> Result<OAuthClient, ValidationError> {
        OAuthClient::register(
            ClientId::generate().unwrap(),
            OrgId::new(),
            ProjectId::new(),
            reg,
            secret.map(ClientSecret::hash),
            crate::now(),
        )
    }

    #[test]
    fn registration_fills_defaults() {
        let secret = ClientSecret::generate().unwrap();
        let c = register(registration(ClientType::Confidential), Some(&secret)).unwrap();
        assert_eq!(c.name, "Web app");
        assert_eq!(c.grant_types, DEFAULT_GRANT_TYPES.to_vec());
        assert_eq!(
            c.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(c.access_token_ttl_secs, 600);
        assert_eq!(c.signing_alg, SigningAlg::EdDSA);
        assert!(c.verify_secret(secret.expose()) && !c.requires_pkce());
        assert!(secret.expose().starts_with("pcs_") && secret.expose().len() == 47);
        assert_eq!(format!("{secret:?}"), "ClientSecret(***)");

        let p = register(registration(ClientType::Public), None).unwrap();
        assert_eq!(p.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
        assert!(p.requires_pkce() && !p.verify_secret(""));
    }

    #[test]
    fn registration_refuses_bad_combinations_naming_the_field() {
        let secret = ClientSecret::generate().unwrap();
        let field =
            |reg: ClientRegistration, s: Option<&ClientSecret>| register(reg, s).unwrap_err().field;
        let public = || registration(ClientType::Public);
        let confidential = || registration(ClientType::Confidential);

        let mut r = public();
        r.grant_types = Some(vec![
            GrantType::AuthorizationCode,
            GrantType::ClientCredentials,
        ]);
        assert_eq!(field(r, None), "grant_types");
        let mut r = public();
        r.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretPost);
        assert_eq!(field(r, None), "token_endpoint_auth_method");
        assert_eq!(field(public(), Some(&secret)), "type");
        let mut r = confidential();
        r.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::None);
        assert_eq!(field(r, Some(&secret)), "token_endpoint_auth_method");
        assert_eq!(field(confidential(), None), "type");
        let mut r = confidential();
        r.redirect_uris.clear();
        assert_eq!(field(r, Some(&secret)), "redirect_uris");
        let mut r = confidential();
        r.grant_types = Some(vec![GrantType::RefreshToken]);
        assert_eq!(field(r, Some(&secret)), "grant_types");
        let mut r = confidential();
        r.grant_types = Some(vec![]);
        assert_eq!(field(r, Some(&secret)), "grant_types");
        for ttl in [299, 3601] {
            let mut r = confidential();
            r.access_token_ttl_secs = Some(ttl);
            assert_eq!(field(r, Some(&secret)), "access_token_ttl_secs");
        }
        let mut r = confidential();
        r.name = " ".into();
        assert_eq!(field(r, Some(&secret)), "name");

        // A machine-to-machine client needs no redirect URI.
        let mut r = confidential();
        r.redirect_uris.clear();
        r.grant_types = Some(vec![GrantType::ClientCredentials]);
        r.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretPost);
        assert!(register(r, Some(&secret)).is_ok());
    }

    #[test]
    fn client_uri_and_field_parsers() {
        let ok = parse_client_uris(
            "post_logout_redirect_uris",
            &[
                "http://127.0.0.1/cb".into(),
                "https://a.example.com/x".into(),
                "http://127.0.0.1/cb".into(),
            ],
        )
        .unwrap();
        assert_eq!(ok.len(), 2, "repeats are dropped");
        for bad in [
            "http://127.0.0.1:*/cb",
            "https://*.example.com/cb",
            "http://evil.example.com/cb",
            "/cb",
        ] {
            let e = parse_client_uris("post_logout_redirect_uris", &[bad.into()]).unwrap_err();
            assert_eq!(e.field, "post_logout_redirect_uris", "{bad}");
        }
        let many: Vec<String> = (0..=MAX_CLIENT_URIS)
            .map(|i| format!("https://a.example.com/{i}"))
            .collect();
        assert_eq!(
            parse_client_uris("redirect_uris", &many).unwrap_err().field,
            "redirect_uris"
        );
        assert_eq!(
            parse_grant_types(&[
                "refresh_token".into(),
                "authorization_code".into(),
                "refresh_token".into()
            ])
            .unwrap(),
            vec![GrantType::RefreshToken, GrantType::AuthorizationCode]
        );
        assert_eq!(
            parse_grant_types(&["implicit".into()]).unwrap_err().field,
            "grant_types"
        );
        assert_eq!(parse_access_token_ttl(300).unwrap(), 300);
        assert_eq!(parse_access_token_ttl(3600).unwrap(), 3600);
        for bad in [-1, 0, 299, 3601, i64::MAX] {
            assert_eq!(
                parse_access_token_ttl(bad).unwrap_err().field,
                "access_token_ttl_secs"
            );
        }
    }

    #[test]
    fn only_private_use_schemes_can_be_claimed_by_any_app() {
        for claimable in [
            "com.example.app:/cb",
            "myapp://callback",
            "http://rp.example.com/cb",
        ] {
            assert!(redirect_claimable_by_any_app(claimable), "{claimable}");
        }
        for owned in [
            "https://rp.example.com/cb",
            "http://127.0.0.1:4711/cb",
            "http://[::1]/cb",
            "http://localhost/cb",
        ] {
            assert!(!redirect_claimable_by_any_app(owned), "{owned}");
        }
    }
}
