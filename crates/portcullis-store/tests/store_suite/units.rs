//! The unit of work as callers see it: a change, its audit events, its outbox rows and its
//! change notices commit together or not at all; the store's own change sink hears of a
//! change once, after it committed; and every write that changes what caches hold (sessions,
//! memberships and roles, projects, clients, platform admins, tokens) says so, since no
//! handler tells the cache by hand any more. Signing a device out and rotating a refresh
//! token are covered in `mobile.rs`, the outbox in `outbox.rs`.

use portcullis_core::Oversight;
use std::sync::{Arc, Mutex};

use portcullis_core::oauth::ClientType;
use portcullis_core::{
    Action, AuditContext, AuditQuery, OutboxEvent, ProjectStatus, Role, SessionPolicy, TokenHash,
};
use portcullis_store::{Change, ChangeSink, ClientPatch, ProjectPatch, Store, StoreError};
use serde_json::json;

use super::{SignedUp, add, ctx, listen, new_org, new_project, signup};

async fn actions_under(store: &dyn Store, s: &SignedUp, c: &AuditContext) -> Vec<String> {
    store
        .org(&s.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(c.correlation_id.clone()),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

pub async fn a_failed_unit_leaves_nothing(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    super::outbox::drain(store.as_ref()).await;
    let heard = listen(store.as_ref());
    let taken = ctx()
        .with_actor(alice.user.id)
        .event(None, Action::LoginSucceeded, "user:x");
    store.audit().record_audit(&taken).await.unwrap();

    // A sign-in whose login event cannot be written (its id is taken): no session, and no
    // session.created either, though that one was fine.
    let c = ctx().with_actor(alice.user.id);
    let session = SessionPolicy::default().new_session(
        alice.user.id,
        TokenHash::of("never-stored"),
        portcullis_core::now(),
        None,
        None,
    );
    let err = store
        .sessions()
        .create_session(&session, &c, std::slice::from_ref(&taken))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        store
            .sessions()
            .session_by_token(&TokenHash::of("never-stored"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(actions_under(store.as_ref(), &alice, &c).await.is_empty());

    // An outbox row with one good event and one that cannot be written: neither the row
    // nor the good event.
    let c = ctx();
    let good = c.event(Some(alice.org.id), Action::MemberAdded, "user:y");
    let row = OutboxEvent {
        org_id: alice.org.id,
        project_id: None,
        event_type: "member.added".into(),
        payload: json!({}),
    };
    let err = store
        .outbox()
        .enqueue(&row, &[good, taken.clone()])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        store
            .outbox()
            .due(portcullis_core::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(actions_under(store.as_ref(), &alice, &c).await.is_empty());

    // A change refused by its rule (the last owner stays) announces nothing.
    let err = store
        .org(&alice.access())
        .members()
        .change_member_role(alice.user.id, Role::Member, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(heard.take().is_empty());
}

/// A sink that looks, when told of a change, at what another connection can see of the
/// session: only what has committed.
struct Witness {
    url: String,
    session: TokenHash,
    seen: Mutex<Vec<(Change, bool)>>,
}

impl Witness {
    fn revoked_as_seen_from_outside(&self) -> bool {
        let url = self.url.clone();
        let token = self.session;
        // Its own thread, runtime and connections: the store's runtime is busy committing.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let other = portcullis_store::connect(&url).await.unwrap();
                other
                    .sessions()
                    .session_by_token(&token)
                    .await
                    .unwrap()
                    .unwrap()
                    .session
                    .revoked_at
                    .is_some()
            })
        })
        .join()
        .unwrap()
    }
}

impl ChangeSink for Witness {
    fn changed(&self, change: Change) {
        let committed = self.revoked_as_seen_from_outside();
        self.seen.lock().unwrap().push((change, committed));
    }

    fn feed_up(&self, _up: bool) {}
}

pub async fn changes_reach_the_sink_once_after_commit(store: Arc<dyn Store>, url: &str) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let session = SessionPolicy::default().new_session(
        alice.user.id,
        TokenHash::of("witnessed"),
        portcullis_core::now(),
        None,
        None,
    );
    store
        .sessions()
        .create_session(&session, &ctx(), &[])
        .await
        .unwrap();
    let witness = Arc::new(Witness {
        url: url.to_owned(),
        session: TokenHash::of("witnessed"),
        seen: Mutex::new(Vec::new()),
    });
    store.set_change_sink(witness.clone());

    assert!(
        store
            .sessions()
            .revoke_user_session(alice.user.id, session.id, &ctx())
            .await
            .unwrap()
    );
    assert_eq!(
        *witness.seen.lock().unwrap(),
        vec![(Change::SessionRevoked(session.id), true)],
        "told once, and the revocation was already visible to everyone"
    );

    // Nothing changes, nothing is said: a second revocation, and reads.
    assert!(
        !store
            .sessions()
            .revoke_user_session(alice.user.id, session.id, &ctx())
            .await
            .unwrap()
    );
    store
        .org(&alice.access())
        .members()
        .list_members()
        .await
        .unwrap();
    store
        .sessions()
        .session_by_token(&TokenHash::of("witnessed"))
        .await
        .unwrap();
    store
        .orgs()
        .memberships_of_user(alice.user.id)
        .await
        .unwrap();
    assert_eq!(witness.seen.lock().unwrap().len(), 1);
}

pub async fn writes_announce_what_caches_hold(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let heard = listen(store.as_ref());
    let org = alice.org.id;
    let changed_org = || vec![Change::OrgChanged(org)];

    // Users: memberships, roles, platform admins.
    store
        .accounts()
        .set_platform_admin(alice.user.id, true, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), vec![Change::UserChanged(alice.user.id)]);
    let second = new_org("Second", false);
    store
        .orgs()
        .create_org(
            alice.user.id,
            &second,
            &new_project(second.id, "Default"),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(heard.take(), vec![Change::UserChanged(alice.user.id)]);
    let carol = add(store.as_ref(), &alice, "carol@example.com", Role::Member).await;
    assert_eq!(heard.take(), vec![Change::UserChanged(carol.id)]);
    store
        .org(&alice.access())
        .members()
        .change_member_role(carol.id, Role::Admin, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), vec![Change::UserChanged(carol.id)]);

    // Sessions.
    let mut sessions = Vec::new();
    for token in ["carol-1", "carol-2"] {
        let s = SessionPolicy::default().new_session(
            carol.id,
            TokenHash::of(token),
            portcullis_core::now(),
            None,
            None,
        );
        store
            .sessions()
            .create_session(&s, &ctx(), &[])
            .await
            .unwrap();
        sessions.push(s.id);
    }
    assert!(heard.take().is_empty(), "a new session is in no cache yet");
    assert!(
        store
            .org(&alice.access())
            .sessions()
            .revoke_org_session(sessions[0], &Oversight::Everyone, &ctx())
            .await
            .unwrap()
    );
    assert_eq!(heard.take(), vec![Change::SessionRevoked(sessions[0])]);
    assert!(
        store
            .sessions()
            .revoke_user_session(carol.id, sessions[1], &ctx())
            .await
            .unwrap()
    );
    assert_eq!(heard.take(), vec![Change::SessionRevoked(sessions[1])]);
    store
        .org(&alice.access())
        .members()
        .remove_member(carol.id, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), vec![Change::UserChanged(carol.id)]);

    // Projects.
    let extra = new_project(org, "Extra");
    store
        .org(&alice.access())
        .projects()
        .create_project(&extra, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), changed_org());
    let disable = ProjectPatch {
        status: Some(ProjectStatus::Disabled),
        ..ProjectPatch::default()
    };
    store
        .org(&alice.access())
        .projects()
        .update_project(extra.id, &disable, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), changed_org());

    // Clients: nodes cache them by id.
    let (client, _) = super::clients::client(&alice, ClientType::Confidential, "App");
    let clients = super::clients::Clients(store.as_ref());
    clients
        .create(&alice.access(), &client, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), changed_org());
    let rename = ClientPatch {
        name: Some("Renamed".into()),
        ..ClientPatch::default()
    };
    clients
        .update(
            &alice.access(),
            alice.project.id,
            &client.id,
            &rename,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(heard.take(), changed_org());
    clients
        .rotate_secret(
            &alice.access(),
            alice.project.id,
            &client.id,
            &TokenHash::of("new-secret"),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(heard.take(), changed_org());
    clients
        .delete(&alice.access(), alice.project.id, &client.id, &ctx())
        .await
        .unwrap();
    assert_eq!(heard.take(), changed_org());

    // Joining through SSO is a membership like any other.
    let dave = signup(store.as_ref(), "dave@example.com").await;
    heard.take();
    assert!(
        store
            .sso()
            .join_org_via_sso(org, &dave.user, uuid::Uuid::now_v7(), &ctx())
            .await
            .unwrap()
    );
    assert_eq!(heard.take(), vec![Change::UserChanged(dave.user.id)]);

    // What changes nothing cached says nothing.
    store
        .audit()
        .record_audit(&ctx().event(Some(org), Action::MemberAdded, "user:z"))
        .await
        .unwrap();
    store
        .grants()
        .grant_consent(
            org,
            alice.user.id,
            &portcullis_core::oauth::ClientId::parse("pcc_quiet").unwrap(),
            "openid",
            &ctx(),
        )
        .await
        .unwrap();
    assert!(heard.take().is_empty());
}
