//! Users, signup, platform operators, migrations.

use std::sync::Arc;

use portcullis_core::{AuditQuery, PosixId, Role};
use portcullis_store::{Store, StoreError};

use super::{bootstrap, ctx, new_org, new_project, signup};

pub async fn signup_bootstrap(store: Arc<dyn Store>) {
    let b = bootstrap("alice@example.com");
    let c = ctx();
    let user = store.accounts().bootstrap_signup(&b, &c).await.unwrap();
    assert_eq!(user.id, b.user_id);
    assert_eq!(user.email, b.email);
    assert!(user.posix.uid >= PosixId::FIRST);
    assert_eq!(user.posix.gid, user.posix.uid);
    assert!(!user.is_platform_admin);

    let creds = store
        .accounts()
        .user_by_email(&b.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.user, user);
    assert!(creds.password_hash.is_none());
    assert_eq!(
        store.accounts().user_by_id(user.id).await.unwrap(),
        Some(user.clone())
    );

    let access = portcullis_core::OrgAccess::system(b.org.id);
    assert_eq!(store.org(&access).details().await.unwrap(), b.org);
    assert_eq!(
        store.org(&access).projects().list_projects().await.unwrap(),
        vec![b.project.clone()]
    );
    let members = store.org(&access).members().list_members().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user.id, members[0].role),
        (user.id, Role::Owner)
    );

    let m = store
        .orgs()
        .membership(b.org.id, user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.role, m.deleted_at), (Role::Owner, None));
    let views = store.orgs().memberships_of_user(user.id).await.unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!((&views[0].org, views[0].role), (&b.org, Role::Owner));
    assert_eq!(views[0].projects.len(), 1);
    assert_eq!(views[0].projects[0].project, b.project);
    assert_eq!(views[0].projects[0].role, Role::Owner);

    let events = store
        .org(&access)
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(c.correlation_id.clone()),
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let mut actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "member.added",
            "org.created",
            "project.created",
            "user.signup"
        ]
    );
    for e in &events {
        assert_eq!(e.org_id, Some(b.org.id));
        assert_eq!(e.actor_id, Some(user.id), "self-signup is done by the user");
        assert_eq!(e.ip.as_deref(), Some("192.0.2.7"));
    }
    let signup = events.iter().find(|e| e.action == "user.signup").unwrap();
    assert_eq!(signup.details["posix_uid"], user.posix.uid);
}

pub async fn duplicate_email_conflicts(store: Arc<dyn Store>) {
    let first = signup(store.as_ref(), "alice@example.com").await;
    let again = bootstrap("Alice@Example.com");
    let err = store
        .accounts()
        .bootstrap_signup(&again, &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("email")),
        "{err:?}"
    );
    // Nothing of the failed signup remains.
    assert_eq!(
        store.orgs().list_all_orgs().await.unwrap(),
        vec![first.org.clone()]
    );

    let mut same_slug = bootstrap("bob@example.com");
    same_slug.org.slug = first.org.slug.clone();
    let err = store
        .accounts()
        .bootstrap_signup(&same_slug, &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("slug")),
        "{err:?}"
    );
    assert!(
        store
            .accounts()
            .user_by_email(&same_slug.email)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn posix_ids_unique_and_increasing(store: Arc<dyn Store>) {
    let mut last = PosixId::FIRST - 1;
    for i in 0..5 {
        let u = signup(store.as_ref(), &format!("user{i}@example.com"))
            .await
            .user;
        assert!(u.posix.uid > last, "{} after {last}", u.posix.uid);
        assert_eq!(u.posix.gid, u.posix.uid);
        last = u.posix.uid;
        // A failed signup may burn a number, never hand one out twice.
        let _ = store
            .accounts()
            .bootstrap_signup(&bootstrap(&format!("user{i}@example.com")), &ctx())
            .await
            .unwrap_err();
    }
    let first = store.orgs().list_all_orgs().await.unwrap()[0].id;
    let added = store
        .org(&portcullis_core::OrgAccess::system(first))
        .members()
        .add_member(
            &super::new_member("added@example.com", Role::Member),
            &ctx(),
        )
        .await
        .unwrap();
    assert!(added.user_created);
    assert!(added.member.user.posix.uid > last);
}

pub async fn concurrent_signup_same_email(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .accounts()
                    .bootstrap_signup(&bootstrap("race@example.com"), &ctx())
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let result = task.await.unwrap();
        assert!(
            matches!(result, Ok(_) | Err(StoreError::Conflict(_))),
            "{result:?}"
        );
        ok += usize::from(result.is_ok());
    }
    assert_eq!(ok, 1);
    assert_eq!(store.orgs().list_all_orgs().await.unwrap().len(), 1);
}

pub async fn set_platform_admin(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let c = ctx().with_actor(alice.user.id);
    store
        .accounts()
        .set_platform_admin(alice.user.id, true, &c)
        .await
        .unwrap();
    assert!(
        store
            .accounts()
            .user_by_id(alice.user.id)
            .await
            .unwrap()
            .unwrap()
            .is_platform_admin
    );
    let creds = store
        .accounts()
        .user_by_email(&alice.user.email)
        .await
        .unwrap()
        .unwrap();
    assert!(creds.user.is_platform_admin);

    store
        .accounts()
        .set_platform_admin(alice.user.id, false, &c)
        .await
        .unwrap();
    assert!(
        !store
            .accounts()
            .user_by_id(alice.user.id)
            .await
            .unwrap()
            .unwrap()
            .is_platform_admin
    );

    let err = store
        .accounts()
        .set_platform_admin(portcullis_core::UserId::new(), true, &c)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // The events belong to no org; alice's org sees them because she did them.
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
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["platform_admin.revoked", "platform_admin.granted"]
    );
    assert!(events.iter().all(|e| e.org_id.is_none()));
}

pub async fn list_all_orgs(store: Arc<dyn Store>) {
    assert!(store.orgs().list_all_orgs().await.unwrap().is_empty());
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let team = new_org("Team", false);
    store
        .orgs()
        .create_org(
            alice.user.id,
            &team,
            &new_project(team.id, "Default"),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.orgs().list_all_orgs().await.unwrap(),
        vec![alice.org, bob.org, team]
    );
}

pub async fn create_org_makes_creator_owner(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let team = new_org("Team", false);
    let project = new_project(team.id, "Default");
    store
        .orgs()
        .create_org(alice.user.id, &team, &project, &ctx())
        .await
        .unwrap();
    let access = portcullis_core::OrgAccess::system(team.id);
    assert_eq!(store.org(&access).details().await.unwrap(), team);
    assert_eq!(
        store.org(&access).projects().list_projects().await.unwrap(),
        vec![project.clone()]
    );
    let views = store
        .orgs()
        .memberships_of_user(alice.user.id)
        .await
        .unwrap();
    let orgs: Vec<_> = views.iter().map(|v| (v.org.id, v.role)).collect();
    assert_eq!(orgs, [(alice.org.id, Role::Owner), (team.id, Role::Owner)]);
    assert_eq!(views[1].projects[0].role, Role::Owner);

    let mut taken = new_org("Other", false);
    taken.slug = team.slug.clone();
    let err = store
        .orgs()
        .create_org(
            alice.user.id,
            &taken,
            &new_project(taken.id, "Default"),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("slug")),
        "{err:?}"
    );

    let actions: Vec<_> = store
        .org(&access)
        .audit()
        .query_audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["project.created", "org.created"]);
}

/// Gets a store on an empty database.
pub async fn migrations_current(store: Arc<dyn Store>) {
    assert!(!store.migrations_current().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.migrations_current().await.unwrap());
    store.ping().await.unwrap();
    // Idempotent: a second node starting up migrates again.
    store.migrate().await.unwrap();
    assert!(store.migrations_current().await.unwrap());
}
