//! Organizations: creating them, their members and the owner rules, their members'
//! sessions, their projects and their audit trail. Every call on an existing org takes the
//! caller's [`OrgAccess`], already checked at the edge.

use portcullis_core::authz::may_manage_member;
use portcullis_core::bootstrap::default_project;
use portcullis_core::{
    AuditContext, AuditEvent, AuditEventId, AuditQuery, Email, Org, OrgAccess, OrgId, OrgName,
    Origin, Project, ProjectId, ProjectName, ProjectStatus, RedirectUri, Role, SessionId, Slug,
    UserId, UserName, ValidationError,
};
use portcullis_store::{
    AddedMember, MemberRecord, MemberSession, MembershipView, NewMember, Store, StoreError,
};

use crate::infra::session_cache::SessionCache;

/// Audit events per page unless the caller asks otherwise.
pub const AUDIT_PAGE_SIZE: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("only owners may add owners")]
    OnlyOwnersAddOwners,
    #[error("only owners may grant or change the owner role")]
    OnlyOwnersChangeOwners,
    #[error("only owners may remove owners")]
    OnlyOwnersRemoveOwners,
    #[error("no such member")]
    NoSuchMember,
    #[error("no such session")]
    NoSuchSession,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A member to add, as parsed from the request.
pub struct MemberInvite {
    pub email: Email,
    pub name: Option<UserName>,
    pub role: Role,
}

/// A project to create, as parsed from the request.
pub struct NewProject {
    pub name: ProjectName,
    pub redirect_uris: Vec<RedirectUri>,
    pub allowed_origins: Vec<Origin>,
}

/// One page of the audit trail, newest first.
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Where the next page starts; None on the last page.
    pub next_cursor: Option<AuditEventId>,
}

/// The role needed to remove `target` from an org: anyone may leave, removing someone
/// else takes an admin.
pub fn role_to_remove(actor: UserId, target: UserId) -> Role {
    if actor == target {
        Role::Member
    } else {
        Role::Admin
    }
}

/// The org operations over one store and the cache they invalidate.
pub struct Orgs<'a> {
    pub store: &'a dyn Store,
    pub cache: &'a SessionCache,
}

impl Orgs<'_> {
    /// A new org with its default project, both owned by `creator`. Without a slug one is
    /// derived from the name, with a random suffix so it does not collide.
    pub async fn create(
        &self,
        creator: UserId,
        name: OrgName,
        slug: Option<Slug>,
        audit: &AuditContext,
    ) -> Result<(Org, Project), OrgError> {
        let id = OrgId::new();
        let slug = slug.unwrap_or_else(|| {
            let suffix = id.0.simple().to_string();
            Slug::derive(name.as_str()).with_suffix(&suffix[24..])
        });
        let now = portcullis_core::now();
        let org = Org {
            id,
            name,
            slug,
            personal: false,
            created_at: now,
        };
        let project = default_project(org.id, now)?;
        self.store
            .create_org(creator, &org, &project, audit)
            .await?;
        Ok((org, project))
    }

    /// The orgs `user` is an active member of, with the role.
    pub async fn of_user(&self, user: UserId) -> Result<Vec<MembershipView>, OrgError> {
        Ok(self.store.memberships_of_user(user).await?)
    }

    pub async fn get(&self, access: &OrgAccess) -> Result<Org, OrgError> {
        Ok(self.store.org(access).await?)
    }

    pub async fn members(&self, access: &OrgAccess) -> Result<Vec<MemberRecord>, OrgError> {
        Ok(self.store.list_members(access).await?)
    }

    /// Adds a member; an account (without a password) is created when none has the email.
    pub async fn add_member(
        &self,
        access: &OrgAccess,
        invite: MemberInvite,
        audit: &AuditContext,
    ) -> Result<AddedMember, OrgError> {
        if !may_manage_member(access.role(), None, Some(invite.role)) {
            return Err(OrgError::OnlyOwnersAddOwners);
        }
        let member = NewMember {
            new_user_id: UserId::new(),
            email: invite.email,
            name: invite.name,
            password_hash: None,
            role: invite.role,
        };
        let added = self.store.add_member(access, &member, audit).await?;
        Ok(added)
    }

    pub async fn change_role(
        &self,
        access: &OrgAccess,
        target: UserId,
        role: Role,
        audit: &AuditContext,
    ) -> Result<MemberRecord, OrgError> {
        let current = self.active_member(access, target).await?;
        if !may_manage_member(access.role(), Some(current), Some(role)) {
            return Err(OrgError::OnlyOwnersChangeOwners);
        }
        let record = self
            .store
            .change_member_role(access, target, role, audit)
            .await?;
        Ok(record)
    }

    /// Ends a membership (softly). `access` must carry [`role_to_remove`]; a member leaving
    /// needs nothing more, removing an owner takes an owner.
    pub async fn remove_member(
        &self,
        access: &OrgAccess,
        actor: UserId,
        target: UserId,
        audit: &AuditContext,
    ) -> Result<(), OrgError> {
        let current = self.active_member(access, target).await?;
        if actor != target && !may_manage_member(access.role(), Some(current), None) {
            return Err(OrgError::OnlyOwnersRemoveOwners);
        }
        self.store.remove_member(access, target, audit).await?;
        Ok(())
    }

    /// The role of an active member of the org.
    async fn active_member(&self, access: &OrgAccess, user: UserId) -> Result<Role, OrgError> {
        self.store
            .membership(access.org_id(), user)
            .await?
            .filter(|m| m.is_active())
            .map(|m| m.role)
            .ok_or(OrgError::NoSuchMember)
    }

    /// Active sessions of the org's members.
    pub async fn sessions(&self, access: &OrgAccess) -> Result<Vec<MemberSession>, OrgError> {
        Ok(self
            .store
            .list_org_sessions(access, portcullis_core::now())
            .await?)
    }

    /// Revokes a member's session on every node.
    pub async fn revoke_session(
        &self,
        access: &OrgAccess,
        id: SessionId,
        audit: &AuditContext,
    ) -> Result<(), OrgError> {
        if !self.store.revoke_org_session(access, id, audit).await? {
            return Err(OrgError::NoSuchSession);
        }
        Ok(())
    }

    /// The org's projects `viewer` may see: all of them for admins, otherwise only those
    /// the viewer is a member of.
    pub async fn projects(
        &self,
        access: &OrgAccess,
        viewer: UserId,
    ) -> Result<Vec<Project>, OrgError> {
        let mut projects = self.store.list_projects(access).await?;
        if !access.role().can_administer() {
            let mine = self.store.memberships_of_user(viewer).await?;
            let visible: Vec<ProjectId> = mine
                .iter()
                .filter(|m| m.org.id == access.org_id())
                .flat_map(|m| m.projects.iter().map(|p| p.project.id))
                .collect();
            projects.retain(|p| visible.contains(&p.id));
        }
        Ok(projects)
    }

    pub async fn create_project(
        &self,
        access: &OrgAccess,
        new: NewProject,
        audit: &AuditContext,
    ) -> Result<Project, OrgError> {
        let now = portcullis_core::now();
        let project = Project {
            id: ProjectId::new(),
            org_id: access.org_id(),
            name: new.name,
            status: ProjectStatus::Active,
            redirect_uris: new.redirect_uris,
            allowed_origins: new.allowed_origins,
            created_at: now,
            updated_at: now,
        };
        self.store.create_project(access, &project, audit).await?;
        Ok(project)
    }

    /// One page of the audit trail; `query.limit` is the page size (1–200).
    pub async fn audit_page(
        &self,
        access: &OrgAccess,
        query: AuditQuery,
    ) -> Result<AuditPage, OrgError> {
        let limit = query.limit;
        if !(1..=200).contains(&limit) {
            return Err(ValidationError::new("limit", "limit must be between 1 and 200").into());
        }
        // One more than asked tells whether another page follows.
        let query = AuditQuery {
            limit: limit + 1,
            ..query
        };
        let mut events = self.store.query_audit(access, &query).await?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage {
            events,
            next_cursor,
        })
    }
}
