//! Identifiers: UUIDv7 (time-ordered) newtypes so an `OrgId` can never be passed where a
//! `UserId` is expected.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Option<Self> {
                uuid::Uuid::try_parse(s).ok().map(Self)
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(u: uuid::Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A user account, across all organizations.
    UserId
);
id_type!(
    /// An organization (tenant).
    OrgId
);
id_type!(
    /// A project inside an organization.
    ProjectId
);
id_type!(
    /// A web session.
    SessionId
);
id_type!(
    /// One audit event.
    AuditEventId
);
id_type!(
    /// A refresh-token family: the chain of refresh tokens from one sign-in, revoked as one.
    FamilyId
);
id_type!(
    /// An invitation to join an organization.
    InvitationId
);
id_type!(
    /// A webhook endpoint of a project.
    WebhookId
);
id_type!(
    /// One event's delivery to one endpoint; receivers see it as `webhook-id`, the same on
    /// every attempt.
    DeliveryId
);
