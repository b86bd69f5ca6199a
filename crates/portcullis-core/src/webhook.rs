//! Outgoing webhooks: the event catalogue, which endpoint hears which event, the retry
//! schedule, and the Standard Webhooks message format. Pure rules; the store keeps the rows
//! and the server's worker sends them.

use std::time::Duration;

use crate::{
    AuditEvent, OrgId, OutboxEvent, Outcome, ProjectId, Timestamp, UserId, ValidationError,
};

pub use crate::ids::{DeliveryId, WebhookId};

/// Whether an event concerns a whole org (every project's endpoints hear it) or one project
/// (only that project's endpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Org,
    Project,
}

/// One entry of the catalogue: what subscribers may ask for.
#[derive(Clone, Copy, Debug)]
pub struct EventType {
    pub name: &'static str,
    pub reach: Reach,
    pub description: &'static str,
}

/// Every event type an endpoint may subscribe to. `webhook.test` is sent only on request and
/// reaches the one endpoint it was asked for, subscribed or not.
pub const CATALOGUE: &[EventType] = &[
    EventType {
        name: "user.created",
        reach: Reach::Org,
        description: "An account was created in the org (self-signup, an admin, or SSO).",
    },
    EventType {
        name: "user.deleted",
        reach: Reach::Org,
        description: "An account of the org was deleted.",
    },
    EventType {
        name: "session.created",
        reach: Reach::Org,
        description: "A managed member (email in one of the org's verified domains) signed in.",
    },
    EventType {
        name: "session.revoked",
        reach: Reach::Org,
        description: "A managed member's session ended: signed out, revoked by the member, or by an org admin.",
    },
    EventType {
        name: "member.added",
        reach: Reach::Org,
        description: "A user joined the org.",
    },
    EventType {
        name: "member.removed",
        reach: Reach::Org,
        description: "A member left or was removed from the org.",
    },
    EventType {
        name: "member.role_changed",
        reach: Reach::Org,
        description: "A member's role changed.",
    },
    EventType {
        name: "invitation.created",
        reach: Reach::Org,
        description: "Someone was invited to the org.",
    },
    EventType {
        name: "invitation.accepted",
        reach: Reach::Org,
        description: "An invitation was accepted.",
    },
    EventType {
        name: "invitation.revoked",
        reach: Reach::Org,
        description: "A pending invitation was revoked.",
    },
    EventType {
        name: "subscription.changed",
        reach: Reach::Org,
        description: "The org's plan or subscription status changed.",
    },
    EventType {
        name: "project.updated",
        reach: Reach::Project,
        description: "The project's settings changed.",
    },
    EventType {
        name: "key.rotated",
        reach: Reach::Project,
        description: "The project's secret key was rotated.",
    },
    EventType {
        name: "client.created",
        reach: Reach::Project,
        description: "An OAuth client was registered in the project.",
    },
    EventType {
        name: "client.updated",
        reach: Reach::Project,
        description: "An OAuth client of the project changed.",
    },
    EventType {
        name: "client.deleted",
        reach: Reach::Project,
        description: "An OAuth client of the project was deleted.",
    },
    EventType {
        name: "client.secret_rotated",
        reach: Reach::Project,
        description: "An OAuth client's secret was rotated.",
    },
    EventType {
        name: TEST_EVENT,
        reach: Reach::Project,
        description: "Sent on request to one endpoint, to check it receives and verifies.",
    },
];

/// The event `POST …/webhooks/{id}/test` sends.
pub const TEST_EVENT: &str = "webhook.test";

/// The catalogue entry of `name`.
pub fn event_type(name: &str) -> Option<&'static EventType> {
    CATALOGUE.iter().find(|e| e.name == name)
}

/// The most event types one endpoint may list (the catalogue, with room to grow).
const MAX_EVENTS: usize = 64;

/// An endpoint's subscription: event types of the catalogue, or `*` for all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription(Vec<String>);

impl Subscription {
    /// Checks each name against the catalogue; duplicates are dropped, order kept.
    pub fn parse(names: &[String]) -> Result<Self, ValidationError> {
        if names.is_empty() {
            return Err(ValidationError::new(
                "events",
                "name at least one event type (or \"*\" for all); GET /v1/webhooks/event-types lists them",
            ));
        }
        if names.len() > MAX_EVENTS {
            return Err(ValidationError::new("events", "too many event types"));
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            if n != "*" && event_type(n).is_none() {
                return Err(ValidationError::new(
                    "events",
                    format!("unknown event type {n:?}; GET /v1/webhooks/event-types lists them"),
                ));
            }
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        Ok(Self(out))
    }

    /// As stored, trusted: only what [`Subscription::parse`] accepted is ever stored.
    pub fn from_stored(names: Vec<String>) -> Self {
        Self(names)
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether an endpoint with this subscription hears `event_type`.
    pub fn includes(&self, event_type: &str) -> bool {
        self.0.iter().any(|n| n == "*" || n == event_type)
    }
}

/// Whether an endpoint of `endpoint_project` in `endpoint_org` hears `event`: an org event
/// reaches every project of its org, a project event only its project.
pub fn reaches(
    endpoint_org: OrgId,
    endpoint_project: ProjectId,
    subscription: &Subscription,
    event: &OutboxEvent,
) -> bool {
    endpoint_org == event.org_id
        && event.project_id.is_none_or(|p| p == endpoint_project)
        && subscription.includes(&event.event_type)
}

/// Whether an endpoint hears an event when fanning out: it existed when the event happened
/// (an endpoint hears the events from its creation on) and [`reaches`] holds. The store
/// asks this only of the org's enabled, live endpoints.
pub fn hears(
    endpoint_org: OrgId,
    endpoint_project: ProjectId,
    subscription: &Subscription,
    endpoint_created_at: Timestamp,
    event: &OutboxEvent,
    event_at: Timestamp,
) -> bool {
    endpoint_created_at <= event_at && reaches(endpoint_org, endpoint_project, subscription, event)
}

/// The webhook event an audited change announces, if any: the store calls this for every
/// audit event a unit of work writes, so each change's event is queued in the change's own
/// transaction and no flow can forget to. Only successful changes inside an org announce
/// anything.
pub fn from_audit(e: &AuditEvent) -> Option<OutboxEvent> {
    announce(e, e.org_id?)
}

/// The user whose own session an audited session event of no org concerns (sign-in, sign-out,
/// revoking one's own session): such an event is announced to the orgs that manage the user
/// ([`announce_session`]), which the store looks up in the event's own transaction. None
/// for every other event, and for session events of an org (an org admin's revocation), which
/// [`from_audit`] already announces to that org.
pub fn personal_session_user(e: &AuditEvent) -> Option<UserId> {
    if e.org_id.is_some() || e.outcome != Outcome::Success {
        return None;
    }
    match e.action.as_str() {
        "session.created" => e.actor_id,
        "session.revoked" => e
            .details
            .get("user_id")
            .and_then(serde_json::Value::as_str)
            .and_then(UserId::parse),
        _ => None,
    }
}

/// A user's own session event as announced to `org`, one of the orgs that manage the user
/// (active member with an email in one of the org's verified domains: the same members whose
/// sessions the org's admins see). The payload is the audit event's ids and details (session
/// id, user id, device, ip, reason), never a token or its hash.
pub fn announce_session(e: &AuditEvent, org: OrgId) -> Option<OutboxEvent> {
    personal_session_user(e)?;
    announce(e, org)
}

fn announce(e: &AuditEvent, org_id: OrgId) -> Option<OutboxEvent> {
    if e.outcome != Outcome::Success {
        return None;
    }
    let name = match e.action.as_str() {
        "user.signup" | "user.created" => "user.created",
        other => event_type(other).filter(|t| t.name != TEST_EVENT)?.name,
    };
    let (kind, id) = e
        .target
        .as_deref()
        .and_then(|t| t.split_once(':'))
        .map_or((None, None), |(k, v)| (Some(k), Some(v)));
    let project_id = match event_type(name).map(|t| t.reach) {
        Some(Reach::Project) => Some(project_of(e, kind, id)?),
        _ => None,
    };
    let mut data = serde_json::json!({
        "org_id": org_id,
        "actor_id": e.actor_id,
        "correlation_id": e.correlation_id,
    });
    if let (Some(kind), Some(id), Some(map)) = (kind, id, data.as_object_mut()) {
        map.insert(format!("{kind}_id"), serde_json::Value::from(id));
    }
    // A change a project's secret key made: which key (its prefix).
    if let (Some(key), Some(map)) = (&e.actor_key, data.as_object_mut()) {
        map.insert("actor_key".into(), serde_json::Value::from(key.as_str()));
    }
    if let Some(p) = project_id
        && let Some(map) = data.as_object_mut()
    {
        map.insert("project_id".into(), serde_json::json!(p));
    }
    // Which address signed in or out is what a receiver watching its members wants to see.
    if name.starts_with("session.")
        && let (Some(ip), Some(map)) = (e.ip.as_ref(), data.as_object_mut())
    {
        map.insert("ip".into(), serde_json::Value::from(ip.clone()));
    }
    if let (Some(details), Some(map)) = (e.details.as_object(), data.as_object_mut()) {
        for (k, v) in details {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Some(OutboxEvent {
        org_id,
        project_id,
        event_type: name.to_owned(),
        payload: data,
    })
}

/// The project a project event concerns: its target (`project:<id>`) or its details.
fn project_of(e: &AuditEvent, kind: Option<&str>, id: Option<&str>) -> Option<ProjectId> {
    if kind == Some("project") {
        return id.and_then(ProjectId::parse);
    }
    e.details
        .get("project_id")
        .and_then(serde_json::Value::as_str)
        .and_then(ProjectId::parse)
}

/// The default retry schedule: the wait after the first failed attempt, the second, …;
/// 27 h 35 min in all, so a receiver down for a day still gets everything.
pub const DEFAULT_SCHEDULE: &[u64] = &[5, 300, 1800, 7200, 18000, 36000, 36000];

/// When to try again after `failed` failed attempts (1 after the first), or None when the
/// schedule is spent. `unit` is a random number in [0, 1): ±20 % jitter, so receivers
/// coming back from an outage are not hit by every queued delivery at once.
pub fn retry_delay(schedule: &[u64], failed: u32, unit: f64) -> Option<Duration> {
    let idx = usize::try_from(failed).ok()?.checked_sub(1)?;
    let base = *schedule.get(idx)? as f64;
    let factor = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    Some(Duration::from_secs_f64(base * factor))
}

/// The prefix of an endpoint secret as shown to its owner.
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's signing key: 32 random bytes, shown once as `whsec_<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret([u8; 32]);

impl SigningSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self(crate::token::random_bytes::<32>()?))
    }

    /// From the stored (decrypted) bytes; None when they are not a key.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The form receivers configure (`whsec_` + standard base64 of the key).
    pub fn expose(&self) -> String {
        use base64::Engine;
        format!(
            "{SECRET_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// What Standard Webhooks signs: `msg_id.timestamp.body`.
pub fn signed_content(msg_id: &str, timestamp: i64, body: &str) -> Vec<u8> {
    format!("{msg_id}.{timestamp}.{body}").into_bytes()
}

/// HMAC-SHA256 (RFC 2104) of `content` under `key`, what each `v1,` entry carries.
pub fn hmac_sha256(key: &[u8], content: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(content);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `webhook-signature` header from one HMAC per valid secret: `v1,<base64>` entries,
/// space-separated.
pub fn signature_header(macs: &[[u8; 32]]) -> String {
    use base64::Engine;
    macs.iter()
        .map(|m| format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(m)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The body every delivery of an event carries, the same on every attempt.
pub fn body(event_type: &str, at: crate::Timestamp, data: &serde_json::Value) -> String {
    let timestamp = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({"type": event_type, "timestamp": timestamp, "data": data}).to_string()
}

/// A delivery's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in flight).
    Pending,
    Succeeded,
    /// The schedule is spent; only a manual retry or recover sends it again.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "succeeded" => Ok(DeliveryStatus::Succeeded),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(ValidationError::new(
                "status",
                "must be pending, succeeded or failed",
            )),
        }
    }
}

/// How an attempt ended, as the worker decided from the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(Timestamp),
    /// The schedule is spent.
    Failed,
}

/// A delivery's state after an attempt that ended at `at` with [`NextStep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    pub status: DeliveryStatus,
    pub next_attempt_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl NextStep {
    /// The delivery's state after the attempt: a retry waits for its time, an ending is
    /// finished when the attempt was made.
    pub fn settle(self, at: Timestamp) -> Settled {
        let (status, next_attempt_at, finished_at) = match self {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, at, Some(at)),
            NextStep::RetryAt(t) => (DeliveryStatus::Pending, t, None),
            NextStep::Failed => (DeliveryStatus::Failed, at, Some(at)),
        };
        Settled {
            status,
            next_attempt_at,
            finished_at,
        }
    }
}

/// An endpoint failing since this time or earlier, at an attempt at `at`, has failed for
/// the whole `window` and is disabled. A window too long to subtract disables nothing.
pub fn failing_cutoff(at: Timestamp, window: Duration) -> Timestamp {
    time::Duration::try_from(window)
        .ok()
        .and_then(|w| at.checked_sub(w))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Why an attempt failed, for the log and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The receiver answered with a status other than 2xx.
    Status,
    Timeout,
    /// No connection (refused, DNS, TLS, or a refused address).
    Connect,
    /// Anything else on the way (a reset mid-answer).
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Status => "status",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Other => "other",
        }
    }
}

/// A webhook endpoint URL's first check (scheme, host); where it may connect is checked
/// again at every connection by the sender.
pub fn parse_url(raw: &str) -> Result<url::Url, ValidationError> {
    if raw.len() > 2048 {
        return Err(ValidationError::new("url", "at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| ValidationError::new("url", "not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(ValidationError::new("url", "must be an https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ValidationError::new(
            "url",
            "must not carry credentials or a fragment",
        ));
    }
    Ok(url)
}

/// A description is optional free text, bounded.
pub fn parse_description(raw: &str) -> Result<String, ValidationError> {
    if raw.chars().count() > 500 {
        return Err(ValidationError::new(
            "description",
            "at most 500 characters",
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, AuditContext};

    #[test]
    fn subscriptions_are_checked_against_the_catalogue() {
        let s = Subscription::parse(&["member.added".into(), "member.added".into()]).unwrap();
        assert_eq!(s.names(), ["member.added"]);
        assert!(s.includes("member.added"));
        assert!(!s.includes("member.removed"));
        assert!(
            Subscription::parse(&["*".into()])
                .unwrap()
                .includes("key.rotated")
        );
        assert_eq!(
            Subscription::parse(&["member.joined".into()])
                .unwrap_err()
                .field,
            "events"
        );
        assert!(Subscription::parse(&[]).is_err());
    }

    #[test]
    fn org_events_reach_every_project_and_project_events_one() {
        let org = OrgId::new();
        let (p1, p2) = (ProjectId::new(), ProjectId::new());
        let all = Subscription::parse(&["*".into()]).unwrap();
        let org_event = OutboxEvent {
            org_id: org,
            project_id: None,
            event_type: "member.added".into(),
            payload: serde_json::json!({}),
        };
        let project_event = OutboxEvent {
            project_id: Some(p1),
            event_type: "project.updated".into(),
            ..org_event.clone()
        };
        assert!(reaches(org, p1, &all, &org_event));
        assert!(reaches(org, p2, &all, &org_event));
        assert!(reaches(org, p1, &all, &project_event));
        assert!(!reaches(org, p2, &all, &project_event));
        assert!(!reaches(OrgId::new(), p1, &all, &org_event));
        let members = Subscription::parse(&["member.removed".into()]).unwrap();
        assert!(!reaches(org, p1, &members, &org_event));
    }

    #[test]
    fn audited_changes_announce_their_events() {
        let org = OrgId::new();
        let project = ProjectId::new();
        let ctx = AuditContext::cli();
        let e = from_audit(&ctx.event(Some(org), Action::MemberAdded, "user:abc")).unwrap();
        assert_eq!(e.event_type, "member.added");
        assert_eq!(e.project_id, None);
        assert_eq!(e.payload["user_id"], "abc");
        let e = from_audit(&ctx.event(Some(org), Action::UserSignup, "user:abc")).unwrap();
        assert_eq!(e.event_type, "user.created");
        let e = from_audit(&ctx.event(
            Some(org),
            Action::ProjectUpdated,
            format!("project:{project}"),
        ))
        .unwrap();
        assert_eq!(e.project_id, Some(project));
        let e = from_audit(
            &ctx.event(Some(org), Action::ClientCreated, "client:c1")
                .with_details(serde_json::json!({"project_id": project})),
        )
        .unwrap();
        assert_eq!(
            (e.event_type.as_str(), e.project_id),
            ("client.created", Some(project))
        );
        // Not in the catalogue, outside any org, or failed: nothing.
        assert!(from_audit(&ctx.event(Some(org), Action::LoginSucceeded, "user:a")).is_none());
        assert!(from_audit(&ctx.event(None, Action::MemberAdded, "user:a")).is_none());
        assert!(
            from_audit(&ctx.event(Some(org), Action::MemberAdded, "user:a").failed()).is_none()
        );
        // A project event that names no project cannot be routed, so it is not queued.
        assert!(from_audit(&ctx.event(Some(org), Action::ClientCreated, "client:c1")).is_none());
        // A change a secret key made names the key (its prefix); a person's does not.
        let by_key = ctx.with_key("sk_live_abcd1234");
        let e = from_audit(&by_key.event(Some(org), Action::MemberAdded, "user:abc")).unwrap();
        assert_eq!(e.payload["actor_key"], "sk_live_abcd1234");
        assert_eq!(e.payload["actor_id"], serde_json::Value::Null);
        let e = from_audit(&ctx.event(Some(org), Action::MemberAdded, "user:abc")).unwrap();
        assert!(e.payload.get("actor_key").is_none());
        // A refused just-in-time membership is a failure: never announced.
        assert!(
            from_audit(
                &ctx.event(Some(org), Action::MemberJoinRefused, "user:a")
                    .failed()
            )
            .is_none()
        );
    }

    #[test]
    fn a_users_own_session_events_are_announced_to_the_orgs_that_manage_them() {
        let (org, user) = (OrgId::new(), UserId::new());
        let ctx = AuditContext {
            ip: Some("203.0.113.9".into()),
            ..AuditContext::cli()
        };
        let created = ctx
            .with_actor(user)
            .event(None, Action::SessionCreated, "session:s1")
            .with_details(serde_json::json!({"user_id": user}));
        assert_eq!(personal_session_user(&created), Some(user));
        let e = announce_session(&created, org).unwrap();
        assert_eq!((e.org_id, e.event_type.as_str()), (org, "session.created"));
        assert_eq!(e.payload["session_id"], "s1");
        assert_eq!(e.payload["ip"], "203.0.113.9");
        assert!(from_audit(&created).is_none(), "no org of its own");
        let revoked = ctx
            .event(None, Action::SessionRevoked, "session:s1")
            .with_details(serde_json::json!({"user_id": user}));
        assert_eq!(personal_session_user(&revoked), Some(user));
        // An org admin's revocation is the org's own event, announced by from_audit only.
        let by_admin = ctx
            .event(Some(org), Action::SessionRevoked, "session:s1")
            .with_details(serde_json::json!({"user_id": user}));
        assert_eq!(personal_session_user(&by_admin), None);
        assert!(announce_session(&by_admin, org).is_none());
        // Other org-less events, and failures, are nobody's.
        let login = ctx
            .with_actor(user)
            .event(None, Action::LoginSucceeded, "user:u");
        assert_eq!(personal_session_user(&login), None);
        assert_eq!(personal_session_user(&created.clone().failed()), None);
    }

    #[test]
    fn the_schedule_lasts_over_a_day_with_bounded_jitter() {
        let total: u64 = DEFAULT_SCHEDULE.iter().sum();
        assert!(total >= 24 * 3600, "{total}");
        assert_eq!(retry_delay(DEFAULT_SCHEDULE, 0, 0.5), None);
        let first = retry_delay(DEFAULT_SCHEDULE, 1, 0.5).unwrap();
        assert_eq!(first, Duration::from_secs(5));
        let low = retry_delay(DEFAULT_SCHEDULE, 2, 0.0).unwrap();
        let high = retry_delay(DEFAULT_SCHEDULE, 2, 0.999).unwrap();
        assert_eq!(low, Duration::from_secs(240));
        assert!(high > Duration::from_secs(359) && high < Duration::from_secs(360));
        assert_eq!(retry_delay(DEFAULT_SCHEDULE, 8, 0.5), None);
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let content = signed_content(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        let mac = hmac_sha256(&key, &content);
        assert_eq!(
            signature_header(&[mac]),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(signature_header(&[mac, mac]).split(' ').count(), 2);
    }

    #[test]
    fn secrets_print_as_whsec_and_never_debug() {
        let s = SigningSecret::from_bytes(&[7u8; 32]).unwrap();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(format!("{s:?}"), "SigningSecret(***)");
        assert!(SigningSecret::from_bytes(&[1u8; 5]).is_none());
    }

    #[test]
    fn urls() {
        assert!(parse_url("https://hooks.example.com/x").is_ok());
        assert!(parse_url("ftp://hooks.example.com/x").is_err());
        assert!(parse_url("https://user:pw@hooks.example.com/x").is_err());
        assert!(parse_url("nope").is_err());
    }
}

#[cfg(test)]
mod fan_out_tests {
    use super::*;

    fn event(org: OrgId, project: Option<ProjectId>) -> OutboxEvent {
        OutboxEvent {
            org_id: org,
            project_id: project,
            event_type: "member.added".into(),
            payload: serde_json::json!({}),
        }
    }

    #[test]
    fn an_endpoint_hears_what_happens_after_its_creation_and_reaches_it() {
        let org = OrgId::new();
        let project = ProjectId::new();
        let all = Subscription::parse(&["*".into()]).unwrap();
        let t0 = crate::now();
        let t1 = t0 + time::Duration::seconds(1);
        let ev = event(org, Some(project));
        assert!(hears(org, project, &all, t0, &ev, t1));
        assert!(
            hears(org, project, &all, t1, &ev, t1),
            "created at the same instant"
        );
        assert!(
            !hears(org, project, &all, t1, &ev, t0),
            "created after the event"
        );
        assert!(
            !hears(OrgId::new(), project, &all, t0, &ev, t1),
            "another org"
        );
        assert!(
            !hears(org, ProjectId::new(), &all, t0, &ev, t1),
            "another project"
        );
        assert!(
            hears(org, ProjectId::new(), &all, t0, &event(org, None), t1),
            "org event"
        );
        let other = Subscription::parse(&["member.removed".into()]).unwrap();
        assert!(!hears(org, project, &other, t0, &ev, t1), "not subscribed");
    }

    #[test]
    fn an_attempt_settles_the_delivery() {
        let at = crate::now();
        let later = at + time::Duration::minutes(5);
        assert_eq!(
            NextStep::Succeeded.settle(at),
            Settled {
                status: DeliveryStatus::Succeeded,
                next_attempt_at: at,
                finished_at: Some(at)
            }
        );
        assert_eq!(
            NextStep::RetryAt(later).settle(at),
            Settled {
                status: DeliveryStatus::Pending,
                next_attempt_at: later,
                finished_at: None
            }
        );
        assert_eq!(
            NextStep::Failed.settle(at),
            Settled {
                status: DeliveryStatus::Failed,
                next_attempt_at: at,
                finished_at: Some(at)
            }
        );
    }

    #[test]
    fn the_failing_cutoff_is_the_window_back_and_never_panics() {
        let at = crate::now();
        assert_eq!(
            failing_cutoff(at, Duration::from_secs(3600)),
            at - time::Duration::hours(1)
        );
        assert_eq!(failing_cutoff(at, Duration::MAX), Timestamp::UNIX_EPOCH);
    }
}
