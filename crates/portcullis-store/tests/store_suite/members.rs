//! Memberships: what a user sees of their orgs and projects, and how admins change them.

use std::sync::Arc;

use portcullis_core::{AuditQuery, ProjectId, Role, UserId};
use portcullis_store::{MemberChange, ProjectAccessRecord, Store, StoreError};

use super::{add, ctx, new_member, new_project, signup};

/// No way in: SQLite shows the project without a membership, PostgreSQL's row-level security
/// hides it altogether. Either way nothing authorizes.
fn no_access(rec: Option<ProjectAccessRecord>) -> bool {
    rec.is_none_or(|r| r.project_role.is_none() && r.org_membership.is_none_or(|m| !m.is_active()))
}

pub async fn memberships_of_user_with_projects(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let extra = new_project(alice.org.id, "Extra");
    store
        .org(&alice.access())
        .projects()
        .create_project(&extra, &ctx())
        .await
        .unwrap();
    add(store.as_ref(), &alice, "bob@example.com", Role::Member).await;

    let views = store.orgs().memberships_of_user(bob.user.id).await.unwrap();
    let orgs: Vec<_> = views.iter().map(|v| (v.org.id, v.role)).collect();
    assert_eq!(
        orgs,
        [(alice.org.id, Role::Member), (bob.org.id, Role::Owner)]
    );
    // A member sees the default project (joined on add), not the one nobody added them to.
    let projects: Vec<_> = views[0]
        .projects
        .iter()
        .map(|p| (p.project.id, p.role))
        .collect();
    assert_eq!(projects, [(alice.project.id, Role::Member)]);

    // Owners see every project of their org.
    let views = store
        .orgs()
        .memberships_of_user(alice.user.id)
        .await
        .unwrap();
    assert_eq!(views.len(), 1);
    let projects: Vec<_> = views[0]
        .projects
        .iter()
        .map(|p| (&p.project, p.role))
        .collect();
    assert_eq!(
        projects,
        [(&alice.project, Role::Owner), (&extra, Role::Owner)]
    );

    assert!(
        store
            .orgs()
            .memberships_of_user(UserId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn project_access(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let carol = signup(store.as_ref(), "carol@example.com").await;
    let extra = new_project(alice.org.id, "Extra");
    store
        .org(&alice.access())
        .projects()
        .create_project(&extra, &ctx())
        .await
        .unwrap();
    let bob = add(store.as_ref(), &alice, "bob@example.com", Role::Member).await;

    let rec = store
        .projects()
        .project_access(extra.id, alice.user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.project, extra);
    let m = rec.org_membership.unwrap();
    assert_eq!(
        (m.org_id, m.user_id, m.role),
        (alice.org.id, alice.user.id, Role::Owner)
    );
    assert!(m.is_active());
    assert_eq!(rec.project_role, None);

    let rec = store
        .projects()
        .project_access(alice.project.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.org_membership.unwrap().role, Role::Member);
    assert_eq!(rec.project_role, Some(Role::Member));
    let rec = store
        .projects()
        .project_access(extra.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.org_membership.unwrap().role, Role::Member);
    assert_eq!(rec.project_role, None);

    assert!(
        store
            .projects()
            .project_access(ProjectId::new(), alice.user.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(no_access(
        store
            .projects()
            .project_access(extra.id, carol.user.id)
            .await
            .unwrap()
    ));

    // Platform admins act in every org, so they must see the project to be let in.
    store
        .accounts()
        .set_platform_admin(carol.user.id, true, &ctx())
        .await
        .unwrap();
    let rec = store
        .projects()
        .project_access(extra.id, carol.user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.project, extra);
    assert!(rec.org_membership.is_none());
    assert!(rec.project_role.is_none());
}

pub async fn add_member_creates_or_reuses_users(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;

    // A new email: the user is created, with a posix id, and joins the default project.
    let c = ctx().with_actor(alice.user.id);
    let dave = store
        .org(&alice.access())
        .members()
        .add_member(&new_member("Dave@Example.com", Role::Admin), &c)
        .await
        .unwrap();
    assert!(dave.user_created);
    assert_eq!(dave.member.role, Role::Admin);
    let user = dave.member.user;
    assert_eq!(user.email.as_str(), "dave@example.com");
    assert!(user.posix.uid > bob.user.posix.uid);
    assert_eq!(
        store
            .accounts()
            .user_by_email(&user.email)
            .await
            .unwrap()
            .unwrap()
            .user,
        user
    );
    let views = store.orgs().memberships_of_user(user.id).await.unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].role, Role::Admin);
    assert_eq!(views[0].projects[0].project.id, alice.project.id);
    let actions: Vec<_> = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(c.correlation_id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.details))
        .collect();
    assert_eq!(actions[0].0, "member.added");
    assert_eq!(actions[0].1["role"], "admin");
    assert_eq!(actions[1].0, "user.created");

    // An existing account is reused, never duplicated.
    let added = store
        .org(&alice.access())
        .members()
        .add_member(&new_member("bob@example.com", Role::Member), &ctx())
        .await
        .unwrap();
    assert!(!added.user_created);
    assert_eq!(added.member.user, bob.user);

    let err = store
        .org(&alice.access())
        .members()
        .add_member(&new_member("bob@example.com", Role::Admin), &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("already a member")),
        "{err:?}"
    );

    // A removed member comes back with the new role.
    store
        .org(&alice.access())
        .members()
        .remove_member(bob.user.id, &ctx())
        .await
        .unwrap();
    let back = store
        .org(&alice.access())
        .members()
        .add_member(&new_member("bob@example.com", Role::Admin), &ctx())
        .await
        .unwrap();
    assert!(!back.user_created);
    assert_eq!(back.member.role, Role::Admin);
    let m = store
        .orgs()
        .membership(alice.org.id, bob.user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.role, m.deleted_at), (Role::Admin, None));
    let members: Vec<_> = store
        .org(&alice.access())
        .members()
        .list_members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user.id, m.role))
        .collect();
    assert_eq!(
        members,
        [
            (alice.user.id, Role::Owner),
            (user.id, Role::Admin),
            (bob.user.id, Role::Admin)
        ]
    );
}

pub async fn change_role_keeps_an_owner(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let last_owner = |e: &StoreError| matches!(e, StoreError::Conflict(m) if m.contains("owner"));

    let err = store
        .org(&alice.access())
        .members()
        .change_member_role(alice.user.id, Role::Admin, &ctx())
        .await
        .unwrap_err();
    assert!(last_owner(&err), "{err:?}");
    let err = store
        .org(&alice.access())
        .members()
        .remove_member(alice.user.id, &ctx())
        .await
        .unwrap_err();
    assert!(last_owner(&err), "{err:?}");
    // Owner to owner is no loss.
    store
        .org(&alice.access())
        .members()
        .change_member_role(alice.user.id, Role::Owner, &ctx())
        .await
        .unwrap();

    let bob = add(store.as_ref(), &alice, "bob@example.com", Role::Admin).await;
    let c = ctx();
    let MemberChange::Done(rec) = store
        .org(&alice.access())
        .members()
        .change_member_role(bob.id, Role::Owner, &c)
        .await
        .unwrap()
    else {
        unreachable!("the system may change roles")
    };
    assert_eq!((rec.user.id, rec.role), (bob.id, Role::Owner));
    let MemberChange::Done(rec) = store
        .org(&alice.access())
        .members()
        .change_member_role(alice.user.id, Role::Member, &ctx())
        .await
        .unwrap()
    else {
        unreachable!("the system may change roles")
    };
    assert_eq!(rec.role, Role::Member);
    let err = store
        .org(&alice.access())
        .members()
        .change_member_role(bob.id, Role::Admin, &ctx())
        .await
        .unwrap_err();
    assert!(last_owner(&err), "{err:?}");
    assert_eq!(
        store
            .orgs()
            .membership(alice.org.id, alice.user.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Member
    );

    let err = store
        .org(&alice.access())
        .members()
        .change_member_role(UserId::new(), Role::Admin, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let events = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(c.correlation_id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "member.role_changed");
    assert_eq!(events[0].details["from"], "admin");
    assert_eq!(events[0].details["to"], "owner");
}

pub async fn remove_member_soft_deletes(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = add(store.as_ref(), &alice, "bob@example.com", Role::Member).await;
    assert!(!no_access(
        store
            .projects()
            .project_access(alice.project.id, bob.id)
            .await
            .unwrap()
    ));

    store
        .org(&alice.access())
        .members()
        .remove_member(bob.id, &ctx())
        .await
        .unwrap();
    let m = store
        .orgs()
        .membership(alice.org.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.role, Role::Member);
    assert!(m.deleted_at.is_some());
    assert!(!m.is_active());
    assert!(
        store
            .orgs()
            .memberships_of_user(bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    let members = store
        .org(&alice.access())
        .members()
        .list_members()
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    // The record still comes back, with the ended membership: whether that authorizes
    // anything (and what a former member is told) is the domain's call, on both backends.
    let rec = store
        .projects()
        .project_access(alice.project.id, bob.id)
        .await
        .unwrap()
        .expect("a former member's record");
    assert!(rec.org_membership.is_some_and(|m| !m.is_active()));
    assert!(rec.project_role.is_none());
    // The account stays; only the membership went.
    assert!(store.accounts().user_by_id(bob.id).await.unwrap().is_some());

    let err = store
        .org(&alice.access())
        .members()
        .remove_member(bob.id, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(
        store
            .orgs()
            .membership(alice.org.id, UserId::new())
            .await
            .unwrap()
            .is_none()
    );
}
