//! Who an upstream identity is here — linked, linked now, claimed, created, or refused, as
//! [`portcullis_core::link::decide`] rules — and the session it signs in to.

use portcullis_core::link::{self, Assertion, Decision, Holder, Refusal, Voucher};
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
        let provider = &ready.upstream.id;
        let by_identity = sso
            .user_by_identity(provider, &claims.issuer, &claims.subject)
            .await?;
        let by_email = if by_identity.is_none() {
            self.store
                .accounts()
                .user_by_email(&email)
                .await?
                .map(|c| Holder {
                    has_password: c.password_hash.is_some(),
                    user: c.user,
                })
        } else {
            None
        };
        let org = ready.upstream.org.map(|(org, _)| org);
        let domains = match org {
            Some(org) => self.store.domains().verified_domains(org).await?,
            None => Vec::new(),
        };
        let assertion = Assertion {
            email: &email,
            email_verified: claims.verified(),
            voucher: match org {
                Some(_) => Voucher::Org {
                    verified_domains: &domains,
                },
                None => Voucher::Operator,
            },
        };
        let decision = link::decide(by_identity, by_email, &assertion);
        let identity = |user_id: UserId| UserIdentity {
            user_id,
            provider: provider.clone(),
            issuer: claims.issuer.clone(),
            subject: claims.subject.clone(),
            email: email.as_str().to_owned(),
            provider_id: ready.upstream.org.map(|(_, id)| id),
            created_at: portcullis_core::now(),
        };
        match decision {
            Decision::SignIn(user) => Ok(user),
            Decision::Link(user) => {
                sso.link_identity(&identity(user.id), meta).await?;
                Ok(user)
            }
            Decision::Claim(user) => {
                // The verified owner wins over whoever registered the address with a
                // password first: that password and every session go, in one unit.
                sso.claim_account(&user, &identity(user.id), meta).await?;
                Ok(user)
            }
            Decision::Create => {
                let name = claims.name.as_deref().and_then(|n| UserName::parse(n).ok());
                let (org, project) =
                    portcullis_core::bootstrap::personal_org(&email, name.as_ref())?;
                let user_id = UserId::new();
                let bootstrap = SignupBootstrap {
                    user_id,
                    email: email.clone(),
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
            Decision::Refuse(refusal) => {
                let name = ready.upstream.name.clone();
                let (reason, error) = match refusal {
                    Refusal::EmailNotVerified => (
                        "email_not_verified",
                        SignInError::EmailNotVerified { provider: name },
                    ),
                    Refusal::DomainNotVerified => (
                        "domain_not_verified",
                        SignInError::DomainNotVerified {
                            provider: name,
                            domain: email.domain().to_owned(),
                        },
                    ),
                    Refusal::PlatformAdmin => (
                        "platform_admin",
                        SignInError::PlatformAdmin { provider: name },
                    ),
                };
                // Never names the account: an org's admins read this event, and must not
                // learn who has an account here.
                self.audit_failure(meta, provider, org, None, reason).await;
                Err(error)
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
            .sessions()
            .create_session(&session, &meta, &[succeeded])
            .await?;
        self.metrics
            .sign_in(crate::infra::metrics::SignInMethod::Sso, true);
        Ok(token)
    }
}
