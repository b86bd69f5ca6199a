//! What the OAuth endpoints persist: authorization codes, refresh-token families, consents
//! and revoked access tokens. Every call names the org of the client it acts for, which is
//! the row-level security context on PostgreSQL.

use async_trait::async_trait;
use portcullis_core::grant::{
    CodeBinding, CodePresentation, CodeRefused, Consent, RevocationReason,
};
use portcullis_core::oauth::ClientId;
use portcullis_core::scope::ScopeSet;
use portcullis_core::{
    AuditContext, AuditEvent, FamilyId, OrgId, PresentedRefresh, ProjectId, SessionId, Timestamp,
    TokenHash, User, UserId,
};

use crate::StoreResult;

/// An authorization code as issued (the code itself is only its hash here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCode {
    pub code_hash: TokenHash,
    pub client_id: ClientId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    pub redirect_uri: String,
    /// Space-separated, as granted.
    pub scope: String,
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    pub auth_time: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A presented authorization code, and the refresh family to start with it.
#[derive(Clone, Copy, Debug)]
pub struct CodeRedemptionRequest<'a> {
    /// The org of the presenting client (the row-level security context on PostgreSQL).
    pub org_id: OrgId,
    pub code_hash: &'a TokenHash,
    /// What the client presents with the code, checked by
    /// [`portcullis_core::grant::redeem_code`] inside the transaction that spends it.
    pub presented: CodePresentation<'a>,
    pub now: Timestamp,
    /// Started in the same transaction when the code passes (clients allowed refresh tokens).
    pub family: Option<FamilyStart<'a>>,
}

/// A refresh family started from a code: what the code does not already say.
#[derive(Clone, Copy, Debug)]
pub struct FamilyStart<'a> {
    pub id: FamilyId,
    pub first: &'a TokenHash,
    pub first_expires_at: Timestamp,
    /// The family's absolute end, whatever its tokens' expiry says.
    pub family_expires_at: Option<Timestamp>,
}

impl AuthCode {
    /// What the code was bound to when it was issued, as the redemption rules read it.
    pub fn binding(&self) -> CodeBinding<'_> {
        CodeBinding {
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            code_challenge: self.code_challenge.as_deref(),
            expires_at: self.expires_at,
        }
    }

    /// The refresh family a redemption of this code starts.
    pub fn family(&self, id: FamilyId, created_at: Timestamp) -> RefreshFamily {
        RefreshFamily {
            id,
            client_id: self.client_id.clone(),
            org_id: self.org_id,
            project_id: self.project_id,
            user_id: self.user_id,
            session_id: self.session_id,
            scope: self.scope.clone(),
            auth_time: self.auth_time,
            created_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code passed and is now spent; `family` was started with it.
    Redeemed {
        code: Box<AuthCode>,
        family: Option<RefreshFamily>,
    },
    /// The code buys nothing. It was spent when [`CodeRefused::spends_code`] says so; a
    /// replay by its own client revoked what was issued from it.
    Refused(CodeRefused),
}

/// The chain of refresh tokens issued from one sign-in; revoking it ends them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshFamily {
    pub id: FamilyId,
    pub client_id: ClientId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    pub scope: String,
    pub auth_time: Timestamp,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// First use: the presented token is spent and its successor stored. With the family's
    /// user, read in the same statement (None when the account was deleted), since every
    /// caller needs it to mint the access token: one round trip fewer per refresh.
    Rotated(RefreshFamily, Option<User>),
    /// A retry of a token rotated moments ago, with the same successor: answered with that
    /// successor rather than treated as theft (two tabs refreshing at once).
    Retried(RefreshFamily, Option<User>),
    /// A rotated token came back outside the grace window: the family is now revoked.
    ReuseDetected(RefreshFamily),
    /// The family was revoked before (sign-out, reuse, code replay).
    Revoked(RefreshFamily),
    Expired(RefreshFamily),
    Unknown,
}

/// What introspection learns about a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenState {
    pub family: RefreshFamily,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used: bool,
    pub family_revoked: bool,
    /// When it was rotated, and into which successor.
    pub used_at: Option<Timestamp>,
    pub successor: Option<TokenHash>,
    /// The family's absolute end, if it has one.
    pub family_expires_at: Option<Timestamp>,
    /// The family is bound to a session and ends with it
    /// ([`portcullis_core::refresh::ends_with_session`]).
    pub ends_with_session: bool,
}

impl RefreshTokenState {
    /// The token as the rotation rules ([`portcullis_core::classify_refresh`]) see it when
    /// `client` presents it, its session taken as live (the store checks the session of a
    /// family that ends with it inside the rotation's transaction).
    pub fn presented_by(&self, client: &ClientId) -> PresentedRefresh {
        PresentedRefresh {
            client_matches: self.family.client_id == *client,
            family_revoked: self.family_revoked,
            expires_at: self.expires_at,
            used_at: self.used_at,
            successor: self.successor,
            family_expires_at: self.family_expires_at,
            session_ended: false,
        }
    }

    /// Whether the token could still be rotated at `now`, its session's liveness given:
    /// what introspection reports as `active`.
    pub fn active(&self, now: Timestamp, session_live: bool) -> bool {
        !self.used
            && !self.family_revoked
            && self.expires_at > now
            && self.family_expires_at.is_none_or(|end| end > now)
            && (!self.ends_with_session || session_live)
    }

    /// When the token stops working at the latest: its own expiry or its family's end.
    pub fn ends_at(&self) -> Timestamp {
        match self.family_expires_at {
            Some(end) if end < self.expires_at => end,
            _ => self.expires_at,
        }
    }
}

/// A refresh token presented for rotation, and what the rotation writes besides.
#[derive(Clone, Copy, Debug)]
pub struct RefreshRotation<'a> {
    /// The org of the presenting client (the row-level security context on PostgreSQL).
    pub org_id: OrgId,
    pub client_id: &'a ClientId,
    pub presented: &'a TokenHash,
    pub successor: &'a TokenHash,
    pub now: Timestamp,
    /// How long after a rotation a retry with the same successor is still answered.
    pub grace: time::Duration,
    pub successor_expires_at: Timestamp,
    /// Written in the rotation's transaction when the outcome is [`RefreshOutcome::Rotated`]
    /// or [`RefreshOutcome::Retried`] (`mobile.refresh.succeeded`), so the trail never
    /// shows a rotation that did not happen, nor misses one that did.
    pub on_success: &'a [AuditEvent],
    /// A detected reuse also revokes the session the family is bound to: for mobile
    /// sign-in that session is the device's own, and a stolen token signs the device out.
    pub reuse_ends_session: bool,
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Redeems a code in one transaction: decides it with
    /// [`portcullis_core::grant::redeem_code`] on the locked row, then spends it (unless the
    /// refusal spares it: another client's presentation changes nothing) and, when it passed,
    /// starts the refresh family from it. Its own client presenting it again revokes the
    /// family minted from it, with the replay audited.
    async fn redeem_code(
        &self,
        request: &CodeRedemptionRequest<'_>,
        ctx: &AuditContext,
    ) -> StoreResult<CodeRedemption>;
    /// Starts a family with its first token; `from_code` links it for replay revocation.
    async fn start_family(
        &self,
        family: &RefreshFamily,
        first: &TokenHash,
        expires_at: Timestamp,
        from_code: Option<&TokenHash>,
    ) -> StoreResult<()>;
    /// Rotates `presented` into `successor` (exactly one successor, however many callers
    /// race), as [`portcullis_core::classify_refresh`] decides. A token of another client
    /// is `Unknown` and left untouched. A retry inside `grace` with the same successor is
    /// [`RefreshOutcome::Retried`]. A reuse revokes the family (and, when asked, its
    /// session) with its `…reuse_detected` event, in the same transaction. A family that
    /// ends with its session is revoked once that session is no longer live, and reported
    /// [`RefreshOutcome::Revoked`]; one past its absolute end is [`RefreshOutcome::Expired`].
    async fn rotate_refresh(
        &self,
        rotation: &RefreshRotation<'_>,
        ctx: &AuditContext,
    ) -> StoreResult<RefreshOutcome>;
    async fn refresh_token_state(
        &self,
        org_id: OrgId,
        token: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>>;
    /// Revokes a family; false if it was unknown or already revoked.
    async fn revoke_family(
        &self,
        org_id: OrgId,
        family_id: FamilyId,
        reason: RevocationReason,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
    async fn family_revoked(&self, org_id: OrgId, family_id: FamilyId) -> StoreResult<bool>;
    /// Whether a session is live at `now`: not revoked, not expired, its user not deleted.
    /// Grants that end with their session ask this.
    async fn session_live(&self, session_id: SessionId, now: Timestamp) -> StoreResult<bool>;
    /// Remembers a revoked access token until it would have expired anyway.
    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()>;
    async fn access_token_revoked(&self, jti: &str) -> StoreResult<bool>;
    /// Scopes the user consented to for this client, if any.
    async fn consent(
        &self,
        org_id: OrgId,
        user_id: UserId,
        client_id: &ClientId,
    ) -> StoreResult<Option<ScopeSet>>;
    async fn grant_consent(
        &self,
        org_id: OrgId,
        user_id: UserId,
        client_id: &ClientId,
        scope: &str,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    /// Withdraws consent and revokes the client's refresh families for the user.
    async fn revoke_consent(
        &self,
        user_id: UserId,
        client_id: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
    /// The user's consents, newest first.
    async fn consents_of_user(&self, user_id: UserId) -> StoreResult<Vec<Consent>>;
}
