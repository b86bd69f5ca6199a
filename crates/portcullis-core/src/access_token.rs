//! The claims of a Portcullis access token: what the key ring signs and what verification
//! hands back, so issuer and every reader agree on one shape.

use crate::oauth::ClientId;
use crate::scope::ScopeSet;
use crate::{FamilyId, OrgId, ProjectId, SessionId, Timestamp, UserId};

/// The JWS `typ` header of every Portcullis access token (RFC 9068 §2.1). Verification
/// requires it, so no other JWT this server signs (an ID token) passes as an access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// An access token's claims, in the order they are serialized. A token whose claims do not
/// read as this struct (an ID token: no `client_id`, `jti` or `scope`) is not an access
/// token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user's id, or the client's own id for client_credentials.
    pub sub: String,
    pub aud: ClientId,
    pub client_id: ClientId,
    /// Seconds since the Unix epoch.
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub scope: ScopeSet,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    /// The session the token acts in, when a user signed in for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<SessionId>,
    /// The refresh family it was minted from; revoking the family ends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<FamilyId>,
}

impl AccessTokenClaims {
    /// The user the token speaks for; None when the client is its own subject.
    pub fn user_id(&self) -> Option<UserId> {
        UserId::parse(&self.sub)
    }

    /// The token dies with the session it was minted in: it names one and its scope lacks
    /// `offline_access` ([`crate::refresh::ends_with_session`]).
    pub fn ends_with_session(&self) -> bool {
        self.sid.is_some() && crate::refresh::ends_with_session(&self.scope)
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        self.exp <= now.unix_timestamp()
    }

    /// `exp` as a time; None only for a value no clock reaches.
    pub fn expires_at(&self) -> Option<Timestamp> {
        Timestamp::from_unix_timestamp(self.exp).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        let client = ClientId::parse("pcc_app").unwrap();
        AccessTokenClaims {
            iss: "https://id.example.com".into(),
            sub: UserId::new().to_string(),
            aud: client.clone(),
            client_id: client,
            iat: 1_700_000_000,
            exp: 1_700_000_600,
            jti: "j1".into(),
            scope: ScopeSet::parse("openid email").unwrap(),
            org_id: OrgId::new(),
            project_id: ProjectId::new(),
            sid: Some(SessionId::new()),
            fid: None,
        }
    }

    #[test]
    fn round_trips_and_omits_absent_ids() {
        let c = claims();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["scope"], "openid email");
        assert_eq!(json["client_id"], "pcc_app");
        assert!(json.get("fid").is_none());
        let back: AccessTokenClaims = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        assert!(back.user_id().is_some());
    }

    #[test]
    fn an_id_token_does_not_read_as_an_access_token() {
        let id_token = serde_json::json!({
            "iss": "https://id.example.com", "sub": UserId::new().to_string(),
            "aud": "pcc_app", "azp": "pcc_app", "iat": 1, "exp": 2,
            "org_id": OrgId::new(), "project_id": ProjectId::new(),
        });
        assert!(serde_json::from_value::<AccessTokenClaims>(id_token).is_err());
    }

    #[test]
    fn expiry_and_client_subjects() {
        let mut c = claims();
        let at = |s| Timestamp::from_unix_timestamp(s).unwrap();
        assert!(!c.expired(at(1_700_000_599)));
        assert!(c.expired(at(1_700_000_600)));
        assert_eq!(c.expires_at(), Some(at(1_700_000_600)));
        c.sub = c.client_id.as_str().to_owned();
        assert_eq!(c.user_id(), None);
    }

    #[test]
    fn only_session_bound_tokens_without_offline_access_end_with_the_session() {
        let mut c = claims();
        assert!(c.ends_with_session());
        c.scope = ScopeSet::parse("openid offline_access").unwrap();
        assert!(!c.ends_with_session());
        c.scope = ScopeSet::parse("openid").unwrap();
        c.sid = None;
        assert!(!c.ends_with_session());
    }
}
