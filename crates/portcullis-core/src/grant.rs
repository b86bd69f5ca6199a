//! What a user grants a client, and the rules for spending it: consents, the checks an
//! authorization code must pass at the token endpoint, and why refresh families end.

use crate::oauth::{ClientId, OAuthClient};
use crate::scope::ScopeSet;
use crate::{Timestamp, pkce};

/// A user's standing consent for a third-party client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub granted_at: Timestamp,
}

/// Why a refresh family was revoked; recorded with it and in its audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    /// The client revoked a token of the family (RFC 7009).
    RevokedByClient,
    /// The device signed out (mobile).
    Logout,
    /// The session the family was bound to ended, or the org lost access.
    SessionEnded,
    /// A rotated refresh token came back outside the grace window.
    Reuse,
    /// The authorization code the family came from was presented again.
    CodeReplay,
    /// The user withdrew consent for the client.
    ConsentRevoked,
}

impl RevocationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::RevokedByClient => "revoked_by_client",
            RevocationReason::Logout => "logout",
            RevocationReason::SessionEnded => "session_ended",
            RevocationReason::Reuse => "reuse",
            RevocationReason::CodeReplay => "code_replay",
            RevocationReason::ConsentRevoked => "consent_revoked",
        }
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What redeeming a presented authorization code found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeLookup<C> {
    /// Not spent yet.
    FirstUse(C),
    /// Spent before: presented again by its own client, what was issued from it must be
    /// revoked.
    Spent(C),
    Unknown,
}

/// What an authorization code was bound to when it was issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeBinding<'a> {
    pub client_id: &'a ClientId,
    pub redirect_uri: &'a str,
    /// PKCE S256 challenge, when the authorization request had one.
    pub code_challenge: Option<&'a str>,
    pub expires_at: Timestamp,
}

/// What the client presents with the code at the token endpoint.
#[derive(Clone, Copy, Debug)]
pub struct CodePresentation<'a> {
    pub client: &'a OAuthClient,
    pub redirect_uri: &'a str,
    pub code_verifier: Option<&'a str>,
}

/// Why a presented authorization code buys nothing (`invalid_grant` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefused {
    #[error("authorization code is invalid")]
    Unknown,
    #[error("authorization code was already used; tokens issued from it are revoked")]
    Replayed,
    #[error("authorization code was issued to another client")]
    OtherClient,
    #[error("authorization code has expired")]
    Expired,
    #[error("redirect_uri does not match the authorization request")]
    RedirectMismatch,
    #[error("code_verifier does not match the code challenge")]
    VerifierMismatch,
    #[error("code_verifier sent but no code challenge was")]
    UnexpectedVerifier,
    #[error("PKCE is required for public clients")]
    PkceRequired,
    /// The grant ends with the session the code was issued in, and that session has ended
    /// (signed out between authorization and redemption).
    #[error("the session this code was issued in has ended")]
    SessionEnded,
}

impl CodeRefused {
    /// Whether the refusal spends the code. Its own client presenting it wrongly (expired,
    /// another redirect URI, a bad verifier) spends it: a code is tried once. Another
    /// client's presentation changes nothing, or anyone who saw a code in transit could
    /// burn it before the rightful client redeems it; an unknown code has nothing to spend
    /// and a replayed one is spent already.
    pub fn spends_code(self) -> bool {
        !matches!(
            self,
            CodeRefused::Unknown | CodeRefused::OtherClient | CodeRefused::Replayed
        )
    }
}

/// Decides a code redemption: the code must be issued to this client (checked first: any
/// other client learns nothing and spends nothing), on its first use, unexpired, for the
/// same redirect URI, and proven by PKCE where it was challenged (and always for public
/// clients). `binding` reads what the code was bound to; the code comes back when it
/// passes. The store runs this inside the transaction that spends the code.
pub fn redeem_code<C>(
    found: CodeLookup<C>,
    binding: for<'c> fn(&'c C) -> CodeBinding<'c>,
    presented: &CodePresentation<'_>,
    now: Timestamp,
) -> Result<C, CodeRefused> {
    let (code, spent) = match found {
        CodeLookup::FirstUse(code) => (code, false),
        CodeLookup::Spent(code) => (code, true),
        CodeLookup::Unknown => return Err(CodeRefused::Unknown),
    };
    let bound = binding(&code);
    if *bound.client_id != presented.client.id {
        return Err(CodeRefused::OtherClient);
    }
    if spent {
        return Err(CodeRefused::Replayed);
    }
    if bound.expires_at <= now {
        return Err(CodeRefused::Expired);
    }
    if bound.redirect_uri != presented.redirect_uri {
        return Err(CodeRefused::RedirectMismatch);
    }
    match (bound.code_challenge, presented.code_verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => {}
        (Some(_), _) => return Err(CodeRefused::VerifierMismatch),
        (None, Some(_)) => return Err(CodeRefused::UnexpectedVerifier),
        (None, None) if presented.client.requires_pkce() => {
            return Err(CodeRefused::PkceRequired);
        }
        (None, None) => {}
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{ClientType, GrantType, SigningAlg, TokenEndpointAuthMethod};
    use crate::{OrgId, ProjectId, RedirectUri};

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "https://rp.example.com/cb";

    struct Code {
        client_id: ClientId,
        redirect_uri: String,
        challenge: Option<String>,
        expires_at: Timestamp,
    }

    fn binding(c: &Code) -> CodeBinding<'_> {
        CodeBinding {
            client_id: &c.client_id,
            redirect_uri: &c.redirect_uri,
            code_challenge: c.challenge.as_deref(),
            expires_at: c.expires_at,
        }
    }

    fn client(client_type: ClientType) -> OAuthClient {
        let now = crate::now();
        OAuthClient {
            id: ClientId::parse("pcc_app").unwrap(),
            org_id: OrgId::new(),
            project_id: ProjectId::new(),
            name: "app".into(),
            client_type,
            secret_hash: None,
            redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            access_token_ttl_secs: 600,
            signing_alg: SigningAlg::EdDSA,
            created_at: now,
            updated_at: now,
        }
    }

    fn code(challenge: Option<&str>, now: Timestamp) -> Code {
        Code {
            client_id: ClientId::parse("pcc_app").unwrap(),
            redirect_uri: REDIRECT.into(),
            challenge: challenge.map(str::to_owned),
            expires_at: now + time::Duration::seconds(60),
        }
    }

    fn redeem(
        found: CodeLookup<Code>,
        c: &OAuthClient,
        redirect_uri: &str,
        verifier: Option<&str>,
        now: Timestamp,
    ) -> Result<(), CodeRefused> {
        let presented = CodePresentation {
            client: c,
            redirect_uri,
            code_verifier: verifier,
        };
        redeem_code(found, binding, &presented, now).map(|_| ())
    }

    #[test]
    fn a_fresh_code_with_its_verifier_is_redeemed() {
        let now = crate::now();
        let public = client(ClientType::Public);
        let found = CodeLookup::FirstUse(code(Some(CHALLENGE), now));
        let presented = CodePresentation {
            client: &public,
            redirect_uri: REDIRECT,
            code_verifier: Some(VERIFIER),
        };
        let redeemed = redeem_code(found, binding, &presented, now).unwrap();
        assert_eq!(redeemed.redirect_uri, REDIRECT);
        let confidential = client(ClientType::Confidential);
        let found = CodeLookup::FirstUse(code(None, now));
        assert_eq!(redeem(found, &confidential, REDIRECT, None, now), Ok(()));
    }

    #[test]
    fn spent_and_unknown_codes_are_refused() {
        let now = crate::now();
        let c = client(ClientType::Confidential);
        let r = |found| redeem(found, &c, REDIRECT, None, now);
        assert_eq!(
            r(CodeLookup::Spent(code(None, now))),
            Err(CodeRefused::Replayed)
        );
        assert_eq!(r(CodeLookup::Unknown), Err(CodeRefused::Unknown));
        assert!(!CodeRefused::Replayed.spends_code() && !CodeRefused::Unknown.spends_code());
    }

    #[test]
    fn another_client_neither_spends_nor_replays_a_code() {
        let now = crate::now();
        let c = client(ClientType::Confidential);
        let mut theirs = code(None, now);
        theirs.client_id = ClientId::parse("pcc_other").unwrap();
        assert_eq!(
            redeem(CodeLookup::Spent(theirs), &c, REDIRECT, None, now),
            Err(CodeRefused::OtherClient),
            "a spent code of another client is not a replay by this one"
        );
        assert!(!CodeRefused::OtherClient.spends_code());
        for spends in [
            CodeRefused::Expired,
            CodeRefused::RedirectMismatch,
            CodeRefused::VerifierMismatch,
            CodeRefused::UnexpectedVerifier,
            CodeRefused::PkceRequired,
            CodeRefused::SessionEnded,
        ] {
            assert!(spends.spends_code(), "{spends:?}");
        }
    }

    #[test]
    fn the_binding_must_match() {
        let now = crate::now();
        let c = client(ClientType::Confidential);
        let mut other = code(None, now);
        other.client_id = ClientId::parse("pcc_other").unwrap();
        assert_eq!(
            redeem(CodeLookup::FirstUse(other), &c, REDIRECT, None, now),
            Err(CodeRefused::OtherClient)
        );
        let fresh = || CodeLookup::FirstUse(code(None, now));
        assert_eq!(
            redeem(
                fresh(),
                &c,
                REDIRECT,
                None,
                now + time::Duration::seconds(60)
            ),
            Err(CodeRefused::Expired),
            "expiry is exclusive"
        );
        assert_eq!(
            redeem(fresh(), &c, "https://rp.example.com/cb/", None, now),
            Err(CodeRefused::RedirectMismatch)
        );
    }

    #[test]
    fn pkce_is_checked_with_verify_s256() {
        let now = crate::now();
        let public = client(ClientType::Public);
        let confidential = client(ClientType::Confidential);
        let challenged = || CodeLookup::FirstUse(code(Some(CHALLENGE), now));
        let plain = || CodeLookup::FirstUse(code(None, now));
        let wrong = "A".repeat(43);
        assert_eq!(
            redeem(challenged(), &public, REDIRECT, Some(&wrong), now),
            Err(CodeRefused::VerifierMismatch)
        );
        assert_eq!(
            redeem(challenged(), &confidential, REDIRECT, None, now),
            Err(CodeRefused::VerifierMismatch),
            "a challenged code needs its verifier, confidential client or not"
        );
        assert_eq!(
            redeem(plain(), &confidential, REDIRECT, Some(VERIFIER), now),
            Err(CodeRefused::UnexpectedVerifier)
        );
        assert_eq!(
            redeem(plain(), &public, REDIRECT, None, now),
            Err(CodeRefused::PkceRequired)
        );
        assert_eq!(
            redeem(challenged(), &confidential, REDIRECT, Some(VERIFIER), now),
            Ok(())
        );
    }

    #[test]
    fn revocation_reasons_keep_their_stored_names() {
        assert_eq!(
            RevocationReason::RevokedByClient.as_str(),
            "revoked_by_client"
        );
        assert_eq!(RevocationReason::CodeReplay.to_string(), "code_replay");
        assert_eq!(RevocationReason::ConsentRevoked.as_str(), "consent_revoked");
    }
}
