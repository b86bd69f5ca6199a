//! Organizations: creating them, their members and the owner rules, their members'
//! sessions, their projects and their audit trail. Every call on an existing org takes the
//! caller's [`OrgAccess`], already checked at the edge.

use portcullis_core::authz::may_manage_member;
use portcullis_core::bootstrap::default_project;
use portcullis_core::invitation::{PASSWORD_SETUP_TOKEN_PREFIX, PASSWORD_SETUP_TTL, new_secret};
use portcullis_core::oversight::is_managed;
use portcullis_core::{
    AuditContext, AuditEvent, AuditEventId, AuditQuery, Email, Org, OrgAccess, OrgId, OrgName,
    Origin, Oversight, Project, ProjectId, ProjectName, ProjectStatus, RedirectUri, Role,
    SessionId, Slug, UserId, UserName, ValidationError,
};
use portcullis_store::{
    AddedMember, MemberChange, MemberRecord, MemberSession, MembershipView, NewMember,
    PasswordSetup, Store, StoreError,
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
    #[error(
        "{0} is not in one of this organization's verified domains: only managed accounts are added \
         directly; invite this person instead (POST /v1/orgs/{{org_id}}/invitations)"
    )]
    DomainNotVerified(Email),
    #[error("could not generate a password-setup token: {0}")]
    Randomness(#[from] getrandom::Error),
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
    /// Live or test: fixed at creation, it names the project's keys (`pk_test_…`).
    pub mode: portcullis_core::KeyMode,
}

/// A member as the org's admins see them: managed (an email in one of the org's verified
/// domains) or not.
pub struct OrgMember {
    pub record: MemberRecord,
    pub managed: bool,
}

/// A member added directly, and the one-time password-setup token of a created account.
pub struct DirectlyAdded {
    pub added: AddedMember,
    pub managed: bool,
    pub setup_token: Option<String>,
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

/// The org's verified domains (lower case): its managed accounts are those with an email in
/// one of them.
pub async fn verified_domains(store: &dyn Store, org_id: OrgId) -> Result<Vec<String>, StoreError> {
    Ok(store
        .domains()
        .verified_domains(org_id)
        .await?
        .iter()
        .map(|d| d.as_str().to_ascii_lowercase())
        .collect())
}

/// A membership change's `NotFound`: the target is no active member.
fn no_such_member(e: StoreError) -> OrgError {
    match e {
        StoreError::NotFound => OrgError::NoSuchMember,
        e => e.into(),
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
            .orgs()
            .create_org(creator, &org, &project, audit)
            .await?;
        Ok((org, project))
    }

    /// The orgs `user` is an active member of, with the role.
    pub async fn of_user(&self, user: UserId) -> Result<Vec<MembershipView>, OrgError> {
        Ok(self.store.orgs().memberships_of_user(user).await?)
    }

    pub async fn get(&self, access: &OrgAccess) -> Result<Org, OrgError> {
        Ok(self.store.org(access).details().await?)
    }

    async fn verified_domains(&self, access: &OrgAccess) -> Result<Vec<String>, OrgError> {
        Ok(verified_domains(self.store, access.org_id()).await?)
    }

    /// What the holder of `access` sees of members' own accounts (sessions, sign-ins).
    async fn oversight(&self, access: &OrgAccess) -> Result<Oversight, OrgError> {
        Ok(Oversight::of(access, self.verified_domains(access).await?))
    }

    /// The org's active members, each marked managed or not.
    pub async fn members(&self, access: &OrgAccess) -> Result<Vec<OrgMember>, OrgError> {
        let domains = self.verified_domains(access).await?;
        Ok(self
            .store
            .org(access)
            .members()
            .list_members()
            .await?
            .into_iter()
            .map(|record| OrgMember {
                managed: is_managed(&record.user.email, &domains),
                record,
            })
            .collect())
    }

    /// Adds a member directly. Only a managed account qualifies (an email in one of the
    /// org's verified domains: the org governs that mailbox), created when missing with a
    /// one-time password-setup token; platform operators may add anyone. Everyone else is
    /// invited. The refusal is the same whether or not the address has an account.
    pub async fn add_member(
        &self,
        access: &OrgAccess,
        invite: MemberInvite,
        audit: &AuditContext,
    ) -> Result<DirectlyAdded, OrgError> {
        if !may_manage_member(access.role(), None, Some(invite.role)) {
            return Err(OrgError::OnlyOwnersAddOwners);
        }
        let domains = self.verified_domains(access).await?;
        let managed = is_managed(&invite.email, &domains);
        if !Oversight::of(access, domains).covers(&invite.email) {
            return Err(OrgError::DomainNotVerified(invite.email));
        }
        let (token, token_hash) = new_secret(PASSWORD_SETUP_TOKEN_PREFIX)?;
        let member = NewMember {
            new_user_id: UserId::new(),
            email: invite.email,
            name: invite.name,
            password_hash: None,
            role: invite.role,
            password_setup: Some(PasswordSetup {
                token_hash,
                expires_at: portcullis_core::now() + PASSWORD_SETUP_TTL,
            }),
        };
        let added = self
            .store
            .org(access)
            .members()
            .add_member(&member, audit)
            .await?;
        let setup_token = added.user_created.then_some(token);
        Ok(DirectlyAdded {
            added,
            managed,
            setup_token,
        })
    }

    /// Changes a member's role. Whether the caller may is decided inside the store's
    /// transaction, on the roles as they are under its lock
    /// ([`portcullis_core::authz::may_change_membership`]).
    pub async fn change_role(
        &self,
        access: &OrgAccess,
        target: UserId,
        role: Role,
        audit: &AuditContext,
    ) -> Result<OrgMember, OrgError> {
        match self
            .store
            .org(access)
            .members()
            .change_member_role(target, role, audit)
            .await
            .map_err(no_such_member)?
        {
            MemberChange::Done(record) => {
                let domains = self.verified_domains(access).await?;
                Ok(OrgMember {
                    managed: is_managed(&record.user.email, &domains),
                    record,
                })
            }
            MemberChange::NotPermitted => Err(OrgError::OnlyOwnersChangeOwners),
        }
    }

    /// Ends a membership (softly). `access` must carry [`role_to_remove`]; a member leaving
    /// needs nothing more, removing an owner takes an owner (decided inside the store's
    /// transaction, like [`Orgs::change_role`]).
    pub async fn remove_member(
        &self,
        access: &OrgAccess,
        target: UserId,
        audit: &AuditContext,
    ) -> Result<(), OrgError> {
        match self
            .store
            .org(access)
            .members()
            .remove_member(target, audit)
            .await
            .map_err(no_such_member)?
        {
            MemberChange::Done(()) => Ok(()),
            MemberChange::NotPermitted => Err(OrgError::OnlyOwnersRemoveOwners),
        }
    }

    /// Active sessions of the org's members whom the caller oversees: managed members for
    /// org admins, everyone for platform operators.
    pub async fn sessions(&self, access: &OrgAccess) -> Result<Vec<MemberSession>, OrgError> {
        let oversight = self.oversight(access).await?;
        Ok(self
            .store
            .org(access)
            .sessions()
            .list_org_sessions(portcullis_core::now(), &oversight)
            .await?)
    }

    /// Revokes an overseen member's session on every node; anyone else's is `NoSuchSession`.
    pub async fn revoke_session(
        &self,
        access: &OrgAccess,
        id: SessionId,
        audit: &AuditContext,
    ) -> Result<(), OrgError> {
        let oversight = self.oversight(access).await?;
        if !self
            .store
            .org(access)
            .sessions()
            .revoke_org_session(id, &oversight, audit)
            .await?
        {
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
        let mut projects = self.store.org(access).projects().list_projects().await?;
        if !access.role().can_administer() {
            let mine = self.store.orgs().memberships_of_user(viewer).await?;
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
        // Within the plan's project limit, checked in the inserting transaction.
        self.store
            .org(access)
            .platform()
            .create_project_in_mode(&project, new.mode, audit)
            .await?;
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
        // One more than asked tells whether another page follows. Members' sign-ins and
        // sessions only of those the caller oversees.
        let query = AuditQuery {
            limit: limit + 1,
            oversight: self.oversight(access).await?,
            ..query
        };
        let mut events = self.store.org(access).audit().query_audit(&query).await?;
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
