use crate::{Email, Timestamp, UserId, ValidationError};

/// Display name of a user: optional, trimmed, at most 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValidationError::new("name", "name must not be empty"));
        }
        if s.chars().count() > 200 {
            return Err(ValidationError::new(
                "name",
                "name must be at most 200 characters",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "name must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A POSIX uid/gid pair. Compute platforms run a user's jobs under it, so it is allocated
/// once per user, from 10000 up, and never reused even after the user is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PosixId {
    pub uid: u32,
    pub gid: u32,
}

impl PosixId {
    /// The first id handed out; below it live system and distribution accounts.
    pub const FIRST: u32 = 10_000;

    /// Each user gets a private group with the same number as the uid.
    pub fn from_allocated(n: u32) -> Self {
        Self { uid: n, gid: n }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: Option<UserName>,
    pub posix: PosixId,
    pub is_platform_admin: bool,
    pub created_at: Timestamp,
}
