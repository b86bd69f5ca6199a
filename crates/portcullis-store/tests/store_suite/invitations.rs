//! Invitations as the invited person sees them: every org's pending invitations to one
//! address, and nothing else (not spent, revoked, expired ones, nor those to others).

use std::sync::Arc;

use portcullis_core::invitation::Invitation;
use portcullis_core::{Email, InvitationId, Role, TokenHash};
use portcullis_store::Store;

use super::{SignedUp, ctx, signup};

async fn invite(
    store: &dyn Store,
    by: &SignedUp,
    email: &str,
    created_minutes_ago: i64,
    expires_in_minutes: i64,
) -> Invitation {
    let now = portcullis_core::now();
    let invitation = Invitation {
        id: InvitationId::new(),
        org_id: by.org.id,
        email: Email::parse(email).unwrap(),
        role: Role::Member,
        project_ids: Vec::new(),
        invited_by: Some(by.user.id),
        created_at: now - time::Duration::minutes(created_minutes_ago),
        expires_at: now + time::Duration::minutes(expires_in_minutes),
    };
    store
        .org(&by.access())
        .invitations()
        .create_invitation(
            &invitation,
            &TokenHash::of(&format!("inv_{}", invitation.id)),
            &ctx(),
        )
        .await
        .unwrap();
    invitation
}

pub async fn pending_invitations_to_an_address(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let dave = signup(store.as_ref(), "dave@example.com").await;
    let older = invite(store.as_ref(), &alice, "carol@example.com", 10, 60).await;
    let newer = invite(store.as_ref(), &bob, "Carol@Example.com", 5, 60).await;
    // Not shown: to someone else, expired, revoked.
    invite(store.as_ref(), &dave, "erin@example.com", 1, 60).await;
    invite(store.as_ref(), &dave, "carol@example.com", 120, -1).await;
    let revoked = invite(store.as_ref(), &alice, "carol2@example.com", 1, 60).await;
    assert!(
        store
            .org(&alice.access())
            .invitations()
            .revoke_invitation(revoked.id, portcullis_core::now(), &ctx())
            .await
            .unwrap()
    );

    let carol = Email::parse("carol@example.com").unwrap();
    let mine = store
        .invitations()
        .pending_invitations_to(&carol, portcullis_core::now())
        .await
        .unwrap();
    let got: Vec<_> = mine
        .iter()
        .map(|m| (m.invitation.id, m.invitation.org_id, m.org_name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (newer.id, bob.org.id, bob.org.name.as_str()),
            (older.id, alice.org.id, alice.org.name.as_str()),
        ]
    );
    let carol2 = Email::parse("carol2@example.com").unwrap();
    assert!(
        store
            .invitations()
            .pending_invitations_to(&carol2, portcullis_core::now())
            .await
            .unwrap()
            .is_empty(),
        "a revoked invitation is not pending"
    );
    // Accepted by carol: no longer pending.
    let user = signup(store.as_ref(), "carol@example.com").await.user;
    store
        .invitations()
        .accept_invitation(
            &TokenHash::of(&format!("inv_{}", older.id)),
            &user,
            portcullis_core::now(),
            &ctx(),
        )
        .await
        .unwrap();
    let mine = store
        .invitations()
        .pending_invitations_to(&carol, portcullis_core::now())
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].invitation.id, newer.id);
}
