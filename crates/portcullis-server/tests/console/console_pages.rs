#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The admin console at `/console`: its edge over plain HTTP (headers, sign-in, CSRF,
//! tenants) on both backends, and its pages in a real Chromium (Debian's
//! `/usr/bin/chromium`, driven by `conformance/console.mjs` with playwright-core and
//! axe-core): every page on SQLite, the main path again on PostgreSQL.
//!
//! Needs Node.js, `npm ci --prefix conformance` and `apt-get install chromium` (`.ci/run`
//! does both); without them these tests fail, they never skip. Screenshots go to
//! `$CONSOLE_SCREENSHOTS` (default: a `portcullis-console-screenshots` folder in the
//! system's temp dir).

use crate::common;

use std::path::PathBuf;

use common::{Backend, Signed, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

both_backends!(
    root_and_headers,
    forms_need_this_sessions_token,
    other_tenants_stay_invisible,
    markup_is_escaped,
    operators_see_the_doctor,
    sign_in_returns_only_into_the_console,
    a_revoked_session_is_sent_to_sign_in,
);
both_backends!(backend: browser_paths);

pub(crate) fn text(r: &common::Reply) -> String {
    r.body.as_str().map(str::to_owned).unwrap_or_default()
}

/// The form token on a console page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("a form token")
        + 25;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

pub(crate) async fn page(app: &TestApp, path: &str, token: &str) -> common::Reply {
    TestApp::send(
        app.req(Method::GET, path)
            .header("cookie", format!("portcullis_session={token}"))
            .header("accept", "text/html"),
    )
    .await
}

pub(crate) async fn post_form(
    app: &TestApp,
    path: &str,
    token: &str,
    form: &[(&str, &str)],
) -> common::Reply {
    TestApp::send(
        app.with_cookie(Method::POST, path, token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap()),
    )
    .await
}

/// An error page of the console: the status, and the correlation id of its header shown
/// in the page.
pub(crate) fn assert_page_error(r: &common::Reply, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", text(r));
    let id = r.headers["x-correlation-id"].to_str().unwrap();
    assert!(
        text(r).contains(id),
        "the page shows its correlation id {id}"
    );
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn root_and_headers(app: TestApp) {
    let r = TestApp::send(app.req(Method::GET, "/").header("accept", "text/html")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/console");
    let r = TestApp::send(
        app.req(Method::GET, "/")
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["console"], "/console");
    assert_eq!(r.body["openapi"], "/openapi.json");

    let r = TestApp::send(app.req(Method::GET, "/console/orgs/x/audit?action=a")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers["location"],
        "/console/login?return_to=%2Fconsole%2Forgs%2Fx%2Faudit%3Faction%3Da"
    );

    let r = TestApp::send(app.req(Method::GET, "/console/login")).await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["cache-control"], "no-store");
    // Plain http: no HSTS (it is sent only when the public URL is https).
    assert!(r.headers.get("strict-transport-security").is_none());
    let html = text(&r);
    assert!(!html.contains("<script>"), "no inline script");
    let css = &html[html.find("/console/assets/console.css?v=").unwrap()..];
    let css = &css[..css.find('"').unwrap()];

    let r = TestApp::send(app.req(Method::GET, css)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = TestApp::send(app.req(Method::GET, css).header("if-none-match", &etag)).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = TestApp::send(app.req(Method::GET, "/console/assets/secrets.txt")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An unknown console path is the console's 404 page, not the API's JSON.
    let r = TestApp::send(app.req(Method::GET, "/console/no/such/page")).await;
    assert_page_error(&r, 404);
}

async fn https_sends_hsts(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.public_url = Some("https://auth.example.com".into());
    })
    .await;
    let r = TestApp::send(app.req(Method::GET, "/console/login")).await;
    assert!(
        r.headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}
both_backends!(backend: https_sends_hsts);

async fn forms_need_this_sessions_token(app: TestApp) {
    let admin = app.user("admin").await;
    let other = app.user("other").await;
    let members = format!("/console/orgs/{}/members", admin.org_id);
    let r = page(&app, &members, &admin.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let csrf = csrf_of(&text(&r));
    let invite = format!("/console/orgs/{}/invitations", admin.org_id);

    // No token, another session's token, or a foreign origin: refused, nothing made.
    let other_csrf = csrf_of(&text(&page(&app, "/console/account", &other.token).await));
    for form in [
        vec![("email", "x@example.org"), ("role", "member")],
        vec![
            ("email", "x@example.org"),
            ("role", "member"),
            ("csrf_token", other_csrf.as_str()),
        ],
    ] {
        let r = post_form(&app, &invite, &admin.token, &form).await;
        assert_page_error(&r, 403);
        assert!(text(&r).contains("What to ask for"));
    }
    let r = TestApp::send(
        app.req(Method::POST, &invite)
            .header("cookie", format!("portcullis_session={}", admin.token))
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "email=x%40example.org&role=member&csrf_token={csrf}"
            )),
    )
    .await;
    assert_page_error(&r, 403);
    let list = app
        .get(
            &format!("/v1/orgs/{}/invitations", admin.org_id),
            &admin.token,
        )
        .await;
    assert_eq!(
        list.body["invitations"],
        serde_json::json!([]),
        "{}",
        list.body
    );

    // With it: the link is shown once, on the page.
    let r = post_form(
        &app,
        &invite,
        &admin.token,
        &[
            ("email", "x@example.org"),
            ("role", "member"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("/invitations/accept#token=inv_"));
    // A bad address stays on the form (400), beside its field.
    let r = post_form(
        &app,
        &invite,
        &admin.token,
        &[
            ("email", "not-an-email"),
            ("role", "member"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("aria-invalid=\"true\""));
}

async fn other_tenants_stay_invisible(app: TestApp) {
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    let csrf = csrf_of(&text(
        &page(&app, "/console/account", &outsider.token).await,
    ));
    let org = &owner.org_id;
    let invited = app
        .invite(&owner.token, org, "pending@example.org", "member")
        .await;
    let invitation = invited.body["id"].as_str().unwrap().to_owned();
    for path in [
        format!("/console/orgs/{org}/members"),
        format!("/console/orgs/{org}/sessions"),
        format!("/console/orgs/{org}/audit"),
        format!("/console/orgs/{org}/audit/export?format=csv"),
        format!("/console/orgs/{org}/projects"),
        format!("/console/orgs/{org}/domains"),
        format!("/console/orgs/{org}/mobile"),
        "/console/orgs/not-a-uuid/members".to_owned(),
    ] {
        let r = page(&app, &path, &outsider.token).await;
        assert_page_error(&r, 404);
    }
    let sessions = app.get("/v1/sessions", &owner.token).await;
    let sid = sessions.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, form) in [
        (format!("/console/orgs/{org}/sessions/{sid}/revoke"), vec![]),
        (
            format!("/console/orgs/{org}/members/{}/role", member.user_id),
            vec![("role", "owner")],
        ),
        (
            format!("/console/orgs/{org}/members/{}/remove", member.user_id),
            vec![],
        ),
        (
            format!("/console/orgs/{org}/invitations"),
            vec![("email", "y@example.org"), ("role", "owner")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf_token", csrf.as_str()));
        let r = post_form(&app, &path, &outsider.token, &form).await;
        assert_page_error(&r, 404);
    }
    // Someone else's session is not one's own to revoke from the account page.
    let r = post_form(
        &app,
        &format!("/console/account/sessions/{sid}/revoke"),
        &outsider.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_page_error(&r, 404);

    // Nothing changed: the owner's session lives, the member is still a member, the
    // invitation is pending, no domain was claimed.
    assert_eq!(app.get("/v1/me", &owner.token).await.status, StatusCode::OK);
    let pending = app
        .get(&format!("/v1/orgs/{org}/invitations"), &owner.token)
        .await;
    assert_eq!(pending.body["invitations"][0]["id"], invitation.as_str());
    let domains = app
        .get(&format!("/v1/orgs/{org}/domains"), &owner.token)
        .await;
    assert_eq!(
        domains.body["domains"],
        serde_json::json!([]),
        "{}",
        domains.body
    );
    let members = app
        .get(&format!("/v1/orgs/{org}/members"), &owner.token)
        .await;
    let row = members.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == member.user_id.as_str())
        .expect("still a member");
    assert_eq!(row["role"], "member");

    let project = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id),
    )
    .await;
    assert_eq!(project.body["status"], "active", "{}", project.body);

    // The platform pages are for operators only.
    for path in ["/console/platform", "/console/platform/doctor"] {
        let r = page(&app, path, &outsider.token).await;
        assert_page_error(&r, 403);
        assert!(text(&r).contains("platform operators"));
    }

    // A member of the org is refused the admin pages with the refusal page (the API's 403).
    let r = page(
        &app,
        &format!("/console/orgs/{org}/sessions"),
        &member.token,
    )
    .await;
    assert_page_error(&r, 403);
    assert!(text(&r).contains("What to ask for"));
    let r = page(&app, &format!("/console/orgs/{org}/members"), &member.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !text(&r).contains("Send invitation"),
        "members see no admin forms"
    );
}

/// What people type is shown as text, never as markup.
async fn markup_is_escaped(app: TestApp) {
    let who = app.user("who").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &who.token)
            .json(&serde_json::json!({"name": "<script>alert(1)</script> & co"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let org = r.body["org"]["id"].as_str().unwrap().to_owned();
    let html = text(&page(&app, &format!("/console/orgs/{org}/members"), &who.token).await);
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; co"),
        "{html}"
    );
    // A filter value comes back in the form, escaped.
    let html = text(
        &page(
            &app,
            &format!("/console/orgs/{org}/audit?action=%22%3E%3Cimg%20src%3Dx%3E"),
            &who.token,
        )
        .await,
    );
    assert!(!html.contains("\"><img src=x>"), "{html}");
}

async fn sign_in_returns_only_into_the_console(app: TestApp) {
    let who = app.user("who").await;
    for (return_to, expected) in [
        ("/console/account", "/console/account"),
        ("//evil.example/console", "/console"),
        ("https://evil.example/", "/console"),
        ("/v1/me", "/console"),
    ] {
        let r = TestApp::send(
            app.req(Method::POST, "/console/login")
                .header("origin", &app.base)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    serde_urlencoded::to_string([
                        ("email", who.email.as_str()),
                        ("password", PASSWORD),
                        ("return_to", return_to),
                    ])
                    .unwrap(),
                ),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
        assert_eq!(r.headers["location"], expected, "{return_to}");
        assert!(r.session_cookie().is_some());
    }
    // A wrong password: the form again, 401, with the reference the audit log knows.
    let r = TestApp::send(
        app.req(Method::POST, "/console/login")
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "email={}&password=wrong",
                who.email.replace('@', "%40")
            )),
    )
    .await;
    assert_page_error(&r, 401);
    assert!(r.session_cookie().is_none());
    // From another site: refused before any password is checked.
    let r = TestApp::send(
        app.req(Method::POST, "/console/login")
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=a%40b.c&password=x"),
    )
    .await;
    assert_page_error(&r, 403);
}

async fn a_revoked_session_is_sent_to_sign_in(app: TestApp) {
    let who = app.user("who").await;
    let r = page(&app, "/console/account", &who.token).await;
    assert_eq!(r.status, StatusCode::OK);
    let csrf = csrf_of(&text(&r));
    let r = post_form(
        &app,
        "/console/logout",
        &who.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    let r = page(&app, "/console/account", &who.token).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers["location"],
        "/console/login?return_to=%2Fconsole%2Faccount&reason=ended"
    );
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
}

/// The doctor's checks, run by the server for an operator, as a page.
async fn operators_see_the_doctor(app: TestApp) {
    let operator = app.user("operator").await;
    make_platform_admin(&app, &operator).await;
    let r = page(&app, "/console/platform/doctor", &operator.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let html = text(&r);
    for check in [
        "<td>database</td>",
        "<td>migrations</td>",
        "<td>signing_keys</td>",
    ] {
        assert!(html.contains(check), "{check} in {html}");
    }
    // Unknown keys are not known here: the page does not claim there are none.
    assert!(!html.contains("every key is known"));
}

pub(crate) async fn make_platform_admin(app: &TestApp, who: &Signed) {
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

fn screenshots_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("portcullis-console-screenshots"))
}

/// The scenarios of issue 12 in Chromium (`conformance/console.mjs`), including a key
/// rotation with its superseded-key warning and a plan change followed by the 402 page:
/// every page on SQLite, the main path on PostgreSQL.
async fn browser_paths(backend: Backend) {
    let (tag, full) = match backend {
        Backend::Sqlite => ("sqlite", true),
        Backend::Postgres => ("postgres", false),
    };
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the console tests need Chromium at {chromium} (apt-get install chromium)"
    );
    // A self-hosted server with a mobile app scheme: the connect card shows its QR code.
    let app = TestApp::start_with(backend, |c| {
        c.mobile.schemes = serde_json::from_value(serde_json::json!("alga")).unwrap();
    })
    .await;
    // A local receiver that verifies deliveries with the reference Standard Webhooks library.
    let receiver = common::receiver::Receiver::start().await;
    let admin = app.user("admin").await;
    make_platform_admin(&app, &admin).await;
    let member = app.user("member").await;
    let conformance = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance");
    assert!(
        conformance.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix conformance` (playwright-core, axe-core)"
    );
    let out = tokio::process::Command::new("node")
        .arg(conformance.join("console.mjs"))
        .env("BASE", &app.base)
        .env("ORG_ID", &admin.org_id)
        .env("PROJECT_ID", &admin.project_id)
        .env("RECEIVER", &receiver.base)
        .env("ADMIN_EMAIL", &admin.email)
        .env("MEMBER_EMAIL", &member.email)
        .env("PASSWORD", PASSWORD)
        .env("OUT", screenshots_dir())
        .env("TAG", tag)
        .env("FULL", if full { "1" } else { "0" })
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "console.mjs failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    let pages = results["pages"].as_array().unwrap();
    assert!(
        pages.len() >= if full { 27 } else { 15 },
        "pages visited: {pages:?}"
    );
    for (name, axe) in results["axe"].as_object().unwrap() {
        assert_eq!(axe["serious_or_critical"], 0, "{name}: {axe}");
    }
    for page in pages {
        let png = screenshots_dir().join(format!("{tag}-{}.png", page.as_str().unwrap()));
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", png.display());
    }
}
