//! A user's own sign-ins and sign-outs reach the orgs that manage them (active member, email
//! in one of the org's verified domains) — and no other org, nor for an unmanaged member.

use crate::common;

use common::receiver::Receiver;
use common::{Signed, TestApp};
use portcullis_core::{AuditContext, UserId};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HOOKS: &str = "/v1/project/webhooks";
const SESSION_EVENTS: [&str; 2] = ["session.created", "session.revoked"];

both_backends!(configured quick:
    a_managed_members_sign_in_and_out_reach_their_org_only => |_c: &mut Config| {},
);

/// No polling to speak of: the sign-in's unit wakes the worker (its managed-member rows are
/// found only at commit).
fn quick(c: &mut Config) {
    c.webhooks.fallback_poll_ms = 60_000;
}

/// An endpoint of `who`'s project, subscribed to session events, at the receiver's `name`.
async fn session_endpoint(app: &TestApp, rx: &Receiver, who: &Signed, name: &str) -> String {
    let r = TestApp::send(
        app.with_bearer(Method::POST, HOOKS, &who.token)
            .header("x-project-id", &who.project_id)
            .json(&json!({"url": rx.url(name), "events": SESSION_EVENTS})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    rx.configure(name, &[r.body["secret"].as_str().unwrap()], 0, 0, 0)
        .await;
    r.body["id"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, who: &Signed, id: &str) -> Vec<Value> {
    let r = TestApp::send(
        app.with_bearer(Method::GET, &format!("{HOOKS}/{id}/deliveries"), &who.token)
            .header("x-project-id", &who.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["deliveries"].as_array().unwrap().clone()
}

async fn verify_domain(app: &TestApp, org: &str, domain: &str) {
    let operator = app.user("operator").await;
    app.state
        .store
        .accounts()
        .set_platform_admin(
            UserId::parse(&operator.user_id).unwrap(),
            true,
            &AuditContext::cli(),
        )
        .await
        .unwrap();
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

/// Signs in and out with a password; the session's id.
async fn sign_in_and_out(app: &TestApp, email: &str) -> String {
    let login = app.login(email, "correct horse battery").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let sid = login.body["session"]["id"].as_str().unwrap().to_owned();
    let out = TestApp::send(app.with_cookie(
        Method::POST,
        "/v1/auth/logout",
        &login.session_cookie().unwrap(),
    ))
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    sid
}

async fn a_managed_members_sign_in_and_out_reach_their_org_only(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    verify_domain(&app, &owner.org_id, "hooks.test").await;
    let hook = session_endpoint(&app, &rx, &owner, "owner").await;
    // Another org, in which Ann is a member too, but not a managed one.
    let other = app.user("other").await;
    let other_hook = session_endpoint(&app, &rx, &other, "other").await;

    let ann = app.signup("ann@hooks.test", "correct horse battery").await;
    assert_eq!(ann.status, StatusCode::CREATED, "{}", ann.body);
    let ann_id = ann.body["user"]["id"].as_str().unwrap().to_owned();
    let ann_signed = Signed {
        token: ann.session_cookie().unwrap(),
        user_id: ann_id.clone(),
        org_id: ann.body["org"]["id"].as_str().unwrap().to_owned(),
        project_id: ann.body["project"]["id"].as_str().unwrap().to_owned(),
        email: "ann@hooks.test".into(),
    };
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/members", owner.org_id),
            &owner.token,
        )
        .json(&json!({"email": "ann@hooks.test", "role": "member"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["managed"], true);
    app.join(&other.token, &other.org_id, &ann_signed, "member")
        .await;
    // Bob is a member of the owner's org, outside its verified domain: unmanaged.
    let bob = app.user("bob").await;
    app.join(&owner.token, &owner.org_id, &bob, "member").await;
    sign_in_and_out(&app, &bob.email).await;

    let sid = sign_in_and_out(&app, "ann@hooks.test").await;
    // Revoking one's own other session (`DELETE /v1/sessions/{id}`) is announced too.
    let second = app.login("ann@hooks.test", "correct horse battery").await;
    let second_sid = second.body["session"]["id"].as_str().unwrap().to_owned();
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/sessions/{second_sid}"),
        &ann_signed.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let got = rx.wait_for("owner", 30, |g| g.len() >= 4).await;
    assert!(got.iter().all(|r| r["verified"] == true), "{got:#?}");
    let log = loop {
        let log = deliveries(&app, &owner, &hook).await;
        if log.len() >= 4 && log.iter().all(|d| d["status"] == "succeeded") {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Only Ann's events: Bob's sign-in and sign-out (before hers) were never queued.
    assert_eq!(log.len(), 4, "{log:#?}");
    for (session, ty) in [
        (&sid, "session.created"),
        (&sid, "session.revoked"),
        (&second_sid, "session.created"),
        (&second_sid, "session.revoked"),
    ] {
        let n = log
            .iter()
            .filter(|d| {
                d["event_type"] == ty && d["payload"]["data"]["session_id"] == session.as_str()
            })
            .count();
        assert_eq!(n, 1, "{ty} of {session}: {log:#?}");
    }
    for d in &log {
        let data = &d["payload"]["data"];
        assert_eq!(data["user_id"], ann_id.as_str(), "{d}");
        assert_eq!(data["org_id"], owner.org_id.as_str(), "{d}");
        let text = d["payload"].to_string();
        assert!(!text.contains("token") && !text.contains("hash"), "{text}");
    }
    // The org in which Ann is not managed heard nothing, nor of Bob.
    assert!(deliveries(&app, &other, &other_hook).await.is_empty());
    assert!(rx.received("other").await.is_empty());
}
