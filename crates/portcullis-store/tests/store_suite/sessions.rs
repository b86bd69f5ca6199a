//! Sessions: the hot lookup, sliding expiry, revocation by the user and by an org admin.

use portcullis_core::Oversight;
use std::sync::Arc;

use portcullis_core::{AuditQuery, Role, Session, SessionPolicy, TokenHash, UserId};
use portcullis_store::{Store, StoreError};
use time::Duration;

use super::{add, ctx, signup};

fn session(user: UserId, token: &str, created: portcullis_core::Timestamp) -> Session {
    SessionPolicy::default().new_session(
        user,
        TokenHash::of(token),
        created,
        Some("198.51.100.1".into()),
        Some("Firefox".into()),
    )
}

pub async fn session_lifecycle(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let now = portcullis_core::now();
    let s1 = session(alice.user.id, "token-1", now - Duration::minutes(5));
    let s2 = session(alice.user.id, "token-2", now - Duration::minutes(1));
    let expired = session(alice.user.id, "token-3", now - Duration::days(10));
    for s in [&s1, &s2, &expired] {
        store
            .sessions()
            .create_session(s, &ctx(), &[])
            .await
            .unwrap();
    }
    let mut clash = session(bob.user.id, "token-1", now);
    clash.id = portcullis_core::SessionId::new();
    assert!(matches!(
        store
            .sessions()
            .create_session(&clash, &ctx(), &[])
            .await
            .unwrap_err(),
        StoreError::Conflict(_)
    ));

    let found = store
        .sessions()
        .session_by_token(&TokenHash::of("token-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session, s1);
    assert_eq!(found.user, alice.user);
    assert!(
        store
            .sessions()
            .session_by_token(&TokenHash::of("nope"))
            .await
            .unwrap()
            .is_none()
    );

    let (seen, expires) = (now, now + Duration::days(7));
    store
        .sessions()
        .touch_session(s1.id, seen, expires)
        .await
        .unwrap();
    let touched = store
        .sessions()
        .session_by_token(&s1.token_hash)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert_eq!((touched.last_seen_at, touched.expires_at), (seen, expires));

    let listed: Vec<_> = store
        .sessions()
        .list_user_sessions(alice.user.id, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [s2.id, s1.id], "active only, newest first");

    // Only the owner revokes through this call, and only once.
    assert!(
        !store
            .sessions()
            .revoke_user_session(bob.user.id, s1.id, &ctx())
            .await
            .unwrap()
    );
    let c = ctx().with_actor(alice.user.id);
    assert!(
        store
            .sessions()
            .revoke_user_session(alice.user.id, s1.id, &c)
            .await
            .unwrap()
    );
    assert!(
        !store
            .sessions()
            .revoke_user_session(alice.user.id, s1.id, &c)
            .await
            .unwrap()
    );
    let revoked = store
        .sessions()
        .session_by_token(&s1.token_hash)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert!(revoked.revoked_at.is_some());
    assert!(!revoked.is_active(now));
    // A revoked session no longer slides.
    store
        .sessions()
        .touch_session(s1.id, now + Duration::hours(1), now + Duration::days(8))
        .await
        .unwrap();
    let still = store
        .sessions()
        .session_by_token(&s1.token_hash)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(still.expires_at, expires);
    let listed = store
        .sessions()
        .list_user_sessions(alice.user.id, now)
        .await
        .unwrap();
    assert_eq!(listed, vec![s2.clone()]);

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
    assert_eq!(events[0].action, "session.revoked");
    assert_eq!(events[0].org_id, None);
    assert_eq!(events[0].target, Some(format!("session:{}", s1.id)));
    assert_eq!(events[0].details["user_id"], alice.user.id.to_string());
}

pub async fn org_admin_revokes_member_sessions(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let carol = signup(store.as_ref(), "carol@example.com").await;
    let bob = add(store.as_ref(), &alice, "bob@example.com", Role::Member).await;
    let now = portcullis_core::now();
    let sa = session(alice.user.id, "a", now - Duration::seconds(3));
    let sb = session(bob.id, "b", now - Duration::seconds(2));
    let sc = session(carol.user.id, "c", now - Duration::seconds(1));
    for s in [&sa, &sb, &sc] {
        store
            .sessions()
            .create_session(s, &ctx(), &[])
            .await
            .unwrap();
    }

    let listed = store
        .org(&alice.access())
        .sessions()
        .list_org_sessions(now, &Oversight::Everyone)
        .await
        .unwrap();
    let ids: Vec<_> = listed.iter().map(|m| (m.session.id, m.user_id)).collect();
    assert_eq!(ids, [(sb.id, bob.id), (sa.id, alice.user.id)]);
    assert_eq!(listed[0].email, bob.email);
    assert_eq!(listed[0].session, sb);

    let c = ctx().with_actor(alice.user.id);
    assert!(
        !store
            .org(&alice.access())
            .sessions()
            .revoke_org_session(sc.id, &Oversight::Everyone, &c)
            .await
            .unwrap(),
        "not a member"
    );
    assert!(
        store
            .org(&alice.access())
            .sessions()
            .revoke_org_session(sb.id, &Oversight::Everyone, &c)
            .await
            .unwrap()
    );
    assert!(
        !store
            .org(&alice.access())
            .sessions()
            .revoke_org_session(sb.id, &Oversight::Everyone, &c)
            .await
            .unwrap()
    );
    assert!(
        store
            .sessions()
            .session_by_token(&sb.token_hash)
            .await
            .unwrap()
            .unwrap()
            .session
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .sessions()
            .session_by_token(&sc.token_hash)
            .await
            .unwrap()
            .unwrap()
            .session
            .revoked_at
            .is_none()
    );

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
    assert_eq!(events[0].org_id, Some(alice.org.id));
    assert_eq!(events[0].actor_id, Some(alice.user.id));
    assert_eq!(events[0].details["user_id"], bob.id.to_string());

    // A removed member's sessions are no longer the org's to see or revoke.
    let sb2 = session(bob.id, "b2", now);
    store
        .sessions()
        .create_session(&sb2, &ctx(), &[])
        .await
        .unwrap();
    store
        .org(&alice.access())
        .members()
        .remove_member(bob.id, &ctx())
        .await
        .unwrap();
    let listed = store
        .org(&alice.access())
        .sessions()
        .list_org_sessions(now, &Oversight::Everyone)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| m.session.id).collect::<Vec<_>>(),
        [sa.id]
    );
    assert!(
        !store
            .org(&alice.access())
            .sessions()
            .revoke_org_session(sb2.id, &Oversight::Everyone, &c)
            .await
            .unwrap()
    );
}
