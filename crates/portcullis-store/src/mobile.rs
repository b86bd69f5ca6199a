//! What mobile sign-in persists beyond sessions and refresh families: the one-time tokens
//! (OTTs) the browser hand-off gives the app through its deep link.
//!
//! Mobile refresh tokens are refresh families of the [`GrantStore`](crate::GrantStore),
//! issued to the reserved first-party client [`MOBILE_CLIENT_ID`]; this module only adds
//! what the OAuth endpoints never needed.

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, OrgId, ProjectId, Session, Timestamp, TokenHash, UserId,
};

use crate::{RefreshFamily, RefreshTokenState, StoreResult};

/// The reserved client id of Portcullis' own mobile app. No registered client can have it
/// (registered ids are `pcc_…`), so the OAuth endpoints never accept its tokens.
pub const MOBILE_CLIENT_ID: &str = "portcullis-mobile";

/// A one-time token as issued: only digests of the token and of the app's `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeToken {
    pub token_hash: TokenHash,
    pub state_hash: TokenHash,
    /// PKCE S256 challenge, when the app sent one.
    pub code_challenge: Option<String>,
    pub user_id: UserId,
    /// The org and project the tokens minted from it will be for.
    pub org_id: OrgId,
    pub project_id: ProjectId,
    /// When the browser session that issued it signed in.
    pub auth_time: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait MobileStore: Send + Sync {
    /// Stores a new one-time token with its `mobile.ott.issued` event.
    async fn insert_ott(&self, ott: &OneTimeToken, ctx: &AuditContext) -> StoreResult<()>;
    /// Spends a token atomically: of any number of concurrent calls exactly one gets it.
    /// The token comes back even when expired (the caller decides and says why); None when
    /// it is unknown or already spent.
    async fn consume_ott(
        &self,
        token_hash: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<OneTimeToken>>;
    /// Opens what a redeemed one-time token grants, all or nothing: the device's `session`
    /// (with its `session.created` event, under `ctx`), the `exchanged` event
    /// (`mobile.ott.exchanged`, in the family's org) and the refresh `family` bound to that
    /// session, starting with the token `first`.
    async fn start_device_session(
        &self,
        session: &Session,
        family: &RefreshFamily,
        first: &TokenHash,
        refresh_expires_at: Timestamp,
        exchanged: &AuditEvent,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    /// The org a refresh token belongs to: a bare token names no org, and the grant store's
    /// calls (row-level security on PostgreSQL) need one.
    async fn refresh_token_org(&self, token_hash: &TokenHash) -> StoreResult<Option<OrgId>>;
    /// A refresh token and its family, found by the token alone in whichever org it belongs
    /// to (the 256-bit token is the capability, as for [`MobileStore::consume_ott`]).
    async fn refresh_token(&self, token_hash: &TokenHash)
    -> StoreResult<Option<RefreshTokenState>>;
    /// Ends a device's grant all or nothing: revokes `family` (`oauth.token.revoked` with
    /// `reason`, when it was live), ends the session it is bound to when `end_session`
    /// (`session.revoked`, when it was live), and writes the `also` events (`mobile.logout`,
    /// `mobile.refresh.failed`). True when the family was still live.
    async fn end_device_grant(
        &self,
        family: &RefreshFamily,
        reason: portcullis_core::grant::RevocationReason,
        end_session: bool,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<bool>;
    /// Where a mobile sign-in lands when the app names no org: the user's oldest active
    /// membership and that org's default project.
    async fn default_grant_target(
        &self,
        user_id: UserId,
    ) -> StoreResult<Option<(OrgId, ProjectId)>>;
}
