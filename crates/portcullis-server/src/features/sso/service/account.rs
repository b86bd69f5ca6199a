//! Who an upstream identity is here — linked, linked now, or created now, as
//! [`portcullis_core::link::decide`] rules — and the session it signs in to.

use portcullis_core::link::{self, Decision};
use portcullis_core::{Action, AuditContext, Email, SessionToken, User, UserId, UserName};
use portcullis_store::{SignupBootstrap, UserIdentity};
use serde_json::json;

use super::{SignInError, SignInResult, Sso};
use crate::infra::upstream::Ready;
use crate::infra::upstream::id_token::IdentityClaims;

impl Sso<'_> {
    /// The local user of the upstream identity in `claims`, whose email is `email`.
    pub(super) async fn resolve_user(
        &self,
        ready: &Ready,
        claims: &IdentityClaims,
        email: Email,
        meta: &AuditContext,
    ) -> SignInResult<User> {
        let sso = self.store.sso();
        let by_identity = sso
            .user_by_identity(&ready.upstream.id, &claims.issuer, &claims.subject)
            .await?;
        let by_email = if by_identity.is_none() {
            self.store.user_by_email(&email).await?.map(|c| c.user)
        } else {
            None
        };
        let email_text = email.as_str().to_owned();
        let identity = |user_id: UserId| UserIdentity {
            user_id,
            provider: ready.upstream.id.clone(),
            issuer: claims.issuer.clone(),
            subject: claims.subject.clone(),
            email: email_text.clone(),
            provider_id: ready.upstream.org.map(|(_, id)| id),
            created_at: portcullis_core::now(),
        };
        match link::decide(by_identity, by_email, claims.email_verified) {
            Decision::SignIn(user) => Ok(user),
            Decision::Link(user) => {
                sso.link_identity(&identity(user.id), meta).await?;
                Ok(user)
            }
            Decision::RefuseUnverified => {
                self.audit_failure(meta, &ready.upstream.id, None, "email_not_verified")
                    .await;
                Err(SignInError::EmailNotVerified {
                    provider: ready.upstream.name.clone(),
                })
            }
            Decision::Create => {
                let name = claims.name.as_deref().and_then(|n| UserName::parse(n).ok());
                let (org, project) =
                    portcullis_core::bootstrap::personal_org(&email, name.as_ref())?;
                let user_id = UserId::new();
                let bootstrap = SignupBootstrap {
                    user_id,
                    email,
                    name,
                    password_hash: None,
                    org,
                    project,
                    self_signup: true,
                };
                Ok(sso
                    .signup_with_identity(&bootstrap, &identity(user_id), meta)
                    .await?)
            }
        }
    }

    /// A session like password sign-in makes: `session.created` with `login.succeeded`
    /// (method `sso`), one transaction.
    pub(super) async fn open_session(
        &self,
        user: &User,
        meta: &AuditContext,
        provider: &str,
    ) -> SignInResult<SessionToken> {
        let meta = meta.with_actor(user.id);
        let succeeded = meta
            .event(None, Action::LoginSucceeded, format!("user:{}", user.id))
            .with_details(json!({"method": "sso", "provider": provider}));
        let token = SessionToken::generate().map_err(|e| SignInError::Internal(e.to_string()))?;
        let session = self.sessions.new_session(
            user.id,
            token.hash(),
            portcullis_core::now(),
            meta.ip.clone(),
            meta.user_agent.clone(),
        );
        self.store
            .create_session(&session, &meta, &[succeeded])
            .await?;
        self.metrics
            .sign_in(crate::infra::metrics::SignInMethod::Sso, true);
        Ok(token)
    }
}
