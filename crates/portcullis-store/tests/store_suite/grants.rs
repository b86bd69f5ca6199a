//! Refresh rotation as the store decides it: every outcome of `rotate_refresh`, on both
//! backends (PostgreSQL rotates the common case in one statement and tells the rest apart
//! afterwards; SQLite in one write transaction).

use std::sync::Arc;

use portcullis_core::oauth::ClientId;
use portcullis_core::{Timestamp, TokenHash};
use portcullis_store::{RefreshFamily, RefreshOutcome, RefreshRotation, Store};
use time::Duration;

use super::{ctx, signup};

pub async fn rotation_outcomes(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let client = ClientId::parse("pcc_rotationclient").unwrap();
    let other = ClientId::parse("pcc_otherclient").unwrap();
    let now = portcullis_core::now();
    let family = |id| RefreshFamily {
        id,
        client_id: client.clone(),
        org_id: alice.org.id,
        project_id: alice.project.id,
        user_id: alice.user.id,
        session_id: None,
        scope: "openid offline_access".into(),
        auth_time: now,
        created_at: now,
    };
    let start = |f: RefreshFamily, first: &'static str, expires: Timestamp| {
        let store = store.clone();
        async move {
            store
                .grants()
                .start_family(&f, &TokenHash::of(first), expires, None)
                .await
                .unwrap()
        }
    };
    let rotate = |client: ClientId,
                  presented: &'static str,
                  successor: &'static str,
                  at: Timestamp,
                  grace: Duration| {
        let store = store.clone();
        let org = alice.org.id;
        async move {
            store
                .grants()
                .rotate_refresh(
                    &RefreshRotation {
                        org_id: org,
                        client_id: &client,
                        presented: &TokenHash::of(presented),
                        successor: &TokenHash::of(successor),
                        now: at,
                        grace,
                        successor_expires_at: at + Duration::days(30),
                        on_success: &[],
                        reuse_ends_session: false,
                    },
                    &ctx(),
                )
                .await
                .unwrap()
        }
    };
    let grace = Duration::seconds(10);
    let f1 = uuid::Uuid::now_v7();
    start(family(f1), "rt_a", now + Duration::days(1)).await;

    // Another client's presentation learns nothing and leaves the token as it was.
    assert_eq!(
        rotate(other.clone(), "rt_a", "rt_x", now, grace).await,
        RefreshOutcome::Unknown
    );
    assert_eq!(
        rotate(client.clone(), "rt_unknown", "rt_x", now, grace).await,
        RefreshOutcome::Unknown
    );
    // First use rotates, and the successor is stored and live.
    assert!(matches!(
        rotate(client.clone(), "rt_a", "rt_b", now, grace).await,
        RefreshOutcome::Rotated(f) if f.id == f1 && f.user_id == alice.user.id
    ));
    let state = store
        .grants()
        .refresh_token_state(alice.org.id, &TokenHash::of("rt_b"))
        .await
        .unwrap()
        .unwrap();
    assert!(!state.used && !state.family_revoked);
    // The same presentation with the same successor inside the grace window: a retry.
    assert!(matches!(
        rotate(client.clone(), "rt_a", "rt_b", now + Duration::seconds(5), grace).await,
        RefreshOutcome::Retried(f) if f.id == f1
    ));
    // The successor rotates normally.
    assert!(matches!(
        rotate(client.clone(), "rt_b", "rt_c", now, grace).await,
        RefreshOutcome::Rotated(_)
    ));
    // The spent token after the grace window: reuse, and the family is revoked.
    assert!(matches!(
        rotate(client.clone(), "rt_a", "rt_b", now + Duration::seconds(11), grace).await,
        RefreshOutcome::ReuseDetected(f) if f.id == f1
    ));
    assert!(
        store
            .grants()
            .family_revoked(alice.org.id, f1)
            .await
            .unwrap()
    );
    // Every token of a revoked family is refused as revoked, even the live one.
    assert!(matches!(
        rotate(client.clone(), "rt_c", "rt_d", now, grace).await,
        RefreshOutcome::Revoked(_)
    ));

    // An expired token is reported as such and not rotated.
    let f2 = uuid::Uuid::now_v7();
    start(family(f2), "rt_old", now - Duration::seconds(1)).await;
    assert!(matches!(
        rotate(client.clone(), "rt_old", "rt_new", now, grace).await,
        RefreshOutcome::Expired(f) if f.id == f2
    ));
    assert!(
        store
            .grants()
            .refresh_token_state(alice.org.id, &TokenHash::of("rt_new"))
            .await
            .unwrap()
            .is_none(),
        "no successor for an expired token"
    );

    // Many simultaneous presentations of one token: one successor, no reuse verdict.
    let f3 = uuid::Uuid::now_v7();
    start(family(f3), "rt_race", now + Duration::days(1)).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        tasks.push(tokio::spawn(rotate(
            client.clone(),
            "rt_race",
            "rt_race_next",
            portcullis_core::now(),
            grace,
        )));
    }
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap() {
            RefreshOutcome::Rotated(_) => rotated += 1,
            RefreshOutcome::Retried(_) => {}
            other => unreachable!("unexpected outcome under concurrency: {other:?}"),
        }
    }
    assert_eq!(rotated, 1, "exactly one presentation rotates");
    assert!(
        !store
            .grants()
            .family_revoked(alice.org.id, f3)
            .await
            .unwrap()
    );
}
