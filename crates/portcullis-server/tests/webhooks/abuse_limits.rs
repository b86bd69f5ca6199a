//! A project admin chooses where this server sends signed POSTs; the caps keep one project
//! from turning it into a request cannon: a most number of endpoints per project (409
//! `conflict`), and a per-project budget of on-demand sends (`…/test`, `…/recover`: 429
//! `rate_limited` with `Retry-After`). Neither touches another project.

use crate::common;

use common::receiver::Receiver;
use common::{Reply, Signed, TestApp};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HOOKS: &str = "/v1/project/webhooks";

both_backends!(configured tight:
    endpoints_per_project_are_capped => |_c: &mut Config| {},
    test_and_recover_spend_a_per_project_budget => |_c: &mut Config| {},
);

fn tight(c: &mut Config) {
    c.webhooks.max_endpoints_per_project = 2;
    c.webhooks.sends_per_minute = 2;
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: &Signed,
    body: Option<Value>,
) -> Reply {
    let mut rb = app
        .with_bearer(method, path, &who.token)
        .header("x-project-id", &who.project_id);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    TestApp::send(rb).await
}

async fn create(app: &TestApp, rx: &Receiver, who: &Signed, name: &str) -> Reply {
    call(
        app,
        Method::POST,
        HOOKS,
        who,
        Some(json!({"url": rx.url(name), "events": ["*"]})),
    )
    .await
}

async fn endpoint_count(app: &TestApp, who: &Signed) -> usize {
    let r = call(app, Method::GET, HOOKS, who, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["webhooks"].as_array().unwrap().len()
}

async fn endpoints_per_project_are_capped(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let first = create(&app, &rx, &owner, "a").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let r = create(&app, &rx, &owner, "b").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let over = create(&app, &rx, &owner, "c").await;
    over.assert_error(409, "conflict");
    assert_eq!(over.body["details"]["limit"], 2, "{}", over.body);
    // Nothing was written by the refused call.
    assert_eq!(endpoint_count(&app, &owner).await, 2);
    // Another project is not affected.
    let stranger = app.user("stranger").await;
    let r = create(&app, &rx, &stranger, "s").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A deleted endpoint no longer counts.
    let id = first.body["id"].as_str().unwrap();
    let r = call(&app, Method::DELETE, &format!("{HOOKS}/{id}"), &owner, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = create(&app, &rx, &owner, "c").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(endpoint_count(&app, &owner).await, 2);
}

async fn test_and_recover_spend_a_per_project_budget(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let r = create(&app, &rx, &owner, "a").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let test = format!("{HOOKS}/{id}/test");
    let recover = format!("{HOOKS}/{id}/recover");
    let since = json!({"since": "2020-01-01T00:00:00Z"});

    let r = call(&app, Method::POST, &test, &owner, None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let r = call(&app, Method::POST, &recover, &owner, Some(since.clone())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // The budget (2 a minute) is spent: both routes are refused, with when to retry.
    for (path, body) in [(&test, None), (&recover, Some(since.clone()))] {
        let r = call(&app, Method::POST, path, &owner, body).await;
        r.assert_error(429, "rate_limited");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    // Only the one test delivery was queued.
    let r = call(
        &app,
        Method::GET,
        &format!("{HOOKS}/{id}/deliveries"),
        &owner,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["deliveries"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    // Another project has its own budget.
    let stranger = app.user("stranger").await;
    let r = create(&app, &rx, &stranger, "s").await;
    let sid = r.body["id"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        Method::POST,
        &format!("{HOOKS}/{sid}/test"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}
