//! Projects of an org: creating, listing, patching, and the status the OAuth endpoints read.

use std::sync::Arc;

use portcullis_core::{AuditQuery, Origin, ProjectId, ProjectName, ProjectStatus, RedirectUri};
use portcullis_store::{Change, ProjectPatch, Store, StoreError};

use super::{ctx, new_project, signup};

pub async fn create_and_list_projects(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let mut extra = new_project(alice.org.id, "Extra");
    extra.redirect_uris = vec![RedirectUri::parse("https://app.example.com/cb").unwrap()];
    extra.allowed_origins = vec![Origin::parse("http://localhost:3000").unwrap()];
    store
        .org(&alice.access())
        .projects()
        .create_project(&extra, &ctx())
        .await
        .unwrap();
    assert_eq!(
        store
            .org(&alice.access())
            .projects()
            .list_projects()
            .await
            .unwrap(),
        vec![alice.project.clone(), extra.clone()]
    );
    assert_eq!(
        store
            .org(&bob.access())
            .projects()
            .list_projects()
            .await
            .unwrap(),
        vec![bob.project.clone()]
    );

    // A project for another org cannot be slipped in through this org's access.
    let foreign = new_project(bob.org.id, "Foreign");
    let err = store
        .org(&alice.access())
        .projects()
        .create_project(&foreign, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .org(&alice.access())
        .projects()
        .create_project(&extra, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .org(&bob.access())
            .projects()
            .list_projects()
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn update_project_patch(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let before = alice.project.clone();

    let c = ctx();
    let patch = ProjectPatch {
        name: Some(ProjectName::parse("Renamed").unwrap()),
        status: Some(ProjectStatus::Active),
        redirect_uris: Some(vec![
            RedirectUri::parse("https://app.example.com/cb").unwrap(),
            RedirectUri::parse("com.example.app:/cb").unwrap(),
        ]),
        allowed_origins: Some(vec![Origin::parse("https://app.example.com").unwrap()]),
    };
    let updated = store
        .org(&alice.access())
        .projects()
        .update_project(before.id, &patch, &c)
        .await
        .unwrap();
    assert_eq!(updated.name.as_str(), "Renamed");
    assert_eq!(updated.status, ProjectStatus::Active);
    assert_eq!(updated.redirect_uris.len(), 2);
    assert_eq!(
        updated.allowed_origins[0].as_str(),
        "https://app.example.com"
    );
    assert_eq!(updated.created_at, before.created_at);
    assert!(updated.updated_at >= before.updated_at);
    assert_eq!(
        store
            .org(&alice.access())
            .projects()
            .list_projects()
            .await
            .unwrap(),
        vec![updated.clone()]
    );

    // Only what the patch names changes.
    let disabled = store
        .org(&alice.access())
        .projects()
        .update_project(
            before.id,
            &ProjectPatch {
                status: Some(ProjectStatus::Disabled),
                ..ProjectPatch::default()
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(disabled.status, ProjectStatus::Disabled);
    assert_eq!(disabled.name, updated.name);
    assert_eq!(disabled.redirect_uris, updated.redirect_uris);
    let rec = store
        .projects()
        .project_access(before.id, alice.user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.project, disabled);

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
    assert_eq!(events[0].action, "project.updated");
    assert_eq!(
        events[0].details["changed"],
        serde_json::json!(["name", "redirect_uris", "allowed_origins"])
    );

    // Another org's project, or none at all, is not found.
    for id in [bob.project.id, ProjectId::new()] {
        let err = store
            .org(&alice.access())
            .projects()
            .update_project(id, &ProjectPatch::default(), &ctx())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    assert_eq!(
        store
            .org(&bob.access())
            .projects()
            .list_projects()
            .await
            .unwrap(),
        vec![bob.project]
    );
}

/// What the OAuth endpoints ask about a client's project: whether it is active, known from
/// the project id alone. Disabling it is a change caches must hear about.
pub async fn project_status(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let heard = super::listen(store.as_ref());
    let id = alice.project.id;
    assert_eq!(
        store.projects().project_status(id).await.unwrap(),
        Some(ProjectStatus::Active)
    );
    assert_eq!(
        store
            .projects()
            .project_status(ProjectId::new())
            .await
            .unwrap(),
        None
    );

    let disable = ProjectPatch {
        status: Some(ProjectStatus::Disabled),
        ..ProjectPatch::default()
    };
    store
        .org(&alice.access())
        .projects()
        .update_project(id, &disable, &ctx())
        .await
        .unwrap();
    assert_eq!(
        store.projects().project_status(id).await.unwrap(),
        Some(ProjectStatus::Disabled)
    );
    assert_eq!(heard.take(), vec![Change::OrgChanged(alice.org.id)]);

    let enable = ProjectPatch {
        status: Some(ProjectStatus::Active),
        ..ProjectPatch::default()
    };
    store
        .org(&alice.access())
        .projects()
        .update_project(id, &enable, &ctx())
        .await
        .unwrap();
    assert_eq!(
        store.projects().project_status(id).await.unwrap(),
        Some(ProjectStatus::Active)
    );
}

/// A project handle reaches its own project only: another org's project through it is
/// empty or `NotFound`, and a row naming another project is refused at the handle.
pub async fn project_handles_stay_in_their_project(store: Arc<dyn Store>) {
    use portcullis_core::ProjectAccess;
    use portcullis_core::oauth::ClientType;

    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let other = new_project(alice.org.id, "Other");
    store
        .org(&alice.access())
        .projects()
        .create_project(&other, &ctx())
        .await
        .unwrap();
    let own = ProjectAccess::system(alice.org.id, alice.project.id);
    let (client, _) = super::clients::client(&alice, ClientType::Public, "App");
    store
        .project(&own)
        .clients()
        .create(&client, &ctx())
        .await
        .unwrap();

    // Rows of another project of the same org are refused before the backend sees them.
    let mut elsewhere = super::clients::client(&alice, ClientType::Public, "Elsewhere").0;
    elsewhere.project_id = other.id;
    let err = store
        .project(&own)
        .clients()
        .create(&elsewhere, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let mut hook = super::webhooks::endpoint(&alice, &["*"], portcullis_core::now());
    hook.project_id = other.id;
    let err = store
        .project(&own)
        .webhooks()
        .create_endpoint(&hook, b"sealed", 20, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Bob's org paired with alice's project sees nothing of it.
    let foreign = ProjectAccess::system(bob.org.id, alice.project.id);
    let p = store.project(&foreign);
    assert!(p.clients().list().await.unwrap().is_empty());
    assert_eq!(p.clients().get(&client.id).await.unwrap(), None);
    assert!(matches!(
        p.keys().project_mode().await,
        Err(StoreError::NotFound)
    ));
    assert!(
        p.keys()
            .secret_keys(portcullis_core::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(p.webhooks().list_endpoints().await.unwrap().is_empty());
    // Alice's other project does not hold her default project's client either.
    let sibling = ProjectAccess::system(alice.org.id, other.id);
    assert_eq!(
        store
            .project(&sibling)
            .clients()
            .get(&client.id)
            .await
            .unwrap(),
        None
    );

    // Only an operator's access changes a subscription; a secret key's is no operator's.
    let key = portcullis_core::OrgAccess::project_key(alice.org.id);
    let sub = store
        .org(&alice.access())
        .platform()
        .subscription()
        .await
        .unwrap()
        .subscription;
    assert!(matches!(
        store
            .org(&key)
            .platform()
            .set_subscription(&sub, &ctx())
            .await,
        Err(StoreError::NotFound)
    ));
}
