#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Project context (`X-Project-ID`) and project settings, on SQLite and PostgreSQL.

use crate::common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    project_context_header_is_required_and_checked,
    other_tenants_project_is_invisible,
    project_patch_and_validation,
);

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
