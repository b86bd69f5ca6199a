//! Accounts and their sessions: self-signup, password sign-in (shared by the JSON API, the
//! provider's login page and the mobile hand-off) and sign-out.

use crate::infra::attempts::{Refused, SignInLimits};
use crate::infra::metrics::{Metrics, SignInMethod};
use portcullis_core::bootstrap::personal_org;
use portcullis_core::invitation::{AcceptRefusal, Invitation, PASSWORD_SETUP_TOKEN_PREFIX};
use portcullis_core::password::Password;
use portcullis_core::{
    Action, AuditContext, AuditEvent, Email, Org, Project, Session, SessionPolicy, SessionToken,
    TokenHash, User, UserId, UserName, ValidationError,
};
use portcullis_store::{Acceptance, SignupBootstrap, Store, StoreError};

use crate::infra::passwords::{PasswordError, PasswordHasher};
use crate::infra::session_cache::SessionCache;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email, malformed email or wrong password: indistinguishable on purpose.
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(
        "password sign-in is switched off on this server (password_login); use a sign-in provider"
    )]
    PasswordLoginDisabled,
    /// The invitation given with a signup cannot be used (nothing was created).
    #[error(transparent)]
    Invitation(#[from] AcceptRefusal),
    /// A password-setup token that is unknown, expired, spent, or of another kind.
    #[error("password-setup token is unknown, expired or already used")]
    SetupTokenInvalid,
    /// Too many sign-ins from this address, or for this account from this address.
    #[error("Too many sign-in attempts. Try again in {} seconds.", .0.retry_after)]
    SignInThrottled(Refused),
    #[error("Too many sign-ups from this address. Try again in {} seconds.", .0.retry_after)]
    SignupThrottled(Refused),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("could not generate a session token: {0}")]
    Randomness(#[from] getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the account operations need; borrowed from the app state for one request.
pub struct Accounts<'a> {
    pub store: &'a dyn Store,
    pub cache: &'a SessionCache,
    pub hasher: &'a PasswordHasher,
    pub sessions: &'a SessionPolicy,
    pub metrics: &'a Metrics,
    pub limits: &'a SignInLimits,
    /// Email + password sign-in is offered (`password_login`).
    pub password_login: bool,
}

/// Self-signup as parsed from the request.
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub name: Option<UserName>,
    /// An invitation token (`inv_…`) to accept with the signup.
    pub invitation: Option<String>,
}

/// A new account with its personal org, default project and first session.
pub struct SignedUp {
    pub user: User,
    pub org: Org,
    pub project: Project,
    pub token: SessionToken,
    /// The invitation accepted with the signup: the account is a member of its org too.
    pub joined: Option<Invitation>,
}

/// A user signed in: their new session and its token for the cookie.
pub struct SignedIn {
    pub user: User,
    pub token: SessionToken,
    pub session: Session,
}

impl Accounts<'_> {
    /// Creates the account, a personal org and a default project with owner memberships of
    /// both (one transaction), and signs the new user in.
    pub async fn sign_up(
        &self,
        account: NewAccount,
        meta: &AuditContext,
    ) -> Result<SignedUp, AuthError> {
        self.limits
            .sign_up(meta.ip.as_deref())
            .await
            .map_err(AuthError::SignupThrottled)?;
        if self
            .store
            .accounts()
            .user_by_email(&account.email)
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let password_hash = self.hasher.hash(account.password).await?;
        let (org, project) = personal_org(&account.email, account.name.as_ref())?;
        let bootstrap = SignupBootstrap {
            user_id: UserId::new(),
            email: account.email,
            name: account.name,
            password_hash: Some(password_hash),
            org,
            project,
            self_signup: true,
        };
        // The unique index decides races: of two concurrent signups one gets the conflict.
        let (user, joined) = match account.invitation {
            None => (
                self.store
                    .accounts()
                    .bootstrap_signup(&bootstrap, meta)
                    .await?,
                None,
            ),
            Some(raw) => {
                // A token of another kind never matches; neither does a refused one leave
                // an account behind.
                let hash = raw
                    .starts_with(portcullis_core::invitation::INVITATION_TOKEN_PREFIX)
                    .then(|| TokenHash::of(&raw))
                    .ok_or(AcceptRefusal::Unavailable)?;
                match self
                    .store
                    .invitations()
                    .signup_with_invitation(&bootstrap, &hash, portcullis_core::now(), meta)
                    .await?
                {
                    (Some(user), Acceptance::Accepted { invitation, .. }) => {
                        (user, Some(invitation))
                    }
                    (_, Acceptance::Refused(refusal)) => return Err(refusal.into()),
                    (None, Acceptance::Accepted { .. }) => {
                        return Err(StoreError::Corrupt(
                            "an accepted invitation without its account".into(),
                        )
                        .into());
                    }
                }
            }
        };
        let meta = meta.with_actor(user.id);
        let (token, _) = self.start_session(&user, &meta, &[]).await?;
        Ok(SignedUp {
            user,
            org: bootstrap.org,
            project: bootstrap.project,
            token,
            joined,
        })
    }

    /// An admin-created account's first password: spends the one-time `pst_…` token the
    /// admin was given (`setup_url`), sets the password and signs the user in.
    pub async fn set_first_password(
        &self,
        token: &str,
        password: Password,
        meta: &AuditContext,
    ) -> Result<SignedIn, AuthError> {
        if !self.password_login {
            return Err(AuthError::PasswordLoginDisabled);
        }
        if !token.starts_with(PASSWORD_SETUP_TOKEN_PREFIX) {
            return Err(AuthError::SetupTokenInvalid);
        }
        let password_hash = self.hasher.hash(password).await?;
        let user = self
            .store
            .invitations()
            .redeem_password_setup(
                &TokenHash::of(token),
                &password_hash,
                portcullis_core::now(),
                meta,
            )
            .await?
            .ok_or(AuthError::SetupTokenInvalid)?;
        let meta = meta.with_actor(user.id);
        let (token, session) = self.start_session(&user, &meta, &[]).await?;
        Ok(SignedIn {
            user,
            token,
            session,
        })
    }

    /// Signs a user in: a new session row (audited, with `also` in the same transaction)
    /// and its token for the cookie.
    pub async fn start_session(
        &self,
        user: &User,
        meta: &AuditContext,
        also: &[AuditEvent],
    ) -> Result<(SessionToken, Session), AuthError> {
        let token = SessionToken::generate()?;
        let session = self.sessions.new_session(
            user.id,
            token.hash(),
            portcullis_core::now(),
            meta.ip.clone(),
            meta.user_agent.clone(),
        );
        self.store
            .sessions()
            .create_session(&session, meta, also)
            .await?;
        Ok((token, session))
    }

    /// Email + password sign-in. Wrong credentials — unknown, malformed or wrong alike,
    /// after the same hashing work — are [`AuthError::InvalidCredentials`], and audited.
    /// Every attempt is counted against the client's address and the account from that
    /// address first ([`SignInLimits`]); past the allowance it waits, without a hash.
    pub async fn password_sign_in(
        &self,
        email: &str,
        password: String,
        meta: &AuditContext,
    ) -> Result<SignedIn, AuthError> {
        if !self.password_login {
            return Err(AuthError::PasswordLoginDisabled);
        }
        let password = Password::for_login(password)?;
        let attempt = self
            .limits
            .sign_in(meta.ip.as_deref(), email)
            .await
            .map_err(AuthError::SignInThrottled)?;
        let account = match Email::parse(email) {
            Ok(email) => self.store.accounts().user_by_email(&email).await?,
            Err(_) => None,
        };
        let ok = self
            .hasher
            .verify(
                password,
                account.as_ref().and_then(|a| a.password_hash.clone()),
            )
            .await?;
        let account = match account {
            Some(a) if ok => a,
            account => {
                let mut event = meta
                    .event(None, Action::LoginFailed, "user:unknown")
                    .failed();
                if let Some(a) = &account {
                    event.actor_id = Some(a.user.id);
                    event.target = Some(format!("user:{}", a.user.id));
                }
                self.store.audit().record_audit(&event).await?;
                self.metrics.sign_in(SignInMethod::Password, false);
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.limits.succeeded(attempt).await;
        let user = account.user;
        let meta = meta.with_actor(user.id);
        let succeeded = meta.event(None, Action::LoginSucceeded, format!("user:{}", user.id));
        let (token, session) = self.start_session(&user, &meta, &[succeeded]).await?;
        self.metrics.sign_in(SignInMethod::Password, true);
        Ok(SignedIn {
            user,
            token,
            session,
        })
    }

    /// Revokes the caller's current session; every node refuses it from the next request.
    pub async fn sign_out(
        &self,
        user_id: UserId,
        session: &Session,
        meta: &AuditContext,
    ) -> Result<(), AuthError> {
        self.store
            .sessions()
            .revoke_user_session(user_id, session.id, meta)
            .await?;
        Ok(())
    }
}
