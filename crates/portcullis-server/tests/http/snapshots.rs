#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Snapshot tests (insta) of the error envelope for every code the API answers without special
//! set-up, and of the main JSON bodies. Values that differ per run (ids, times, tokens,
//! correlation ids) are replaced by placeholders first, so a snapshot changes only when the
//! shape or a stable value does. Both backends must produce the same snapshot.
//!
//! Review a change with `cargo insta review` (or set INSTA_UPDATE=always and read the diff).

use crate::common;

use common::TestApp;
use reqwest::Method;
use serde_json::{Map, Value, json};

both_backends!(error_envelopes, main_bodies);

/// Replaces per-run values by placeholders named after what they are.
fn stable(v: &Value) -> Value {
    fn key_placeholder(key: &str) -> Option<&'static str> {
        match key {
            "correlation_id" => Some("[correlation_id]"),
            "email" => Some("[email]"),
            "slug" => Some("[slug]"),
            "uid" | "gid" => Some("[posix]"),
            "version" | "commit" => Some("[build]"),
            "client_secret" | "token" | "access_token" | "refresh_token" => Some("[secret]"),
            k if k == "id" || k.ends_with("_id") => Some("[id]"),
            k if k.ends_with("_at") => Some("[time]"),
            _ => None,
        }
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let placeholder = key_placeholder(k).filter(|_| v.is_string() || v.is_number());
                out.insert(
                    k.clone(),
                    placeholder.map_or_else(|| stable(v), |p| Value::String(p.into())),
                );
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(stable).collect()),
        Value::String(s) if s.contains("@example.com") => Value::String("[email]".into()),
        other => other.clone(),
    }
}

/// An error answer as a snapshot: its status and its envelope.
fn envelope(r: &common::Reply) -> Value {
    json!({"status": r.status.as_u16(), "body": stable(&r.body)})
}

async fn error_envelopes(app: TestApp) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut seen = Map::new();
    let mut record = |name: &str, r: common::Reply| {
        seen.insert(name.to_owned(), envelope(&r));
    };
    record(
        "unauthenticated",
        TestApp::send(app.req(Method::GET, "/v1/me")).await,
    );
    record(
        "invalid_request_unknown_field",
        TestApp::send(
            app.req(Method::POST, "/v1/auth/signup")
                .json(&json!({"email": "x@example.com", "password": "correct horse battery", "nickname": "x"})),
        )
        .await,
    );
    record(
        "invalid_request_project_header",
        TestApp::send(
            app.with_bearer(Method::GET, "/v1/project", &alice.token)
                .header("x-project-id", "not-a-uuid"),
        )
        .await,
    );
    record(
        "wrong_password",
        app.login(&alice.email, "not the password at all").await,
    );
    record(
        "conflict_duplicate_email",
        app.signup(&alice.email, "correct horse battery").await,
    );
    record(
        "not_found_other_tenant",
        app.get(&format!("/v1/orgs/{}", bob.org_id), &alice.token)
            .await,
    );
    record(
        "not_found_route",
        TestApp::send(app.req(Method::GET, "/v1/no-such-route")).await,
    );
    record(
        "method_not_allowed",
        TestApp::send(app.req(Method::PUT, "/v1/me")).await,
    );
    record(
        "forbidden_csrf",
        TestApp::send(
            app.req(Method::POST, "/v1/orgs")
                .header("cookie", format!("portcullis_session={}", alice.token))
                .header("origin", "https://evil.example")
                .json(&json!({"name": "Evil"})),
        )
        .await,
    );
    record(
        "ott_invalid",
        TestApp::send(
            app.req(Method::POST, "/api/v1/mobile/auth/exchange")
                .json(&json!({
                    "ott": "ott_nonsense", "state": "s", "code_verifier": "v".repeat(43),
                    "device": {"platform": "ios"}
                })),
        )
        .await,
    );
    insta::assert_json_snapshot!("error_envelopes", Value::Object(seen));
}

async fn main_bodies(app: TestApp) {
    let r = app
        .signup("snap@example.com", "correct horse battery")
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let token = r.session_cookie().expect("cookie");
    let signup = stable(&r.body);
    let ok = |r: common::Reply| {
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        stable(&r.body)
    };
    let login = ok(app.login("snap@example.com", "correct horse battery").await);
    let me = ok(app.get("/v1/me", &token).await);
    let sessions = ok(app.get("/v1/sessions", &token).await);
    let orgs = ok(app.get("/v1/orgs", &token).await);
    let project_id = r.body["project"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let project = ok(TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &token)
            .header("x-project-id", &project_id),
    )
    .await);
    let created = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/clients", &token)
            .header("x-project-id", &project_id)
            .json(&json!({
                "name": "Snapshot app",
                "type": "confidential",
                "redirect_uris": ["https://app.example.com/callback"],
            })),
    )
    .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert!(
        created.body["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("pcs_")),
        "the secret is shown once, on creation: {}",
        created.body
    );
    let client = stable(&created.body);
    let capabilities =
        ok(TestApp::send(app.req(Method::GET, "/api/v1/mobile/auth/capabilities")).await);
    insta::assert_json_snapshot!(
        "main_bodies",
        json!({
            "signup": signup,
            "login": login,
            "me": me,
            "sessions": sessions,
            "orgs": orgs,
            "project": project,
            "client_created": client,
            "mobile_capabilities": capabilities,
        })
    );
}
