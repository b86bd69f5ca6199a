//! Upstream SSO: org providers (scoped to their org, audited, found across tenants by id or
//! org slug for sign-in), linked identities, signup with an identity, just-in-time org
//! membership, and the allowed-origin lookup for `return_to`.

use std::sync::Arc;

use portcullis_core::TokenHash;
use portcullis_core::{AuditQuery, OrgAccess};
use portcullis_store::{
    OrgSsoProvider, SsoAccount, SsoProviderPatch, SsoSignIn, Store, StoreError, UserIdentity,
};
use uuid::Uuid;

use super::{bootstrap, ctx, signup};

fn provider(org: &super::SignedUp, name: &str) -> OrgSsoProvider {
    let now = portcullis_core::now();
    OrgSsoProvider {
        id: Uuid::now_v7(),
        org_id: org.org.id,
        name: name.into(),
        issuer: "https://idp.example.com".into(),
        client_id: "client-1".into(),
        client_secret_sealed: vec![1, 2, 3, 4],
        scopes: vec!["openid".into(), "email".into()],
        created_at: now,
        updated_at: now,
    }
}

async fn actions(store: &dyn Store, access: &OrgAccess) -> Vec<String> {
    store
        .org(access)
        .audit()
        .query_audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

pub async fn org_providers_are_scoped_and_audited(store: Arc<dyn Store>) {
    let a = signup(&*store, "sso-a@example.com").await;
    let b = signup(&*store, "sso-b@example.com").await;
    let p = provider(&a, "Acme IdP");
    store
        .org(&a.access())
        .sso_providers()
        .create_provider(&p, &ctx())
        .await
        .unwrap();
    // Another org's access cannot create into, see, change or delete it.
    let mut foreign = provider(&a, "x");
    foreign.org_id = a.org.id;
    assert!(matches!(
        store
            .org(&b.access())
            .sso_providers()
            .create_provider(&foreign, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .org(&b.access())
            .sso_providers()
            .list_providers()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .org(&b.access())
            .sso_providers()
            .get_provider(p.id)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store
            .org(&b.access())
            .sso_providers()
            .update_provider(p.id, &SsoProviderPatch::default(), &ctx())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .org(&b.access())
            .sso_providers()
            .delete_provider(p.id, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));

    let listed = store
        .org(&a.access())
        .sso_providers()
        .list_providers()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let got = &listed[0];
    assert_eq!(got.id, p.id);
    assert_eq!(got.client_secret_sealed, vec![1, 2, 3, 4]);
    assert_eq!(got.scopes, ["openid", "email"]);

    let patched = store
        .org(&a.access())
        .sso_providers()
        .update_provider(
            p.id,
            &SsoProviderPatch {
                name: Some("Acme SSO".into()),
                client_secret_sealed: Some(vec![9, 9]),
                ..SsoProviderPatch::default()
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Acme SSO");
    assert_eq!(patched.client_secret_sealed, vec![9, 9]);
    assert_eq!(patched.issuer, p.issuer);
    assert!(patched.updated_at > p.updated_at);
    assert_eq!(
        store
            .org(&a.access())
            .sso_providers()
            .get_provider(p.id)
            .await
            .unwrap(),
        Some(patched.clone())
    );

    // Sign-in lookups cross tenants: by id, and by the org's slug.
    assert_eq!(
        store.sso().provider_by_id(p.id).await.unwrap(),
        Some(patched.clone())
    );
    assert_eq!(
        store
            .sso()
            .providers_of_org_slug(a.org.slug.as_str())
            .await
            .unwrap(),
        vec![patched.clone()]
    );
    assert!(
        store
            .sso()
            .providers_of_org_slug(b.org.slug.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.sso().providers_of_org(a.org.id).await.unwrap(),
        vec![patched.clone()]
    );
    assert!(
        store
            .sso()
            .providers_of_org(b.org.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.sso().provider_by_id(Uuid::now_v7()).await.unwrap(),
        None
    );

    store
        .org(&a.access())
        .sso_providers()
        .delete_provider(p.id, &ctx())
        .await
        .unwrap();
    assert_eq!(store.sso().provider_by_id(p.id).await.unwrap(), None);
    let trail = actions(&*store, &a.access()).await;
    for action in [
        "sso.provider.created",
        "sso.provider.updated",
        "sso.provider.deleted",
    ] {
        assert!(trail.iter().any(|a| a == action), "{action}: {trail:?}");
    }
    assert!(
        !actions(&*store, &b.access())
            .await
            .iter()
            .any(|a| a.starts_with("sso."))
    );
}

pub async fn identities_link_and_sign_up(store: Arc<dyn Store>) {
    let existing = signup(&*store, "linked@example.com").await;
    let identity = |user_id, subject: &str| UserIdentity {
        user_id,
        provider: "upstream".into(),
        issuer: "https://idp.example.com".into(),
        subject: subject.into(),
        email: "linked@example.com".into(),
        provider_id: None,
        created_at: portcullis_core::now(),
    };
    assert_eq!(
        store
            .sso()
            .user_by_identity("upstream", "https://idp.example.com", "sub-1")
            .await
            .unwrap(),
        None
    );
    store
        .sso()
        .link_identity(&identity(existing.user.id, "sub-1"), &ctx())
        .await
        .unwrap();
    let found = store
        .sso()
        .user_by_identity("upstream", "https://idp.example.com", "sub-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, existing.user.id);
    // Same subject at another issuer is another identity.
    assert_eq!(
        store
            .sso()
            .user_by_identity("upstream", "https://other.example.com", "sub-1")
            .await
            .unwrap(),
        None
    );
    // The same upstream account through another provider is another identity: an org's
    // provider naming the same issuer never signs in as a server-wide identity.
    assert_eq!(
        store
            .sso()
            .user_by_identity(
                "org_00000000-0000-0000-0000-000000000000",
                "https://idp.example.com",
                "sub-1"
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .sso()
            .user_by_identity("google", "https://idp.example.com", "sub-1")
            .await
            .unwrap(),
        None
    );
    // One upstream account links to one user only.
    let other = signup(&*store, "other@example.com").await;
    assert!(matches!(
        store
            .sso()
            .link_identity(&identity(other.user.id, "sub-1"), &ctx())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        actions(&*store, &existing.access())
            .await
            .iter()
            .any(|a| a == "sso.identity.linked")
    );

    // Signup with an identity: the bootstrap and the identity in one transaction.
    let b = bootstrap("fresh@example.com");
    let user = store
        .sso()
        .signup_with_identity(&b, &identity(b.user_id, "sub-2"), &ctx())
        .await
        .unwrap();
    assert_eq!(user.email.as_str(), "fresh@example.com");
    let views = store.orgs().memberships_of_user(user.id).await.unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].org.id, b.org.id);
    assert_eq!(
        store
            .sso()
            .user_by_identity("upstream", "https://idp.example.com", "sub-2")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(user.id)
    );
    // A taken identity rolls the whole signup back.
    let again = bootstrap("fresh2@example.com");
    assert!(matches!(
        store
            .sso()
            .signup_with_identity(&again, &identity(again.user_id, "sub-2"), &ctx())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .accounts()
            .user_by_email(&again.email)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn deleting_a_provider_removes_its_identities(store: Arc<dyn Store>) {
    let org = signup(&*store, "idp-owner@example.com").await;
    let dave = signup(&*store, "idp-dave@example.com").await;
    let p = provider(&org, "Acme IdP");
    store
        .org(&org.access())
        .sso_providers()
        .create_provider(&p, &ctx())
        .await
        .unwrap();
    let key = format!("org_{}", p.id);
    let identity = UserIdentity {
        user_id: dave.user.id,
        provider: key.clone(),
        issuer: p.issuer.clone(),
        subject: "sub-dave".into(),
        email: "idp-dave@example.com".into(),
        provider_id: Some(p.id),
        created_at: portcullis_core::now(),
    };
    store.sso().link_identity(&identity, &ctx()).await.unwrap();
    let found = store
        .sso()
        .user_by_identity(&key, &p.issuer, "sub-dave")
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.id), Some(dave.user.id));
    store
        .org(&org.access())
        .sso_providers()
        .delete_provider(p.id, &ctx())
        .await
        .unwrap();
    assert_eq!(
        store
            .sso()
            .user_by_identity(&key, &p.issuer, "sub-dave")
            .await
            .unwrap(),
        None
    );
}

pub async fn claiming_an_account_ends_the_squatters_access(store: Arc<dyn Store>) {
    use portcullis_core::password::PasswordHash;
    use portcullis_core::{SessionPolicy, TokenHash};

    let mut b = bootstrap("claimed@example.com");
    b.password_hash = Some(PasswordHash::from_stored("$argon2id$squatter".into()));
    let user = store.accounts().bootstrap_signup(&b, &ctx()).await.unwrap();
    let bystander = signup(&*store, "bystander@example.com").await;
    let now = portcullis_core::now();
    let session = |user_id, token: &str| {
        SessionPolicy::default().new_session(user_id, TokenHash::of(token), now, None, None)
    };
    for (u, t) in [
        (user.id, "squat-1"),
        (user.id, "squat-2"),
        (bystander.user.id, "bystander-1"),
    ] {
        store
            .sessions()
            .create_session(&session(u, t), &ctx(), &[])
            .await
            .unwrap();
    }
    let heard = super::listen(&*store);
    let identity = UserIdentity {
        user_id: user.id,
        provider: "upstream".into(),
        issuer: "https://idp.example.com".into(),
        subject: "sub-owner".into(),
        email: "claimed@example.com".into(),
        provider_id: None,
        created_at: now,
    };
    store
        .sso()
        .claim_account(&user, &identity, &ctx())
        .await
        .unwrap();
    let creds = store
        .accounts()
        .user_by_email(&b.email)
        .await
        .unwrap()
        .unwrap();
    assert!(creds.password_hash.is_none(), "the password is gone");
    assert!(
        store
            .sessions()
            .list_user_sessions(user.id, now)
            .await
            .unwrap()
            .is_empty(),
        "every session revoked"
    );
    assert_eq!(
        store
            .sessions()
            .list_user_sessions(bystander.user.id, now)
            .await
            .unwrap()
            .len(),
        1,
        "nobody else's"
    );
    assert_eq!(
        store
            .sso()
            .user_by_identity("upstream", "https://idp.example.com", "sub-owner")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(user.id)
    );
    let changes = heard.take();
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, portcullis_store::Change::SessionRevoked(_)))
            .count(),
        2,
        "{changes:?}"
    );
    assert!(changes.contains(&portcullis_store::Change::UserChanged(user.id)));
    let access = OrgAccess::system(b.org.id);
    let trail = actions(&*store, &access).await;
    assert!(trail.iter().any(|a| a == "user.claimed"), "{trail:?}");
    assert_eq!(
        trail.iter().filter(|a| *a == "session.revoked").count(),
        2,
        "{trail:?}"
    );
    // A taken identity rolls the whole claim back: the password and sessions stay.
    let mut other = bootstrap("claimed2@example.com");
    other.password_hash = Some(PasswordHash::from_stored("$argon2id$x".into()));
    let second = store
        .accounts()
        .bootstrap_signup(&other, &ctx())
        .await
        .unwrap();
    store
        .sessions()
        .create_session(&session(second.id, "second-1"), &ctx(), &[])
        .await
        .unwrap();
    let taken = UserIdentity {
        user_id: second.id,
        ..identity.clone()
    };
    assert!(matches!(
        store.sso().claim_account(&second, &taken, &ctx()).await,
        Err(StoreError::Conflict(_))
    ));
    let creds = store
        .accounts()
        .user_by_email(&other.email)
        .await
        .unwrap()
        .unwrap();
    assert!(creds.password_hash.is_some());
    assert_eq!(
        store
            .sessions()
            .list_user_sessions(second.id, now)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn joining_an_org_via_sso_is_once_only(store: Arc<dyn Store>) {
    let acme = signup(&*store, "acme-owner@example.com").await;
    let dave = signup(&*store, "dave@example.com").await;
    let pid = Uuid::now_v7();
    assert!(
        store
            .sso()
            .join_org_via_sso(acme.org.id, &dave.user, pid, &ctx())
            .await
            .unwrap()
    );
    let m = store
        .orgs()
        .membership(acme.org.id, dave.user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.role.as_str(), "member");
    let views = store
        .orgs()
        .memberships_of_user(dave.user.id)
        .await
        .unwrap();
    let in_acme = views.iter().find(|v| v.org.id == acme.org.id).unwrap();
    assert_eq!(in_acme.projects.len(), 1, "the default project too");
    // Already a member: nothing happens.
    assert!(
        !store
            .sso()
            .join_org_via_sso(acme.org.id, &dave.user, pid, &ctx())
            .await
            .unwrap()
    );
    // Removed by an admin: signing in again does not bring them back.
    store
        .org(&acme.access())
        .members()
        .remove_member(dave.user.id, &ctx())
        .await
        .unwrap();
    assert!(
        !store
            .sso()
            .join_org_via_sso(acme.org.id, &dave.user, pid, &ctx())
            .await
            .unwrap()
    );
    assert!(
        !store
            .orgs()
            .membership(acme.org.id, dave.user.id)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
}

pub async fn allowed_origins_are_found(store: Arc<dyn Store>) {
    let a = signup(&*store, "origins@example.com").await;
    let other = signup(&*store, "other-origins@example.com").await;
    let allows = async |project, origin: &str| {
        store
            .sso()
            .project_allows_origin(project, origin)
            .await
            .unwrap()
    };
    assert!(!allows(a.project.id, "https://app.example.com").await);
    store
        .org(&a.access())
        .projects()
        .update_project(
            a.project.id,
            &portcullis_store::ProjectPatch {
                allowed_origins: Some(vec![
                    portcullis_core::Origin::parse("https://app.example.com").unwrap(),
                ]),
                ..Default::default()
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert!(allows(a.project.id, "https://app.example.com").await);
    assert!(!allows(a.project.id, "https://app.example.co").await);
    assert!(!allows(a.project.id, "https://evil.example.com").await);
    // Only the named project's origins count, never another project's.
    assert!(!allows(other.project.id, "https://app.example.com").await);
    // A disabled project's origins do not count.
    store
        .org(&a.access())
        .projects()
        .update_project(
            a.project.id,
            &portcullis_store::ProjectPatch {
                status: Some(portcullis_core::ProjectStatus::Disabled),
                ..Default::default()
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert!(!allows(a.project.id, "https://app.example.com").await);
}

/// PostgreSQL checks the org of `sso_providers` rows a second time (row-level security),
/// below the store's own filters, for the application role.
#[tokio::test]
async fn postgres_rls_confines_sso_providers() {
    use sqlx::Connection;
    let db = super::fresh_postgres().await;
    let store = super::open(&db.url, true).await;
    let a = signup(&*store, "rls-a@example.com").await;
    let b = signup(&*store, "rls-b@example.com").await;
    store
        .org(&a.access())
        .sso_providers()
        .create_provider(&provider(&a, "A"), &ctx())
        .await
        .unwrap();
    let mut conn = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("SET ROLE portcullis_app")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut count_as = async |org: String, platform: &str| -> i64 {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "SELECT set_config('app.org_id', $1, true), set_config('app.platform', $2, true)",
        )
        .bind(org)
        .bind(platform.to_owned())
        .execute(&mut *tx)
        .await
        .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sso_providers")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(count_as(a.org.id.to_string(), "").await, 1);
    assert_eq!(count_as(b.org.id.to_string(), "").await, 0);
    assert_eq!(count_as(String::new(), "").await, 0);
    assert_eq!(count_as(String::new(), "on").await, 1);
    // Writing a row into another org's context is refused.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(b.org.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let e = sqlx::query(
        "INSERT INTO sso_providers (id, org_id, name, issuer, client_id, client_secret_sealed, \
         created_at, updated_at) VALUES ($1, $2, 'x', 'https://i', 'c', '\\x00', now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(a.org.id.0)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42501")),
        "{e}"
    );
}

/// One sign-in, one unit: a new account, its identity, the membership of the provider's
/// org, the session and the events all commit together — and a sign-in that fails part of
/// the way (here: the identity was linked meanwhile) leaves nothing behind.
pub async fn an_sso_sign_in_is_one_unit(store: Arc<dyn Store>) {
    let acme = signup(&*store, "acme-owner@example.com").await;
    let pid = Uuid::now_v7();
    let mut b = bootstrap("jit@example.com");
    b.password_hash = None;
    let identity = UserIdentity {
        user_id: b.user_id,
        provider: format!("org_{pid}"),
        issuer: "https://idp.example.com".into(),
        subject: "sub-jit".into(),
        email: "jit@example.com".into(),
        provider_id: Some(pid),
        created_at: portcullis_core::now(),
    };
    let session = |user_id, token: &str| {
        portcullis_core::SessionPolicy::default().new_session(
            user_id,
            TokenHash::of(token),
            portcullis_core::now(),
            None,
            None,
        )
    };
    let signed_in = ctx().with_actor(b.user_id);
    let succeeded = [signed_in.event(
        None,
        portcullis_core::Action::LoginSucceeded,
        format!("user:{}", b.user_id),
    )];
    let first = session(b.user_id, "sso-session-1");
    let user = store
        .sso()
        .sign_in_via_sso(
            &SsoSignIn {
                account: SsoAccount::Create(&b),
                identity: &identity,
                join: Some((acme.org.id, pid)),
                session: &first,
                also: &succeeded,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(user.id, b.user_id);
    let linked = store
        .sso()
        .user_by_identity(&identity.provider, &identity.issuer, &identity.subject)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.id, user.id);
    assert!(
        store
            .orgs()
            .membership(acme.org.id, user.id)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    let found = store
        .sessions()
        .session_by_token(&TokenHash::of("sso-session-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.id, user.id);
    let acme_events = actions(&*store, &acme.access()).await;
    assert!(
        acme_events.contains(&"member.added".to_owned()),
        "{acme_events:?}"
    );
    assert!(
        acme_events.contains(&"login.succeeded".to_owned()),
        "{acme_events:?}"
    );
    assert!(
        acme_events.contains(&"session.created".to_owned()),
        "{acme_events:?}"
    );

    // Someone else's account, and the identity is linked already: the link fails, and
    // neither the membership nor the session of this attempt is written.
    let eve = signup(&*store, "eve@example.com").await;
    let second = session(eve.user.id, "sso-session-2");
    let err = store
        .sso()
        .sign_in_via_sso(
            &SsoSignIn {
                account: SsoAccount::Link(&eve.user),
                identity: &UserIdentity {
                    user_id: eve.user.id,
                    ..identity.clone()
                },
                join: Some((acme.org.id, pid)),
                session: &second,
                also: &[],
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        store
            .orgs()
            .membership(acme.org.id, eve.user.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .sessions()
            .session_by_token(&TokenHash::of("sso-session-2"))
            .await
            .unwrap()
            .is_none()
    );

    // A session for someone other than the signed-in user is refused before anything commits.
    let stray = session(acme.user.id, "sso-session-3");
    let err = store
        .sso()
        .sign_in_via_sso(
            &SsoSignIn {
                account: SsoAccount::Linked(&user),
                identity: &identity,
                join: None,
                session: &stray,
                also: &[],
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(
        store
            .sessions()
            .session_by_token(&TokenHash::of("sso-session-3"))
            .await
            .unwrap()
            .is_none()
    );
}
