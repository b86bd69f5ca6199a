use crate::{OrgId, Timestamp, UserId, ValidationError};

/// Human-readable organization name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_name("name", raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn parse_name(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ValidationError::new(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if s.chars().count() > 100 {
        return Err(ValidationError::new(
            field,
            format!("{field} must be at most 100 characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(s.to_owned())
}

/// URL-safe identifier: 2–63 of `[a-z0-9-]`, not starting or ending with `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let ok = (2..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "slug",
                "slug must be 2-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ))
        }
    }

    /// Derives a slug from free text (a name or an email's local part), padding or
    /// truncating so the result always parses. Uniqueness is the caller's concern.
    pub fn derive(text: &str) -> Self {
        let mut s = String::new();
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                s.push(c);
            } else if !s.ends_with('-') && !s.is_empty() {
                s.push('-');
            }
        }
        s.truncate(50);
        let mut s = s.trim_matches('-').to_owned();
        if s.len() < 2 {
            s.push_str("org");
        }
        Self(s)
    }

    /// The same slug with a short random-looking suffix, to resolve a collision.
    pub fn with_suffix(&self, suffix: &str) -> Self {
        let mut base = self.0.clone();
        base.truncate(63 - suffix.len() - 1);
        Self(format!("{}-{}", base.trim_end_matches('-'), suffix))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: OrgName,
    pub slug: Slug,
    /// Created by self-signup for one user.
    pub personal: bool,
    pub created_at: Timestamp,
}

/// Organization roles, ordered by power: `Owner > Admin > Member`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(ValidationError::new(
                "role",
                "role must be one of owner, admin, member",
            )),
        }
    }

    /// Whether this role may manage members, projects and sessions of the org.
    pub fn can_administer(self) -> bool {
        self >= Role::Admin
    }
}

/// A user's membership of an org. Removal is soft (`deleted_at`), so the audit trail keeps
/// its referents; only rows with `deleted_at == None` authorize anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl Membership {
    pub fn is_active(&self) -> bool {
        self.deleted_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(Slug::parse("acme-co").is_ok());
        for bad in ["", "a", "-ab", "ab-", "Ab", "a_b", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        for text in [
            "Alice Smith",
            "x",
            "",
            "---",
            "Ünïcode ☃ name",
            &"long".repeat(40),
        ] {
            let s = Slug::derive(text);
            assert!(Slug::parse(s.as_str()).is_ok(), "{text} -> {s:?}");
            let t = s.with_suffix("k3x9");
            assert!(Slug::parse(t.as_str()).is_ok(), "{t:?}");
        }
        assert_eq!(Slug::derive("Alice Smith").as_str(), "alice-smith");
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::Admin.can_administer() && !Role::Member.can_administer());
        for r in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert_eq!(Role::parse("root").unwrap_err().field, "role");
    }
}
