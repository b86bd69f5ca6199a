use crate::{OrgId, ProjectId, Role, Timestamp, UserId, ValidationError};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        crate::org::parse_name("name", raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectStatus {
    Active,
    Disabled,
}

impl ProjectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Active => "active",
            ProjectStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err(ValidationError::new(
                "status",
                "status must be 'active' or 'disabled'",
            )),
        }
    }
}

/// A redirect URI registered on a project. Matching is exact string comparison, so the
/// registered form is kept as given once it is known to be an absolute URI without a
/// fragment. `http` is allowed only for loopback hosts (RFC 8252 native apps); any other
/// scheme must be `https` or a private-use app scheme (`com.example.app:/cb`, `alga://cb`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |m: &str| ValidationError::new("redirect_uris", format!("{raw:?}: {m}"));
        if raw.len() > 2000 {
            return Err(invalid("must be at most 2000 characters"));
        }
        let url = url::Url::parse(raw).map_err(|_| invalid("must be an absolute URI"))?;
        if url.fragment().is_some() {
            return Err(invalid("must not contain a fragment"));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(invalid("http is allowed only for loopback hosts")),
            "javascript" | "data" | "file" | "vbscript" | "blob" => {
                return Err(invalid("scheme is not allowed"));
            }
            _ => {}
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A web origin allowed to call the API with cookies: `scheme://host[:port]`, nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Origin(String);

impl Origin {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |m: &str| ValidationError::new("allowed_origins", format!("{raw:?}: {m}"));
        let url = url::Url::parse(raw)
            .map_err(|_| invalid("must be an origin like https://app.example.com"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("must be an http(s) origin"));
        }
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(invalid("http is allowed only for loopback hosts"));
        }
        if !raw.ends_with(url.host_str().unwrap_or_default())
            && url.port().is_none_or(|p| !raw.ends_with(&format!(":{p}")))
        {
            return Err(invalid("must not have a path, query or trailing slash"));
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub name: ProjectName,
    pub status: ProjectStatus,
    pub redirect_uris: Vec<RedirectUri>,
    pub allowed_origins: Vec<Origin>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields of `PATCH /v1/project`; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProjectPatch {
    pub name: Option<ProjectName>,
    pub status: Option<ProjectStatus>,
    pub redirect_uris: Option<Vec<RedirectUri>>,
    pub allowed_origins: Option<Vec<Origin>>,
}

impl ProjectPatch {
    /// The patched project, updated at `now`, and the names of the fields that changed
    /// (what `project.updated` records). A field set to its current value is no change.
    pub fn apply(&self, mut p: Project, now: Timestamp) -> (Project, Vec<&'static str>) {
        let mut changed = Vec::new();
        if let Some(name) = &self.name
            && *name != p.name
        {
            p.name = name.clone();
            changed.push("name");
        }
        if let Some(status) = self.status
            && status != p.status
        {
            p.status = status;
            changed.push("status");
        }
        if let Some(uris) = &self.redirect_uris
            && *uris != p.redirect_uris
        {
            p.redirect_uris = uris.clone();
            changed.push("redirect_uris");
        }
        if let Some(origins) = &self.allowed_origins
            && *origins != p.allowed_origins
        {
            p.allowed_origins = origins.clone();
            changed.push("allowed_origins");
        }
        p.updated_at = now;
        (p, changed)
    }
}

/// A user's membership of a project (its org membership must be active too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectMembership {
    pub project_id: ProjectId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example.com/callback",
            "http://127.0.0.1:8765/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "alga://auth/callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(RedirectUri::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "/relative",
            "https://x.com/cb#frag",
            "http://example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
        ] {
            assert_eq!(
                RedirectUri::parse(bad).unwrap_err().field,
                "redirect_uris",
                "{bad}"
            );
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            Origin::parse("https://app.example.com").unwrap().as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            Origin::parse("http://localhost:3000").unwrap().as_str(),
            "http://localhost:3000"
        );
        for bad in [
            "https://a.com/",
            "https://a.com/path",
            "ftp://a.com",
            "http://a.com",
            "a.com",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The role a user has in a project: org owners and admins administer every project of
/// their org; members act with their project membership's role, and see nothing without one.
pub fn effective_project_role(org_role: Role, project_role: Option<Role>) -> Option<Role> {
    if org_role.can_administer() {
        Some(project_role.map_or(org_role, |p| p.max(org_role)))
    } else {
        project_role
    }
}

#[cfg(test)]
mod role_tests {
    use super::*;

    #[test]
    fn effective_roles() {
        assert_eq!(effective_project_role(Role::Owner, None), Some(Role::Owner));
        assert_eq!(
            effective_project_role(Role::Admin, Some(Role::Owner)),
            Some(Role::Owner)
        );
        assert_eq!(effective_project_role(Role::Member, None), None);
        assert_eq!(
            effective_project_role(Role::Member, Some(Role::Admin)),
            Some(Role::Admin)
        );
    }
}

#[cfg(test)]
mod patch_tests {
    use super::*;

    fn project(now: Timestamp) -> Project {
        Project {
            id: ProjectId::new(),
            org_id: OrgId::new(),
            name: ProjectName::parse("Web").unwrap(),
            status: ProjectStatus::Active,
            redirect_uris: vec![RedirectUri::parse("https://a.example.com/cb").unwrap()],
            allowed_origins: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn only_fields_that_differ_count_as_changed() {
        let then = crate::now() - time::Duration::hours(1);
        let now = crate::now();
        let before = project(then);
        let patch = ProjectPatch {
            name: Some(ProjectName::parse("Web").unwrap()),
            status: Some(ProjectStatus::Disabled),
            redirect_uris: None,
            allowed_origins: Some(vec![Origin::parse("https://a.example.com").unwrap()]),
        };
        let (after, changed) = patch.apply(before.clone(), now);
        assert_eq!(changed, vec!["status", "allowed_origins"]);
        assert_eq!(after.name, before.name);
        assert_eq!(after.status, ProjectStatus::Disabled);
        assert_eq!(after.redirect_uris, before.redirect_uris);
        assert_eq!(after.allowed_origins.len(), 1);
        assert_eq!(after.updated_at, now);
        assert_eq!(after.created_at, then);
    }

    #[test]
    fn an_empty_patch_changes_nothing_but_the_time() {
        let now = crate::now();
        let before = project(now - time::Duration::hours(1));
        let (after, changed) = ProjectPatch::default().apply(before.clone(), now);
        assert!(changed.is_empty());
        assert_eq!(
            after,
            Project {
                updated_at: now,
                ..before
            }
        );
    }
}
