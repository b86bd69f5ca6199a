//! The audit trail: who did what to which thing, with what outcome, under which request.

use crate::{AuditEventId, OrgId, Timestamp, UserId};

/// Audit actions this server records. The string forms are part of the contract
/// (`api.md`): support filters on them, so they never change once shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    UserSignup,
    UserCreated,
    LoginSucceeded,
    LoginFailed,
    SessionCreated,
    SessionRevoked,
    OrgCreated,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    /// Just-in-time membership through an org's SSO provider refused by the org's plan
    /// (the sign-in itself goes on).
    MemberJoinRefused,
    ProjectCreated,
    ProjectUpdated,
    PlatformAdminGranted,
    PlatformAdminRevoked,
    ClientCreated,
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    SigningKeyRotated,
    OauthCodeReplayed,
    OauthRefreshReuseDetected,
    OauthTokenRevoked,
    OauthConsentGranted,
    OauthConsentRevoked,
    SsoProviderCreated,
    SsoProviderUpdated,
    SsoProviderDeleted,
    SsoIdentityLinked,
    DomainCreated,
    DomainVerified,
    DomainDeleted,
    UserClaimed,
    MobileOttIssued,
    MobileOttExchanged,
    MobileRefreshSucceeded,
    MobileRefreshFailed,
    MobileRefreshReuseDetected,
    MobileLogout,
    InvitationCreated,
    InvitationAccepted,
    InvitationRevoked,
    UserPasswordSet,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    WebhookSecretRotated,
    WebhookTested,
    WebhookRetried,
    WebhookRecovered,
    WebhookDisabled,
    KeyRotated,
    SubscriptionChanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserSignup => "user.signup",
            Action::UserCreated => "user.created",
            Action::LoginSucceeded => "login.succeeded",
            Action::LoginFailed => "login.failed",
            Action::SessionCreated => "session.created",
            Action::SessionRevoked => "session.revoked",
            Action::OrgCreated => "org.created",
            Action::MemberAdded => "member.added",
            Action::MemberRemoved => "member.removed",
            Action::MemberRoleChanged => "member.role_changed",
            Action::MemberJoinRefused => "member.join_refused",
            Action::ProjectCreated => "project.created",
            Action::ProjectUpdated => "project.updated",
            Action::PlatformAdminGranted => "platform_admin.granted",
            Action::PlatformAdminRevoked => "platform_admin.revoked",
            Action::ClientCreated => "client.created",
            Action::ClientUpdated => "client.updated",
            Action::ClientDeleted => "client.deleted",
            Action::ClientSecretRotated => "client.secret_rotated",
            Action::SigningKeyRotated => "signing_key.rotated",
            Action::OauthCodeReplayed => "oauth.code.replayed",
            Action::OauthRefreshReuseDetected => "oauth.refresh.reuse_detected",
            Action::OauthTokenRevoked => "oauth.token.revoked",
            Action::OauthConsentGranted => "oauth.consent.granted",
            Action::OauthConsentRevoked => "oauth.consent.revoked",
            Action::MobileOttIssued => "mobile.ott.issued",
            Action::MobileOttExchanged => "mobile.ott.exchanged",
            Action::MobileRefreshSucceeded => "mobile.refresh.succeeded",
            Action::MobileRefreshFailed => "mobile.refresh.failed",
            Action::MobileRefreshReuseDetected => "mobile.refresh.reuse_detected",
            Action::MobileLogout => "mobile.logout",
            Action::SsoProviderCreated => "sso.provider.created",
            Action::SsoProviderUpdated => "sso.provider.updated",
            Action::SsoProviderDeleted => "sso.provider.deleted",
            Action::SsoIdentityLinked => "sso.identity.linked",
            Action::InvitationCreated => "invitation.created",
            Action::InvitationAccepted => "invitation.accepted",
            Action::InvitationRevoked => "invitation.revoked",
            Action::UserPasswordSet => "user.password_set",
            Action::DomainCreated => "domain.created",
            Action::DomainVerified => "domain.verified",
            Action::DomainDeleted => "domain.deleted",
            Action::UserClaimed => "user.claimed",
            Action::WebhookCreated => "webhook.created",
            Action::WebhookUpdated => "webhook.updated",
            Action::WebhookDeleted => "webhook.deleted",
            Action::WebhookSecretRotated => "webhook.secret_rotated",
            Action::WebhookTested => "webhook.tested",
            Action::WebhookRetried => "webhook.delivery_retried",
            Action::WebhookRecovered => "webhook.recovered",
            Action::WebhookDisabled => "webhook.disabled",
            Action::KeyRotated => "key.rotated",
            Action::SubscriptionChanged => "subscription.changed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "failure" {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

/// What every audited change knows about the request that caused it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditContext {
    pub actor_id: Option<UserId>,
    /// The secret key behind a key-authenticated request, as its display prefix
    /// (`sk_live_abcd1234`): the actor when no person is.
    pub actor_key: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation_id: String,
}

impl AuditContext {
    /// For changes made from the command line: no HTTP request, so a fresh correlation id.
    pub fn cli() -> Self {
        Self {
            correlation_id: format!("cli-{}", uuid::Uuid::now_v7().simple()),
            ..Self::default()
        }
    }

    pub fn with_actor(&self, actor_id: UserId) -> Self {
        Self {
            actor_id: Some(actor_id),
            ..self.clone()
        }
    }

    /// The context of a request made with a project's secret key (its prefix, never the key).
    pub fn with_key(&self, prefix: &str) -> Self {
        Self {
            actor_key: Some(prefix.to_owned()),
            ..self.clone()
        }
    }

    pub fn event(
        &self,
        org_id: Option<OrgId>,
        action: Action,
        target: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::new(),
            at: crate::now(),
            org_id,
            actor_id: self.actor_id,
            actor_key: self.actor_key.clone(),
            action: action.as_str().to_owned(),
            target: Some(target.into()),
            outcome: Outcome::Success,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            correlation_id: self.correlation_id.clone(),
            details: serde_json::Value::Object(Default::default()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: Timestamp,
    /// None for events outside any org (a failed login for an unknown email).
    pub org_id: Option<OrgId>,
    pub actor_id: Option<UserId>,
    /// The secret key's prefix when a project's key made the change.
    pub actor_key: Option<String>,
    pub action: String,
    /// `kind:id`, e.g. `user:0193…`, `session:0193…`.
    pub target: Option<String>,
    pub outcome: Outcome,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation_id: String,
    /// Never holds a secret: only ids, prefixes, field names.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Filters of `GET /v1/orgs/{org_id}/audit`.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub correlation_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<UserId>,
    /// The secret key that acted, by its display prefix (`sk_live_abcd1234`): what a leaked
    /// or stale key did.
    pub actor_key: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Page size, already clamped by the caller.
    pub limit: u32,
    /// Return events strictly older than this one (ids are time-ordered UUIDv7).
    pub before: Option<AuditEventId>,
    /// Whose events outside any org (sign-ins, sessions) the trail includes, besides the
    /// org's own events: the server sets it from the caller's access
    /// ([`Oversight::of`](crate::Oversight::of)); the default is what operators see.
    pub oversight: crate::Oversight,
}

impl AuditQuery {
    /// The `actor_key` filter as typed: a secret key's display prefix, never a whole key
    /// (which would then sit in access logs and browser history).
    pub fn actor_key_filter(raw: &str) -> Result<String, crate::ValidationError> {
        let raw = raw.trim();
        if crate::token::SecretKey::is_display_prefix(raw) {
            Ok(raw.to_owned())
        } else {
            Err(crate::ValidationError::new(
                "actor_key",
                "actor_key must be a secret key's prefix such as sk_live_abcd1234 (never the whole key)",
            ))
        }
    }
}
