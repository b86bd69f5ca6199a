#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The console's keys page of a project over HTTP, on both backends: the publishable key,
//! rotation with a grace period through the platform service (the new secret shown once,
//! then only its prefix; audited `key.rotated`), the superseded-key warning while an old
//! key is inside its grace, the cap on working keys, members refused (403 page naming the admin role) and other
//! tenants shown nothing (404, no key made).

use crate::common;
use crate::console_pages::{assert_page_error, csrf_of, page, post_form, text};

use common::{Signed, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

both_backends!(keys_page_rotates_with_grace, keys_page_is_admin_only);

async fn api_keys(app: &TestApp, who: &Signed) -> Value {
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project/keys", &who.token)
            .header("x-project-id", &who.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The keys page's rotate form, posted as `token` with `fields` (the form token among them).
async fn rotate(app: &TestApp, page: &str, token: &str, fields: &[(&str, &str)]) -> common::Reply {
    post_form(app, &format!("{page}/rotate"), token, fields).await
}

/// How many secret keys the API lists for `who`'s project.
async fn secret_key_count(app: &TestApp, who: &Signed) -> usize {
    api_keys(app, who).await["secret_keys"]
        .as_array()
        .unwrap()
        .len()
}

/// The secret in a page that shows one.
fn secret_of(html: &str) -> String {
    let marker = "id=\"secret-key\" readonly value=\"";
    let at = html.find(marker).expect("a secret key") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

async fn keys_page_rotates_with_grace(app: TestApp) {
    let admin = app.user("keys").await;
    let base = format!(
        "/console/orgs/{}/projects/{}/keys",
        admin.org_id, admin.project_id
    );
    let r = page(&app, &base, &admin.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let html = text(&r);
    let publishable = api_keys(&app, &admin).await["publishable_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(html.contains(&publishable), "the publishable key is shown");
    assert!(html.contains("No secret key yet."));
    assert!(!html.contains("superseded-warning"));
    let csrf = csrf_of(&html);
    // The projects page links here for the project's admins.
    let projects = page(
        &app,
        &format!("/console/orgs/{}/projects", admin.org_id),
        &admin.token,
    )
    .await;
    assert!(text(&projects).contains(&format!("href=\"{base}\"")));

    // Without the form token nothing is issued.
    let r = rotate(&app, &base, &admin.token, &[("grace_seconds", "0")]).await;
    assert_page_error(&r, 403);
    assert_eq!(
        api_keys(&app, &admin).await["secret_keys"],
        serde_json::json!([])
    );

    // The first key: shown once, then only its prefix.
    let r = rotate(
        &app,
        &base,
        &admin.token,
        &[("grace_seconds", "0"), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["pragma"], "no-cache");
    let first = secret_of(&text(&r));
    assert!(first.starts_with("sk_live_"), "{first}");
    let shown = text(&page(&app, &base, &admin.token).await);
    assert!(!shown.contains(&first), "the secret is shown once only");
    assert!(shown.contains(&first[..16]), "its prefix stays");
    assert!(
        !shown.contains("superseded-warning"),
        "nothing superseded yet"
    );

    // A grace the API refuses is the API's 400; nothing issued.
    let r = rotate(
        &app,
        &base,
        &admin.token,
        &[("grace_seconds", "99999999"), ("csrf_token", &csrf)],
    )
    .await;
    assert_page_error(&r, 400);
    assert!(text(&r).contains("30 days"), "{}", text(&r));
    assert_eq!(secret_key_count(&app, &admin).await, 1);

    // Rotate with a day's grace: the old key is superseded, the page warns until when.
    let r = rotate(
        &app,
        &base,
        &admin.token,
        &[("grace_seconds", "86400"), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let second = secret_of(&text(&r));
    assert_ne!(first, second);
    let listed = api_keys(&app, &admin).await;
    let keys = listed["secret_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{listed}");
    assert_eq!(keys[0]["prefix"], serde_json::json!(&second[..16]));
    let expires = keys[1]["expires_at"].as_str().unwrap();
    // `2026-12-07T07:12:00Z` is shown as `2026-12-07 07:12 UTC`.
    let shown_expiry = format!("{} {} UTC", &expires[..10], &expires[11..16]);
    let html = text(&page(&app, &base, &admin.token).await);
    assert!(html.contains("id=\"superseded-warning\""), "{html}");
    assert!(
        html.contains(&format!(
            "a newer key exists; this one stops working at {shown_expiry}"
        )),
        "{html}"
    );
    assert!(!html.contains(&second), "the new secret is not shown again");

    // Audited like the API's rotation, with prefixes only.
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=key.rotated", admin.org_id),
            &admin.token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let events = audit.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{}", audit.body);
    assert!(!audit.body.to_string().contains(&second));

    // The cap on working keys is the API's: the page says what to do, nothing is issued.
    let limit = portcullis_core::plan::MAX_WORKING_SECRET_KEYS as usize;
    for _ in 2..limit {
        let r = rotate(
            &app,
            &base,
            &admin.token,
            &[("grace_seconds", "86400"), ("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    }
    let r = rotate(
        &app,
        &base,
        &admin.token,
        &[("grace_seconds", "86400"), ("csrf_token", &csrf)],
    )
    .await;
    assert_page_error(&r, 409);
    assert!(text(&r).contains("grace_seconds = 0"), "{}", text(&r));
    assert!(!text(&r).contains("id=\"secret-key\""), "no secret shown");
    assert_eq!(secret_key_count(&app, &admin).await, limit);

    // Rotating with no grace ends the old keys now: no warning any more.
    rotate(
        &app,
        &base,
        &admin.token,
        &[("grace_seconds", "0"), ("csrf_token", &csrf)],
    )
    .await;
    let html = text(&page(&app, &base, &admin.token).await);
    assert!(!html.contains("superseded-warning"), "{html}");
}

async fn keys_page_is_admin_only(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    let base = format!(
        "/console/orgs/{}/projects/{}/keys",
        owner.org_id, owner.project_id
    );

    // A member: the refusal page naming the role to ask for; nothing issued.
    let r = page(&app, &base, &member.token).await;
    assert_page_error(&r, 403);
    assert!(text(&r).contains("admin role"), "{}", text(&r));
    let member_csrf = csrf_of(&text(&page(&app, "/console/account", &member.token).await));
    let r = rotate(
        &app,
        &base,
        &member.token,
        &[("grace_seconds", "0"), ("csrf_token", &member_csrf)],
    )
    .await;
    assert_page_error(&r, 403);
    assert!(!text(&r).contains("sk_live_"));

    // Another org's person: the same 404 as a project that does not exist, through the
    // owner's org and through their own org's path.
    let outsider_csrf = csrf_of(&text(
        &page(&app, "/console/account", &outsider.token).await,
    ));
    let crossed = format!(
        "/console/orgs/{}/projects/{}/keys",
        outsider.org_id, owner.project_id
    );
    for path in [base.clone(), crossed] {
        assert_page_error(&page(&app, &path, &outsider.token).await, 404);
        let r = rotate(
            &app,
            &path,
            &outsider.token,
            &[("grace_seconds", "0"), ("csrf_token", &outsider_csrf)],
        )
        .await;
        assert_page_error(&r, 404);
    }
    // The owner's own page under the outsider's org id is not found either.
    let mixed = format!(
        "/console/orgs/{}/projects/{}/keys",
        outsider.org_id, owner.project_id
    );
    assert_page_error(&page(&app, &mixed, &owner.token).await, 404);
    assert_eq!(
        api_keys(&app, &owner).await["secret_keys"],
        serde_json::json!([]),
        "no key was issued"
    );
}
