//! The app's tokens: a one-time token redeemed for a session, an access token and a refresh
//! family; the family's rotation; and signing out. The HTTP side is `routes/mobile.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::{
    Action, AuditContext, DeviceInfo, Org, OrgId, Project, TokenHash, User, classify_refresh,
};
use portcullis_store::{RefreshFamily, RefreshOutcome, RefreshRotation};
use serde_json::json;

use super::MOBILE_SCOPE;
use crate::error::{ApiError, ApiResult};
use crate::oidc::issue::{self, Grant, REFRESH_PREFIX};
use crate::rate_limit::Quota;
use crate::state::AppState;

/// A one-time token as the app presents it, its request already well-formed.
pub struct Exchange {
    /// The `ott_…` value from the deep link.
    pub ott: String,
    /// The `state` the app sent to the hand-off.
    pub state: String,
    pub code_verifier: Option<String>,
    pub device: DeviceInfo,
}

/// What the app holds after a sign-in or a refresh.
pub struct Tokens {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// A redeemed one-time token: the app's tokens, and who and where it signed in as.
pub struct Exchanged {
    pub tokens: Tokens,
    pub user: User,
    pub org: Org,
    pub project: Project,
}

/// Counts an exchange from this client address: Ok while within the limit, Err once over
/// it. Either way the quota tells the app where it stands.
pub fn ip_quota(state: &AppState, meta: &AuditContext) -> Result<Quota, Quota> {
    let ip = meta.ip.as_deref().unwrap_or("unknown");
    state.mobile_limits.per_ip.check(&format!("ip:{ip}"))
}

/// Counts an exchange for this app sign-in attempt (its `state`), as [`ip_quota`] does.
pub fn attempt_quota(state: &AppState, app_state: &str) -> Result<Quota, Quota> {
    state.mobile_limits.per_client.check(&format!(
        "state:{}",
        URL_SAFE_NO_PAD.encode(TokenHash::of(app_state).as_bytes())
    ))
}

fn org_disabled() -> ApiError {
    ApiError::feature_disabled("mobile sign-in is not available to this organization")
}

fn ott_invalid() -> ApiError {
    ApiError::ott_invalid("the one-time token is invalid, expired or already used")
}

fn refresh_invalid() -> ApiError {
    ApiError::unauthenticated("the refresh token is invalid, expired or revoked; sign in again")
}

/// A failed step, in the trail support reads (`mobile.ott.exchanged` / `mobile.refresh.failed`
/// with outcome failure and the reason).
async fn audit_failure(
    state: &AppState,
    meta: &AuditContext,
    org: Option<OrgId>,
    action: Action,
    target: String,
    reason: &str,
) -> ApiResult<()> {
    let event = meta
        .event(org, action, target)
        .failed()
        .with_details(json!({"reason": reason}));
    state.store.record_audit(&event).await?;
    Ok(())
}

/// Redeems a one-time token: checks it against the app's `state` and PKCE verifier, then
/// opens the device's session and a refresh family in it.
pub async fn exchange(state: &AppState, req: Exchange, meta: AuditContext) -> ApiResult<Exchanged> {
    let now = portcullis_core::now();
    if !req.ott.starts_with(super::OTT_PREFIX) {
        return Err(ott_invalid());
    }
    let Some(ott) = state
        .store
        .mobile()
        .consume_ott(&TokenHash::of(&req.ott), now)
        .await?
    else {
        audit_failure(
            state,
            &meta,
            None,
            Action::MobileOttExchanged,
            "ott:unknown".into(),
            "unknown_or_used",
        )
        .await?;
        return Err(ott_invalid());
    };
    // The token is spent from here on: whatever fails below, it cannot be tried again.
    let meta = meta.with_actor(ott.user_id);
    let target = format!("user:{}", ott.user_id);
    let failure = if ott.expires_at <= now {
        Some("expired")
    } else if !ott.state_hash.ct_eq(&TokenHash::of(&req.state)) {
        Some("state_mismatch")
    } else {
        match (&ott.code_challenge, &req.code_verifier) {
            (Some(challenge), Some(verifier)) if super::pkce_matches(verifier, challenge) => None,
            (Some(_), _) => Some("pkce_mismatch"),
            (None, _) => None,
        }
    };
    if let Some(reason) = failure {
        audit_failure(
            state,
            &meta,
            Some(ott.org_id),
            Action::MobileOttExchanged,
            target,
            reason,
        )
        .await?;
        return Err(ott_invalid());
    }
    if !super::allowed_for_org(state, ott.org_id).await {
        return Err(org_disabled());
    }
    let Some(user) = state.store.user_by_id(ott.user_id).await? else {
        return Err(ott_invalid());
    };
    let memberships = state.store.memberships_of_user(user.id).await?;
    let Some(membership) = memberships.iter().find(|m| m.org.id == ott.org_id) else {
        return Err(ApiError::forbidden(
            "your membership of this organization has ended",
        ));
    };
    let Some(project) = membership
        .projects
        .iter()
        .find(|p| p.project.id == ott.project_id)
    else {
        return Err(ApiError::forbidden(
            "you no longer have access to this project",
        ));
    };

    // The device's session: its token is derived from its id and never leaves the server.
    let device = req.device;
    let mut session = state.sessions.new_session(
        user.id,
        TokenHash::of(""),
        now,
        meta.ip.clone(),
        meta.user_agent.clone(),
    );
    session.token_hash = TokenHash::of(&super::session_token(state, session.id));
    session.device = Some(device.clone());
    let exchanged = meta
        .event(
            Some(ott.org_id),
            Action::MobileOttExchanged,
            format!("session:{}", session.id),
        )
        .with_details(json!({
            "platform": device.platform,
            "model": device.model,
            "app_version": device.app_version,
            "pkce": ott.code_challenge.is_some(),
        }));
    let (refresh_token, refresh_hash) =
        issue::new_refresh_token().map_err(|e| ApiError::internal(e.description))?;
    let family = RefreshFamily {
        id: uuid::Uuid::now_v7(),
        client_id: state.mobile.client_id.clone(),
        org_id: ott.org_id,
        project_id: ott.project_id,
        user_id: user.id,
        session_id: Some(session.id),
        scope: MOBILE_SCOPE.into(),
        auth_time: ott.auth_time,
        created_at: now,
    };
    // One transaction: no session without its family, no exchange event without both.
    state
        .store
        .mobile()
        .start_device_session(
            &session,
            &family,
            &refresh_hash,
            now + state.oidc.refresh_ttl,
            &exchanged,
            &meta,
        )
        .await?;
    let (access_token, expires_in) = access_token_for(state, &user, &family).await?;
    Ok(Exchanged {
        tokens: Tokens {
            access_token,
            expires_in,
            refresh_token,
        },
        org: membership.org.clone(),
        project: project.project.clone(),
        user,
    })
}

async fn access_token_for(
    state: &AppState,
    user: &User,
    family: &RefreshFamily,
) -> ApiResult<(String, i64)> {
    let client = super::client(state, family.org_id, family.project_id);
    let grant = Grant {
        client: &client,
        user: Some(user),
        scope: &family.scope,
        org_id: family.org_id,
        project_id: family.project_id,
        session_id: family.session_id,
        family_id: Some(family.id),
    };
    let token = issue::access_token(state, &grant, portcullis_core::now())
        .await
        .map_err(|e| ApiError::internal(e.description))?;
    Ok((token.token, token.expires_in))
}

/// Rotates `presented`: a new access token and its successor, while the family, its
/// session and the org's access to mobile sign-in all hold. A rotated token presented
/// again past the grace window revokes the family and signs the device out.
pub async fn refresh(state: &AppState, presented: &str, meta: AuditContext) -> ApiResult<Tokens> {
    let hash = TokenHash::of(presented);
    let token = if presented.starts_with(REFRESH_PREFIX) {
        state.store.mobile().refresh_token(&hash).await?
    } else {
        None
    };
    let Some(token) = token else {
        audit_failure(
            state,
            &meta,
            None,
            Action::MobileRefreshFailed,
            "refresh_family:unknown".into(),
            "unknown",
        )
        .await?;
        return Err(refresh_invalid());
    };
    let org = token.family.org_id;
    let target = format!("refresh_family:{}", token.family.id);
    let now = portcullis_core::now();
    let (successor, successor_hash) =
        issue::successor_of(state, presented).map_err(|e| ApiError::internal(e.description))?;
    // The session must still be live (signed out elsewhere, expired, user removed), or the
    // family ends with it. Checked before rotating, so that a rotation commits together
    // with its `mobile.refresh.succeeded`; only a presentation that would get tokens is
    // checked (reuse, revocation and expiry are the rotation's to tell). Resolving the
    // session also slides its expiry.
    let decision = classify_refresh(
        &token.presented_by(&state.mobile.client_id),
        &successor_hash,
        now,
        state.oidc.refresh_grace,
    );
    if decision.succeeds() {
        let family = &token.family;
        let session_live = match family.session_id {
            Some(sid) => crate::extract::resolve_session(state, &super::session_token(state, sid))
                .await
                .is_ok(),
            None => false,
        };
        if !session_live || !super::allowed_for_org(state, org).await {
            let meta = meta.with_actor(family.user_id);
            let failed = meta
                .event(Some(org), Action::MobileRefreshFailed, target)
                .failed()
                .with_details(json!({"reason": "session_ended"}));
            state
                .store
                .mobile()
                .end_device_grant(family, "session_ended", false, &meta, &[failed])
                .await?;
            if session_live {
                return Err(org_disabled());
            }
            return Err(refresh_invalid());
        }
    }
    let succeeded = meta.with_actor(token.family.user_id).event(
        Some(org),
        Action::MobileRefreshSucceeded,
        target.clone(),
    );
    let outcome = state
        .store
        .grants()
        .rotate_refresh(
            &RefreshRotation {
                org_id: org,
                client_id: &state.mobile.client_id,
                presented: &hash,
                successor: &successor_hash,
                now,
                grace: state.oidc.refresh_grace,
                successor_expires_at: now + state.oidc.refresh_ttl,
                on_success: std::slice::from_ref(&succeeded),
                reuse_ends_session: true,
            },
            &meta,
        )
        .await?;
    let (family, reason) = match outcome {
        RefreshOutcome::Rotated(f) | RefreshOutcome::Retried(f) => (f, None),
        RefreshOutcome::ReuseDetected(_) => {
            // The store revoked the family and the device's session, and wrote
            // mobile.refresh.reuse_detected, all at once.
            return Err(ApiError::refresh_token_reused(
                "this refresh token was already used; the sign-in it belonged to has been revoked — sign in again",
            ));
        }
        RefreshOutcome::Revoked(f) => (f, Some("revoked")),
        RefreshOutcome::Expired(f) => (f, Some("expired")),
        RefreshOutcome::Unknown => {
            audit_failure(
                state,
                &meta,
                Some(org),
                Action::MobileRefreshFailed,
                "refresh_family:unknown".into(),
                "unknown",
            )
            .await?;
            return Err(refresh_invalid());
        }
    };
    if let Some(reason) = reason {
        audit_failure(
            state,
            &meta.with_actor(family.user_id),
            Some(org),
            Action::MobileRefreshFailed,
            target,
            reason,
        )
        .await?;
        return Err(refresh_invalid());
    }
    let Some(user) = state.store.user_by_id(family.user_id).await? else {
        return Err(refresh_invalid());
    };
    let (access_token, expires_in) = access_token_for(state, &user, &family).await?;
    Ok(Tokens {
        access_token,
        expires_in,
        refresh_token: successor,
    })
}

/// Signs the device out: revokes the family of `presented` and its session. A token that is
/// unknown, malformed or not a mobile one is quietly ignored (nothing to sign out).
pub async fn revoke(state: &AppState, presented: &str, meta: AuditContext) -> ApiResult<()> {
    if !presented.starts_with(REFRESH_PREFIX) {
        return Ok(());
    }
    let hash = TokenHash::of(presented);
    let Some(t) = state.store.mobile().refresh_token(&hash).await? else {
        return Ok(());
    };
    if t.family.client_id != state.mobile.client_id {
        return Ok(());
    }
    let meta = meta.with_actor(t.family.user_id);
    let logout = meta.event(
        Some(t.family.org_id),
        Action::MobileLogout,
        format!("refresh_family:{}", t.family.id),
    );
    // One transaction: the family, the device's session and the logout event.
    state
        .store
        .mobile()
        .end_device_grant(&t.family, "logout", true, &meta, &[logout])
        .await?;
    Ok(())
}
