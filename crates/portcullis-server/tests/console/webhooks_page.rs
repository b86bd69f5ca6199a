#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The console's webhooks page of a project over HTTP, on both backends: the secret shown
//! once (on creation and rotation) and never again, a bad URL refused beside the form with
//! nothing made, test, retry, edit and delete through the webhooks service, members
//! refused (403 page) and other tenants shown nothing (404, nothing changed). The delivery
//! reaching a real receiver is in the Chromium scenario (`console_pages::browser_paths`).

use crate::common;
use crate::console_pages::{assert_page_error, csrf_of, page, post_form, text};

use common::{Signed, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

both_backends!(webhooks_page_manages_endpoints, webhooks_page_is_admin_only);

async fn api(app: &TestApp, who: &Signed, method: Method, path: &str) -> common::Reply {
    TestApp::send(
        app.with_bearer(method, path, &who.token)
            .header("x-project-id", &who.project_id),
    )
    .await
}

async fn endpoints(app: &TestApp, who: &Signed) -> Vec<Value> {
    let r = api(app, who, Method::GET, "/v1/project/webhooks").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["webhooks"].as_array().unwrap().clone()
}

/// The secret in a page that shows one.
fn secret_of(html: &str) -> String {
    let marker = "id=\"webhook-secret\" readonly value=\"";
    let at = html.find(marker).expect("a secret") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

async fn webhooks_page_manages_endpoints(app: TestApp) {
    let admin = app.user("admin").await;
    let base = format!(
        "/console/orgs/{}/projects/{}/webhooks",
        admin.org_id, admin.project_id
    );
    let r = page(&app, &base, &admin.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(text(&r).contains("No webhook endpoints in this project yet."));
    let csrf = csrf_of(&text(&r));
    // The projects page links here for the project's admins.
    let projects = page(
        &app,
        &format!("/console/orgs/{}/projects", admin.org_id),
        &admin.token,
    )
    .await;
    assert!(text(&projects).contains(&format!("href=\"{base}\"")));

    // A URL the API refuses is refused beside the form, nothing made.
    let r = post_form(
        &app,
        &base,
        &admin.token,
        &[
            ("url", "ftp://example.org/x"),
            ("events", "*"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("aria-invalid=\"true\""));
    assert!(
        text(&r).contains("ftp://example.org/x"),
        "the form keeps what was typed"
    );
    let r = post_form(
        &app,
        &base,
        &admin.token,
        &[
            ("url", "http://127.0.0.1:9/hooks/a"),
            ("events", "no.such.event"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    assert!(text(&r).contains("unknown event type"));
    assert!(endpoints(&app, &admin).await.is_empty());

    // Created: the secret is in this answer, and nowhere afterwards.
    let r = post_form(
        &app,
        &base,
        &admin.token,
        &[
            ("url", "http://127.0.0.1:9/hooks/a"),
            ("events", "user.created, session.revoked"),
            ("description", "<b>ops</b>"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.headers["cache-control"], "no-store");
    let secret = secret_of(&text(&r));
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(text(&r).contains("&#60;b&#62;ops"), "escaped");
    assert!(!text(&r).contains("<b>ops"), "escaped");
    let list = endpoints(&app, &admin).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["events"],
        serde_json::json!(["user.created", "session.revoked"])
    );
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let shown = page(&app, &base, &admin.token).await;
    assert!(
        !text(&shown).contains(&secret),
        "the secret is shown once only"
    );
    assert!(text(&shown).contains("http://127.0.0.1:9/hooks/a"));

    // Send a test: a delivery of webhook.test appears in the page.
    let r = post_form(
        &app,
        &format!("{base}/{id}/test"),
        &admin.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with("notice=webhook_test_sent")
    );
    let log = api(
        &app,
        &admin,
        Method::GET,
        &format!("/v1/project/webhooks/{id}/deliveries"),
    )
    .await;
    let deliveries = log.body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{}", log.body);
    assert_eq!(deliveries[0]["event_type"], "webhook.test");
    let delivery = deliveries[0]["id"].as_str().unwrap().to_owned();
    let shown = page(&app, &base, &admin.token).await;
    assert!(text(&shown).contains(&format!("data-delivery=\"{delivery}\"")));

    // Retry it; a delivery that is not this endpoint's is a 404 page.
    let r = post_form(
        &app,
        &format!("{base}/{id}/deliveries/{delivery}/retry"),
        &admin.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let r = post_form(
        &app,
        &format!("{base}/{id}/deliveries/{}/retry", uuid::Uuid::new_v4()),
        &admin.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_page_error(&r, 404);

    // Rotate: a new secret, shown once; the old one still signs for a while.
    let r = post_form(
        &app,
        &format!("{base}/{id}/rotate"),
        &admin.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let rotated = secret_of(&text(&r));
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(text(&r).contains("the previous secret also signs until"));
    assert!(!text(&page(&app, &base, &admin.token).await).contains(&rotated));

    // Edit: disabled (an unticked box), new events.
    let r = post_form(
        &app,
        &format!("{base}/{id}"),
        &admin.token,
        &[
            ("url", "http://127.0.0.1:9/hooks/b"),
            ("events", "*"),
            ("description", ""),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let list = endpoints(&app, &admin).await;
    assert_eq!(list[0]["enabled"], false);
    assert_eq!(list[0]["url"], "http://127.0.0.1:9/hooks/b");
    assert_eq!(list[0]["events"], serde_json::json!(["*"]));
    // A bad edit is the API's 400, nothing changed.
    let r = post_form(
        &app,
        &format!("{base}/{id}"),
        &admin.token,
        &[
            ("url", "not a url"),
            ("events", "*"),
            ("enabled", "on"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_page_error(&r, 400);
    assert_eq!(
        endpoints(&app, &admin).await[0]["url"],
        "http://127.0.0.1:9/hooks/b"
    );

    // Without the form token nothing is deleted; with it, the endpoint is gone.
    let r = post_form(&app, &format!("{base}/{id}/delete"), &admin.token, &[]).await;
    assert_page_error(&r, 403);
    assert_eq!(endpoints(&app, &admin).await.len(), 1);
    let r = post_form(
        &app,
        &format!("{base}/{id}/delete"),
        &admin.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(endpoints(&app, &admin).await.is_empty());
    let r = post_form(
        &app,
        &format!("{base}/{id}/delete"),
        &admin.token,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_page_error(&r, 404);
}

async fn webhooks_page_is_admin_only(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    let base = format!(
        "/console/orgs/{}/projects/{}/webhooks",
        owner.org_id, owner.project_id
    );
    let r = post_form(
        &app,
        &base,
        &owner.token,
        &[
            ("url", "http://127.0.0.1:9/hooks/a"),
            ("events", "*"),
            (
                "csrf_token",
                &csrf_of(&text(&page(&app, &base, &owner.token).await)),
            ),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let id = endpoints(&app, &owner).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A member of the org: the refusal page, saying what to ask for; nothing changes.
    let r = page(&app, &base, &member.token).await;
    assert_page_error(&r, 403);
    assert!(text(&r).contains("admin role"), "{}", text(&r));
    let member_csrf = csrf_of(&text(&page(&app, "/console/account", &member.token).await));
    for path in [
        format!("{base}/{id}/delete"),
        format!("{base}/{id}/rotate"),
        base.clone(),
    ] {
        let r = post_form(
            &app,
            &path,
            &member.token,
            &[
                ("url", "http://127.0.0.1:9/hooks/m"),
                ("events", "*"),
                ("csrf_token", &member_csrf),
            ],
        )
        .await;
        assert_page_error(&r, 403);
    }

    // Someone of another org: the same 404 as a project that does not exist, for the
    // project of the owner and for the owner's project under the outsider's own org.
    let outsider_csrf = csrf_of(&text(
        &page(&app, "/console/account", &outsider.token).await,
    ));
    let crossed = format!(
        "/console/orgs/{}/projects/{}/webhooks",
        outsider.org_id, owner.project_id
    );
    for path in [base.clone(), crossed.clone()] {
        assert_page_error(&page(&app, &path, &outsider.token).await, 404);
        for action in ["delete", "rotate", "test"] {
            let r = post_form(
                &app,
                &format!("{path}/{id}/{action}"),
                &outsider.token,
                &[("csrf_token", &outsider_csrf)],
            )
            .await;
            assert_page_error(&r, 404);
        }
    }
    // The outsider's own project cannot reach the owner's endpoint either.
    let own = format!(
        "/console/orgs/{}/projects/{}/webhooks/{id}/delete",
        outsider.org_id, outsider.project_id
    );
    assert_page_error(
        &post_form(
            &app,
            &own,
            &outsider.token,
            &[("csrf_token", &outsider_csrf)],
        )
        .await,
        404,
    );
    let list = endpoints(&app, &owner).await;
    assert_eq!(list.len(), 1, "nothing deleted");
    let log = api(
        &app,
        &owner,
        Method::GET,
        &format!("/v1/project/webhooks/{id}/deliveries"),
    )
    .await;
    assert_eq!(
        log.body["deliveries"],
        serde_json::json!([]),
        "no test sent"
    );
}
