#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Organizations, members, org sessions and the audit log, on SQLite and PostgreSQL.

use crate::common::{self, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    removed_member_is_forbidden,
    removed_member_gets_one_answer_from_org_and_project_routes,
    members_lifecycle_and_owner_rules,
    admin_created_member_gets_default_project_and_audit,
    org_admin_revokes_member_session,
    audit_query_by_correlation_id_and_cursor,
    orgs_create_list_get,
);

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
/// tests/orgs/members_consent.rs); a created account gets a one-time password-setup link.
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
        .accounts()
        .set_platform_admin(
            portcullis_core::UserId::parse(&who.user_id).unwrap(),
            true,
            &portcullis_core::AuditContext::cli(),
        )
        .await
        .unwrap();
}

/// As a platform admin (org admins: only managed members, see tests/orgs/members_consent.rs).
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
