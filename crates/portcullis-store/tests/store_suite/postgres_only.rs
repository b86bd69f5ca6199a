//! What only PostgreSQL has: row-level security checked below the store's own filters, the
//! switch to the `portcullis_app` role, and the cross-node change feed.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Action, OrgId, OutboxEvent, Role, SessionPolicy, TokenHash, UserId};
use portcullis_store::postgres::PgStore;
use portcullis_store::{Change, ChangeSink, ConnectOptions, ProjectPatch, Store};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{add, ctx, fresh_postgres, new_project, open, signup};

const TENANT_TABLES: [&str; 5] = [
    "orgs",
    "projects",
    "memberships",
    "project_memberships",
    "audit_events",
];

/// The three settings the store sets, or none at all.
#[derive(Clone, Copy)]
enum Context {
    Unset,
    Org(OrgId),
    User(UserId),
    Platform,
}

async fn app_connection(url: &str) -> PgConnection {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query("SET ROLE portcullis_app")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn begin_as<'c>(
    conn: &'c mut PgConnection,
    context: Context,
) -> sqlx::Transaction<'c, sqlx::Postgres> {
    let mut tx = conn.begin().await.unwrap();
    let (org, user, platform) = match context {
        Context::Unset => return tx,
        Context::Org(id) => (id.to_string(), String::new(), ""),
        Context::User(id) => (String::new(), id.to_string(), ""),
        Context::Platform => (String::new(), String::new(), "on"),
    };
    sqlx::query(
        "SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true), \
         set_config('app.platform', $3, true)",
    )
    .bind(org)
    .bind(user)
    .bind(platform)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

async fn count(conn: &mut PgConnection, context: Context, table: &str) -> i64 {
    let mut tx = begin_as(conn, context).await;
    let n = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    n
}

/// What a superuser (to whom no policy applies) counts with an explicit filter.
async fn count_where(conn: &mut PgConnection, table: &str, filter: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE {filter}"
    )))
    .bind(id)
    .fetch_one(conn)
    .await
    .unwrap()
}

fn is_policy_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn rls_confines_each_context() {
    let db = fresh_postgres().await;
    let store = open(&db.url, true).await;
    let alice = signup(store.as_ref(), "alice@example.com").await;
    store
        .org(&alice.access())
        .projects()
        .create_project(&new_project(alice.org.id, "Extra"), &ctx())
        .await
        .unwrap();
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let carol = add(store.as_ref(), &alice, "carol@example.com", Role::Member).await;
    for user in [alice.user.id, bob.user.id, carol.id] {
        let login =
            ctx()
                .with_actor(user)
                .event(None, Action::LoginSucceeded, format!("user:{user}"));
        store.audit().record_audit(&login).await.unwrap();
    }

    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(superuser, "this test counts the truth as a superuser");
    let a = alice.org.id.0;
    let expected_for_a = [
        count_where(&mut owner, "orgs", "id = $1", a).await,
        count_where(&mut owner, "projects", "org_id = $1", a).await,
        count_where(&mut owner, "memberships", "org_id = $1", a).await,
        count_where(&mut owner, "project_memberships", "org_id = $1", a).await,
        count_where(
            &mut owner,
            "audit_events",
            "org_id = $1 OR (org_id IS NULL AND actor_id IN \
             (SELECT user_id FROM memberships WHERE org_id = $1 AND deleted_at IS NULL))",
            a,
        )
        .await,
    ];
    let mut totals = Vec::new();
    for table in TENANT_TABLES {
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut owner)
            .await
            .unwrap();
        totals.push(total);
    }

    // A connection that never set the context sees nothing.
    let mut app = app_connection(&db.url).await;
    for table in TENANT_TABLES {
        assert_eq!(
            count(&mut app, Context::Unset, table).await,
            0,
            "{table} without context"
        );
    }

    for (i, table) in TENANT_TABLES.into_iter().enumerate() {
        let seen = count(&mut app, Context::Org(alice.org.id), table).await;
        assert_eq!(seen, expected_for_a[i], "{table} in org A");
        assert!(
            seen > 0 && seen < totals[i],
            "{table}: {seen} of {}",
            totals[i]
        );
        assert_eq!(
            count(&mut app, Context::Org(OrgId::new()), table).await,
            0,
            "{table} in a random org"
        );
        assert_eq!(
            count(&mut app, Context::Platform, table).await,
            totals[i],
            "{table} as platform"
        );
        // The settings were transaction-local: the next transaction starts with none.
        assert_eq!(
            count(&mut app, Context::Unset, table).await,
            0,
            "{table} after a context"
        );
    }

    // A user sees their own memberships and the orgs and projects of active ones.
    let as_carol = Context::User(carol.id);
    assert_eq!(count(&mut app, as_carol, "memberships").await, 1);
    assert_eq!(count(&mut app, as_carol, "orgs").await, 1);
    assert_eq!(
        count(&mut app, as_carol, "projects").await,
        expected_for_a[1]
    );
    assert_eq!(
        count(&mut app, as_carol, "project_memberships").await,
        expected_for_a[3]
    );
    assert_eq!(count(&mut app, as_carol, "audit_events").await, 0);
    store
        .org(&alice.access())
        .members()
        .remove_member(carol.id, &ctx())
        .await
        .unwrap();
    assert_eq!(
        count(&mut app, as_carol, "memberships").await,
        1,
        "own removed membership"
    );
    for table in ["orgs", "projects", "project_memberships"] {
        assert_eq!(
            count(&mut app, as_carol, table).await,
            0,
            "{table} after removal"
        );
    }

    // Writes are confined the same way.
    let mut tx = begin_as(&mut app, Context::Org(bob.org.id)).await;
    let n = sqlx::query("UPDATE projects SET name = 'taken' WHERE org_id = $1")
        .bind(a)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 0);
    let err = sqlx::query(
        "INSERT INTO projects (id, org_id, name, created_at, updated_at) VALUES ($1, $2, 'x', now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(a)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(is_policy_violation(&err), "{err:?}");
    tx.rollback().await.unwrap();

    let mut tx = begin_as(&mut app, Context::User(alice.user.id)).await;
    let n = sqlx::query("UPDATE memberships SET role = 'member' WHERE user_id = $1")
        .bind(alice.user.id.0)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 0, "a user context never writes memberships");
    tx.rollback().await.unwrap();

    let mut tx = begin_as(&mut app, Context::Org(alice.org.id)).await;
    let n = sqlx::query("DELETE FROM audit_events")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 0, "the trail is append-only");
    tx.rollback().await.unwrap();

    let insert_event = "INSERT INTO audit_events (id, org_id, at, action, outcome, correlation_id) \
                        VALUES ($1, $2, now(), 'login.failed', 'failure', 'rls-test')";
    let mut tx = begin_as(&mut app, Context::Unset).await;
    sqlx::query(insert_event)
        .bind(Uuid::now_v7())
        .bind(None::<Uuid>)
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(insert_event)
        .bind(Uuid::now_v7())
        .bind(a)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(is_policy_violation(&err), "{err:?}");
    tx.rollback().await.unwrap();
}

/// Outbox rows (migration 0007) are tenant rows like the others: an org's context sees and
/// writes only its own, the platform's (the delivery worker's) all of them.
#[tokio::test]
async fn outbox_rows_are_confined_to_their_org() {
    let db = fresh_postgres().await;
    let store = open(&db.url, true).await;
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    // Each signup queued its own webhook events (user.created, member.added) in its org.
    let mut app = app_connection(&db.url).await;
    let alices = count(&mut app, Context::Org(alice.org.id), "outbox_events").await;
    let bobs = count(&mut app, Context::Org(bob.org.id), "outbox_events").await;
    assert!(alices > 0 && bobs > 0);
    for org in [alice.org.id, bob.org.id] {
        let event = OutboxEvent {
            org_id: org,
            project_id: None,
            event_type: "org.updated".into(),
            payload: serde_json::json!({}),
        };
        store.outbox().enqueue(&event, &[]).await.unwrap();
    }

    assert_eq!(count(&mut app, Context::Unset, "outbox_events").await, 0);
    assert_eq!(
        count(&mut app, Context::Org(alice.org.id), "outbox_events").await,
        alices + 1
    );
    assert_eq!(
        count(&mut app, Context::User(alice.user.id), "outbox_events").await,
        0
    );
    assert_eq!(
        count(&mut app, Context::Platform, "outbox_events").await,
        alices + bobs + 2
    );

    let mut tx = begin_as(&mut app, Context::Org(alice.org.id)).await;
    let err = sqlx::query(
        "INSERT INTO outbox_events (id, org_id, event_type, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, 'x', '{}', now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(bob.org.id.0)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(is_policy_violation(&err), "{err:?}");
    tx.rollback().await.unwrap();
}

/// Webhook endpoints, deliveries and attempts (migration 0012) are tenant rows: an org's
/// context sees and writes only its own, the platform's (the delivery worker's) all.
#[tokio::test]
async fn webhook_rows_are_confined_to_their_org() {
    use portcullis_core::webhook::{Subscription, WebhookId};
    use portcullis_store::webhooks::{Attempt, NextStep, WebhookEndpoint};

    let db = fresh_postgres().await;
    let store = open(&db.url, true).await;
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let now = portcullis_core::now();
    for s in [&alice, &bob] {
        let e = WebhookEndpoint {
            id: WebhookId::new(),
            org_id: s.org.id,
            project_id: s.project.id,
            url: "https://hooks.example.com/x".into(),
            description: String::new(),
            events: Subscription::parse(&["*".to_owned()]).unwrap(),
            enabled: true,
            failing_since: None,
            disabled_reason: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let hooks = super::webhooks::Hooks(store.as_ref());
        hooks
            .create_endpoint(&s.access(), &e, b"sealed", 20, &ctx())
            .await
            .unwrap();
        hooks
            .enqueue_test(&s.access(), s.project.id, e.id, "{}", now, &ctx())
            .await
            .unwrap();
    }
    let claimed = store
        .webhooks()
        .claim("n", now, now + time::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        let a = Attempt {
            at: now,
            status_code: Some(204),
            duration_ms: 1,
            response: String::new(),
            error_class: None,
        };
        store
            .webhooks()
            .record_attempt("n", c, &a, NextStep::Succeeded, Duration::from_secs(60))
            .await
            .unwrap();
    }

    let mut app = app_connection(&db.url).await;
    for table in [
        "webhook_endpoints",
        "webhook_deliveries",
        "webhook_attempts",
    ] {
        assert_eq!(count(&mut app, Context::Unset, table).await, 0, "{table}");
        assert_eq!(
            count(&mut app, Context::User(alice.user.id), table).await,
            0,
            "{table}"
        );
        assert_eq!(
            count(&mut app, Context::Org(alice.org.id), table).await,
            1,
            "{table}"
        );
        assert_eq!(
            count(&mut app, Context::Platform, table).await,
            2,
            "{table}"
        );
    }
    // Alice's context cannot plant an endpoint in bob's org.
    let mut tx = begin_as(&mut app, Context::Org(alice.org.id)).await;
    let err = sqlx::query(
        "INSERT INTO webhook_endpoints (id, org_id, project_id, url, events, secret_sealed, \
         created_at, updated_at) VALUES ($1, $2, $3, 'https://x.example', '[\"*\"]', '\\x00', now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(bob.org.id.0)
    .bind(bob.project.id.0)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(is_policy_violation(&err), "{err:?}");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn superuser_connections_act_as_the_app_role() {
    let db = fresh_postgres().await;
    let store = PgStore::connect(&db.url, &ConnectOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (role, bound) = store.acting_role().await.unwrap();
    assert_eq!(role, "portcullis_app");
    assert!(bound);
    // Still works end to end as that role.
    let store: Arc<dyn Store> = Arc::new(store);
    let alice = signup(store.as_ref(), "alice@example.com").await;
    assert_eq!(
        store.org(&alice.access()).details().await.unwrap(),
        alice.org
    );
}

#[derive(Debug, PartialEq)]
enum Heard {
    Up(bool),
    Changed(Change),
}

struct Recorder(mpsc::UnboundedSender<Heard>);

impl ChangeSink for Recorder {
    fn changed(&self, change: Change) {
        let _ = self.0.send(Heard::Changed(change));
    }

    fn feed_up(&self, up: bool) {
        let _ = self.0.send(Heard::Up(up));
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("the change feed said nothing for 15 s")
        .expect("sink dropped")
}

#[tokio::test]
async fn listener_hears_changes_from_another_node() {
    let db = fresh_postgres().await;
    let listening = open(&db.url, true).await;
    let writer = open(&db.url, false).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(
        listening
            .listen_changes(Arc::new(Recorder(tx)))
            .await
            .unwrap()
    );
    assert_eq!(next(&mut rx).await, Heard::Up(true));

    let alice = signup(writer.as_ref(), "alice@example.com").await;
    let s = SessionPolicy::default().new_session(
        alice.user.id,
        TokenHash::of("t"),
        portcullis_core::now(),
        None,
        None,
    );
    writer
        .sessions()
        .create_session(&s, &ctx(), &[])
        .await
        .unwrap();
    assert!(
        writer
            .sessions()
            .revoke_user_session(alice.user.id, s.id, &ctx())
            .await
            .unwrap()
    );
    assert_eq!(
        next(&mut rx).await,
        Heard::Changed(Change::SessionRevoked(s.id))
    );

    // Nothing changed, nothing announced: the next thing heard is the role change.
    assert!(
        !writer
            .sessions()
            .revoke_user_session(alice.user.id, s.id, &ctx())
            .await
            .unwrap()
    );
    let bob = add(writer.as_ref(), &alice, "bob@example.com", Role::Member).await;
    assert_eq!(
        next(&mut rx).await,
        Heard::Changed(Change::UserChanged(bob.id))
    );

    // The feed reports its outage and comes back by itself.
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, [true]);
    assert_eq!(next(&mut rx).await, Heard::Up(false));
    assert_eq!(next(&mut rx).await, Heard::Up(true));
    writer
        .org(&alice.access())
        .projects()
        .update_project(alice.project.id, &ProjectPatch::default(), &ctx())
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await,
        Heard::Changed(Change::OrgChanged(alice.org.id))
    );
}

/// The same database URL, logging in as another role.
fn url_as(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// A managed database's usual shape: the server logs in as the non-superuser that owns the
/// tables and may not create roles. FORCE ROW LEVEL SECURITY binds it all the same.
#[tokio::test]
async fn table_owner_without_superuser_is_bound_too() {
    let db = fresh_postgres().await;
    let owner_role = format!("portcullis_owner_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    for sql in [
        format!(
            "CREATE ROLE {owner_role} LOGIN PASSWORD 'owner-pw' NOSUPERUSER NOBYPASSRLS NOCREATEROLE"
        ),
        format!("ALTER DATABASE \"{database}\" OWNER TO {owner_role}"),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
    let url = url_as(&db.url, &owner_role, "owner-pw");

    let pg = PgStore::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    pg.migrate().await.unwrap();
    assert_eq!(pg.acting_role().await.unwrap(), (owner_role.clone(), true));
    let store: Arc<dyn Store> = Arc::new(pg);
    assert!(store.migrations_current().await.unwrap());
    let alice = signup(store.as_ref(), "alice@example.com").await;
    add(store.as_ref(), &alice, "bob@example.com", Role::Member).await;
    assert_eq!(
        store
            .org(&alice.access())
            .members()
            .list_members()
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store.orgs().list_all_orgs().await.unwrap(),
        vec![alice.org.clone()]
    );

    let mut as_owner = PgConnection::connect(&url).await.unwrap();
    for table in TENANT_TABLES {
        assert_eq!(
            count(&mut as_owner, Context::Unset, table).await,
            0,
            "{table}"
        );
        assert!(
            count(&mut as_owner, Context::Platform, table).await > 0,
            "{table}"
        );
    }
    as_owner.close().await.unwrap();

    drop(store);
    drop(db);
    let mut admin = PgConnection::connect(&portcullis_store::testing::postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(format!("DROP ROLE {owner_role}")))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[derive(Debug, PartialEq)]
enum Work {
    Up(bool),
    Due,
}

/// Hears only the feed's state and the webhook worker's wake-ups.
struct WorkRecorder(mpsc::UnboundedSender<Work>);

impl ChangeSink for WorkRecorder {
    fn changed(&self, _change: Change) {}

    fn feed_up(&self, up: bool) {
        let _ = self.0.send(Work::Up(up));
    }

    fn webhooks_due(&self) {
        let _ = self.0.send(Work::Due);
    }
}

#[tokio::test]
async fn another_nodes_committed_webhook_work_wakes_this_node() {
    let db = fresh_postgres().await;
    let listening = open(&db.url, true).await;
    let writer = open(&db.url, false).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(
        listening
            .listen_changes(Arc::new(WorkRecorder(tx)))
            .await
            .unwrap()
    );
    let wait = async |rx: &mut mpsc::UnboundedReceiver<Work>| {
        tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("the feed said nothing for 15 s")
            .expect("sink dropped")
    };
    assert_eq!(wait(&mut rx).await, Work::Up(true));

    // Sign-up queues the new org's events: one wake-up for the unit.
    let alice = signup(writer.as_ref(), "alice@example.com").await;
    assert_eq!(wait(&mut rx).await, Work::Due);

    // A unit that failed sends nothing; a change without webhook work neither (an audit
    // event outside the catalogue, an unmanaged user's sign-in).
    let taken = ctx().event(Some(alice.org.id), Action::OrgCreated, "org:x");
    writer.audit().record_audit(&taken).await.unwrap();
    let event = OutboxEvent {
        org_id: alice.org.id,
        project_id: None,
        event_type: "member.added".into(),
        payload: serde_json::json!({}),
    };
    assert!(
        writer
            .outbox()
            .enqueue(&event, std::slice::from_ref(&taken))
            .await
            .is_err()
    );
    let s = SessionPolicy::default().new_session(
        alice.user.id,
        TokenHash::of("t"),
        portcullis_core::now(),
        None,
        None,
    );
    writer
        .sessions()
        .create_session(&s, &ctx(), &[])
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(quiet.is_err(), "heard {quiet:?}");

    // The queued event on its own.
    writer.outbox().enqueue(&event, &[]).await.unwrap();
    assert_eq!(wait(&mut rx).await, Work::Due);
}
