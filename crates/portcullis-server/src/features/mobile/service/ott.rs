//! The one-time token's life: minted for a signed-in browser by the hand-off, redeemed
//! once by the app for its session, access token and refresh family.

use portcullis_core::{Action, AuditContext, TokenHash};
use portcullis_store::{OneTimeToken, RefreshFamily, SessionWithUser};
use serde_json::json;

use super::{Exchange, Exchanged, Mobile, MobileError, MobileResult, Tokens};
use crate::features::mobile::MOBILE_SCOPE;

impl Mobile<'_> {
    /// Mints the one-time token for a browser signed in as `session`, bound to the app's
    /// `state` and PKCE S256 challenge (always one: a token another app caught on the deep
    /// link is then worth nothing); the raw token goes on the app's deep link.
    pub async fn issue_ott(
        &self,
        session: &SessionWithUser,
        app_state: &str,
        code_challenge: &str,
        meta: &AuditContext,
    ) -> MobileResult<String> {
        let user = &session.user;
        let Some((org_id, project_id)) = self.store.mobile().default_grant_target(user.id).await?
        else {
            return Err(MobileError::NoOrganization);
        };
        if let Some(plan) = self.plan_without_mobile(org_id).await? {
            return Err(MobileError::FeatureDisabled { plan });
        }
        let (raw, hash) = portcullis_core::token::new_one_time_token()
            .map_err(|e| MobileError::Internal(format!("no randomness: {e}")))?;
        let now = portcullis_core::now();
        let ott = OneTimeToken {
            token_hash: hash,
            state_hash: TokenHash::of(app_state),
            code_challenge: Some(code_challenge.to_owned()),
            user_id: user.id,
            org_id,
            project_id,
            auth_time: session.session.created_at,
            created_at: now,
            expires_at: now + self.settings.ott_ttl,
        };
        self.store
            .mobile()
            .insert_ott(&ott, &meta.with_actor(user.id))
            .await?;
        Ok(raw)
    }

    /// Redeems a one-time token: checks it against the app's `state` and PKCE verifier,
    /// then opens the device's session and a refresh family in it.
    pub async fn exchange(&self, req: Exchange, meta: AuditContext) -> MobileResult<Exchanged> {
        let now = portcullis_core::now();
        if !req
            .ott
            .starts_with(portcullis_core::token::ONE_TIME_TOKEN_PREFIX)
        {
            return Err(MobileError::OttInvalid);
        }
        let Some(ott) = self
            .store
            .mobile()
            .consume_ott(&TokenHash::of(&req.ott), now)
            .await?
        else {
            self.audit_failure(
                &meta,
                None,
                Action::MobileOttExchanged,
                "ott:unknown".into(),
                "unknown_or_used",
            )
            .await?;
            return Err(MobileError::OttInvalid);
        };
        // The token is spent from here on: whatever fails below, it cannot be tried again.
        let meta = meta.with_actor(ott.user_id);
        let target = format!("user:{}", ott.user_id);
        let failure = if ott.expires_at <= now {
            Some("expired")
        } else if !ott.state_hash.ct_eq(&TokenHash::of(&req.state)) {
            Some("state_mismatch")
        } else {
            // A token minted without a challenge (before PKCE was required) proves nothing.
            match &ott.code_challenge {
                Some(challenge)
                    if portcullis_core::pkce::verify_s256(&req.code_verifier, challenge) =>
                {
                    None
                }
                _ => Some("pkce_mismatch"),
            }
        };
        if let Some(reason) = failure {
            self.audit_failure(
                &meta,
                Some(ott.org_id),
                Action::MobileOttExchanged,
                target,
                reason,
            )
            .await?;
            return Err(MobileError::OttInvalid);
        }
        if let Some(plan) = self.plan_without_mobile(ott.org_id).await? {
            return Err(MobileError::FeatureDisabled { plan });
        }
        let Some(user) = self.store.accounts().user_by_id(ott.user_id).await? else {
            return Err(MobileError::OttInvalid);
        };
        let memberships = self.store.orgs().memberships_of_user(user.id).await?;
        let Some(membership) = memberships.iter().find(|m| m.org.id == ott.org_id) else {
            return Err(MobileError::MembershipEnded);
        };
        let Some(project) = membership
            .projects
            .iter()
            .find(|p| p.project.id == ott.project_id)
        else {
            return Err(MobileError::ProjectAccessEnded);
        };

        // The device's session: its token is derived from its id and never leaves the server.
        let device = req.device;
        let mut session = self.sessions.new_session(
            user.id,
            TokenHash::of(""),
            now,
            meta.ip.clone(),
            meta.user_agent.clone(),
        );
        session.token_hash = TokenHash::of(&crate::infra::access_tokens::mobile_session_token(
            &self.settings.session_key,
            session.id,
        ));
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
        let (refresh_token, refresh_hash) = self.provider.new_refresh_token()?;
        let family = RefreshFamily {
            id: portcullis_core::FamilyId::new(),
            client_id: self.settings.client_id.clone(),
            org_id: ott.org_id,
            project_id: ott.project_id,
            user_id: user.id,
            session_id: Some(session.id),
            scope: MOBILE_SCOPE.into(),
            auth_time: ott.auth_time,
            created_at: now,
        };
        // One transaction: no session without its family, no exchange event without both.
        self.store
            .mobile()
            .start_device_session(
                &session,
                &family,
                &refresh_hash,
                now + self.oidc.refresh_ttl,
                &exchanged,
                &meta,
            )
            .await?;
        let (access_token, expires_in) = self.access_token_for(&user, &family).await?;
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
}
