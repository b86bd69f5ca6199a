//! What the OAuth endpoints persist: authorization codes, refresh-token families, consents
//! and revoked access tokens. Every call names the org of the client it acts for, which is
//! the row-level security context on PostgreSQL.

use async_trait::async_trait;
use portcullis_core::grant::{Consent, RevocationReason};
use portcullis_core::oauth::ClientId;
use portcullis_core::scope::ScopeSet;
use portcullis_core::{
    AuditContext, AuditEvent, FamilyId, OrgId, PresentedRefresh, ProjectId, SessionId, Timestamp,
    TokenHash, UserId,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent.
    Redeemed(Box<AuthCode>),
    /// Already spent: whatever was issued from it has been revoked.
    Replayed {
        client_id: ClientId,
    },
    Unknown,
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
    /// First use: the presented token is spent and its successor stored.
    Rotated(RefreshFamily),
    /// A retry of a token rotated moments ago, with the same successor: answered with that
    /// successor rather than treated as theft (two tabs refreshing at once).
    Retried(RefreshFamily),
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
}

impl RefreshTokenState {
    /// The token as the rotation rules ([`portcullis_core::classify_refresh`]) see it when
    /// `client` presents it.
    pub fn presented_by(&self, client: &ClientId) -> PresentedRefresh {
        PresentedRefresh {
            client_matches: self.family.client_id == *client,
            family_revoked: self.family_revoked,
            expires_at: self.expires_at,
            used_at: self.used_at,
            successor: self.successor,
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
    /// Spends a code atomically; a second redemption revokes the family minted from it.
    async fn redeem_code(
        &self,
        org_id: OrgId,
        code_hash: &TokenHash,
        now: Timestamp,
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
    /// session) with its `…reuse_detected` event, in the same transaction.
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
