//! OAuth grants as the store keeps them: every outcome of `rotate_refresh` on both backends
//! (PostgreSQL rotates the common case in one statement and tells the rest apart
//! afterwards; SQLite in one unit), code redemption and replay, consents, and revoking
//! families and access tokens, with the change notices each revocation sends.

use std::sync::Arc;

use portcullis_core::grant::{CodePresentation, CodeRefused};
use portcullis_core::oauth::{
    ClientId, ClientType, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod,
};
use portcullis_core::{
    AuditContext, AuditEvent, AuditQuery, FamilyId, RedirectUri, Role, Session, SessionId,
    SessionPolicy, Timestamp, TokenHash, UserId,
};
use portcullis_store::{
    AuthCode, Change, CodeRedemption, CodeRedemptionRequest, FamilyStart, RefreshFamily,
    RefreshOutcome, RefreshRotation, Store,
};
use serde_json::json;
use time::Duration;

use super::{SignedUp, add, ctx, listen, signup};

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
    let f1 = portcullis_core::FamilyId::new();
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
    // First use rotates, and the successor is stored and live; the family's user comes
    // with the outcome (read in the rotation's statement).
    assert!(matches!(
        rotate(client.clone(), "rt_a", "rt_b", now, grace).await,
        RefreshOutcome::Rotated(f, Some(u)) if f.id == f1 && f.user_id == alice.user.id
            && u == alice.user
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
        RefreshOutcome::Retried(f, Some(u)) if f.id == f1 && u.id == alice.user.id
    ));
    // The successor rotates normally.
    assert!(matches!(
        rotate(client.clone(), "rt_b", "rt_c", now, grace).await,
        RefreshOutcome::Rotated(..)
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
    let f2 = portcullis_core::FamilyId::new();
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
    let f3 = portcullis_core::FamilyId::new();
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
            RefreshOutcome::Rotated(..) => rotated += 1,
            RefreshOutcome::Retried(..) => {}
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

fn code(s: &SignedUp, client: &ClientId, raw: &str, ttl: Duration) -> AuthCode {
    let now = portcullis_core::now();
    AuthCode {
        code_hash: TokenHash::of(raw),
        client_id: client.clone(),
        org_id: s.org.id,
        project_id: s.project.id,
        user_id: s.user.id,
        session_id: None,
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "openid offline_access".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        auth_time: now,
        created_at: now,
        expires_at: now + ttl,
    }
}

fn family_of(c: &AuthCode) -> RefreshFamily {
    RefreshFamily {
        id: portcullis_core::FamilyId::new(),
        client_id: c.client_id.clone(),
        org_id: c.org_id,
        project_id: c.project_id,
        user_id: c.user_id,
        session_id: c.session_id,
        scope: c.scope.clone(),
        auth_time: c.auth_time,
        created_at: portcullis_core::now(),
    }
}

async fn actions_of(store: &dyn Store, org: &SignedUp, c: &AuditContext) -> Vec<AuditEvent> {
    store
        .org(&org.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(c.correlation_id.clone()),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn oauth_client(s: &SignedUp, id: &ClientId) -> OAuthClient {
    let now = portcullis_core::now();
    OAuthClient {
        id: id.clone(),
        org_id: s.org.id,
        project_id: s.project.id,
        name: "app".into(),
        client_type: ClientType::Confidential,
        secret_hash: None,
        redirect_uris: vec![RedirectUri::parse("https://app.example.com/cb").unwrap()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        access_token_ttl_secs: 600,
        signing_alg: SigningAlg::EdDSA,
        created_at: now,
        updated_at: now,
    }
}

/// Presents code `raw` as `client` with `verifier`, starting a family (first token `first`,
/// ending at `family_end`) when one is given.
async fn redeem(
    store: &dyn Store,
    client: &OAuthClient,
    raw: &str,
    verifier: &str,
    start: Option<(FamilyId, &str, Option<Timestamp>)>,
    c: &AuditContext,
) -> CodeRedemption {
    let now = portcullis_core::now();
    let first = start.map(|(_, first, _)| TokenHash::of(first));
    let family = start
        .zip(first.as_ref())
        .map(|((id, _, end), first)| FamilyStart {
            id,
            first,
            first_expires_at: now + Duration::days(1),
            family_expires_at: end,
        });
    store
        .grants()
        .redeem_code(
            &CodeRedemptionRequest {
                org_id: client.org_id,
                code_hash: &TokenHash::of(raw),
                presented: CodePresentation {
                    client,
                    redirect_uri: "https://app.example.com/cb",
                    code_verifier: Some(verifier),
                },
                now,
                family,
            },
            c,
        )
        .await
        .unwrap()
}

/// A code is redeemed once, decided and spent in one transaction that also starts its
/// refresh family; a second redemption by its client revokes that family. Another client's
/// presentation spends nothing, and a client of another org does not find the code at all.
pub async fn code_redemption(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let heard = listen(store.as_ref());
    let id = ClientId::parse("pcc_codeclient").unwrap();
    let client = oauth_client(&alice, &id);
    let same_org = oauth_client(&alice, &ClientId::parse("pcc_sameorg").unwrap());
    let elsewhere = oauth_client(&bob, &id);
    let issued = code(&alice, &id, "code-one", Duration::minutes(1));
    store.grants().insert_code(&issued).await.unwrap();
    let store = store.as_ref();

    // Unknown here, another client of the org, a bad verifier of another client: nothing
    // is spent, and nothing is announced.
    for (who, raw, verifier) in [
        (&elsewhere, "code-one", VERIFIER),
        (&client, "code-unknown", VERIFIER),
        (&same_org, "code-one", VERIFIER),
        (
            &same_org,
            "code-one",
            "wrong-verifier-wrong-verifier-wrong-verifier",
        ),
    ] {
        let got = redeem(store, who, raw, verifier, None, &ctx()).await;
        assert!(
            matches!(
                got,
                CodeRedemption::Refused(CodeRefused::Unknown | CodeRefused::OtherClient)
            ),
            "{got:?}"
        );
    }
    assert!(heard.take().is_empty());

    // Its own client redeems it: the code exactly as issued, and the family started with
    // it in the same transaction.
    let fid = FamilyId::new();
    let end = portcullis_core::now() + Duration::days(90);
    let got = redeem(
        store,
        &client,
        "code-one",
        VERIFIER,
        Some((fid, "rt_from_code", Some(end))),
        &ctx(),
    )
    .await;
    let CodeRedemption::Redeemed { code: got, family } = got else {
        unreachable!("redeemed: {got:?}")
    };
    assert_eq!(*got, issued);
    let family = family.unwrap();
    assert_eq!((family.id, &family.scope), (fid, &issued.scope));
    let state = store
        .grants()
        .refresh_token_state(alice.org.id, &TokenHash::of("rt_from_code"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.family, family);
    assert_eq!(state.family_expires_at, Some(end));
    assert!(
        !state.ends_with_session,
        "offline_access outlives the session"
    );
    assert!(heard.take().is_empty(), "nothing cached changed yet");

    // A replay by another client is not a replay: nothing is revoked.
    let got = redeem(store, &same_org, "code-one", VERIFIER, None, &ctx()).await;
    assert_eq!(got, CodeRedemption::Refused(CodeRefused::OtherClient));
    assert!(
        !store
            .grants()
            .family_revoked(alice.org.id, fid)
            .await
            .unwrap()
    );

    // A replay: the family minted from the code is revoked, with the replay audited.
    let c = ctx();
    let replay = redeem(store, &client, "code-one", VERIFIER, None, &c).await;
    assert_eq!(replay, CodeRedemption::Refused(CodeRefused::Replayed));
    assert!(
        store
            .grants()
            .family_revoked(alice.org.id, fid)
            .await
            .unwrap()
    );
    assert_eq!(heard.take(), vec![Change::TokensRevoked]);
    let events = actions_of(store, &alice, &c).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "oauth.code.replayed");
    assert_eq!(events[0].target.as_deref(), Some("client:pcc_codeclient"));
    assert_eq!(events[0].details["revoked_family"], json!(fid));

    // A replay with nothing left to revoke is still refused and audited, and announces
    // nothing.
    let lone = code(&alice, &id, "code-two", Duration::minutes(1));
    store.grants().insert_code(&lone).await.unwrap();
    let first = redeem(store, &client, "code-two", VERIFIER, None, &ctx()).await;
    assert!(matches!(
        first,
        CodeRedemption::Redeemed { family: None, .. }
    ));
    let again = redeem(store, &client, "code-two", VERIFIER, None, &ctx()).await;
    assert_eq!(again, CodeRedemption::Refused(CodeRefused::Replayed));
    assert!(heard.take().is_empty());

    // Its own client presenting it wrongly spends it: expired, or a bad verifier.
    for (raw, ttl, verifier, refused) in [
        (
            "code-old",
            Duration::seconds(-1),
            VERIFIER,
            CodeRefused::Expired,
        ),
        (
            "code-bad",
            Duration::minutes(1),
            "wrong-verifier-wrong-verifier-wrong-verifier",
            CodeRefused::VerifierMismatch,
        ),
    ] {
        let c = code(&alice, &id, raw, ttl);
        store.grants().insert_code(&c).await.unwrap();
        let got = redeem(store, &client, raw, verifier, None, &ctx()).await;
        assert_eq!(got, CodeRedemption::Refused(refused));
        let got = redeem(store, &client, raw, VERIFIER, None, &ctx()).await;
        assert_eq!(got, CodeRedemption::Refused(CodeRefused::Replayed), "{raw}");
    }
}

fn bound_family(org: &SignedUp, user: UserId, session: SessionId, scope: &str) -> RefreshFamily {
    RefreshFamily {
        id: FamilyId::new(),
        client_id: ClientId::parse("pcc_boundclient").unwrap(),
        org_id: org.org.id,
        project_id: org.project.id,
        user_id: user,
        session_id: Some(session),
        scope: scope.into(),
        auth_time: portcullis_core::now(),
        created_at: portcullis_core::now(),
    }
}

fn browser_session(user: UserId, token: &str, created: Timestamp) -> Session {
    SessionPolicy::default().new_session(user, TokenHash::of(token), created, None, None)
}

/// Families without offline_access end with their session: ending the session revokes them
/// in the same transaction (in every org, whoever ends it), an expired session makes the
/// next rotation revoke them, and offline families live on. A family also ends at its
/// absolute end.
pub async fn session_bound_families(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let carol = signup(store.as_ref(), "carol@example.com").await;
    let now = portcullis_core::now();
    let grants = store.grants();
    let start = |f: RefreshFamily, first: &'static str| {
        let store = store.clone();
        async move {
            store
                .grants()
                .start_family(&f, &TokenHash::of(first), now + Duration::days(1), None)
                .await
                .unwrap();
            f
        }
    };
    let rotate = |f: &RefreshFamily, presented: &'static str, successor: &'static str, at| {
        let store = store.clone();
        let (org, client) = (f.org_id, f.client_id.clone());
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
                        grace: Duration::seconds(10),
                        successor_expires_at: at + Duration::days(1),
                        on_success: &[],
                        reuse_ends_session: false,
                    },
                    &ctx(),
                )
                .await
                .unwrap()
        }
    };

    // Alice's browser session signed in to an app of her org and one of Bob's.
    let s = browser_session(alice.user.id, "alice-browser", now);
    store
        .sessions()
        .create_session(&s, &ctx(), &[])
        .await
        .unwrap();
    assert!(grants.session_live(s.id, now).await.unwrap());
    let online = start(
        bound_family(&alice, alice.user.id, s.id, "openid email"),
        "rt_on",
    )
    .await;
    let offline = start(
        bound_family(&alice, alice.user.id, s.id, "openid offline_access"),
        "rt_off",
    )
    .await;
    let elsewhere = start(bound_family(&bob, alice.user.id, s.id, "openid"), "rt_bob").await;
    let state = grants
        .refresh_token_state(alice.org.id, &TokenHash::of("rt_on"))
        .await
        .unwrap()
        .unwrap();
    assert!(state.ends_with_session && state.active(now, true) && !state.active(now, false));
    assert!(matches!(
        rotate(&online, "rt_on", "rt_on2", now).await,
        RefreshOutcome::Rotated(..)
    ));

    // A code issued in the session, redeemed after it ended, starts nothing (below).
    let client = oauth_client(&alice, &ClientId::parse("pcc_codeclient").unwrap());
    let mut late = code(&alice, &client.id, "code-late", Duration::minutes(1));
    late.scope = "openid".into();
    late.session_id = Some(s.id);
    store.grants().insert_code(&late).await.unwrap();
    let mut live_code = late.clone();
    live_code.code_hash = TokenHash::of("code-live");
    store.grants().insert_code(&live_code).await.unwrap();
    let got = redeem(
        store.as_ref(),
        &client,
        "code-live",
        VERIFIER,
        Some((FamilyId::new(), "rt_live", None)),
        &ctx(),
    )
    .await;
    assert!(
        matches!(&got, CodeRedemption::Redeemed { family: Some(f), .. } if f.session_id == Some(s.id)),
        "{got:?}"
    );

    // Signing out revokes the session-bound families of every org, not the offline one.
    let heard = listen(store.as_ref());
    let c = ctx().with_actor(alice.user.id);
    assert!(
        store
            .sessions()
            .revoke_user_session(alice.user.id, s.id, &c)
            .await
            .unwrap()
    );
    assert!(!grants.session_live(s.id, now).await.unwrap());
    assert!(
        grants
            .family_revoked(alice.org.id, online.id)
            .await
            .unwrap()
    );
    assert!(
        grants
            .family_revoked(bob.org.id, elsewhere.id)
            .await
            .unwrap()
    );
    assert!(
        !grants
            .family_revoked(alice.org.id, offline.id)
            .await
            .unwrap()
    );
    let changes = heard.take();
    assert!(
        changes.contains(&Change::TokensRevoked) && changes.contains(&Change::SessionRevoked(s.id)),
        "{changes:?}"
    );
    assert!(matches!(
        rotate(&online, "rt_on2", "rt_on3", now).await,
        RefreshOutcome::Revoked(_)
    ));
    assert!(matches!(
        rotate(&offline, "rt_off", "rt_off2", now).await,
        RefreshOutcome::Rotated(..)
    ));
    let fid = FamilyId::new();
    let got = redeem(
        store.as_ref(),
        &client,
        "code-late",
        VERIFIER,
        Some((fid, "rt_late", None)),
        &ctx(),
    )
    .await;
    assert_eq!(got, CodeRedemption::Refused(CodeRefused::SessionEnded));
    assert!(
        grants
            .refresh_token_state(alice.org.id, &TokenHash::of("rt_late"))
            .await
            .unwrap()
            .is_none()
    );
    let again = redeem(store.as_ref(), &client, "code-late", VERIFIER, None, &ctx()).await;
    assert_eq!(
        again,
        CodeRedemption::Refused(CodeRefused::Replayed),
        "spent"
    );

    // An org admin ending a member's session ends the member's grants in other orgs too.
    let dave = add(store.as_ref(), &alice, "dave@example.com", Role::Member).await;
    let sd = browser_session(dave.id, "dave-browser", now);
    store
        .sessions()
        .create_session(&sd, &ctx(), &[])
        .await
        .unwrap();
    let daves = start(bound_family(&carol, dave.id, sd.id, "openid"), "rt_dave").await;
    let c = ctx().with_actor(alice.user.id);
    assert!(
        store
            .org(&alice.access())
            .sessions()
            .revoke_org_session(sd.id, &portcullis_core::Oversight::Everyone, &c)
            .await
            .unwrap()
    );
    assert!(grants.family_revoked(carol.org.id, daves.id).await.unwrap());

    // A session that expired is not revoked by anyone: the next rotation revokes the family,
    // with the reason audited.
    let old = browser_session(alice.user.id, "alice-old", now - Duration::days(60));
    store
        .sessions()
        .create_session(&old, &ctx(), &[])
        .await
        .unwrap();
    assert!(!grants.session_live(old.id, now).await.unwrap());
    let stale = start(
        bound_family(&alice, alice.user.id, old.id, "openid"),
        "rt_stale",
    )
    .await;
    let heard = listen(store.as_ref());
    assert!(matches!(
        rotate(&stale, "rt_stale", "rt_stale2", now).await,
        RefreshOutcome::Revoked(f) if f.id == stale.id
    ));
    assert!(grants.family_revoked(alice.org.id, stale.id).await.unwrap());
    assert_eq!(heard.take(), vec![Change::TokensRevoked]);
    let events = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            action: Some("oauth.token.revoked".into()),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.target.as_deref()
            == Some(format!("refresh_family:{}", stale.id).as_str())
            && e.details["reason"] == json!("session_ended")),
        "{events:?}"
    );

    // A family past its absolute end is expired, however fresh its token.
    let issued = code(
        &alice,
        &ClientId::parse("pcc_codeclient").unwrap(),
        "code-end",
        Duration::minutes(1),
    );
    store.grants().insert_code(&issued).await.unwrap();
    let client = oauth_client(&alice, &issued.client_id);
    let fid = FamilyId::new();
    let end = now + Duration::seconds(30);
    let got = redeem(
        store.as_ref(),
        &client,
        "code-end",
        VERIFIER,
        Some((fid, "rt_end", Some(end))),
        &ctx(),
    )
    .await;
    let CodeRedemption::Redeemed {
        family: Some(f), ..
    } = got
    else {
        unreachable!("redeemed with a family: {got:?}")
    };
    assert!(matches!(
        rotate(&f, "rt_end", "rt_end2", end - Duration::seconds(1)).await,
        RefreshOutcome::Rotated(..)
    ));
    assert!(matches!(
        rotate(&f, "rt_end2", "rt_end3", end).await,
        RefreshOutcome::Expired(_)
    ));
}

pub async fn consents(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let heard = listen(store.as_ref());
    let client = ClientId::parse("pcc_consentclient").unwrap();
    let other = ClientId::parse("pcc_otherclient").unwrap();
    let grants = store.grants();
    let user = alice.user.id;

    assert_eq!(
        grants.consent(alice.org.id, user, &client).await.unwrap(),
        None
    );
    let c = ctx();
    grants
        .grant_consent(alice.org.id, user, &client, "openid", &c)
        .await
        .unwrap();
    // Granting again replaces the scope.
    grants
        .grant_consent(alice.org.id, user, &client, "openid email", &ctx())
        .await
        .unwrap();
    grants
        .grant_consent(alice.org.id, user, &other, "openid", &ctx())
        .await
        .unwrap();
    assert_eq!(
        grants.consent(alice.org.id, user, &client).await.unwrap(),
        Some(portcullis_core::scope::ScopeSet::granted("openid email"))
    );
    // Consents are looked up in the client's org only.
    assert_eq!(
        grants.consent(bob.org.id, user, &client).await.unwrap(),
        None
    );
    let listed = grants.consents_of_user(user).await.unwrap();
    let mut listed: Vec<(String, String)> = listed
        .into_iter()
        .map(|c| (c.client_id.as_str().to_owned(), c.scope.to_string()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("pcc_consentclient".to_owned(), "openid email".to_owned()),
            ("pcc_otherclient".to_owned(), "openid".to_owned()),
        ]
    );
    assert!(
        grants
            .consents_of_user(bob.user.id)
            .await
            .unwrap()
            .is_empty()
    );
    let granted = actions_of(store.as_ref(), &alice, &c).await;
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].action, "oauth.consent.granted");
    assert_eq!(granted[0].actor_id, Some(user));
    assert!(heard.take().is_empty(), "granting changes nothing cached");

    // Withdrawing consent ends the client's refresh families for the user, not others'.
    let mine = family_of(&code(&alice, &client, "c1", Duration::minutes(1)));
    let theirs = family_of(&code(&alice, &other, "c2", Duration::minutes(1)));
    for (f, first) in [(&mine, "rt_mine"), (&theirs, "rt_theirs")] {
        grants
            .start_family(
                f,
                &TokenHash::of(first),
                portcullis_core::now() + Duration::days(1),
                None,
            )
            .await
            .unwrap();
    }
    let c = ctx();
    assert!(grants.revoke_consent(user, &client, &c).await.unwrap());
    assert_eq!(
        grants.consent(alice.org.id, user, &client).await.unwrap(),
        None
    );
    assert!(grants.family_revoked(alice.org.id, mine.id).await.unwrap());
    assert!(
        !grants
            .family_revoked(alice.org.id, theirs.id)
            .await
            .unwrap()
    );
    assert_eq!(heard.take(), vec![Change::TokensRevoked]);
    let revoked = actions_of(store.as_ref(), &alice, &c).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].action, "oauth.consent.revoked");
    assert_eq!(revoked[0].org_id, Some(alice.org.id));
    assert_eq!(revoked[0].details["scope"], json!("openid email"));

    // Nothing left to withdraw.
    assert!(!grants.revoke_consent(user, &client, &ctx()).await.unwrap());
    assert!(
        !grants
            .revoke_consent(bob.user.id, &other, &ctx())
            .await
            .unwrap()
    );
    assert!(heard.take().is_empty());
    assert_eq!(grants.consents_of_user(user).await.unwrap().len(), 1);
}

pub async fn family_revocation(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let heard = listen(store.as_ref());
    let client = ClientId::parse("pcc_familyclient").unwrap();
    let family = family_of(&code(&alice, &client, "c", Duration::minutes(1)));
    let now = portcullis_core::now();
    store
        .grants()
        .start_family(
            &family,
            &TokenHash::of("rt_one"),
            now + Duration::days(1),
            None,
        )
        .await
        .unwrap();
    assert!(
        !store
            .grants()
            .family_revoked(alice.org.id, family.id)
            .await
            .unwrap()
    );

    // Another org cannot revoke it, and does not see it as live either.
    assert!(
        !store
            .grants()
            .revoke_family(
                bob.org.id,
                family.id,
                portcullis_core::grant::RevocationReason::Logout,
                &ctx()
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .grants()
            .family_revoked(bob.org.id, family.id)
            .await
            .unwrap()
    );
    assert!(heard.take().is_empty());

    let c = ctx();
    assert!(
        store
            .grants()
            .revoke_family(
                alice.org.id,
                family.id,
                portcullis_core::grant::RevocationReason::RevokedByClient,
                &c
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .grants()
            .family_revoked(alice.org.id, family.id)
            .await
            .unwrap()
    );
    assert_eq!(heard.take(), vec![Change::TokensRevoked]);
    let events = actions_of(store.as_ref(), &alice, &c).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "oauth.token.revoked");
    assert_eq!(events[0].details["reason"], json!("revoked_by_client"));
    let state = store
        .grants()
        .refresh_token_state(alice.org.id, &TokenHash::of("rt_one"))
        .await
        .unwrap()
        .unwrap();
    assert!(state.family_revoked && !state.used);

    // Its tokens stop rotating; a second revocation is a no-op that announces nothing.
    let outcome = store
        .grants()
        .rotate_refresh(
            &RefreshRotation {
                org_id: alice.org.id,
                client_id: &client,
                presented: &TokenHash::of("rt_one"),
                successor: &TokenHash::of("rt_two"),
                now,
                grace: Duration::seconds(10),
                successor_expires_at: now + Duration::days(1),
                on_success: &[],
                reuse_ends_session: false,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, RefreshOutcome::Revoked(f) if f.id == family.id));
    assert!(
        !store
            .grants()
            .revoke_family(
                alice.org.id,
                family.id,
                portcullis_core::grant::RevocationReason::Logout,
                &ctx()
            )
            .await
            .unwrap()
    );
    assert!(heard.take().is_empty());
    // An unknown family vouches for nothing.
    assert!(
        store
            .grants()
            .family_revoked(alice.org.id, portcullis_core::FamilyId::new())
            .await
            .unwrap()
    );
}

pub async fn access_token_revocation(store: Arc<dyn Store>) {
    let heard = listen(store.as_ref());
    let now = portcullis_core::now();
    let grants = store.grants();
    assert!(!grants.access_token_revoked("jti-live").await.unwrap());
    grants
        .revoke_access_token("jti-live", now + Duration::minutes(10))
        .await
        .unwrap();
    assert!(grants.access_token_revoked("jti-live").await.unwrap());
    assert!(!grants.access_token_revoked("jti-other").await.unwrap());
    assert_eq!(heard.take(), vec![Change::TokensRevoked]);
    // Revoking twice is harmless.
    grants
        .revoke_access_token("jti-live", now + Duration::minutes(10))
        .await
        .unwrap();
    assert!(grants.access_token_revoked("jti-live").await.unwrap());

    // A token past its expiry needs no remembering: the next revocation forgets it.
    grants
        .revoke_access_token("jti-expired", now - Duration::seconds(1))
        .await
        .unwrap();
    grants
        .revoke_access_token("jti-next", now + Duration::minutes(10))
        .await
        .unwrap();
    assert!(!grants.access_token_revoked("jti-expired").await.unwrap());
    assert!(grants.access_token_revoked("jti-next").await.unwrap());
    assert!(grants.access_token_revoked("jti-live").await.unwrap());
}
