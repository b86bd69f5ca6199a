#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Memberships need consent (security review, items 2 and 13), through HTTP on SQLite and
//! PostgreSQL: an org admin adds directly only managed accounts (emails in the org's
//! verified domains) and invites everyone else; admins see the sessions and sign-ins of
//! managed members only; role changes are decided inside the store's locked transaction.

use crate::common;

use std::sync::Arc;

use common::{Signed, TestApp, invitation_token};
use portcullis_core::invitation::{INVITATION_TOKEN_PREFIX, Invitation, new_secret};
use portcullis_core::{AuditContext, Email, InvitationId, OrgAccess, OrgId, Role, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    admin_cannot_add_a_non_managed_account,
    adding_an_unregistered_outside_address_creates_nothing,
    invitation_is_accepted_once_by_the_invited_account,
    invitation_for_someone_else_is_forbidden,
    revoked_and_expired_invitations_are_gone,
    invitation_rules_and_answers,
    signup_with_an_invitation_joins_the_org,
    admin_sees_nothing_of_a_non_managed_members_account,
    platform_admin_sees_every_member,
    admin_adds_and_oversees_managed_accounts,
    concurrent_role_changes_cannot_demote_an_owner,
    a_demoted_admin_cannot_finish_a_change,
);

fn members_path(org: &str) -> String {
    format!("/v1/orgs/{org}/members")
}

async fn add_member(
    app: &TestApp,
    admin: &Signed,
    org: &str,
    email: &str,
    role: &str,
) -> common::Reply {
    TestApp::send(
        app.with_bearer(Method::POST, &members_path(org), &admin.token)
            .json(&json!({"email": email, "role": role})),
    )
    .await
}

async fn member_ids(app: &TestApp, viewer: &Signed, org: &str) -> Vec<String> {
    let r = app.get(&members_path(org), &viewer.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn role_of(app: &TestApp, viewer: &Signed, org: &str, user: &str) -> Option<String> {
    let r = app.get(&members_path(org), &viewer.token).await;
    r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == json!(user))
        .map(|m| m["role"].as_str().unwrap().to_owned())
}

async fn make_platform_admin(app: &TestApp, who: &Signed) {
    app.state
        .store
        .accounts()
        .set_platform_admin(
            UserId::parse(&who.user_id).unwrap(),
            true,
            &AuditContext::cli(),
        )
        .await
        .unwrap();
}

fn events(r: &common::Reply) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["events"].as_array().unwrap().clone()
}

async fn admin_cannot_add_a_non_managed_account(app: TestApp) {
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    let r = add_member(&app, &owner, &owner.org_id, &bob.email, "member").await;
    r.assert_error(403, "domain_not_verified");
    assert!(
        r.body["message"].as_str().unwrap().contains("invit"),
        "the refusal points to invitations: {}",
        r.body
    );
    assert!(
        !member_ids(&app, &owner, &owner.org_id)
            .await
            .contains(&bob.user_id)
    );
    let me = app.get("/v1/me", &bob.token).await;
    assert_eq!(me.body["memberships"].as_array().unwrap().len(), 1);
    // Nothing reveals whether the address has an account: an unknown one gets the same.
    let unknown = add_member(
        &app,
        &owner,
        &owner.org_id,
        "nobody@elsewhere.test",
        "member",
    )
    .await;
    unknown.assert_error(403, "domain_not_verified");
    assert_eq!(
        r.body["message"].as_str().unwrap().replace(&bob.email, "X"),
        unknown.body["message"]
            .as_str()
            .unwrap()
            .replace("nobody@elsewhere.test", "X")
    );
}

async fn adding_an_unregistered_outside_address_creates_nothing(app: TestApp) {
    let owner = app.user("owner").await;
    add_member(
        &app,
        &owner,
        &owner.org_id,
        "Real.Owner@elsewhere.test",
        "admin",
    )
    .await
    .assert_error(403, "domain_not_verified");
    assert_eq!(member_ids(&app, &owner, &owner.org_id).await.len(), 1);
    // The real owner of the address signs up as usual: no placeholder holds it.
    let r = app
        .signup("real.owner@elsewhere.test", "correct horse battery")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let me = app.get("/v1/me", &r.session_cookie().unwrap()).await;
    assert_eq!(me.body["memberships"].as_array().unwrap().len(), 1);
}

async fn invitation_is_accepted_once_by_the_invited_account(app: TestApp) {
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/invitations", owner.org_id),
            &owner.token,
        )
        .header("x-correlation-id", "invite-bob")
        .json(&json!({"email": bob.email.to_uppercase(), "role": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for field in ["id", "email", "role", "expires_at", "accept_url"] {
        assert!(r.body.get(field).is_some(), "{field} missing: {}", r.body);
    }
    assert_eq!(r.body["email"], json!(bob.email));
    assert_eq!(r.body["role"], "admin");
    let token = invitation_token(r.body["accept_url"].as_str().unwrap());
    assert!(token.starts_with("inv_") && token.len() > 40, "{token}");
    let invitation_id = r.body["id"].as_str().unwrap().to_owned();

    // Listed while pending, never with its token.
    let list = app
        .get(
            &format!("/v1/orgs/{}/invitations", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["invitations"][0]["id"], json!(invitation_id));
    assert!(!list.body.to_string().contains(&token));
    assert!(list.body["invitations"][0].get("accept_url").is_none());
    // Pending invitations hold seats.
    let access = OrgAccess::system(OrgId::parse(&owner.org_id).unwrap());
    let seats = || async {
        app.state
            .store
            .org(&access)
            .invitations()
            .pending_invitation_count(portcullis_core::now())
            .await
            .unwrap()
    };
    assert_eq!(seats().await, 1);

    // Accepting (e-mail compared case-insensitively) makes bob an admin of the org.
    let ok = TestApp::send(
        app.with_bearer(Method::POST, "/v1/invitations/accept", &bob.token)
            .header("x-correlation-id", "accept-bob")
            .json(&json!({"token": token})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["org_id"], json!(owner.org_id));
    assert_eq!(ok.body["member"]["role"], "admin");
    assert_eq!(ok.body["member"]["managed"], false);
    assert_eq!(
        role_of(&app, &owner, &owner.org_id, &bob.user_id)
            .await
            .as_deref(),
        Some("admin")
    );
    assert_eq!(seats().await, 0);
    let audit_path = |q: &str| format!("/v1/orgs/{}/audit?{q}", owner.org_id);
    let created = events(
        &app.get(&audit_path("correlation_id=invite-bob"), &owner.token)
            .await,
    );
    assert_eq!(created[0]["action"], "invitation.created");
    assert_eq!(created[0]["actor_id"], json!(owner.user_id));
    assert!(!created[0].to_string().contains(&token));
    let accepted = events(
        &app.get(&audit_path("correlation_id=accept-bob"), &owner.token)
            .await,
    );
    let actions: Vec<&str> = accepted
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"invitation.accepted"), "{actions:?}");
    assert!(actions.contains(&"member.added"), "{actions:?}");
    assert!(accepted.iter().all(|e| e["actor_id"] == json!(bob.user_id)));

    // Single use: a second acceptance, by anyone, finds nothing.
    app.accept(&bob.token, &token)
        .await
        .assert_error(404, "not_found");
    let carol = app.user("carol").await;
    app.accept(&carol.token, &token)
        .await
        .assert_error(404, "not_found");
    // Not signed in: 401.
    TestApp::send(
        app.req(Method::POST, "/v1/invitations/accept")
            .json(&json!({"token": token})),
    )
    .await
    .assert_error(401, "unauthenticated");
}

async fn invitation_for_someone_else_is_forbidden(app: TestApp) {
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    let mallory = app.user("mallory").await;
    let r = app
        .invite(&owner.token, &owner.org_id, &bob.email, "member")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let url = r.body["accept_url"].as_str().unwrap().to_owned();
    app.accept(&mallory.token, &url)
        .await
        .assert_error(403, "forbidden");
    assert!(
        !member_ids(&app, &owner, &owner.org_id)
            .await
            .contains(&mallory.user_id)
    );
    // Refused attempts spend nothing: bob still accepts.
    assert_eq!(app.accept(&bob.token, &url).await.status, StatusCode::OK);
    // Concurrent acceptances of one invitation: exactly one wins.
    let carol = app.user("carol").await;
    let r = app
        .invite(&owner.token, &owner.org_id, &carol.email, "member")
        .await;
    let url = r.body["accept_url"].as_str().unwrap().to_owned();
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (app, token, url) = (app.clone(), carol.token.clone(), url.clone());
            tokio::spawn(async move { app.accept(&token, &url).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => ok += 1,
            _ => r.assert_error(404, "not_found"),
        }
    }
    assert_eq!(ok, 1);
}

async fn revoked_and_expired_invitations_are_gone(app: TestApp) {
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    let r = app
        .invite(&owner.token, &owner.org_id, &bob.email, "member")
        .await;
    let url = r.body["accept_url"].as_str().unwrap().to_owned();
    let one = format!(
        "/v1/orgs/{}/invitations/{}",
        owner.org_id,
        r.body["id"].as_str().unwrap()
    );
    // A member of another org cannot revoke it.
    let other = app.user("other").await;
    TestApp::send(app.with_bearer(Method::DELETE, &one, &other.token))
        .await
        .assert_error(404, "not_found");
    let r = TestApp::send(
        app.with_bearer(Method::DELETE, &one, &owner.token)
            .header("x-correlation-id", "revoke-bob"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.accept(&bob.token, &url)
        .await
        .assert_error(404, "not_found");
    TestApp::send(app.with_bearer(Method::DELETE, &one, &owner.token))
        .await
        .assert_error(404, "not_found");
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?correlation_id=revoke-bob", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(events(&audit)[0]["action"], "invitation.revoked");
    assert!(
        !member_ids(&app, &owner, &owner.org_id)
            .await
            .contains(&bob.user_id)
    );

    // An expired invitation (written as of eight days ago) cannot be accepted either.
    let org = OrgId::parse(&owner.org_id).unwrap();
    let (token, hash) = new_secret(INVITATION_TOKEN_PREFIX).unwrap();
    let then = portcullis_core::now() - time::Duration::days(8);
    let invitation = Invitation {
        id: InvitationId::new(),
        org_id: org,
        email: Email::parse(&bob.email).unwrap(),
        role: Role::Member,
        project_ids: Vec::new(),
        invited_by: None,
        created_at: then,
        expires_at: then + portcullis_core::invitation::INVITATION_TTL,
    };
    app.state
        .store
        .org(&OrgAccess::system(org))
        .invitations()
        .create_invitation(&invitation, &hash, &AuditContext::cli())
        .await
        .unwrap();
    app.accept(&bob.token, &token)
        .await
        .assert_error(404, "not_found");
    let list = app
        .get(
            &format!("/v1/orgs/{}/invitations", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(list.body["invitations"], json!([]));
    assert!(
        !member_ids(&app, &owner, &owner.org_id)
            .await
            .contains(&bob.user_id)
    );
}

async fn invitation_rules_and_answers(app: TestApp) {
    let owner = app.user("owner").await;
    // More members than the free plan's three seats.
    app.on_plan(&owner.org_id, "team").await;
    let admin = app.user("admin").await;
    let member = app.user("member").await;
    app.join(&owner.token, &owner.org_id, &admin, "admin").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    // An admin cannot invite an owner; a member cannot invite at all.
    let r = app
        .invite(&admin.token, &owner.org_id, "x@elsewhere.test", "owner")
        .await;
    r.assert_error(403, "forbidden");
    assert_eq!(r.body["details"]["required_role"], "owner");
    app.invite(&member.token, &owner.org_id, "x@elsewhere.test", "member")
        .await
        .assert_error(403, "forbidden");
    app.get(
        &format!("/v1/orgs/{}/invitations", owner.org_id),
        &member.token,
    )
    .await
    .assert_error(403, "forbidden");
    // Strangers do not learn the org exists.
    let stranger = app.user("stranger").await;
    app.invite(&stranger.token, &owner.org_id, "x@elsewhere.test", "member")
        .await
        .assert_error(404, "not_found");
    // The answer does not say whether the address has an account.
    let known = app
        .invite(&admin.token, &owner.org_id, &stranger.email, "member")
        .await;
    let unknown = app
        .invite(
            &admin.token,
            &owner.org_id,
            "ghost@elsewhere.test",
            "member",
        )
        .await;
    assert_eq!(known.status, StatusCode::CREATED, "{}", known.body);
    assert_eq!(unknown.status, StatusCode::CREATED, "{}", unknown.body);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&known.body), keys(&unknown.body));
    // One pending invitation per address; bad fields are refused.
    app.invite(
        &admin.token,
        &owner.org_id,
        "ghost@elsewhere.test",
        "member",
    )
    .await
    .assert_error(409, "conflict");
    app.invite(&admin.token, &owner.org_id, "not-an-email", "member")
        .await
        .assert_error(400, "invalid_request");
    let r = TestApp::send(
        app.with_bearer(Method::POST, &format!("/v1/orgs/{}/invitations", owner.org_id), &owner.token)
            .json(&json!({"email": "p@elsewhere.test", "role": "member", "project_ids": [stranger.project_id]})),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "project_ids");
    // A token of another kind, or garbage, is no invitation.
    for bogus in ["pst_abc", "inv_", "", "ott_x"] {
        app.accept(&stranger.token, bogus)
            .await
            .assert_error(404, "not_found");
    }
    // Invited to a project too: the invitee lands in it.
    let p = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", owner.org_id),
            &owner.token,
        )
        .json(&json!({"name": "Secret"})),
    )
    .await;
    let project = p.body["id"].as_str().unwrap().to_owned();
    let invitee = app.user("invitee").await;
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/invitations", owner.org_id),
            &owner.token,
        )
        .json(&json!({"email": invitee.email, "role": "member", "project_ids": [project]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["project_ids"], json!([project]));
    assert_eq!(
        app.accept(&invitee.token, r.body["accept_url"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &invitee.token)
            .header("x-project-id", &project),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn signup_with_an_invitation_joins_the_org(app: TestApp) {
    let owner = app.user("owner").await;
    let r = app
        .invite(
            &owner.token,
            &owner.org_id,
            "newbie@elsewhere.test",
            "admin",
        )
        .await;
    let token = invitation_token(r.body["accept_url"].as_str().unwrap());
    let signup = |email: &str, invitation: &str| {
        TestApp::send(app.req(Method::POST, "/v1/auth/signup").json(&json!({
            "email": email, "password": "correct horse battery", "invitation": invitation
        })))
    };
    // Another address than the invited one: refused, and no account is left behind.
    signup("someone.else@elsewhere.test", &token)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        app.signup("someone.else@elsewhere.test", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
    let r = signup("Newbie@Elsewhere.test", &token).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["joined"]["org_id"], json!(owner.org_id));
    assert_eq!(r.body["joined"]["role"], "admin");
    assert_eq!(r.body["org"]["personal"], true);
    let me = app.get("/v1/me", &r.session_cookie().unwrap()).await;
    let orgs: Vec<&Value> = me.body["memberships"].as_array().unwrap().iter().collect();
    assert_eq!(orgs.len(), 2, "{}", me.body);
    assert!(
        orgs.iter()
            .any(|m| m["org"]["id"] == json!(owner.org_id) && m["role"] == "admin")
    );
    // Spent: a second signup with it creates nothing.
    signup("newbie2@elsewhere.test", &token)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        app.signup("newbie2@elsewhere.test", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=invitation.accepted", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(events(&audit).len(), 1);
}

/// Three members: the owner, bob (invited, outside any verified domain). The owner sees
/// bob's membership, not his account: no sessions, no sign-ins, no revocation.
async fn admin_sees_nothing_of_a_non_managed_members_account(app: TestApp) {
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    app.join(&owner.token, &owner.org_id, &bob, "member").await;
    let login = app.login(&bob.email, "correct horse battery").await;
    assert_eq!(login.status, StatusCode::OK);
    app.login(&bob.email, "a wrong password").await;
    let bob_sid = login.body["session"]["id"].as_str().unwrap().to_owned();

    let members = app.get(&members_path(&owner.org_id), &owner.token).await;
    let listed = members.body["members"].as_array().unwrap();
    assert!(
        listed.iter().all(|m| m["managed"] == false),
        "{}",
        members.body
    );
    assert_eq!(listed.len(), 2);

    let sessions = app
        .get(&format!("/v1/orgs/{}/sessions", owner.org_id), &owner.token)
        .await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.body);
    let rows = sessions.body["sessions"].as_array().unwrap();
    assert!(
        rows.iter().all(|s| s["user_id"] != json!(bob.user_id)),
        "{}",
        sessions.body
    );
    assert!(!sessions.body.to_string().contains(&bob.email));
    // Their own sessions the owner still sees.
    assert!(rows.iter().any(|s| s["user_id"] == json!(owner.user_id)));
    TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sessions/{bob_sid}", owner.org_id),
        &owner.token,
    ))
    .await
    .assert_error(404, "not_found");
    assert_eq!(
        app.get("/v1/me", &login.session_cookie().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let audit = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?actor_id={}&limit=200",
                owner.org_id, bob.user_id
            ),
            &owner.token,
        )
        .await;
    let seen: Vec<String> = events(&audit)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        seen.iter()
            .all(|a| !a.starts_with("login.") && !a.starts_with("session.")),
        "{seen:?}"
    );
    // The membership itself is visible: bob accepted the invitation.
    assert!(seen.iter().any(|a| a == "invitation.accepted"), "{seen:?}");
}

async fn platform_admin_sees_every_member(app: TestApp) {
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    app.join(&owner.token, &owner.org_id, &bob, "member").await;
    let operator = app.user("operator").await;
    make_platform_admin(&app, &operator).await;
    let login = app.login(&bob.email, "correct horse battery").await;
    let bob_sid = login.body["session"]["id"].as_str().unwrap().to_owned();
    let sessions = app
        .get(
            &format!("/v1/orgs/{}/sessions", owner.org_id),
            &operator.token,
        )
        .await;
    assert!(
        sessions.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == json!(bob_sid)),
        "{}",
        sessions.body
    );
    let audit = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?actor_id={}&action=login.succeeded",
                owner.org_id, bob.user_id
            ),
            &operator.token,
        )
        .await;
    assert!(!events(&audit).is_empty());
    // Platform admins may also add anyone directly.
    let carol = app.user("carol").await;
    let r = add_member(&app, &operator, &owner.org_id, &carol.email, "member").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user_created"], false);
    assert!(r.body.get("setup_url").is_none());
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sessions/{bob_sid}", owner.org_id),
        &operator.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.get("/v1/me", &login.session_cookie().unwrap())
        .await
        .assert_error(401, "unauthenticated");
}

/// `domain` verified for `org` by a platform admin's word (the path of operators).
async fn verify_domain(app: &TestApp, org: &str, domain: &str) {
    let operator = app.user("operator").await;
    make_platform_admin(app, &operator).await;
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/domains"),
            &operator.token,
        )
        .json(&json!({"domain": domain})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/domains/{domain}/verify"),
            &operator.token,
        )
        .json(&json!({"method": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// With acme.test verified, the owner adds ann@acme.test directly (created, with a
/// password-setup link) and sees and revokes her sessions and sign-ins; an invited
/// outsider in the same org stays invisible.
async fn admin_adds_and_oversees_managed_accounts(app: TestApp) {
    let owner = app.user("owner").await;
    // More members than the free plan's three seats.
    app.on_plan(&owner.org_id, "team").await;
    verify_domain(&app, &owner.org_id, "acme.test").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, &members_path(&owner.org_id), &owner.token)
            .header("x-correlation-id", "add-ann")
            .json(&json!({"email": "Ann@ACME.test", "role": "member"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user_created"], true);
    assert_eq!(r.body["managed"], true);
    let ann_id = r.body["user"]["id"].as_str().unwrap().to_owned();
    let setup = invitation_token(r.body["setup_url"].as_str().unwrap());
    assert!(setup.starts_with("pst_"));
    let audit_path = |q: &str| format!("/v1/orgs/{}/audit?{q}", owner.org_id);
    let created = events(
        &app.get(&audit_path("correlation_id=add-ann"), &owner.token)
            .await,
    );
    assert!(
        created.iter().any(
            |e| e["action"] == "user.created" && e["target"] == json!(format!("user:{ann_id}"))
        )
    );
    // Ann sets her password (and is signed in), then fails one sign-in.
    let set = TestApp::send(
        app.req(Method::POST, "/v1/auth/password-setup")
            .json(&json!({"token": setup, "password": "ann's new password"})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let ann_session = set.session_cookie().unwrap();
    let ann_sid = set.body["session"]["id"].as_str().unwrap().to_owned();
    app.login("ann@acme.test", "not ann's password")
        .await
        .assert_error(401, "unauthenticated");
    // An existing account in the domain is added as it is; a subdomain is not the domain.
    let dan = app.signup("dan@acme.test", "correct horse battery").await;
    let r = add_member(&app, &owner, &owner.org_id, "dan@acme.test", "admin").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user_created"], false);
    assert!(r.body.get("setup_url").is_none());
    add_member(&app, &owner, &owner.org_id, "eve@mail.acme.test", "member")
        .await
        .assert_error(403, "domain_not_verified");
    // An invited outsider too.
    let bob = app.user("bob").await;
    app.join(&owner.token, &owner.org_id, &bob, "member").await;
    let bob_login = app.login(&bob.email, "correct horse battery").await;
    let bob_sid = bob_login.body["session"]["id"].as_str().unwrap().to_owned();

    let members = app.get(&members_path(&owner.org_id), &owner.token).await;
    let managed = |id: &str| {
        members.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"]["id"] == json!(id))
            .unwrap()["managed"]
            .clone()
    };
    assert_eq!(managed(&ann_id), json!(true));
    assert_eq!(
        managed(dan.body["user"]["id"].as_str().unwrap()),
        json!(true)
    );
    assert_eq!(managed(&bob.user_id), json!(false));

    let sessions = app
        .get(&format!("/v1/orgs/{}/sessions", owner.org_id), &owner.token)
        .await;
    let ids: Vec<&str> = sessions.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ann_sid.as_str()), "{}", sessions.body);
    assert!(!ids.contains(&bob_sid.as_str()), "{}", sessions.body);
    let ann_events = events(
        &app.get(
            &audit_path(&format!("actor_id={ann_id}&limit=200")),
            &owner.token,
        )
        .await,
    );
    let actions: Vec<&str> = ann_events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"session.created"), "{actions:?}");
    assert!(actions.contains(&"login.failed"), "{actions:?}");
    let bob_events = events(
        &app.get(
            &audit_path(&format!("actor_id={}&action=login.succeeded", bob.user_id)),
            &owner.token,
        )
        .await,
    );
    assert!(bob_events.is_empty());
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sessions/{ann_sid}", owner.org_id),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.get("/v1/me", &ann_session)
        .await
        .assert_error(401, "unauthenticated");
    TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sessions/{bob_sid}", owner.org_id),
        &owner.token,
    ))
    .await
    .assert_error(404, "not_found");
}

async fn patch_role(
    app: &TestApp,
    who: &Signed,
    org: &str,
    target: &str,
    role: &str,
) -> common::Reply {
    TestApp::send(
        app.with_bearer(
            Method::PATCH,
            &format!("{}/{target}", members_path(org)),
            &who.token,
        )
        .json(&json!({"role": role})),
    )
    .await
}

/// The owner promotes T to owner while an admin demotes T: whatever the order, an admin
/// never demotes an owner (the admin's change is judged on T's role under the lock).
async fn concurrent_role_changes_cannot_demote_an_owner(app: TestApp) {
    let owner = app.user("owner").await;
    // More members than the free plan's three seats.
    app.on_plan(&owner.org_id, "team").await;
    let admin = app.user("admin").await;
    app.join(&owner.token, &owner.org_id, &admin, "admin").await;
    let app = Arc::new(app);
    for round in 0..12 {
        let target = app.user(&format!("t{round}")).await;
        app.join(&owner.token, &owner.org_id, &target, "admin")
            .await;
        let promote = {
            let (app, o, t, org) = (
                app.clone(),
                owner.clone(),
                target.user_id.clone(),
                owner.org_id.clone(),
            );
            tokio::spawn(async move { patch_role(&app, &o, &org, &t, "owner").await })
        };
        let demote = {
            let (app, admin, t, org) = (
                app.clone(),
                admin.clone(),
                target.user_id.clone(),
                owner.org_id.clone(),
            );
            tokio::spawn(async move { patch_role(&app, &admin, &org, &t, "member").await })
        };
        let (promoted, demoted) = (promote.await.unwrap(), demote.await.unwrap());
        assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
        let role = role_of(&app, &owner, &owner.org_id, &target.user_id)
            .await
            .unwrap();
        match demoted.status.as_u16() {
            // The demotion ran first; the promotion came after.
            200 => assert_eq!(role, "owner", "an admin demoted an owner"),
            _ => {
                demoted.assert_error(403, "forbidden");
                assert_eq!(role, "owner");
            }
        }
    }
}

/// An admin is demoted while their own change is under way: it is judged on the role they
/// hold when it is written, so it cannot land after the demotion.
async fn a_demoted_admin_cannot_finish_a_change(app: TestApp) {
    let owner = app.user("owner").await;
    // More members than the free plan's three seats.
    app.on_plan(&owner.org_id, "team").await;
    let app = Arc::new(app);
    for round in 0..8 {
        let admin = app.user(&format!("a{round}")).await;
        let target = app.user(&format!("m{round}")).await;
        app.join(&owner.token, &owner.org_id, &admin, "admin").await;
        app.join(&owner.token, &owner.org_id, &target, "member")
            .await;
        let demote = {
            let (app, o, a, org) = (
                app.clone(),
                owner.clone(),
                admin.user_id.clone(),
                owner.org_id.clone(),
            );
            tokio::spawn(async move { patch_role(&app, &o, &org, &a, "member").await })
        };
        let promote = {
            let (app, a, t, org) = (
                app.clone(),
                admin.clone(),
                target.user_id.clone(),
                owner.org_id.clone(),
            );
            tokio::spawn(async move { patch_role(&app, &a, &org, &t, "admin").await })
        };
        let (demoted, promoted) = (demote.await.unwrap(), promote.await.unwrap());
        assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
        let role = role_of(&app, &owner, &owner.org_id, &target.user_id)
            .await
            .unwrap();
        if promoted.status != StatusCode::OK {
            promoted.assert_error(403, "forbidden");
            assert_eq!(role, "member");
        }
        // Either way the admin ends as a plain member, who may change nothing more.
        patch_role(&app, &admin, &owner.org_id, &target.user_id, "member")
            .await
            .assert_error(403, "forbidden");
    }
}
