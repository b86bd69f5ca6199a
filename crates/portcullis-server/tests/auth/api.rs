#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Sign-up, sign-in, sign-out and the CSRF check, through a real server on SQLite and PostgreSQL.

use crate::common::{self, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    signup_creates_account_org_project_and_cookie,
    signup_rejects_duplicates_unknown_fields_and_bad_values,
    concurrent_signups_with_one_email_yield_one_account,
    login_failures_are_indistinguishable,
    logout_revokes_the_session,
    csrf_checks_cookie_mutations,
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
    // `Origin: null` is an opaque origin: refused, and the Referer it carries (our own
    // page) does not count instead.
    let r = TestApp::send(
        app.req(Method::POST, &path)
            .header("cookie", &cookie)
            .header("origin", "null")
            .header("referer", format!("{}/console/x", app.base))
            .json(&body),
    )
    .await;
    r.assert_error(403, "forbidden");
    assert_eq!(r.body["details"]["reason"], "csrf");
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
