//! Who an upstream identity is here — linked, linked now, claimed, created, or refused, as
//! [`portcullis_core::link::decide`] rules — and the session it signs in to.

use portcullis_core::link::{self, Assertion, Decision, Holder, Refusal, Voucher};
use portcullis_core::{Action, AuditContext, Email, OrgId, SessionToken, User, UserId, UserName};
use portcullis_store::{SignupBootstrap, SsoAccount, SsoSignIn, UserIdentity};
use serde_json::json;
use uuid::Uuid;

use super::{SignInError, SignInResult, Sso};
use crate::infra::upstream::Ready;
use crate::infra::upstream::id_token::IdentityClaims;

/// Who the upstream identity is here, and what signing it in must write for it; nothing is
/// written until [`Sso::sign_in`] writes it all in one unit of work.
pub(super) struct Resolved {
    account: Account,
    identity: UserIdentity,
}

enum Account {
    Linked(User),
    Link(User),
    Claim(User),
    Create(Box<SignupBootstrap>),
}

impl Resolved {
    fn user_id(&self) -> UserId {
        self.identity.user_id
    }

    fn account(&self) -> SsoAccount<'_> {
        match &self.account {
            Account::Linked(u) => SsoAccount::Linked(u),
            Account::Link(u) => SsoAccount::Link(u),
            Account::Claim(u) => SsoAccount::Claim(u),
            Account::Create(b) => SsoAccount::Create(b),
        }
    }
}

impl Sso<'_> {
    /// The local user of the upstream identity in `claims`, whose email is `email`.
    pub(super) async fn resolve_user(
        &self,
        ready: &Ready,
        claims: &IdentityClaims,
        email: Email,
        meta: &AuditContext,
    ) -> SignInResult<Resolved> {
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
        let resolved = |account: Account, user_id: UserId| Resolved {
            account,
            identity: identity(user_id),
        };
        match decision {
            Decision::SignIn(user) => Ok(resolved(Account::Linked(user.clone()), user.id)),
            Decision::Link(user) => Ok(resolved(Account::Link(user.clone()), user.id)),
            // The verified owner wins over whoever registered the address with a password
            // first: that password and every session go, with the sign-in.
            Decision::Claim(user) => Ok(resolved(Account::Claim(user.clone()), user.id)),
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
                Ok(resolved(Account::Create(Box::new(bootstrap)), user_id))
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
                self.audit_failure(meta, provider, org, None, reason)
                    .await?;
                Err(error)
            }
        }
    }

    /// Signs the resolved user in, in one unit of work: the identity's link, claim or new
    /// account, the membership of the provider's org (`join`), and a session like password
    /// sign-in makes (`session.created` with `login.succeeded`, method `sso`).
    pub(super) async fn sign_in(
        &self,
        resolved: &Resolved,
        join: Option<(OrgId, Uuid)>,
        meta: &AuditContext,
        provider: &str,
    ) -> SignInResult<(User, SessionToken)> {
        let user_id = resolved.user_id();
        let succeeded = meta
            .with_actor(user_id)
            .event(None, Action::LoginSucceeded, format!("user:{user_id}"))
            .with_details(json!({"method": "sso", "provider": provider}));
        let token = SessionToken::generate().map_err(|e| SignInError::Internal(e.to_string()))?;
        let session = self.sessions.new_session(
            user_id,
            token.hash(),
            portcullis_core::now(),
            meta.ip.clone(),
            meta.user_agent.clone(),
        );
        let sign_in = SsoSignIn {
            account: resolved.account(),
            identity: &resolved.identity,
            join,
            session: &session,
            also: std::slice::from_ref(&succeeded),
        };
        let user = self.store.sso().sign_in_via_sso(&sign_in, meta).await?;
        self.metrics
            .sign_in(crate::infra::metrics::SignInMethod::Sso, true);
        Ok((user, token))
    }
}
