#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The HTTP contract, through a real server, on SQLite and on PostgreSQL.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    signup_creates_account_org_project_and_cookie,
    signup_rejects_duplicates_unknown_fields_and_bad_values,
    concurrent_signups_with_one_email_yield_one_account,
    login_failures_are_indistinguishable,
    me_by_cookie_bearer_and_every_cookie_name,
    logout_revokes_the_session,
    revoking_another_session_takes_effect_at_once,
    project_context_header_is_required_and_checked,
    other_tenants_project_is_invisible,
    removed_member_is_forbidden,
    removed_member_gets_one_answer_from_org_and_project_routes,
    members_lifecycle_and_owner_rules,
    admin_created_member_gets_default_project_and_audit,
    org_admin_revokes_member_session,
    audit_query_by_correlation_id_and_cursor,
    csrf_checks_cookie_mutations,
    project_patch_and_validation,
    orgs_create_list_get,
    operations_endpoints,
    errors_use_the_envelope_everywhere,
);

async fn signup_creates_account_org_project_and_cookie(app: TestApp) {
    let r = app
        .signup("Alice@Example.com", "correct horse battery")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user"]["email"], "alice@example.com");
    let uid = r.body["user"]["posix"]["uid"].as_u64().unwrap();
    assert!(uid >= 10_000);
    assert_eq!(r.body["user"]["posix"]["gid"].as_u64().unwrap(), uid);
    assert_eq!(r.body["org"]["personal"], true);
    assert_eq!(r.body["project"]["org_id"], r.body["org"]["id"]);
    assert_eq!(r.body["project"]["status"], "active");
    let cookie = r.set_cookie().unwrap();
    assert!(cookie.starts_with("portcullis_session="), "{cookie}");
    for flag in ["HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-http public URL must not set Secure: {cookie}"
    );
    let token = r.session_cookie().unwrap();
    assert_eq!(token.len(), 43);

    // The bootstrap is complete: /v1/me shows the owner memberships of org and project.
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let m = &me.body["memberships"][0];
    assert_eq!(m["role"], "owner");
    assert_eq!(m["org"]["id"], r.body["org"]["id"]);
    assert_eq!(m["projects"][0]["id"], r.body["project"]["id"]);
    assert_eq!(m["projects"][0]["role"], "owner");
    assert_eq!(me.body["user"]["posix"]["uid"].as_u64().unwrap(), uid);

    // Posix ids are unique and increasing.
    let second = app.signup("bob@example.com", "correct horse battery").await;
    assert!(second.body["user"]["posix"]["uid"].as_u64().unwrap() > uid);

    // Over https the cookie is __Host- prefixed and Secure.
    let secure = TestApp::start_with(common::Backend::Sqlite, |c| {
        c.public_url = Some("https://auth.example.test".into())
    })
    .await;
    let r = secure
        .signup("carol@example.com", "correct horse battery")
        .await;
    let cookie = r.set_cookie().unwrap();
    assert!(cookie.starts_with("__Host-portcullis_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

async fn signup_rejects_duplicates_unknown_fields_and_bad_values(app: TestApp) {
    assert_eq!(
        app.signup("dup@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
    app.signup("DUP@example.com", "another password")
        .await
        .assert_error(409, "conflict");

    let r = TestApp::send(app.req(Method::POST, "/v1/auth/signup").json(&json!({
        "email": "x@example.com", "password": "correct horse battery", "admin": true
    })))
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "admin");

    let r = app.signup("not-an-email", "correct horse battery").await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "email");

    let r = app.signup("short@example.com", "short").await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "password");

    let r = TestApp::send(
        app.req(Method::POST, "/v1/auth/signup")
            .json(&json!({"email": "a@example.com"})),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "password");

    let r = TestApp::send(
        app.req(Method::POST, "/v1/auth/signup")
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = TestApp::send(app.req(Method::POST, "/v1/auth/signup").body("email=a")).await;
    r.assert_error(400, "invalid_request");

    // Nothing was written by the refused requests.
    app.login("short@example.com", "short")
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(
        app.signup("x@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn concurrent_signups_with_one_email_yield_one_account(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.signup("race@example.com", &format!("password number {i}"))
                .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            _ => r.assert_error(409, "conflict"),
        }
    }
    assert_eq!(created, 1);
}

async fn login_failures_are_indistinguishable(app: TestApp) {
    let u = app.user("login").await;
    let wrong_password = app.login(&u.email, "not the password").await;
    let unknown_email = app.login("nobody@example.com", "not the password").await;
    let malformed_email = app.login("nobody", "not the password").await;
    for r in [&wrong_password, &unknown_email, &malformed_email] {
        r.assert_error(401, "unauthenticated");
        assert!(r.session_cookie().is_none());
    }
    assert_eq!(
        wrong_password.body["message"],
        unknown_email.body["message"]
    );
    assert_eq!(
        wrong_password.body["message"],
        malformed_email.body["message"]
    );

    let ok = app
        .login(&u.email.to_uppercase(), "correct horse battery")
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["user"]["id"], json!(u.user_id));
    assert_eq!(ok.body["session"]["current"], true);
    let token = ok.session_cookie().unwrap();
    assert_ne!(token, u.token);
    assert_eq!(app.get("/v1/me", &token).await.status, StatusCode::OK);

    // Both outcomes are in the audit trail, against the user.
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?actor_id={}", u.org_id, u.user_id),
            &u.token,
        )
        .await;
    let actions: Vec<&str> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"login.failed"), "{actions:?}");
    assert!(actions.contains(&"login.succeeded"), "{actions:?}");
}

async fn me_by_cookie_bearer_and_every_cookie_name(app: TestApp) {
    let u = app.user("me").await;
    for name in [
        "__Host-portcullis_session",
        "__Secure-portcullis_session",
        "portcullis_session",
    ] {
        let r = TestApp::send(
            app.req(Method::GET, "/v1/me")
                .header("cookie", format!("theme=dark; {name}={}", u.token)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!(r.body["user"]["id"], json!(u.user_id));
    }
    let r = app.get("/v1/me", &u.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["session"]["current"], true);
    // Cookie first: a bad bearer does not override a good cookie.
    let r = TestApp::send(
        app.req(Method::GET, "/v1/me")
            .header("cookie", format!("portcullis_session={}", u.token))
            .bearer_auth("garbage"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // A token that differs only by encoding is a different token.
    let r = app.get("/v1/me", &format!("{}%3D", u.token)).await;
    r.assert_error(401, "unauthenticated");
    app.get("/v1/me", "garbage+/=")
        .await
        .assert_error(401, "unauthenticated");
    TestApp::send(app.req(Method::GET, "/v1/me"))
        .await
        .assert_error(401, "unauthenticated");
}

async fn logout_revokes_the_session(app: TestApp) {
    let u = app.user("logout").await;
    assert_eq!(app.get("/v1/me", &u.token).await.status, StatusCode::OK);
    let r = TestApp::send(app.with_cookie(Method::POST, "/v1/auth/logout", &u.token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    app.get("/v1/me", &u.token)
        .await
        .assert_error(401, "unauthenticated");
    TestApp::send(app.with_cookie(Method::POST, "/v1/auth/logout", &u.token))
        .await
        .assert_error(401, "unauthenticated");
}

async fn revoking_another_session_takes_effect_at_once(app: TestApp) {
    let u = app.user("multi").await;
    let second = app
        .login(&u.email, "correct horse battery")
        .await
        .session_cookie()
        .unwrap();
    // Warm any cache with the second session first.
    assert_eq!(app.get("/v1/me", &second).await.status, StatusCode::OK);
    let list = app.get("/v1/sessions", &u.token).await;
    let sessions = list.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        TestApp::send(app.with_bearer(Method::DELETE, &format!("/v1/sessions/{other}"), &u.token))
            .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.get("/v1/me", &second)
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(app.get("/v1/me", &u.token).await.status, StatusCode::OK);
    // Again, or someone else's: not found.
    TestApp::send(app.with_bearer(Method::DELETE, &format!("/v1/sessions/{other}"), &u.token))
        .await
        .assert_error(404, "not_found");
    let mallory = app.user("mallory").await;
    let mine = app.get("/v1/sessions", &u.token).await.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/sessions/{mine}"),
        &mallory.token,
    ))
    .await
    .assert_error(404, "not_found");
    assert_eq!(app.get("/v1/me", &u.token).await.status, StatusCode::OK);
}

async fn project_context_header_is_required_and_checked(app: TestApp) {
    let u = app.user("ctx").await;
    let r = app.get("/v1/project", &u.token).await;
    r.assert_error(400, "invalid_request");
    assert!(r.body["message"].as_str().unwrap().contains("X-Project-ID"));
    assert_eq!(r.body["details"]["reason"], "missing");
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &u.token)
            .header("x-project-id", "not-a-uuid"),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["reason"], "malformed");
    // The header check comes first, even without credentials.
    TestApp::send(app.req(Method::GET, "/v1/project"))
        .await
        .assert_error(400, "invalid_request");
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &u.token)
            .header("x-project-id", &u.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], json!(u.project_id));

    // /v1/me resolves user, org and project together when a project is named.
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/me", &u.token)
            .header("x-project-id", &u.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["context"]["project"]["id"], json!(u.project_id));
    assert_eq!(r.body["context"]["org"]["id"], json!(u.org_id));
    assert_eq!(r.body["context"]["role"], "owner");
    assert!(
        app.get("/v1/me", &u.token)
            .await
            .body
            .get("context")
            .is_none()
    );
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/me", &u.token)
            .header("x-project-id", "nope"),
    )
    .await;
    r.assert_error(400, "invalid_request");
    let other = app.user("other").await;
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/me", &other.token)
            .header("x-project-id", &u.project_id),
    )
    .await;
    r.assert_error(404, "not_found");
}

async fn other_tenants_project_is_invisible(app: TestApp) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &bob.token)
            .header("x-project-id", &alice.project_id),
    )
    .await;
    r.assert_error(404, "not_found");
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &bob.token)
            .header("x-project-id", &alice.project_id)
            .json(&json!({"name": "pwned"})),
    )
    .await;
    r.assert_error(404, "not_found");
    app.get(&format!("/v1/orgs/{}", alice.org_id), &bob.token)
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/v1/orgs/{}/members", alice.org_id), &bob.token)
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/v1/orgs/{}/audit", alice.org_id), &bob.token)
        .await
        .assert_error(404, "not_found");

    // A member of the org who is not in a (non-default) project: 403.
    app.join(&alice.token, &alice.org_id, &bob, "member").await;
    let p = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", alice.org_id),
            &alice.token,
        )
        .json(&json!({"name": "Secret"})),
    )
    .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let secret = p.body["id"].as_str().unwrap();
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &bob.token)
            .header("x-project-id", secret),
    )
    .await;
    r.assert_error(403, "forbidden");
    // The default project they were added to is visible, read-only.
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &bob.token)
            .header("x-project-id", &alice.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &bob.token)
            .header("x-project-id", &alice.project_id)
            .json(&json!({"name": "x"})),
    )
    .await;
    r.assert_error(403, "forbidden");
    let list = app
        .get(&format!("/v1/orgs/{}/projects", alice.org_id), &bob.token)
        .await;
    let ids: Vec<&str> = list.body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![alice.project_id.as_str()]);
}

async fn removed_member_is_forbidden(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let members = format!("/v1/orgs/{}/members", owner.org_id);
    app.join(&owner.token, &owner.org_id, &member, "admin")
        .await;
    assert_eq!(
        app.get(&members, &member.token).await.status,
        StatusCode::OK
    );
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("{members}/{}", member.user_id),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get(&members, &member.token)
        .await
        .assert_error(403, "forbidden");
    app.get(&format!("/v1/orgs/{}", owner.org_id), &member.token)
        .await
        .assert_error(403, "forbidden");
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &member.token)
            .header("x-project-id", &owner.project_id),
    )
    .await;
    r.assert_error(403, "forbidden");
    let me = app.get("/v1/me", &member.token).await;
    assert_eq!(
        me.body["memberships"].as_array().unwrap().len(),
        1,
        "only their own org remains"
    );
    // Inviting them again and their accepting reactivates the membership.
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    assert_eq!(
        app.get(&members, &member.token).await.status,
        StatusCode::OK
    );
}

/// Org routes and project routes apply one rule (core `authz`): a caller whose membership
/// ended knows the org exists and is told 403; a stranger gets 404 from both.
async fn removed_member_gets_one_answer_from_org_and_project_routes(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let members = format!("/v1/orgs/{}/members", owner.org_id);
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    let org = format!("/v1/orgs/{}", owner.org_id);
    let project = |token: &str| {
        TestApp::send(
            app.with_bearer(Method::GET, "/v1/project", token)
                .header("x-project-id", &owner.project_id),
        )
    };
    // While a member, both answer 200.
    assert_eq!(app.get(&org, &member.token).await.status, StatusCode::OK);
    assert_eq!(project(&member.token).await.status, StatusCode::OK);

    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("{members}/{}", member.user_id),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let by_org = app.get(&org, &member.token).await;
    let by_project = project(&member.token).await;
    by_org.assert_error(403, "forbidden");
    by_project.assert_error(403, "forbidden");
    assert_eq!(by_org.body["message"], by_project.body["message"]);
    let with_context = TestApp::send(
        app.with_bearer(Method::GET, "/v1/me", &member.token)
            .header("x-project-id", &owner.project_id),
    )
    .await;
    with_context.assert_error(403, "forbidden");

    app.get(&org, &stranger.token)
        .await
        .assert_error(404, "not_found");
    project(&stranger.token)
        .await
        .assert_error(404, "not_found");
}

async fn members_lifecycle_and_owner_rules(app: TestApp) {
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let members = format!("/v1/orgs/{}/members", owner.org_id);
    let add = |token: String, email: String, role: &'static str| {
        let rb = app
            .with_bearer(Method::POST, &members, &token)
            .json(&json!({"email": email, "role": role}));
        TestApp::send(rb)
    };
    app.join(&owner.token, &owner.org_id, &admin, "admin").await;
    // Inviting a current member again: conflict.
    app.invite(&owner.token, &owner.org_id, &admin.email, "member")
        .await
        .assert_error(409, "conflict");
    add(owner.token.clone(), "bad".into(), "member")
        .await
        .assert_error(400, "invalid_request");
    let r = add(owner.token.clone(), "x@example.com".into(), "root").await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "role");
    // Admins may not create owners.
    add(admin.token.clone(), "y@example.com".into(), "owner")
        .await
        .assert_error(403, "forbidden");
    // Warm every cached view of the owner before their role changes.
    let before = app.get("/v1/me", &owner.token).await;
    assert_eq!(before.body["memberships"][0]["role"], "owner");
    assert_eq!(app.get("/v1/me", &owner.token).await.body, before.body);
    // Last owner cannot be demoted or removed.
    let me_path = format!("{members}/{}", owner.user_id);
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, &me_path, &owner.token)
            .json(&json!({"role": "member"})),
    )
    .await;
    r.assert_error(409, "conflict");
    TestApp::send(app.with_bearer(Method::DELETE, &me_path, &owner.token))
        .await
        .assert_error(409, "conflict");
    // Admin cannot touch the owner.
    TestApp::send(app.with_bearer(Method::DELETE, &me_path, &admin.token))
        .await
        .assert_error(403, "forbidden");
    // Promote admin to owner; then the first owner can step down.
    let admin_path = format!("{members}/{}", admin.user_id);
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, &admin_path, &owner.token)
            .json(&json!({"role": "owner"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "owner");
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, &me_path, &owner.token)
            .json(&json!({"role": "member"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Now a plain member: admin routes are forbidden, and the role change shows at once.
    add(owner.token.clone(), "z@example.com".into(), "member")
        .await
        .assert_error(403, "forbidden");
    let me = app.get("/v1/me", &owner.token).await;
    let m = me.body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["org"]["id"] == json!(owner.org_id))
        .unwrap()
        .clone();
    assert_eq!(m["role"], "member");
    // A member may leave by themselves.
    assert_eq!(
        TestApp::send(app.with_bearer(Method::DELETE, &me_path, &owner.token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let list = app.get(&members, &admin.token).await;
    assert_eq!(list.body["members"].as_array().unwrap().len(), 1);
    // Unknown member ids: 404.
    let r = TestApp::send(
        app.with_bearer(
            Method::PATCH,
            &format!("{members}/{}", uuid::Uuid::now_v7()),
            &admin.token,
        )
        .json(&json!({"role": "member"})),
    )
    .await;
    r.assert_error(404, "not_found");
}

/// A platform admin may add anyone directly (org admins only managed accounts: see
/// tests/security_members.rs); a created account gets a one-time password-setup link.
async fn admin_created_member_gets_default_project_and_audit(app: TestApp) {
    let owner = app.user("owner").await;
    make_platform_admin(&app, &owner).await;
    let rb = app
        .with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/members", owner.org_id),
            &owner.token,
        )
        .header("x-correlation-id", "add-member-42")
        .json(&json!({"email": "newhire@example.com", "role": "member", "name": "New Hire"}));
    let r = TestApp::send(rb).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["x-correlation-id"], "add-member-42");
    assert_eq!(r.body["user_created"], true);
    assert!(r.body["user"]["posix"]["uid"].as_u64().unwrap() >= 10_000);
    let new_id = r.body["user"]["id"].as_str().unwrap().to_owned();
    let audit = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?correlation_id=add-member-42",
                owner.org_id
            ),
            &owner.token,
        )
        .await;
    let events = audit.body["events"].as_array().unwrap();
    let created = events
        .iter()
        .find(|e| e["action"] == "user.created")
        .expect("user.created audited");
    assert_eq!(created["target"], json!(format!("user:{new_id}")));
    assert_eq!(created["actor_id"], json!(owner.user_id));
    assert_eq!(created["correlation_id"], "add-member-42");
    assert!(events.iter().any(|e| e["action"] == "member.added"));
    // The new user (no password yet) is in the default project.
    let members = app
        .get(&format!("/v1/orgs/{}/members", owner.org_id), &owner.token)
        .await;
    assert_eq!(members.body["members"].as_array().unwrap().len(), 2);
    app.login("newhire@example.com", "anything at all")
        .await
        .assert_error(401, "unauthenticated");
    // The setup link sets the first password once, and signs the user in.
    let setup = common::invitation_token(r.body["setup_url"].as_str().unwrap());
    assert!(setup.starts_with("pst_"), "{setup}");
    let set = |token: String| {
        TestApp::send(
            app.req(Method::POST, "/v1/auth/password-setup")
                .json(&json!({"token": token, "password": "a brand new password"})),
        )
    };
    let ok = set(setup.clone()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["user"]["id"], json!(new_id));
    assert!(ok.session_cookie().is_some());
    set(setup).await.assert_error(401, "ott_invalid");
    set("inv_not-a-setup-token".into())
        .await
        .assert_error(401, "ott_invalid");
    assert_eq!(
        app.login("newhire@example.com", "a brand new password")
            .await
            .status,
        StatusCode::OK
    );
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=user.password_set", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(audit.body["events"][0]["actor_id"], json!(new_id));
}

async fn make_platform_admin(app: &TestApp, who: &common::Signed) {
    app.state
        .store
        .set_platform_admin(
            portcullis_core::UserId::parse(&who.user_id).unwrap(),
            true,
            &portcullis_core::AuditContext::cli(),
        )
        .await
        .unwrap();
}

/// As a platform admin (org admins: only managed members, see tests/security_members.rs).
async fn org_admin_revokes_member_session(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    make_platform_admin(&app, &owner).await;
    assert_eq!(
        app.get("/v1/me", &member.token).await.status,
        StatusCode::OK
    );
    let list = app
        .get(&format!("/v1/orgs/{}/sessions", owner.org_id), &owner.token)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let sessions = list.body["sessions"].as_array().unwrap();
    assert!(
        sessions
            .iter()
            .all(|s| s["user_id"] != json!(outsider.user_id)),
        "outsiders' sessions are not listed"
    );
    let target = sessions
        .iter()
        .find(|s| s["user_id"] == json!(member.user_id))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A plain member may not list or revoke.
    app.get(
        &format!("/v1/orgs/{}/sessions", owner.org_id),
        &member.token,
    )
    .await
    .assert_error(403, "forbidden");
    // An outsider's session cannot be revoked through this org.
    let outsider_sid = app.get("/v1/sessions", &outsider.token).await.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sessions/{outsider_sid}", owner.org_id),
        &owner.token,
    ))
    .await
    .assert_error(404, "not_found");
    assert_eq!(
        app.get("/v1/me", &outsider.token).await.status,
        StatusCode::OK
    );
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sessions/{target}", owner.org_id),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.get("/v1/me", &member.token)
        .await
        .assert_error(401, "unauthenticated");
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=session.revoked", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(
        audit.body["events"][0]["target"],
        json!(format!("session:{target}"))
    );
}

async fn audit_query_by_correlation_id_and_cursor(app: TestApp) {
    let owner = app.user("owner").await;
    // Six projects: more than the free plan allows.
    app.on_plan(&owner.org_id, "team").await;
    for i in 0..5 {
        let rb = app
            .with_bearer(
                Method::POST,
                &format!("/v1/orgs/{}/projects", owner.org_id),
                &owner.token,
            )
            .header("x-correlation-id", format!("proj-{i}"))
            .json(&json!({"name": format!("P{i}")}));
        assert_eq!(TestApp::send(rb).await.status, StatusCode::CREATED);
    }
    let base = format!("/v1/orgs/{}/audit", owner.org_id);
    let r = app
        .get(&format!("{base}?correlation_id=proj-3"), &owner.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "project.created");
    assert_eq!(events[0]["details"]["name"], "P3");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["actor_id"], json!(owner.user_id));
    assert!(events[0]["ip"].as_str().unwrap().starts_with("127.0.0.1"));

    // Pages of two, newest first, until the cursor runs out.
    let mut seen = Vec::new();
    let mut url = format!("{base}?action=project.created&limit=2");
    loop {
        let page = app.get(&url, &owner.token).await;
        for e in page.body["events"].as_array().unwrap() {
            seen.push(e["correlation_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => url = format!("{base}?action=project.created&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.iter().filter(|c| c.starts_with("proj-")).count(), 5);
    assert_eq!(seen[0], "proj-4");
    let future = app
        .get(&format!("{base}?since=2999-01-01T00:00:00Z"), &owner.token)
        .await;
    assert_eq!(future.body["events"].as_array().unwrap().len(), 0);
    app.get(&format!("{base}?since=yesterday"), &owner.token)
        .await
        .assert_error(400, "invalid_request");
    app.get(&format!("{base}?limit=0"), &owner.token)
        .await
        .assert_error(400, "invalid_request");
    app.get(&format!("{base}?bogus=1"), &owner.token)
        .await
        .assert_error(400, "invalid_request");
}

async fn csrf_checks_cookie_mutations(app: TestApp) {
    let u = app.user("csrf").await;
    // Four projects: more than the free plan allows.
    app.on_plan(&u.org_id, "team").await;
    let path = format!("/v1/orgs/{}/projects", u.org_id);
    let cookie = format!("portcullis_session={}", u.token);
    let body = json!({"name": "From somewhere"});
    // Foreign origin, and no origin at all: refused.
    let r = TestApp::send(
        app.req(Method::POST, &path)
            .header("cookie", &cookie)
            .header("origin", "https://evil.example")
            .json(&body),
    )
    .await;
    r.assert_error(403, "forbidden");
    assert_eq!(r.body["details"]["reason"], "csrf");
    TestApp::send(
        app.req(Method::POST, &path)
            .header("cookie", &cookie)
            .json(&body),
    )
    .await
    .assert_error(403, "forbidden");
    TestApp::send(
        app.req(Method::POST, "/v1/auth/logout")
            .header("cookie", &cookie)
            .header("origin", "https://evil.example"),
    )
    .await
    .assert_error(403, "forbidden");
    // Same origin (Origin or Referer), or bearer: accepted.
    let r = TestApp::send(
        app.req(Method::POST, &path)
            .header("cookie", &cookie)
            .header("origin", &app.base)
            .json(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = TestApp::send(
        app.req(Method::POST, &path)
            .header("cookie", &cookie)
            .header("referer", format!("{}/console/x", app.base))
            .json(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = TestApp::send(app.with_bearer(Method::POST, &path, &u.token).json(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Reads need no origin.
    let r = TestApp::send(app.req(Method::GET, &path).header("cookie", &cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    // A project's allowed origin may change that project, and only that project.
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &u.token)
            .header("x-project-id", &u.project_id)
            .json(&json!({"allowed_origins": ["https://app.example.com"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = TestApp::send(
        app.req(Method::PATCH, "/v1/project")
            .header("cookie", &cookie)
            .header("origin", "https://app.example.com")
            .header("x-project-id", &u.project_id)
            .json(&json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    TestApp::send(
        app.req(Method::POST, &path)
            .header("cookie", &cookie)
            .header("origin", "https://app.example.com")
            .json(&body),
    )
    .await
    .assert_error(403, "forbidden");
    TestApp::send(
        app.req(Method::PATCH, "/v1/project")
            .header("cookie", &cookie)
            .header("origin", "https://other.example.com")
            .header("x-project-id", &u.project_id)
            .json(&json!({"name": "x"})),
    )
    .await
    .assert_error(403, "forbidden");
}

async fn project_patch_and_validation(app: TestApp) {
    let u = app.user("proj").await;
    let patch = |body: serde_json::Value| {
        TestApp::send(
            app.with_bearer(Method::PATCH, "/v1/project", &u.token)
                .header("x-project-id", &u.project_id)
                .json(&body),
        )
    };
    let r = patch(json!({"name": "Web", "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1:9000/cb"], "allowed_origins": ["https://app.example.com"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Web");
    assert_eq!(
        r.body["redirect_uris"],
        json!(["https://app.example.com/cb", "http://127.0.0.1:9000/cb"])
    );
    let r = patch(json!({"redirect_uris": ["http://evil.example.com/cb"]})).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "redirect_uris");
    patch(json!({"status": "paused"}))
        .await
        .assert_error(400, "invalid_request");
    patch(json!({"allowed_origins": ["https://a.example.com/path"]}))
        .await
        .assert_error(400, "invalid_request");
    patch(json!({"colour": "red"}))
        .await
        .assert_error(400, "invalid_request");
    // Refused patches changed nothing.
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &u.token)
            .header("x-project-id", &u.project_id),
    )
    .await;
    assert_eq!(r.body["redirect_uris"].as_array().unwrap().len(), 2);
    let r = patch(json!({"status": "disabled"})).await;
    assert_eq!(r.body["status"], "disabled");
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=project.updated", u.org_id),
            &u.token,
        )
        .await;
    assert_eq!(
        audit.body["events"][0]["details"]["changed"],
        json!(["status"])
    );
}

async fn orgs_create_list_get(app: TestApp) {
    let u = app.user("orgs").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &u.token)
            .json(&json!({"name": "Acme Inc", "slug": "acme-inc"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["org"]["slug"], "acme-inc");
    assert_eq!(r.body["project"]["org_id"], r.body["org"]["id"]);
    let acme = r.body["org"]["id"].as_str().unwrap().to_owned();
    TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &u.token)
            .json(&json!({"name": "Acme 2", "slug": "acme-inc"})),
    )
    .await
    .assert_error(409, "conflict");
    TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &u.token)
            .json(&json!({"name": "Bad", "slug": "Bad Slug"})),
    )
    .await
    .assert_error(400, "invalid_request");
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &u.token)
            .json(&json!({"name": "Derived Name"})),
    )
    .await;
    assert!(
        r.body["org"]["slug"]
            .as_str()
            .unwrap()
            .starts_with("derived-name-")
    );
    let list = app.get("/v1/orgs", &u.token).await;
    assert_eq!(list.body["orgs"].as_array().unwrap().len(), 3);
    let got = app.get(&format!("/v1/orgs/{acme}"), &u.token).await;
    assert_eq!(got.body["name"], "Acme Inc");
    app.get(&format!("/v1/orgs/{}", uuid::Uuid::now_v7()), &u.token)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/orgs/not-a-uuid", &u.token)
        .await
        .assert_error(404, "not_found");
    let me = app.get("/v1/me", &u.token).await;
    assert_eq!(me.body["memberships"].as_array().unwrap().len(), 3);
}

async fn operations_endpoints(app: TestApp) {
    let r = TestApp::send(app.req(Method::GET, "/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = TestApp::send(app.req(Method::GET, "/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    let u = app.user("metrics").await;
    app.get("/v1/me", &u.token).await;
    app.get("/v1/me", "nope").await;
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"/v1/me\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("route=\"/v1/me\",status=\"401\"} 1"));
    assert!(text.contains("portcullis_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/auth/signup\",status=\"201\",le=\"+Inf\"} 1"));
    let r = TestApp::send(app.req(Method::GET, "/openapi.json")).await;
    assert_eq!(r.body["openapi"], "3.1.0");
    assert!(r.body["paths"]["/v1/me"]["get"].is_object());
}

async fn errors_use_the_envelope_everywhere(app: TestApp) {
    let r = TestApp::send(
        app.req(Method::GET, "/no/such/route")
            .header("x-correlation-id", "trace-me.1:2"),
    )
    .await;
    r.assert_error(404, "not_found");
    assert_eq!(r.body["correlation_id"], "trace-me.1:2");
    let r = TestApp::send(
        app.req(Method::GET, "/v1/me")
            .header("x-correlation-id", "bad id with spaces"),
    )
    .await;
    r.assert_error(401, "unauthenticated");
    assert_ne!(r.body["correlation_id"], "bad id with spaces");
    let r = TestApp::send(app.req(Method::PUT, "/v1/me")).await;
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(r.code(), "invalid_request");
    let ok = TestApp::send(app.req(Method::GET, "/healthz")).await;
    assert_eq!(ok.headers["x-correlation-id"].to_str().unwrap().len(), 32);
}
