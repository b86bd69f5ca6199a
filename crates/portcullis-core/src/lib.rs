//! Portcullis domain: the types and rules every other layer speaks in.
//!
//! Nothing here does I/O, knows about HTTP or SQL, or needs an async runtime: the
//! store persists these types, the server parses requests into them.

pub mod access_token;
pub mod audit;
pub mod authz;
pub mod bootstrap;
pub mod email;
pub mod error;
pub mod grant;
pub mod ids;
pub mod invitation;
pub mod link;
pub mod membership;
pub mod oauth;
pub mod org;
pub mod org_domain;
pub mod outbox;
pub mod oversight;
pub mod password;
pub mod patch;
pub mod pkce;
pub mod plan;
pub mod project;
pub mod refresh;
pub mod scope;
pub mod session;
pub mod token;
pub mod user;
pub mod webhook;
pub mod webhook_endpoint;

pub use audit::{Action, AuditContext, AuditEvent, AuditQuery, Outcome};
pub use authz::{AccessDenied, OrgAccess, Principal, ProjectAccess};
pub use email::Email;
pub use error::ValidationError;
pub use ids::{AuditEventId, FamilyId, InvitationId, OrgId, ProjectId, SessionId, UserId};
pub use membership::{Admission, MembershipConflict, PriorMembership};
pub use org::{Membership, Org, OrgName, Role, Slug};
pub use org_domain::{DomainName, DomainStatus, OrgDomain, VerificationMethod};
pub use outbox::OutboxEvent;
pub use oversight::Oversight;
pub use patch::ProjectPatch;
pub use project::{Origin, Project, ProjectMembership, ProjectName, ProjectStatus, RedirectUri};
pub use refresh::{PresentedRefresh, RefreshDecision, classify_refresh};
pub use session::{DeviceInfo, Session, SessionPolicy};
pub use token::{KeyMode, SessionToken, TokenHash};
pub use user::{PosixId, User, UserName};

/// UTC wall-clock time as every layer sees it.
pub type Timestamp = time::OffsetDateTime;

/// The current time, truncated to microseconds so that a value survives a round trip
/// through either database unchanged.
pub fn now() -> Timestamp {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}
