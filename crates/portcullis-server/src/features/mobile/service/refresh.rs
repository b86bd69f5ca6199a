//! The refresh family's life: rotation on every refresh, reuse detection, and signing the
//! device out. Each outcome is one store call, so a rotation commits together with its
//! `mobile.refresh.succeeded`, and a sign-out ends the family, the device's session and
//! writes `mobile.logout` in one transaction.

use portcullis_core::grant::RevocationReason;
use portcullis_core::{Action, AuditContext, TokenHash, classify_refresh};
use portcullis_store::{RefreshOutcome, RefreshRotation};
use serde_json::json;

use super::{Mobile, MobileError, MobileResult, Tokens};
use portcullis_core::token::is_refresh_token;

impl Mobile<'_> {
    /// Rotates `presented`: a new access token and its successor, while the family, its
    /// session and the org's access to mobile sign-in all hold. A rotated token presented
    /// again past the grace window revokes the family and signs the device out.
    pub async fn refresh(&self, presented: &str, meta: AuditContext) -> MobileResult<Tokens> {
        let hash = TokenHash::of(presented);
        let token = if is_refresh_token(presented) {
            self.store.mobile().refresh_token(&hash).await?
        } else {
            None
        };
        let Some(token) = token else {
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
        let org = token.family.org_id;
        let target = format!("refresh_family:{}", token.family.id);
        let now = portcullis_core::now();
        let (successor, successor_hash) = self.provider.successor_of(presented);
        // The session must still be live (signed out elsewhere, expired, user removed), or
        // the family ends with it. Checked before rotating, so that a rotation commits with
        // its `mobile.refresh.succeeded`; only a presentation that would get tokens is
        // checked (reuse, revocation and expiry are the rotation's to tell). Resolving the
        // session also slides its expiry.
        let decision = classify_refresh(
            &token.presented_by(&self.settings.client_id),
            &successor_hash,
            now,
            self.oidc.refresh_grace,
        );
        if decision.succeeds() {
            let family = &token.family;
            let session_live = match family.session_id {
                Some(sid) => self.provider.session_live(sid).await,
                None => false,
            };
            let lacking = self.plan_without_mobile(org).await?;
            if !session_live || lacking.is_some() {
                let meta = meta.with_actor(family.user_id);
                let failed = meta
                    .event(Some(org), Action::MobileRefreshFailed, target)
                    .failed()
                    .with_details(json!({"reason": "session_ended"}));
                self.store
                    .mobile()
                    .end_device_grant(
                        family,
                        RevocationReason::SessionEnded,
                        false,
                        &meta,
                        &[failed],
                    )
                    .await?;
                if session_live && let Some(plan) = lacking {
                    return Err(MobileError::FeatureDisabled { plan });
                }
                return Err(MobileError::Unauthenticated);
            }
        }
        let succeeded = meta.with_actor(token.family.user_id).event(
            Some(org),
            Action::MobileRefreshSucceeded,
            target.clone(),
        );
        let outcome = self
            .store
            .grants()
            .rotate_refresh(
                &RefreshRotation {
                    org_id: org,
                    client_id: &self.settings.client_id,
                    presented: &hash,
                    successor: &successor_hash,
                    now,
                    grace: self.oidc.refresh_grace,
                    successor_expires_at: now + self.oidc.refresh_ttl,
                    on_success: std::slice::from_ref(&succeeded),
                    reuse_ends_session: true,
                },
                &meta,
            )
            .await?;
        let (family, holder, reason) = match outcome {
            RefreshOutcome::Rotated(f, u) | RefreshOutcome::Retried(f, u) => (f, u, None),
            RefreshOutcome::ReuseDetected(_) => {
                self.metrics
                    .refresh_reuse_detected(crate::infra::metrics::RefreshFlow::Mobile);
                // The store revoked the family and the device's session, and wrote
                // mobile.refresh.reuse_detected, all at once.
                return Err(MobileError::RefreshTokenReused);
            }
            RefreshOutcome::Revoked(f) => (f, None, Some("revoked")),
            RefreshOutcome::Expired(f) => (f, None, Some("expired")),
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
        if let Some(reason) = reason {
            self.audit_failure(
                &meta.with_actor(family.user_id),
                Some(org),
                Action::MobileRefreshFailed,
                target,
                reason,
            )
            .await?;
            return Err(MobileError::Unauthenticated);
        }
        // Read with the rotation, in its statement.
        let Some(user) = holder else {
            return Err(MobileError::Unauthenticated);
        };
        let (access_token, expires_in) = self.access_token_for(&user, &family).await?;
        Ok(Tokens {
            access_token,
            expires_in,
            refresh_token: successor,
        })
    }

    /// Signs the device out: revokes the family of `presented` and its session. A token that
    /// is unknown, malformed or not a mobile one is quietly ignored (nothing to sign out).
    pub async fn revoke(&self, presented: &str, meta: AuditContext) -> MobileResult<()> {
        if !is_refresh_token(presented) {
            return Ok(());
        }
        let hash = TokenHash::of(presented);
        let Some(t) = self.store.mobile().refresh_token(&hash).await? else {
            return Ok(());
        };
        if t.family.client_id != self.settings.client_id {
            return Ok(());
        }
        let meta = meta.with_actor(t.family.user_id);
        let logout = meta.event(
            Some(t.family.org_id),
            Action::MobileLogout,
            format!("refresh_family:{}", t.family.id),
        );
        // One transaction: the family, the device's session and the logout event.
        self.store
            .mobile()
            .end_device_grant(&t.family, RevocationReason::Logout, true, &meta, &[logout])
            .await?;
        Ok(())
    }
}
