//! What a new account or org starts with: a personal org and a default project.

use crate::{
    Email, Org, OrgId, OrgName, Project, ProjectId, ProjectName, ProjectStatus, Slug, UserName,
    ValidationError,
};

/// The personal org and default project self-signup creates for a new user.
pub fn personal_org(
    email: &Email,
    name: Option<&UserName>,
) -> Result<(Org, Project), ValidationError> {
    let now = crate::now();
    let label = name.map(|n| n.as_str()).unwrap_or(email.local_part());
    let org_id = OrgId::new();
    // A short random suffix keeps personal slugs unique without a lookup-then-insert race.
    let suffix = &org_id.0.simple().to_string()[24..];
    let org = Org {
        id: org_id,
        name: OrgName::parse(&format!("{label}'s organization"))
            .or_else(|_| OrgName::parse("Personal organization"))?,
        slug: Slug::derive(label).with_suffix(suffix),
        personal: true,
        created_at: now,
    };
    Ok((org, default_project(org_id, now)?))
}

pub fn default_project(org_id: OrgId, now: crate::Timestamp) -> Result<Project, ValidationError> {
    Ok(Project {
        id: ProjectId::new(),
        org_id,
        name: ProjectName::parse("Default project")?,
        status: ProjectStatus::Active,
        redirect_uris: Vec::new(),
        allowed_origins: Vec::new(),
        created_at: now,
        updated_at: now,
    })
}
