//! Upstream sign-in and org admins' providers, without HTTP. The two steps of a sign-in:
//! `start` sends the browser to the upstream; `complete` checks what comes back, decides
//! who the user is (`account.rs`, by [`portcullis_core::link`]) and opens a session exactly
//! as a password sign-in does. The org providers' management is `org_providers.rs`. The
//! handlers build an [`Sso`] from the server state and turn its errors into answers.

use portcullis_core::{
    Action, AuditContext, Email, OrgId, ProjectId, SessionPolicy, UserId, ValidationError,
};
use portcullis_core::{SessionToken, User};
use portcullis_store::{Store, StoreError};
use serde_json::json;

use super::flow::{self, PendingSignIn, ReturnTo};
use crate::config::MasterKey;
use crate::infra::session_cache::SessionCache;
use crate::infra::upstream::id_token::{self, IdTokenError, IdentityClaims};
use crate::infra::upstream::userinfo;
use crate::infra::upstream::{ProviderSummary, Providers, Ready, UpstreamError};

mod account;
pub mod org_providers;

/// What upstream sign-in works with, borrowed from the server's state by the handler.
pub struct Sso<'a> {
    pub store: &'a dyn Store,
    pub cache: &'a SessionCache,
    pub sessions: &'a SessionPolicy,
    pub metrics: &'a crate::infra::metrics::Metrics,
    /// The upstream providers and their discovery state.
    pub providers: &'a Providers,
    /// Seals the state cookie and org providers' client secrets.
    pub master_key: &'a MasterKey,
    /// The public URL, base of the callback URL the upstream sends the browser back to.
    pub public_url: &'a str,
    pub public_origin: &'a str,
}

/// Why an upstream sign-in was refused. Each is one error code of the API (mapped in
/// `http.rs`).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("no such SSO provider, or it is not available right now")]
    NotAvailable,
    #[error(
        "return_to must be a path on this server, this server's URL, or a URL on an allowed origin of the \
         project named by the `project` parameter"
    )]
    ReturnToRefused,
    /// The callback's `state` is missing, not the one this browser started, or expired.
    #[error("{}", state_mismatch(*cookie_missing))]
    StateMismatch { cookie_missing: bool },
    /// The upstream answered with an error instead of a code (control characters removed,
    /// at most 200 characters each).
    #[error("the identity provider did not sign you in ({error}{})", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    UpstreamRefused {
        error: String,
        description: Option<String>,
    },
    /// RFC 9207: the answer names another issuer than the provider we sent the browser to.
    #[error("the authorization response names another issuer than this provider")]
    IssuerMismatch,
    #[error("the identity provider's answer carries no code")]
    CodeMissing,
    #[error("the identity provider's ID token was refused: {0}")]
    IdTokenRefused(IdTokenError),
    #[error(
        "{provider} returned no `email` claim, neither in the ID token nor at its userinfo endpoint; the \
         operator must request the `email` scope (scopes: {scopes}) and make the provider release the \
         `email` claim to this client"
    )]
    EmailIsMissing { provider: String, scopes: String },
    #[error("the identity provider's `email` claim is not a valid address")]
    EmailInvalid,
    /// The upstream does not say it verified the address, and a verified one is needed.
    #[error(
        "{provider} does not confirm that your email address is verified; an account is created or linked \
         only for a verified address — verify it at {provider} and sign in again"
    )]
    EmailNotVerified { provider: String },
    /// An org's provider asserted an address outside the org's verified domains.
    #[error(
        "{provider} is an organization's identity provider and may sign in only addresses in that \
         organization's verified domains; {domain} is not one of them"
    )]
    DomainNotVerified { provider: String, domain: String },
    /// An org's provider tried to sign in a platform admin.
    #[error(
        "platform administrators cannot sign in through an organization's identity provider ({provider}); \
         use your password or a server-wide provider"
    )]
    PlatformAdmin { provider: String },
    /// The upstream could not be reached or answered something unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

fn state_mismatch(cookie_missing: bool) -> &'static str {
    if cookie_missing {
        "this browser has no sign-in in progress (the sign-in cookie is missing); start the sign-in again"
    } else {
        "the sign-in state does not match the one this browser started, or it expired (10 minutes); start the sign-in again"
    }
}

pub type SignInResult<T> = Result<T, SignInError>;

/// The upstream's redirect back to us, as its query states it.
#[derive(Debug, Default)]
pub struct UpstreamAnswer {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the upstream when it refused or failed the sign-in.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207 issuer identification; checked when present.
    pub iss: Option<String>,
}

pub struct Started {
    pub location: String,
    /// The sealed state cookie's value.
    pub cookie: String,
}

pub struct Completed {
    pub user: User,
    pub token: SessionToken,
    pub return_to: String,
}

impl Sso<'_> {
    /// The providers offered for sign-in: the server-wide ones, then those of the org with
    /// `org_slug` when one is named.
    pub async fn available(&self, org_slug: Option<&str>) -> SignInResult<Vec<ProviderSummary>> {
        let mut providers = self.providers.available();
        if let Some(slug) = org_slug.map(str::trim).filter(|s| !s.is_empty()) {
            providers.extend(self.providers.org_available(slug).await?);
        }
        Ok(providers)
    }

    fn callback_uri(&self, provider: &str) -> String {
        format!("{}/v1/auth/sso/{provider}/callback", self.public_url)
    }

    async fn ready(&self, provider: &str) -> SignInResult<Ready> {
        self.providers
            .resolve(provider)
            .await
            .ok_or(SignInError::NotAvailable)
    }

    /// Checks `return_to`: a path on this server or this server's URL; another origin only
    /// when the project the sign-in is for (`project`) allows it — never because some other
    /// project somewhere does.
    async fn check_return_to(
        &self,
        raw: Option<&str>,
        project: Option<&str>,
    ) -> SignInResult<String> {
        match flow::classify_return_to(raw, self.public_origin) {
            ReturnTo::Ok(url) => Ok(url),
            ReturnTo::NeedsOrigin { url, origin } => {
                let Some(project) = project.and_then(|p| ProjectId::parse(p.trim())) else {
                    return Err(SignInError::ReturnToRefused);
                };
                if self
                    .store
                    .sso()
                    .project_allows_origin(project, &origin)
                    .await?
                {
                    Ok(url)
                } else {
                    Err(SignInError::ReturnToRefused)
                }
            }
            ReturnTo::Refused => Err(SignInError::ReturnToRefused),
        }
    }

    /// Step one: the authorization redirect and the cookie binding it to this browser.
    pub async fn start(
        &self,
        provider: &str,
        return_to: Option<&str>,
        project: Option<&str>,
        login_hint: Option<&str>,
    ) -> SignInResult<Started> {
        let ready = self.ready(provider).await?;
        let return_to = self.check_return_to(return_to, project).await?;
        let pending = PendingSignIn::new(&ready.upstream.id, return_to)?;
        let location = flow::authorize_url(
            &ready.meta,
            &ready.upstream,
            &self.callback_uri(&ready.upstream.id),
            &pending,
            login_hint.map(|h| h.trim()).filter(|h| h.len() <= 256),
        )?;
        Ok(Started {
            location,
            cookie: pending.seal(self.master_key)?,
        })
    }

    /// Records `login.failed` for an SSO sign-in, in the org of an org's provider (its
    /// admins see what their provider tried). A failed write fails the request, as in
    /// password and mobile sign-in: a refused sign-in nobody can see in the audit trail is
    /// worse than an error (the edge logs the cause under the correlation id).
    async fn audit_failure(
        &self,
        meta: &AuditContext,
        provider: &str,
        org: Option<OrgId>,
        user: Option<UserId>,
        reason: &str,
    ) -> SignInResult<()> {
        self.metrics
            .sign_in(crate::infra::metrics::SignInMethod::Sso, false);
        let mut event = meta
            .event(org, Action::LoginFailed, "user:unknown")
            .failed()
            .with_details(json!({"method": "sso", "provider": provider, "reason": reason}));
        if let Some(id) = user {
            event.actor_id = Some(id);
            event.target = Some(format!("user:{id}"));
        }
        self.store.audit().record_audit(&event).await?;
        Ok(())
    }

    async fn validate_id_token(
        &self,
        ready: &Ready,
        token: &str,
        nonce: &str,
    ) -> Result<IdentityClaims, IdTokenError> {
        let rule = ready.upstream.issuer_rule(&ready.meta);
        let expected = id_token::Expected {
            issuer: &rule,
            client_id: &ready.upstream.client_id,
            nonce,
        };
        match id_token::validate(token, &ready.meta.keys(), &expected) {
            Err(IdTokenError::UnknownKey) => {
                // The upstream may have rotated its keys since we fetched them.
                if let Some(http) = self.providers.fetcher(&ready.upstream)
                    && ready.meta.refresh_keys(http).await
                {
                    return id_token::validate(token, &ready.meta.keys(), &expected);
                }
                Err(IdTokenError::UnknownKey)
            }
            other => other,
        }
    }

    /// Step two: the callback. `cookie` is the state cookie's value, if the browser sent one.
    pub async fn complete(
        &self,
        provider: &str,
        answer: &UpstreamAnswer,
        cookie: Option<&str>,
        meta: &AuditContext,
    ) -> SignInResult<Completed> {
        let pending = cookie.and_then(|c| PendingSignIn::open(self.master_key, c));
        let state_ok = match (&pending, answer.state.as_deref()) {
            (Some(p), Some(s)) => p.provider == provider && p.state_matches(s),
            _ => false,
        };
        let Some(pending) = pending.filter(|_| state_ok) else {
            self.audit_failure(meta, provider, None, None, "state_mismatch")
                .await?;
            return Err(SignInError::StateMismatch {
                cookie_missing: cookie.is_none(),
            });
        };
        if let Some(error) = &answer.error {
            self.audit_failure(meta, provider, None, None, "upstream_error")
                .await?;
            let clean = |s: &str| -> String {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            };
            return Err(SignInError::UpstreamRefused {
                error: clean(error),
                description: answer.error_description.as_deref().map(clean),
            });
        }
        let ready = self.ready(provider).await?;
        let org = ready.upstream.org.map(|(org, _)| org);
        // RFC 9207: an upstream that names itself in the response must be the one we sent the
        // browser to (mix-up defense). Microsoft's multi-tenant template cannot be compared.
        if let Some(iss) = answer.iss.as_deref()
            && !ready.meta.discovery.issuer.contains("{tenantid}")
            && iss != ready.meta.discovery.issuer
        {
            self.audit_failure(meta, provider, org, None, "issuer_mismatch")
                .await?;
            return Err(SignInError::IssuerMismatch);
        }
        let Some(code) = answer.code.as_deref().filter(|c| !c.is_empty()) else {
            self.audit_failure(meta, provider, org, None, "code_missing")
                .await?;
            return Err(SignInError::CodeMissing);
        };
        let http = self
            .providers
            .fetcher(&ready.upstream)
            .ok_or(SignInError::NotAvailable)?;
        let tokens = match flow::exchange_code(
            http,
            &ready.meta,
            &ready.upstream,
            code,
            &self.callback_uri(&ready.upstream.id),
            &pending.verifier,
        )
        .await
        {
            Ok(t) => t,
            Err(e) => {
                self.audit_failure(meta, provider, org, None, "code_exchange_failed")
                    .await?;
                return Err(e.into());
            }
        };
        let mut claims = match self
            .validate_id_token(&ready, &tokens.id_token, &pending.nonce)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.audit_failure(meta, provider, org, None, "id_token_invalid")
                    .await?;
                return Err(SignInError::IdTokenRefused(e));
            }
        };
        // Core §5.4: with an access token issued, the email claims may be at userinfo only.
        if claims.needs_userinfo()
            && let (Some(endpoint), Some(access_token)) = (
                ready.meta.discovery.userinfo_endpoint.as_deref(),
                tokens.access_token.as_deref(),
            )
        {
            let answer = userinfo::fetch(http, endpoint, access_token)
                .await
                .and_then(|info| userinfo::complete(claims, &info));
            claims = match answer {
                Ok(c) => c,
                Err(e) => {
                    self.audit_failure(meta, provider, org, None, "userinfo_failed")
                        .await?;
                    return Err(e.into());
                }
            };
        }
        let Some(raw_email) = claims.email.as_deref() else {
            self.audit_failure(meta, provider, org, None, "email_is_missing")
                .await?;
            return Err(SignInError::EmailIsMissing {
                provider: ready.upstream.name.clone(),
                scopes: ready.upstream.scopes.join(" "),
            });
        };
        let email = Email::parse(raw_email).map_err(|_| SignInError::EmailInvalid)?;
        let resolved = self.resolve_user(&ready, &claims, email, meta).await?;
        let (user, token) = self
            .sign_in(&resolved, ready.upstream.org, meta, &ready.upstream.id)
            .await?;
        Ok(Completed {
            user,
            token,
            return_to: pending.return_to,
        })
    }
}
