//! Mobile sign-in's store: one-time tokens (single use under concurrency, expired ones
//! reported), the platform-scope org lookup of a bare refresh token, the default grant
//! target, device info on sessions, reuse of a mobile refresh token audited as such, an
//! exchange's session, event and refresh family written all or nothing, and signing out and
//! rotating with their events in the same transaction.

use portcullis_core::Oversight;
use std::sync::Arc;

use portcullis_core::oauth::ClientId;
use portcullis_core::{
    Action, AuditContext, AuditEvent, AuditQuery, DeviceInfo, Session, SessionPolicy, Timestamp,
    TokenHash,
};
use portcullis_store::{
    Change, MOBILE_CLIENT_ID, OneTimeToken, RefreshFamily, RefreshOutcome, RefreshRotation, Store,
    StoreError,
};
use time::Duration;

use super::{ctx, signup};

fn ott(s: &super::SignedUp, raw: &str, ttl: Duration) -> OneTimeToken {
    let now = portcullis_core::now();
    OneTimeToken {
        token_hash: TokenHash::of(raw),
        state_hash: TokenHash::of("app-state"),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        user_id: s.user.id,
        org_id: s.org.id,
        project_id: s.project.id,
        auth_time: now,
        created_at: now,
        expires_at: now + ttl,
    }
}

pub async fn one_time_tokens_are_single_use(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let c = ctx();
    let t = ott(&alice, "ott_one", Duration::seconds(60));
    store.mobile().insert_ott(&t, &c).await.unwrap();

    // Many concurrent redemptions: exactly one gets the token.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .mobile()
                .consume_ott(&TokenHash::of("ott_one"), portcullis_core::now())
                .await
                .unwrap()
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        if let Some(got) = task.await.unwrap() {
            won.push(got);
        }
    }
    assert_eq!(won.len(), 1, "exactly one redemption wins");
    assert_eq!(won[0].user_id, alice.user.id);
    assert_eq!(won[0].org_id, alice.org.id);
    assert_eq!(won[0].project_id, alice.project.id);
    assert_eq!(won[0].code_challenge, t.code_challenge);
    assert!(won[0].state_hash.ct_eq(&TokenHash::of("app-state")));
    assert!(
        store
            .mobile()
            .consume_ott(&TokenHash::of("ott_unknown"), portcullis_core::now())
            .await
            .unwrap()
            .is_none()
    );

    // An expired token is still handed back once, so the caller can say why it failed.
    let old = ott(&alice, "ott_old", Duration::seconds(-1));
    store.mobile().insert_ott(&old, &ctx()).await.unwrap();
    let got = store
        .mobile()
        .consume_ott(&TokenHash::of("ott_old"), portcullis_core::now())
        .await
        .unwrap()
        .unwrap();
    assert!(got.expires_at <= portcullis_core::now());

    // Issuing is audited in the token's org, under the request's correlation id.
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
    assert_eq!(events[0].action, "mobile.ott.issued");
    assert_eq!(events[0].actor_id, Some(alice.user.id));
}

pub async fn grant_target_and_refresh_org(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    assert_eq!(
        store
            .mobile()
            .default_grant_target(alice.user.id)
            .await
            .unwrap(),
        Some((alice.org.id, alice.project.id))
    );
    // A second org joined later does not change where mobile sign-in lands.
    let bob = signup(store.as_ref(), "bob@example.com").await;
    super::add(
        store.as_ref(),
        &bob,
        "alice@example.com",
        portcullis_core::Role::Member,
    )
    .await;
    assert_eq!(
        store
            .mobile()
            .default_grant_target(alice.user.id)
            .await
            .unwrap(),
        Some((alice.org.id, alice.project.id))
    );

    let now = portcullis_core::now();
    let family = RefreshFamily {
        id: portcullis_core::FamilyId::new(),
        client_id: ClientId::parse(MOBILE_CLIENT_ID).unwrap(),
        org_id: alice.org.id,
        project_id: alice.project.id,
        user_id: alice.user.id,
        session_id: None,
        scope: "openid".into(),
        auth_time: now,
        created_at: now,
    };
    store
        .grants()
        .start_family(
            &family,
            &TokenHash::of("rt_first"),
            now + Duration::days(1),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .mobile()
            .refresh_token_org(&TokenHash::of("rt_first"))
            .await
            .unwrap(),
        Some(alice.org.id)
    );
    assert_eq!(
        store
            .mobile()
            .refresh_token_org(&TokenHash::of("rt_nope"))
            .await
            .unwrap(),
        None
    );

    // Reuse of a mobile family's token is audited with the mobile action.
    let client = family.client_id.clone();
    let rotate = |presented: &'static str, successor: &'static str| {
        let store = store.clone();
        let client = client.clone();
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
                        now: portcullis_core::now(),
                        grace: Duration::ZERO,
                        successor_expires_at: portcullis_core::now() + Duration::days(1),
                        on_success: &[],
                        reuse_ends_session: false,
                    },
                    &ctx(),
                )
                .await
                .unwrap()
        }
    };
    assert!(matches!(
        rotate("rt_first", "rt_second").await,
        RefreshOutcome::Rotated(..)
    ));
    assert!(matches!(
        rotate("rt_first", "rt_other").await,
        RefreshOutcome::ReuseDetected(_)
    ));
    let events = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            action: Some("mobile.refresh.reuse_detected".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].target,
        Some(format!("refresh_family:{}", family.id))
    );
}

pub async fn sessions_carry_device_info(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let now = portcullis_core::now();
    let mut s = SessionPolicy::default().new_session(
        alice.user.id,
        TokenHash::of("mobile-session"),
        now,
        Some("198.51.100.9".into()),
        Some("Alga/1.4 (iOS)".into()),
    );
    s.device = Some(DeviceInfo {
        platform: "ios".into(),
        model: Some("iPhone15,2".into()),
        app_version: Some("1.4.0".into()),
    });
    let browser = SessionPolicy::default().new_session(
        alice.user.id,
        TokenHash::of("browser-session"),
        now - Duration::seconds(1),
        None,
        None,
    );
    store
        .sessions()
        .create_session(&s, &ctx(), &[])
        .await
        .unwrap();
    store
        .sessions()
        .create_session(&browser, &ctx(), &[])
        .await
        .unwrap();
    let found = store
        .sessions()
        .session_by_token(&TokenHash::of("mobile-session"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.device, s.device);
    let listed = store
        .sessions()
        .list_user_sessions(alice.user.id, now)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].device, s.device, "newest first: the mobile one");
    assert_eq!(listed[1].device, None);
    let org_listed = store
        .org(&alice.access())
        .sessions()
        .list_org_sessions(now, &Oversight::Everyone)
        .await
        .unwrap();
    assert!(
        org_listed
            .iter()
            .any(|m| m.session.id == s.id && m.session.device == s.device)
    );
}

/// What an exchange hands the store: the device's session, its family and the event.
struct DeviceSignIn {
    session: Session,
    family: RefreshFamily,
    exchanged: AuditEvent,
    ctx: AuditContext,
}

fn device_sign_in(s: &super::SignedUp, session_token: &str) -> DeviceSignIn {
    let now = portcullis_core::now();
    let ctx = ctx().with_actor(s.user.id);
    let mut session = SessionPolicy::default().new_session(
        s.user.id,
        TokenHash::of(session_token),
        now,
        ctx.ip.clone(),
        ctx.user_agent.clone(),
    );
    session.device = Some(DeviceInfo {
        platform: "android".into(),
        model: Some("Pixel 8".into()),
        app_version: Some("2.0.1".into()),
    });
    let exchanged = ctx
        .event(
            Some(s.org.id),
            Action::MobileOttExchanged,
            format!("session:{}", session.id),
        )
        .with_details(serde_json::json!({"platform": "android", "pkce": true}));
    let family = RefreshFamily {
        id: portcullis_core::FamilyId::new(),
        client_id: ClientId::parse(MOBILE_CLIENT_ID).unwrap(),
        org_id: s.org.id,
        project_id: s.project.id,
        user_id: s.user.id,
        session_id: Some(session.id),
        scope: "openid".into(),
        auth_time: now,
        created_at: now,
    };
    DeviceSignIn {
        session,
        family,
        exchanged,
        ctx,
    }
}

async fn start(store: &dyn Store, d: &DeviceSignIn, first: &str) -> Result<(), StoreError> {
    store
        .mobile()
        .start_device_session(
            &d.session,
            &d.family,
            &TokenHash::of(first),
            portcullis_core::now() + Duration::days(30),
            &d.exchanged,
            &d.ctx,
        )
        .await
}

/// The actions recorded under this sign-in's correlation id, sorted.
async fn actions(store: &dyn Store, s: &super::SignedUp, d: &DeviceSignIn) -> Vec<String> {
    let events = store
        .org(&s.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(d.ctx.correlation_id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let mut actions: Vec<String> = events.into_iter().map(|e| e.action).collect();
    actions.sort();
    actions
}

pub async fn device_session_starts_all_or_nothing(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;

    // Success: the session, both events and the family with its first token.
    let ok = device_sign_in(&alice, "device-session-ok");
    start(store.as_ref(), &ok, "rt_device_first").await.unwrap();
    let found = store
        .sessions()
        .session_by_token(&TokenHash::of("device-session-ok"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.id, ok.session.id);
    assert_eq!(found.session.device, ok.session.device);
    assert_eq!(
        actions(store.as_ref(), &alice, &ok).await,
        ["mobile.ott.exchanged", "session.created"]
    );
    let exchanged = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            action: Some("mobile.ott.exchanged".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(exchanged.len(), 1);
    assert_eq!(exchanged[0].org_id, Some(alice.org.id));
    assert_eq!(exchanged[0].actor_id, Some(alice.user.id));
    assert_eq!(exchanged[0].target, ok.exchanged.target);
    assert_eq!(exchanged[0].details, ok.exchanged.details);
    let token = store
        .grants()
        .refresh_token_state(alice.org.id, &TokenHash::of("rt_device_first"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.family.id, ok.family.id);
    assert_eq!(token.family.session_id, Some(ok.session.id));
    assert!(!token.used && !token.family_revoked);

    // The first token's insert fails (that hash exists): nothing of the sign-in remains.
    let dup_token = device_sign_in(&alice, "device-session-dup-token");
    let err = start(store.as_ref(), &dup_token, "rt_device_first")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The family's insert fails (that id exists): likewise.
    let mut dup_family = device_sign_in(&alice, "device-session-dup-family");
    dup_family.family.id = ok.family.id;
    let err = start(store.as_ref(), &dup_family, "rt_device_other")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    for (failed, token) in [
        (&dup_token, "device-session-dup-token"),
        (&dup_family, "device-session-dup-family"),
    ] {
        assert!(
            store
                .sessions()
                .session_by_token(&TokenHash::of(token))
                .await
                .unwrap()
                .is_none(),
            "no session without its family"
        );
        assert!(
            actions(store.as_ref(), &alice, failed).await.is_empty(),
            "no session.created or mobile.ott.exchanged for a failed exchange"
        );
    }
    let sessions = store
        .sessions()
        .list_user_sessions(alice.user.id, portcullis_core::now() - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        [ok.session.id]
    );
    assert_eq!(
        store
            .mobile()
            .refresh_token_org(&TokenHash::of("rt_device_other"))
            .await
            .unwrap(),
        None
    );
    let exchanged = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            action: Some("mobile.ott.exchanged".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        exchanged.len(),
        1,
        "only the successful exchange is audited"
    );
}

/// The actions recorded under `ctx`'s correlation id, sorted.
async fn actions_under(store: &dyn Store, s: &super::SignedUp, ctx: &AuditContext) -> Vec<String> {
    let events = store
        .org(&s.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(ctx.correlation_id.clone()),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let mut actions: Vec<String> = events.into_iter().map(|e| e.action).collect();
    actions.sort();
    actions
}

async fn session_revoked(store: &dyn Store, token: &str) -> bool {
    store
        .sessions()
        .session_by_token(&TokenHash::of(token))
        .await
        .unwrap()
        .unwrap()
        .session
        .revoked_at
        .is_some()
}

/// Signing a device out revokes its family, ends its session and writes the caller's
/// events in one transaction; when one of them cannot be written, none is.
pub async fn device_grant_ends_all_or_nothing(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let d = device_sign_in(&alice, "device-session");
    start(store.as_ref(), &d, "rt_device").await.unwrap();
    let heard = super::listen(store.as_ref());
    let found = store
        .mobile()
        .refresh_token(&TokenHash::of("rt_device"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.family, d.family);
    assert!(!found.used && !found.family_revoked);
    assert_eq!(
        store
            .mobile()
            .refresh_token(&TokenHash::of("rt_unknown"))
            .await
            .unwrap(),
        None
    );

    // The logout event cannot be written (its id is taken): nothing happens at all.
    let c = ctx().with_actor(alice.user.id);
    let logout = c.event(Some(alice.org.id), Action::MobileLogout, "refresh_family:x");
    store.audit().record_audit(&logout).await.unwrap();
    let err = store
        .mobile()
        .end_device_grant(
            &d.family,
            portcullis_core::grant::RevocationReason::Logout,
            true,
            &c,
            std::slice::from_ref(&logout),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        !store
            .grants()
            .family_revoked(alice.org.id, d.family.id)
            .await
            .unwrap()
    );
    assert!(!session_revoked(store.as_ref(), "device-session").await);
    assert!(
        heard.take().is_empty(),
        "no notice for a change that did not commit"
    );
    assert_eq!(
        actions_under(store.as_ref(), &alice, &c).await,
        ["mobile.logout"],
        "only the event recorded beforehand"
    );

    // Signing out: the family, the session and the event, together.
    let c = ctx().with_actor(alice.user.id);
    let logout = c.event(Some(alice.org.id), Action::MobileLogout, "refresh_family:x");
    assert!(
        store
            .mobile()
            .end_device_grant(
                &d.family,
                portcullis_core::grant::RevocationReason::Logout,
                true,
                &c,
                &[logout]
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .grants()
            .family_revoked(alice.org.id, d.family.id)
            .await
            .unwrap()
    );
    assert!(session_revoked(store.as_ref(), "device-session").await);
    assert_eq!(
        heard.take(),
        vec![Change::TokensRevoked, Change::SessionRevoked(d.session.id)]
    );
    assert_eq!(
        actions_under(store.as_ref(), &alice, &c).await,
        ["mobile.logout", "oauth.token.revoked", "session.revoked"]
    );
    // Again: nothing left to end, nothing announced.
    assert!(
        !store
            .mobile()
            .end_device_grant(
                &d.family,
                portcullis_core::grant::RevocationReason::Logout,
                true,
                &ctx(),
                &[]
            )
            .await
            .unwrap()
    );
    assert!(heard.take().is_empty());

    // A family whose session ended elsewhere ends alone.
    let other = device_sign_in(&alice, "device-session-2");
    start(store.as_ref(), &other, "rt_device_2").await.unwrap();
    assert!(
        store
            .mobile()
            .end_device_grant(
                &other.family,
                portcullis_core::grant::RevocationReason::SessionEnded,
                false,
                &ctx(),
                &[]
            )
            .await
            .unwrap()
    );
    assert!(!session_revoked(store.as_ref(), "device-session-2").await);
    assert_eq!(heard.take(), vec![Change::TokensRevoked]);
}

/// A rotation writes the caller's success events in its own transaction, and only when the
/// presenter gets tokens; a detected reuse ends the device's session with the family.
pub async fn rotation_writes_its_events_with_it(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let d = device_sign_in(&alice, "device-session");
    start(store.as_ref(), &d, "rt_first").await.unwrap();
    let heard = super::listen(store.as_ref());
    let now = portcullis_core::now();
    let rotate = |presented: &'static str, successor: &'static str, at: Timestamp| {
        let store = store.clone();
        let family = d.family.clone();
        let org = alice.org.id;
        async move {
            let c = ctx();
            let succeeded = c.with_actor(family.user_id).event(
                Some(org),
                Action::MobileRefreshSucceeded,
                format!("refresh_family:{}", family.id),
            );
            let outcome = store
                .grants()
                .rotate_refresh(
                    &RefreshRotation {
                        org_id: org,
                        client_id: &family.client_id,
                        presented: &TokenHash::of(presented),
                        successor: &TokenHash::of(successor),
                        now: at,
                        grace: Duration::seconds(10),
                        successor_expires_at: at + Duration::days(30),
                        on_success: &[succeeded],
                        reuse_ends_session: true,
                    },
                    &c,
                )
                .await
                .unwrap();
            (outcome, c)
        }
    };

    let (outcome, c) = rotate("rt_first", "rt_second", now).await;
    assert!(matches!(outcome, RefreshOutcome::Rotated(..)));
    assert_eq!(
        actions_under(store.as_ref(), &alice, &c).await,
        ["mobile.refresh.succeeded"]
    );
    let (outcome, c) = rotate("rt_first", "rt_second", now + Duration::seconds(2)).await;
    assert!(matches!(outcome, RefreshOutcome::Retried(..)));
    assert_eq!(
        actions_under(store.as_ref(), &alice, &c).await,
        ["mobile.refresh.succeeded"],
        "a retry gets tokens too"
    );
    assert!(heard.take().is_empty(), "a rotation changes nothing cached");

    // Reuse: no success, the family and the device's session end, both announced.
    let (outcome, c) = rotate("rt_first", "rt_second", now + Duration::seconds(11)).await;
    assert!(matches!(outcome, RefreshOutcome::ReuseDetected(_)));
    assert_eq!(
        actions_under(store.as_ref(), &alice, &c).await,
        ["mobile.refresh.reuse_detected", "session.revoked"]
    );
    assert!(session_revoked(store.as_ref(), "device-session").await);
    assert_eq!(
        heard.take(),
        vec![Change::TokensRevoked, Change::SessionRevoked(d.session.id)]
    );

    // Refused presentations write no success either.
    let (outcome, c) = rotate("rt_second", "rt_third", now).await;
    assert!(matches!(outcome, RefreshOutcome::Revoked(_)));
    assert!(actions_under(store.as_ref(), &alice, &c).await.is_empty());
    let (outcome, c) = rotate("rt_unknown", "rt_third", now).await;
    assert_eq!(outcome, RefreshOutcome::Unknown);
    assert!(actions_under(store.as_ref(), &alice, &c).await.is_empty());
    assert!(heard.take().is_empty());
}
