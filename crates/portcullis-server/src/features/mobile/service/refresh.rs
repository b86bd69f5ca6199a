//! The refresh family's life: rotation on every refresh, reuse detection, and signing the
//! device out.

use portcullis_core::{Action, AuditContext, OrgId, TokenHash};
use portcullis_store::{RefreshFamily, RefreshOutcome};

use super::{Mobile, MobileError, MobileResult, Tokens};
use crate::features::oidc::issue::REFRESH_PREFIX;

impl Mobile<'_> {
    /// Rotates `presented`: a new access token and its successor, while the family, its
    /// session and the org's access to mobile sign-in all hold. A rotated token presented
    /// again past the grace window revokes the family and signs the device out.
    pub async fn refresh(&self, presented: &str, meta: AuditContext) -> MobileResult<Tokens> {
        let hash = TokenHash::of(presented);
        let org = if presented.starts_with(REFRESH_PREFIX) {
            self.store.mobile().refresh_token_org(&hash).await?
        } else {
            None
        };
        let Some(org) = org else {
            self.audit_failure(
                &meta,
                None,
                Action::MobileRefreshFailed,
                "refresh_family:unknown".into(),
                "unknown",
            )
            .await?;
            return Err(MobileError::Unauthenticated);
        };
        let now = portcullis_core::now();
        let (successor, successor_hash) = self.provider.successor_of(presented);
        let outcome = self
            .store
            .grants()
            .rotate_refresh(
                org,
                &self.settings.client_id,
                &hash,
                &successor_hash,
                now,
                self.oidc.refresh_grace,
                now + self.oidc.refresh_ttl,
                &meta,
            )
            .await?;
        let (family, reason) = match outcome {
            RefreshOutcome::Rotated(f) | RefreshOutcome::Retried(f) => (f, None),
            RefreshOutcome::ReuseDetected(f) => {
                self.metrics
                    .refresh_reuse_detected(crate::infra::metrics::RefreshFlow::Mobile);
                // The store revoked the family and wrote mobile.refresh.reuse_detected.
                self.end_session(&f, &meta.with_actor(f.user_id)).await?;
                return Err(MobileError::RefreshTokenReused);
            }
            RefreshOutcome::Revoked(f) => (f, Some("revoked")),
            RefreshOutcome::Expired(f) => (f, Some("expired")),
            RefreshOutcome::Unknown => {
                self.audit_failure(
                    &meta,
                    Some(org),
                    Action::MobileRefreshFailed,
                    "refresh_family:unknown".into(),
                    "unknown",
                )
                .await?;
                return Err(MobileError::Unauthenticated);
            }
        };
        let meta = meta.with_actor(family.user_id);
        let target = format!("refresh_family:{}", family.id);
        if let Some(reason) = reason {
            self.audit_failure(
                &meta,
                Some(org),
                Action::MobileRefreshFailed,
                target,
                reason,
            )
            .await?;
            return Err(MobileError::Unauthenticated);
        }
        // The session must still be live (signed out elsewhere, expired, user removed): then
        // the family ends with it. Resolving it also slides its expiry.
        let session_live = match family.session_id {
            Some(sid) => self.provider.session_live(sid).await,
            None => false,
        };
        if !session_live || !self.allowed_for_org(org).await {
            self.end_family(org, &family, &meta).await?;
            if session_live {
                return Err(MobileError::FeatureDisabled);
            }
            return Err(MobileError::Unauthenticated);
        }
        let Some(user) = self.store.user_by_id(family.user_id).await? else {
            return Err(MobileError::Unauthenticated);
        };
        let (access_token, expires_in) = self.access_token_for(&user, &family).await?;
        self.store
            .record_audit(&meta.event(Some(org), Action::MobileRefreshSucceeded, target))
            .await?;
        Ok(Tokens {
            access_token,
            expires_in,
            refresh_token: successor,
        })
    }

    /// Signs the device out: revokes the family of `presented` and its session. A token that
    /// is unknown, malformed or not a mobile one is quietly ignored (nothing to sign out).
    pub async fn revoke(&self, presented: &str, meta: AuditContext) -> MobileResult<()> {
        let hash = TokenHash::of(presented);
        if !presented.starts_with(REFRESH_PREFIX) {
            return Ok(());
        }
        let Some(org) = self.store.mobile().refresh_token_org(&hash).await? else {
            return Ok(());
        };
        let Some(t) = self.store.grants().refresh_token_state(org, &hash).await? else {
            return Ok(());
        };
        if t.family.client_id != self.settings.client_id {
            return Ok(());
        }
        self.sign_out(org, &t.family, &meta.with_actor(t.family.user_id))
            .await
    }

    // The writes below go together; each function is one unit for the store to make a
    // single transaction of.

    /// Revokes the family (reason `logout`) and its session, and records `mobile.logout`.
    async fn sign_out(
        &self,
        org: OrgId,
        family: &RefreshFamily,
        meta: &AuditContext,
    ) -> MobileResult<()> {
        self.store
            .grants()
            .revoke_family(
                org,
                family.id,
                portcullis_core::grant::RevocationReason::Logout,
                meta,
            )
            .await?;
        self.end_session(family, meta).await?;
        self.store
            .record_audit(&meta.event(
                Some(org),
                Action::MobileLogout,
                format!("refresh_family:{}", family.id),
            ))
            .await?;
        Ok(())
    }

    /// Revokes a family whose session ended (or whose org lost mobile sign-in), and records
    /// the refresh that found it as failed (`session_ended`).
    async fn end_family(
        &self,
        org: OrgId,
        family: &RefreshFamily,
        meta: &AuditContext,
    ) -> MobileResult<()> {
        self.store
            .grants()
            .revoke_family(
                org,
                family.id,
                portcullis_core::grant::RevocationReason::SessionEnded,
                meta,
            )
            .await?;
        self.cache.invalidate();
        self.audit_failure(
            meta,
            Some(org),
            Action::MobileRefreshFailed,
            format!("refresh_family:{}", family.id),
            "session_ended",
        )
        .await
    }

    /// Ends a family's session too: the device is signed out, not just its refresh tokens.
    async fn end_session(&self, family: &RefreshFamily, meta: &AuditContext) -> MobileResult<()> {
        if let Some(sid) = family.session_id {
            self.store
                .revoke_user_session(family.user_id, sid, meta)
                .await?;
        }
        self.cache.invalidate();
        Ok(())
    }
}
