#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `/v1/me` and a user's own sessions, through a real server on SQLite and PostgreSQL.

use crate::common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    me_by_cookie_bearer_and_every_cookie_name,
    revoking_another_session_takes_effect_at_once,
);

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
