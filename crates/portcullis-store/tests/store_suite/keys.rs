//! Server signing keys: one active key per algorithm, rotation with its audit event in the
//! same transaction, and publication until `publish_until`.

use std::sync::Arc;

use portcullis_core::oauth::SigningAlg;
use portcullis_core::{AuditQuery, Outcome, Timestamp};
use portcullis_store::{SigningKeyRecord, Store, StoreError};
use serde_json::json;
use time::Duration;

use super::{ctx, signup};

fn key(alg: SigningAlg, created_at: Timestamp) -> SigningKeyRecord {
    let kid = format!("kid-{}", uuid::Uuid::now_v7().simple());
    SigningKeyRecord {
        public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": kid, "alg": alg.as_str(), "use": "sig"}),
        kid,
        alg,
        encrypted_private_key: vec![1, 0, 255, 7, 42],
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

pub async fn signing_keys_insert_and_list(store: Arc<dyn Store>) {
    let keys = store.keys();
    let now = portcullis_core::now();
    assert!(keys.published_signing_keys(now).await.unwrap().is_empty());

    let ed = key(SigningAlg::EdDSA, now - Duration::seconds(2));
    keys.insert_signing_key(&ed).await.unwrap();
    let es = key(SigningAlg::ES256, now - Duration::seconds(1));
    keys.insert_signing_key(&es).await.unwrap();

    let listed = keys.published_signing_keys(now).await.unwrap();
    assert_eq!(
        listed,
        vec![es.clone(), ed.clone()],
        "newest first, every field kept"
    );
    assert!(listed.iter().all(SigningKeyRecord::is_active));

    // A second active key of an algorithm is refused: two nodes cannot both win.
    let err = keys
        .insert_signing_key(&key(SigningAlg::EdDSA, now))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The same kid twice is refused too.
    let mut dup = ed.clone();
    dup.alg = SigningAlg::RS256;
    assert!(matches!(
        keys.insert_signing_key(&dup).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(keys.published_signing_keys(now).await.unwrap().len(), 2);
}

pub async fn signing_key_rotation_retires_and_audits(store: Arc<dyn Store>) {
    let admin = signup(store.as_ref(), "keyadmin@example.com").await;
    let keys = store.keys();
    let t0 = portcullis_core::now() - Duration::minutes(1);
    let old = key(SigningAlg::EdDSA, t0);
    keys.insert_signing_key(&old).await.unwrap();
    let other_alg = key(SigningAlg::RS256, t0);
    keys.insert_signing_key(&other_alg).await.unwrap();

    let now = portcullis_core::now();
    let until = now + Duration::minutes(65);
    let new = key(SigningAlg::EdDSA, now);
    let audit = ctx().with_actor(admin.user.id);
    let rotation = keys.rotate_signing_key(&new, until, &audit).await.unwrap();
    assert_eq!(rotation.retired, vec![old.kid.clone()]);
    assert_eq!(rotation.publish_until, until);

    let listed = keys.published_signing_keys(now).await.unwrap();
    assert_eq!(listed.len(), 3, "the retired key is still published");
    let find = |kid: &str| listed.iter().find(|k| k.kid == kid).unwrap().clone();
    let retired = find(&old.kid);
    assert_eq!(retired.retired_at, Some(now));
    assert_eq!(retired.publish_until, Some(until));
    assert!(!retired.is_active() && retired.is_published(now));
    assert!(find(&new.kid).is_active());
    assert!(
        find(&other_alg.kid).is_active(),
        "other algorithms untouched"
    );

    // Once publish_until has passed, the retired key is gone from the list.
    let later = keys
        .published_signing_keys(until + Duration::seconds(1))
        .await
        .unwrap();
    let kids: Vec<_> = later.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, vec![new.kid.as_str(), other_alg.kid.as_str()]);

    // The audit event: outside any org, visible to an org its actor is a member of.
    let events = store
        .org(&admin.access())
        .audit()
        .query_audit(&AuditQuery {
            action: Some("signing_key.rotated".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.org_id, None);
    assert_eq!(e.actor_id, Some(admin.user.id));
    assert_eq!(e.outcome, Outcome::Success);
    assert_eq!(e.correlation_id, audit.correlation_id);
    assert_eq!(
        e.target.as_deref(),
        Some(format!("signing_key:{}", new.kid).as_str())
    );
    assert_eq!(e.details["alg"], "EdDSA");
    assert_eq!(e.details["retired"], json!([old.kid]));

    // Rotating an algorithm that has no key yet retires nothing.
    let first_es = key(SigningAlg::ES256, now);
    let r = keys
        .rotate_signing_key(&first_es, until, &audit)
        .await
        .unwrap();
    assert!(r.retired.is_empty());
}

pub async fn failed_rotation_changes_nothing(store: Arc<dyn Store>) {
    let keys = store.keys();
    let now = portcullis_core::now();
    let active = key(SigningAlg::EdDSA, now);
    keys.insert_signing_key(&active).await.unwrap();
    // A new key reusing an existing kid fails at the insert, after the retirement: the
    // transaction must roll the retirement back.
    let mut clash = key(SigningAlg::EdDSA, now);
    clash.kid = active.kid.clone();
    let err = keys
        .rotate_signing_key(&clash, now + Duration::hours(1), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let listed = keys.published_signing_keys(now).await.unwrap();
    assert_eq!(listed, vec![active]);
}

pub async fn concurrent_first_keys_one_wins(store: Arc<dyn Store>) {
    let now = portcullis_core::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .keys()
                    .insert_signing_key(&key(SigningAlg::EdDSA, now))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        let outcome = t.await.unwrap();
        assert!(
            matches!(outcome, Ok(()) | Err(StoreError::Conflict(_))),
            "{outcome:?}"
        );
        won += usize::from(outcome.is_ok());
    }
    assert_eq!(won, 1);
    let active: Vec<_> = store
        .keys()
        .published_signing_keys(now)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.alg == SigningAlg::EdDSA && k.is_active())
        .collect();
    assert_eq!(active.len(), 1);
}
