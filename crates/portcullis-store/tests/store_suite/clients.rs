//! OAuth clients of a project: creating, reading, patching, rotating the secret, deleting,
//! and the cross-tenant lookup the OAuth endpoints use.

use std::sync::Arc;

use portcullis_core::oauth::{
    ClientId, ClientRegistration, ClientSecret, ClientType, GrantType, OAuthClient, SigningAlg,
    TokenEndpointAuthMethod,
};
use portcullis_core::{
    AuditContext, AuditEvent, AuditQuery, OrgAccess, ProjectAccess, ProjectId, RedirectUri,
    TokenHash,
};
use portcullis_store::{ClientPatch, Store, StoreError, StoreResult};

use super::{SignedUp, ctx, new_project, signup};

fn uri(s: &str) -> RedirectUri {
    RedirectUri::parse(s).unwrap()
}

/// A client of the user's default project, and the secret issued to it (confidential only).
pub fn client(
    owner: &SignedUp,
    client_type: ClientType,
    name: &str,
) -> (OAuthClient, Option<ClientSecret>) {
    let secret =
        (client_type == ClientType::Confidential).then(|| ClientSecret::generate().unwrap());
    let c = OAuthClient::register(
        ClientId::generate().unwrap(),
        owner.org.id,
        owner.project.id,
        ClientRegistration {
            name: name.into(),
            client_type,
            redirect_uris: vec![
                uri("https://app.example.com/cb"),
                uri("http://127.0.0.1/cb"),
            ],
            post_logout_redirect_uris: vec![uri("https://app.example.com/bye")],
            grant_types: None,
            token_endpoint_auth_method: None,
            access_token_ttl_secs: None,
            signing_alg: None,
        },
        secret.as_ref().map(ClientSecret::hash),
        portcullis_core::now(),
    )
    .unwrap();
    (c, secret)
}

/// The calls of these tests, each through the project handle an org's access and a project
/// id make (the access's org paired with any project, so a foreign pairing is tried too).
pub struct Clients<'a>(pub &'a dyn Store);

impl Clients<'_> {
    fn scoped(&self, access: &OrgAccess, project: ProjectId) -> ProjectAccess {
        ProjectAccess::system(access.org_id(), project)
    }

    pub async fn create(
        &self,
        access: &OrgAccess,
        c: &OAuthClient,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let a = self.scoped(access, c.project_id);
        self.0.project(&a).clients().create(c, ctx).await
    }

    pub async fn list(&self, access: &OrgAccess, p: ProjectId) -> StoreResult<Vec<OAuthClient>> {
        self.0
            .project(&self.scoped(access, p))
            .clients()
            .list()
            .await
    }

    pub async fn get(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: &ClientId,
    ) -> StoreResult<Option<OAuthClient>> {
        self.0
            .project(&self.scoped(access, p))
            .clients()
            .get(id)
            .await
    }

    pub async fn update(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: &ClientId,
        patch: &ClientPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient> {
        let a = self.scoped(access, p);
        self.0.project(&a).clients().update(id, patch, ctx).await
    }

    pub async fn delete(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let a = self.scoped(access, p);
        self.0.project(&a).clients().delete(id, ctx).await
    }

    pub async fn rotate_secret(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: &ClientId,
        secret: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient> {
        let a = self.scoped(access, p);
        self.0
            .project(&a)
            .clients()
            .rotate_secret(id, secret, ctx)
            .await
    }

    pub async fn client_by_id(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>> {
        self.0.clients().client_by_id(id).await
    }
}

async fn events(store: &dyn Store, access: &OrgAccess, c: &AuditContext) -> Vec<AuditEvent> {
    store
        .org(access)
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(c.correlation_id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

pub async fn create_list_get_are_scoped_to_the_project(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let clients = Clients(store.as_ref());
    let (web, secret) = client(&alice, ClientType::Confidential, "Web");
    let (spa, _) = client(&alice, ClientType::Public, "SPA");
    let c = ctx();
    clients.create(&alice.access(), &web, &c).await.unwrap();
    clients.create(&alice.access(), &spa, &ctx()).await.unwrap();

    assert_eq!(
        clients
            .list(&alice.access(), alice.project.id)
            .await
            .unwrap(),
        vec![web.clone(), spa.clone()],
        "oldest first, every field round-trips"
    );
    assert_eq!(
        clients
            .get(&alice.access(), alice.project.id, &web.id)
            .await
            .unwrap(),
        Some(web.clone())
    );
    let found = clients.client_by_id(&web.id).await.unwrap().unwrap();
    assert_eq!(found, web);
    assert!(found.verify_secret(secret.unwrap().expose()));
    assert!(
        clients
            .client_by_id(&spa.id)
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .is_none()
    );
    assert_eq!(
        clients
            .client_by_id(&ClientId::generate().unwrap())
            .await
            .unwrap(),
        None
    );

    // Another org sees nothing, through its own access or by naming alice's project.
    assert!(
        clients
            .list(&bob.access(), bob.project.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        clients
            .list(&bob.access(), alice.project.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        clients
            .get(&bob.access(), alice.project.id, &web.id)
            .await
            .unwrap(),
        None
    );
    // Another project of the same org does not hold the client either.
    let other = new_project(alice.org.id, "Other");
    store
        .org(&alice.access())
        .projects()
        .create_project(&other, &ctx())
        .await
        .unwrap();
    assert_eq!(
        clients
            .get(&alice.access(), other.id, &web.id)
            .await
            .unwrap(),
        None
    );
    assert!(
        clients
            .list(&alice.access(), other.id)
            .await
            .unwrap()
            .is_empty()
    );

    // A client cannot be slipped into a project of another org.
    let (mut foreign, _) = client(&alice, ClientType::Public, "Foreign");
    foreign.project_id = bob.project.id;
    let err = clients
        .create(&alice.access(), &foreign, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = clients
        .create(&bob.access(), &spa, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // Ids are unique; an invalid client is refused before it reaches the database.
    let err = clients
        .create(&alice.access(), &web, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let (mut bad, _) = client(&alice, ClientType::Public, "Bad");
    bad.grant_types.push(GrantType::ClientCredentials);
    let err = clients
        .create(&alice.access(), &bad, &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(e) if e.field == "grant_types"),
        "{err:?}"
    );

    let created = events(store.as_ref(), &alice.access(), &c).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].action, "client.created");
    assert_eq!(
        created[0].target.as_deref(),
        Some(format!("client:{}", web.id.as_str()).as_str())
    );
    assert_eq!(created[0].details["type"], "confidential");
    assert!(
        !created[0].details.to_string().contains("secret"),
        "{}",
        created[0].details
    );
}

pub async fn update_applies_patch_validates_and_audits(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let clients = Clients(store.as_ref());
    let (web, secret) = client(&alice, ClientType::Confidential, "Web");
    let (spa, _) = client(&alice, ClientType::Public, "SPA");
    clients.create(&alice.access(), &web, &ctx()).await.unwrap();
    clients.create(&alice.access(), &spa, &ctx()).await.unwrap();

    let c = ctx();
    let patch = ClientPatch {
        name: Some("Web 2".into()),
        redirect_uris: Some(vec![uri("https://new.example.com/cb")]),
        token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretPost),
        access_token_ttl_secs: Some(web.access_token_ttl_secs),
        signing_alg: Some(SigningAlg::ES256),
        ..ClientPatch::default()
    };
    let updated = clients
        .update(&alice.access(), alice.project.id, &web.id, &patch, &c)
        .await
        .unwrap();
    assert_eq!(updated.name, "Web 2");
    assert_eq!(
        updated.redirect_uris,
        vec![uri("https://new.example.com/cb")]
    );
    assert_eq!(
        updated.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretPost
    );
    assert_eq!(updated.signing_alg, SigningAlg::ES256);
    assert_eq!(
        updated.post_logout_redirect_uris,
        web.post_logout_redirect_uris
    );
    assert_eq!(updated.created_at, web.created_at);
    assert!(updated.updated_at >= web.updated_at);
    assert!(
        updated.verify_secret(secret.unwrap().expose()),
        "a patch keeps the secret"
    );
    assert_eq!(
        clients
            .get(&alice.access(), alice.project.id, &web.id)
            .await
            .unwrap(),
        Some(updated.clone())
    );
    let ev = events(store.as_ref(), &alice.access(), &c).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].action, "client.updated");
    assert_eq!(
        ev[0].details["changed"],
        serde_json::json!([
            "name",
            "redirect_uris",
            "token_endpoint_auth_method",
            "signing_alg"
        ])
    );

    // A patch whose result does not validate changes nothing.
    for (patch, field) in [
        (
            ClientPatch {
                grant_types: Some(vec![
                    GrantType::AuthorizationCode,
                    GrantType::ClientCredentials,
                ]),
                ..ClientPatch::default()
            },
            "grant_types",
        ),
        (
            ClientPatch {
                token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
                ..ClientPatch::default()
            },
            "token_endpoint_auth_method",
        ),
        (
            ClientPatch {
                redirect_uris: Some(vec![]),
                ..ClientPatch::default()
            },
            "redirect_uris",
        ),
        (
            ClientPatch {
                access_token_ttl_secs: Some(30),
                ..ClientPatch::default()
            },
            "access_token_ttl_secs",
        ),
    ] {
        let err = clients
            .update(&alice.access(), alice.project.id, &spa.id, &patch, &ctx())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(e) if e.field == field),
            "{err:?}"
        );
    }
    assert_eq!(
        clients
            .get(&alice.access(), alice.project.id, &spa.id)
            .await
            .unwrap(),
        Some(spa.clone())
    );

    // Nothing to change: nothing written, nothing audited.
    let quiet = ctx();
    let same = clients
        .update(
            &alice.access(),
            alice.project.id,
            &spa.id,
            &ClientPatch {
                name: Some("SPA".into()),
                ..ClientPatch::default()
            },
            &quiet,
        )
        .await
        .unwrap();
    assert_eq!(same, spa);
    assert!(
        events(store.as_ref(), &alice.access(), &quiet)
            .await
            .is_empty()
    );

    // Another org, or an unknown id, is not found.
    let err = clients
        .update(
            &bob.access(),
            alice.project.id,
            &spa.id,
            &ClientPatch::default(),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = clients
        .update(
            &alice.access(),
            alice.project.id,
            &ClientId::generate().unwrap(),
            &ClientPatch::default(),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn rotate_secret_replaces_the_old_one(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let clients = Clients(store.as_ref());
    let (web, old) = client(&alice, ClientType::Confidential, "Web");
    let old = old.unwrap();
    let (spa, _) = client(&alice, ClientType::Public, "SPA");
    clients.create(&alice.access(), &web, &ctx()).await.unwrap();
    clients.create(&alice.access(), &spa, &ctx()).await.unwrap();

    let new = ClientSecret::generate().unwrap();
    let c = ctx();
    let rotated = clients
        .rotate_secret(&alice.access(), alice.project.id, &web.id, &new.hash(), &c)
        .await
        .unwrap();
    assert!(rotated.verify_secret(new.expose()));
    // What the token endpoint will see: the old secret no longer verifies.
    let seen = clients.client_by_id(&web.id).await.unwrap().unwrap();
    assert!(seen.verify_secret(new.expose()));
    assert!(!seen.verify_secret(old.expose()));
    let ev = events(store.as_ref(), &alice.access(), &c).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].action, "client.secret_rotated");

    let err = clients
        .rotate_secret(
            &alice.access(),
            alice.project.id,
            &spa.id,
            &new.hash(),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(e) if e.field == "type"),
        "{err:?}"
    );
    let err = clients
        .rotate_secret(
            &bob.access(),
            alice.project.id,
            &web.id,
            &old.hash(),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(
        clients
            .client_by_id(&web.id)
            .await
            .unwrap()
            .unwrap()
            .verify_secret(new.expose())
    );
}

pub async fn delete_is_soft_and_final(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let clients = Clients(store.as_ref());
    let (web, secret) = client(&alice, ClientType::Confidential, "Web");
    let (spa, _) = client(&alice, ClientType::Public, "SPA");
    clients.create(&alice.access(), &web, &ctx()).await.unwrap();
    clients.create(&alice.access(), &spa, &ctx()).await.unwrap();

    let err = clients
        .delete(&bob.access(), alice.project.id, &web.id, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let c = ctx();
    clients
        .delete(&alice.access(), alice.project.id, &web.id, &c)
        .await
        .unwrap();

    // Gone from every read, above all from the one that authenticates.
    assert_eq!(clients.client_by_id(&web.id).await.unwrap(), None);
    assert_eq!(
        clients
            .get(&alice.access(), alice.project.id, &web.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        clients
            .list(&alice.access(), alice.project.id)
            .await
            .unwrap(),
        vec![spa.clone()]
    );
    let secret = secret.unwrap();
    for err in [
        clients
            .delete(&alice.access(), alice.project.id, &web.id, &ctx())
            .await
            .unwrap_err(),
        clients
            .update(
                &alice.access(),
                alice.project.id,
                &web.id,
                &ClientPatch::default(),
                &ctx(),
            )
            .await
            .unwrap_err(),
        clients
            .rotate_secret(
                &alice.access(),
                alice.project.id,
                &web.id,
                &secret.hash(),
                &ctx(),
            )
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    let ev = events(store.as_ref(), &alice.access(), &c).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].action, "client.deleted");
    assert_eq!(ev[0].details["name"], "Web");
    assert!(clients.client_by_id(&spa.id).await.unwrap().is_some());
}

/// Below the store's own filters, row-level security confines `oauth_clients` to the org
/// context, and the platform context (the OAuth endpoints' lookup) sees every row.
#[tokio::test]
async fn postgres_rls_confines_clients() {
    use sqlx::Connection;
    let db = super::fresh_postgres().await;
    let store = super::open(&db.url, true).await;
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    for (owner, name) in [(&alice, "A1"), (&alice, "A2"), (&bob, "B1")] {
        let (c, _) = client(owner, ClientType::Public, name);
        Clients(store.as_ref())
            .create(&owner.access(), &c, &ctx())
            .await
            .unwrap();
    }
    let mut conn = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("SET ROLE portcullis_app")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut count = async |org: &str, platform: &str| -> i64 {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "SELECT set_config('app.org_id', $1, true), set_config('app.platform', $2, true)",
        )
        .bind(org)
        .bind(platform)
        .execute(&mut *tx)
        .await
        .unwrap();
        let n = sqlx::query_scalar("SELECT count(*) FROM oauth_clients")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(count("", "").await, 0);
    assert_eq!(count(&alice.org.id.to_string(), "").await, 2);
    assert_eq!(count(&bob.org.id.to_string(), "").await, 1);
    assert_eq!(count("", "on").await, 3);

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(bob.org.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let n = sqlx::query("UPDATE oauth_clients SET name = 'taken' WHERE org_id = $1")
        .bind(alice.org.id.0)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 0);
    let err = sqlx::query(
        "INSERT INTO oauth_clients (id, org_id, project_id, name, client_type, grant_types, \
         token_endpoint_auth_method, access_token_ttl_secs, signing_alg, created_at, updated_at) \
         VALUES ('pcc_x', $1, $2, 'x', 'public', '[]', 'none', 600, 'EdDSA', now(), now())",
    )
    .bind(alice.org.id.0)
    .bind(alice.project.id.0)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        matches!(&err, sqlx::Error::Database(d) if d.code().as_deref() == Some("42501")),
        "{err:?}"
    );
    tx.rollback().await.unwrap();
}

struct Heard(tokio::sync::mpsc::UnboundedSender<Option<portcullis_store::Change>>);

impl portcullis_store::ChangeSink for Heard {
    fn changed(&self, change: portcullis_store::Change) {
        let _ = self.0.send(Some(change));
    }

    fn feed_up(&self, _up: bool) {
        let _ = self.0.send(None);
    }
}

/// Nodes cache clients by id: changing, rotating or deleting one is announced to every
/// node, so a rotated secret or a deleted client stops working everywhere.
#[tokio::test]
async fn postgres_client_changes_are_announced() {
    use portcullis_store::Change;
    let db = super::fresh_postgres().await;
    let listening = super::open(&db.url, true).await;
    let writer = super::open(&db.url, false).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    assert!(listening.listen_changes(Arc::new(Heard(tx))).await.unwrap());
    let mut next = async || loop {
        let heard = tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv())
            .await
            .expect("the change feed said nothing for 15 s")
            .expect("sink dropped");
        if let Some(change) = heard {
            return change;
        }
    };
    let alice = signup(writer.as_ref(), "alice@example.com").await;
    let (web, _) = client(&alice, ClientType::Confidential, "Web");
    Clients(writer.as_ref())
        .create(&alice.access(), &web, &ctx())
        .await
        .unwrap();
    let p = alice.project.id;
    let changed = Change::OrgChanged(alice.org.id);

    let patch = ClientPatch {
        name: Some("Renamed".into()),
        ..ClientPatch::default()
    };
    Clients(writer.as_ref())
        .update(&alice.access(), p, &web.id, &patch, &ctx())
        .await
        .unwrap();
    assert_eq!(next().await, changed);
    let secret = ClientSecret::generate().unwrap();
    Clients(writer.as_ref())
        .rotate_secret(&alice.access(), p, &web.id, &secret.hash(), &ctx())
        .await
        .unwrap();
    assert_eq!(next().await, changed);
    Clients(writer.as_ref())
        .delete(&alice.access(), p, &web.id, &ctx())
        .await
        .unwrap();
    assert_eq!(next().await, changed);
}
