//! The audit trail as an org admin reads it: filters, paging, and events outside any org.

use std::sync::Arc;

use portcullis_core::{Action, AuditEvent, AuditQuery, OrgId, Role};
use portcullis_store::Store;
use serde_json::json;
use time::Duration;

use super::{SignedUp, add, ctx, signup};

fn query(limit: u32) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

async fn record(store: &dyn Store, event: AuditEvent) -> AuditEvent {
    store.audit().record_audit(&event).await.unwrap();
    event
}

async fn all(store: &dyn Store, org: &SignedUp) -> Vec<AuditEvent> {
    store
        .org(&org.access())
        .audit()
        .query_audit(&query(1000))
        .await
        .unwrap()
}

pub async fn query_audit_filters(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let carol = signup(store.as_ref(), "carol@example.com").await;
    let now = portcullis_core::now();
    let org = Some(alice.org.id);

    let mut old = ctx()
        .with_actor(alice.user.id)
        .event(org, Action::LoginFailed, "user:x");
    old.at = now - Duration::hours(2);
    let old = record(
        store.as_ref(),
        old.failed().with_details(json!({"reason": "password"})),
    )
    .await;
    let mut mid = ctx()
        .with_actor(alice.user.id)
        .event(org, Action::LoginSucceeded, "user:y");
    mid.at = now - Duration::hours(1);
    let mid = record(store.as_ref(), mid).await;
    let own_login = record(
        store.as_ref(),
        ctx().with_actor(alice.user.id).event(
            None,
            Action::LoginSucceeded,
            format!("user:{}", alice.user.id),
        ),
    )
    .await;
    let outsider = record(
        store.as_ref(),
        ctx()
            .with_actor(carol.user.id)
            .event(None, Action::LoginSucceeded, "user:carol"),
    )
    .await;
    let anonymous = record(
        store.as_ref(),
        ctx().event(None, Action::LoginFailed, "email").failed(),
    )
    .await;

    let everything = all(store.as_ref(), &alice).await;
    let ids: Vec<_> = everything.iter().map(|e| e.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    assert_eq!(
        everything.len(),
        4 + 3,
        "signup events, two org events, own login"
    );
    for hidden in [&outsider, &anonymous] {
        assert!(!ids.contains(&hidden.id), "{hidden:?}");
    }
    assert!(
        everything
            .iter()
            .all(|e| e.org_id == org || e.actor_id == Some(alice.user.id))
    );
    // Carol's org sees her own events and none of alice's.
    let carols = all(store.as_ref(), &carol).await;
    assert!(carols.iter().any(|e| e.id == outsider.id));
    assert!(carols.iter().all(|e| e.actor_id == Some(carol.user.id)));

    let by = |q: AuditQuery| {
        let store = store.clone();
        let access = alice.access();
        async move { store.org(&access).audit().query_audit(&q).await.unwrap() }
    };
    // Every field survives the round trip.
    let found = by(AuditQuery {
        correlation_id: Some(old.correlation_id.clone()),
        ..query(10)
    })
    .await;
    assert_eq!(found, vec![old.clone()]);
    let found = by(AuditQuery {
        action: Some("login.succeeded".into()),
        ..query(10)
    })
    .await;
    assert_eq!(
        found.iter().map(|e| e.id).collect::<Vec<_>>(),
        [own_login.id, mid.id]
    );
    let found = by(AuditQuery {
        actor_id: Some(carol.user.id),
        ..query(10)
    })
    .await;
    assert!(found.is_empty(), "carol is no member of alice's org");
    let found = by(AuditQuery {
        actor_id: Some(alice.user.id),
        ..query(100)
    })
    .await;
    assert_eq!(found.len(), everything.len());
    let found = by(AuditQuery {
        since: Some(now - Duration::minutes(90)),
        until: Some(now - Duration::minutes(30)),
        ..query(10)
    })
    .await;
    assert_eq!(found, vec![mid.clone()]);
    let found = by(AuditQuery {
        until: Some(mid.at),
        ..query(10)
    })
    .await;
    assert_eq!(found, vec![old.clone()], "until is exclusive");
    let found = by(AuditQuery {
        since: Some(mid.at),
        action: Some("login.succeeded".into()),
        ..query(10)
    })
    .await;
    assert_eq!(found.len(), 2, "since is inclusive");
    assert_eq!(by(query(3)).await, everything[..3].to_vec());
}

pub async fn query_audit_pages_with_cursor(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    for i in 0..7 {
        record(
            store.as_ref(),
            ctx().event(
                Some(alice.org.id),
                Action::ProjectUpdated,
                format!("project:{i}"),
            ),
        )
        .await;
    }
    let everything = all(store.as_ref(), &alice).await;
    assert_eq!(everything.len(), 11);
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .org(&alice.access())
            .audit()
            .query_audit(&AuditQuery { before, ..query(3) })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        before = page.last().map(|e| e.id);
        pages.extend(page);
    }
    assert_eq!(pages, everything);
}

pub async fn null_org_events_follow_membership(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = add(store.as_ref(), &alice, "bob@example.com", Role::Member).await;
    let login = record(
        store.as_ref(),
        ctx()
            .with_actor(bob.id)
            .event(None, Action::LoginSucceeded, format!("user:{}", bob.id)),
    )
    .await;
    let visible = |events: &[AuditEvent]| events.iter().any(|e| e.id == login.id);
    assert!(visible(&all(store.as_ref(), &alice).await));
    // Another org never sees it, even one that names itself in the query.
    let stranger = signup(store.as_ref(), "stranger@example.com").await;
    assert!(!visible(&all(store.as_ref(), &stranger).await));
    let nowhere = portcullis_core::OrgAccess::system(OrgId::new());
    assert!(
        store
            .org(&nowhere)
            .audit()
            .query_audit(&query(100))
            .await
            .unwrap()
            .is_empty()
    );

    store
        .org(&alice.access())
        .members()
        .remove_member(bob.id, &ctx())
        .await
        .unwrap();
    assert!(
        !visible(&all(store.as_ref(), &alice).await),
        "bob left the org"
    );
}
