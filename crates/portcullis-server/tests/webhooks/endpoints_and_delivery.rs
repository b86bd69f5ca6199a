#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Outgoing webhooks through HTTP on both backends: endpoints and their error codes, and
//! real deliveries to a local receiver that verifies each one with the reference Standard
//! Webhooks library (`conformance/webhook-receiver.mjs`, npm `standardwebhooks`).

use crate::common;

use common::receiver::Receiver;
use common::{Reply, Signed, TestApp};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HOOKS: &str = "/v1/project/webhooks";

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: &Signed,
    project: &str,
    body: Option<Value>,
) -> Reply {
    let mut rb = app
        .with_bearer(method, path, &who.token)
        .header("x-project-id", project);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    TestApp::send(rb).await
}

async fn create(app: &TestApp, who: &Signed, project: &str, body: Value) -> Reply {
    call(app, Method::POST, HOOKS, who, project, Some(body)).await
}

/// Creates an endpoint at the receiver's `name` and tells the receiver its secret.
async fn endpoint(
    app: &TestApp,
    rx: &Receiver,
    who: &Signed,
    project: &str,
    name: &str,
    events: Value,
) -> (String, String) {
    let r = create(
        app,
        who,
        project,
        json!({"url": rx.url(name), "events": events}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    rx.configure(name, &[&secret], 0, 0, 0).await;
    (r.body["id"].as_str().unwrap().to_owned(), secret)
}

async fn test_event(app: &TestApp, who: &Signed, id: &str) -> Reply {
    let r = call(
        app,
        Method::POST,
        &format!("{HOOKS}/{id}/test"),
        who,
        &who.project_id,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r
}

async fn log(app: &TestApp, who: &Signed, id: &str, query: &str) -> Vec<Value> {
    let r = call(
        app,
        Method::GET,
        &format!("{HOOKS}/{id}/deliveries{query}"),
        who,
        &who.project_id,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["deliveries"].as_array().unwrap().clone()
}

/// Waits until the delivery log of `id` satisfies `done`.
async fn wait_log(
    app: &TestApp,
    who: &Signed,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = log(app, who, id, "").await;
        if done(&got) {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery log never got there: {got:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Short windows, so retries and the failure window play out within a test; and a fallback
/// poll far longer than any test, so every delivery and retry here is found because the worker
/// was woken or had it scheduled.
fn quick(c: &mut Config) {
    c.webhooks.fallback_poll_ms = 60_000;
    c.webhooks.retry_schedule_secs = vec![1, 1, 1, 1, 1, 1];
    c.webhooks.timeout_ms = 1000;
    c.webhooks.lease_secs = 3;
}

both_backends!(endpoints_are_managed_by_project_admins_and_checked);
both_backends!(configured quick:
    deliveries_verify_with_the_reference_library => |_c: &mut Config| {},
    failed_attempts_are_retried_with_the_same_id => |_c: &mut Config| {},
    manual_retry_and_recover => |c: &mut Config| { c.webhooks.retry_schedule_secs = vec![]; },
    an_endpoint_failing_for_the_window_is_disabled => |c: &mut Config| { c.webhooks.disable_after_secs = 1; },
    org_events_reach_every_project_and_project_events_one => |_c: &mut Config| {},
);
both_backends!(configured production: private_addresses_are_refused_outside_development => |_c: &mut Config| {});

/// Outside development mode (a master key is then required, as in production).
fn production(c: &mut Config) {
    c.dev = false;
    c.master_key = Some(
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
            .to_owned()
            .into(),
    );
}

async fn endpoints_are_managed_by_project_admins_and_checked(app: TestApp) {
    let owner = app.user("owner").await;
    let p = owner.project_id.clone();
    let r = create(
        &app,
        &owner,
        &p,
        json!({"url": "http://127.0.0.1:9/hooks/a", "events": ["member.added", "project.updated"], "description": "CRM sync"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let secret = r.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["events"], json!(["member.added", "project.updated"]));

    // Listed and read without the secret.
    let list = call(&app, Method::GET, HOOKS, &owner, &p, None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 1);
    assert!(list.body["webhooks"][0].get("secret").is_none());
    let one = format!("{HOOKS}/{id}");
    let got = call(&app, Method::GET, &one, &owner, &p, None).await;
    assert_eq!(got.body["description"], "CRM sync");
    assert!(got.body.get("secret").is_none());

    // Patched.
    let r = call(
        &app,
        Method::PATCH,
        &one,
        &owner,
        &p,
        Some(json!({"events": ["*"], "enabled": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["events"].clone(), r.body["enabled"].clone()),
        (json!(["*"]), json!(false))
    );

    // Rotated: a new secret, the old one signs for 24 h more.
    let r = call(
        &app,
        Method::POST,
        &format!("{one}/rotate-secret"),
        &owner,
        &p,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(r.body["secret"].as_str().unwrap(), secret);
    assert!(r.body["previous_secret_expires_at"].is_string());

    // Bad input: unknown event type, unknown field, bad URL, bad filters.
    let r = create(
        &app,
        &owner,
        &p,
        json!({"url": "http://127.0.0.1:9/x", "events": ["member.joined"]}),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "events");
    let r = create(
        &app,
        &owner,
        &p,
        json!({"url": "http://127.0.0.1:9/x", "events": []}),
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = create(
        &app,
        &owner,
        &p,
        json!({"url": "http://127.0.0.1:9/x", "events": ["*"], "secret": "mine"}),
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = create(
        &app,
        &owner,
        &p,
        json!({"url": "not a url", "events": ["*"]}),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "url");
    let r = call(
        &app,
        Method::GET,
        &format!("{one}/deliveries?status=lost"),
        &owner,
        &p,
        None,
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = call(
        &app,
        Method::POST,
        &format!("{one}/recover"),
        &owner,
        &p,
        Some(json!({"since": "yesterday"})),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "since");
    // No project header.
    TestApp::send(app.with_bearer(Method::GET, HOOKS, &owner.token))
        .await
        .assert_error(400, "invalid_request");

    // Not found: unknown ids, and deliveries of none.
    let unknown = uuid::Uuid::now_v7();
    for (m, path) in [
        (Method::GET, format!("{HOOKS}/{unknown}")),
        (Method::GET, format!("{HOOKS}/nope")),
        (Method::POST, format!("{HOOKS}/{unknown}/test")),
        (Method::POST, format!("{one}/deliveries/{unknown}/retry")),
        (Method::DELETE, format!("{HOOKS}/{unknown}")),
    ] {
        call(&app, m, &path, &owner, &p, None)
            .await
            .assert_error(404, "not_found");
    }

    // Members who are not admins of the project see nothing and change nothing.
    let member = app.user("member").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    for (m, path, body) in [
        (Method::GET, HOOKS.to_owned(), None),
        (Method::GET, one.clone(), None),
        (
            Method::POST,
            HOOKS.to_owned(),
            Some(json!({"url": "http://127.0.0.1:9/x", "events": ["*"]})),
        ),
        (Method::PATCH, one.clone(), Some(json!({"enabled": true}))),
        (Method::POST, format!("{one}/rotate-secret"), None),
        (Method::POST, format!("{one}/test"), None),
        (Method::GET, format!("{one}/deliveries"), None),
        (Method::DELETE, one.clone(), None),
    ] {
        let r = call(&app, m.clone(), &path, &member, &p, body).await;
        r.assert_error(403, "forbidden");
        assert_eq!(r.body["details"]["required_role"], "admin", "{m} {path}");
    }

    // The catalogue, with an example each.
    let types = app.get("/v1/webhooks/event-types", &owner.token).await;
    assert_eq!(types.status, StatusCode::OK);
    let names: Vec<&str> = types.body["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["example"]["type"], t["name"]);
            t["name"].as_str().unwrap()
        })
        .collect();
    for must in [
        "user.created",
        "user.deleted",
        "session.created",
        "session.revoked",
        "member.added",
        "member.removed",
        "member.role_changed",
        "project.updated",
        "key.rotated",
        "subscription.changed",
        "webhook.test",
    ] {
        assert!(names.contains(&must), "{must} missing from {names:?}");
    }
    TestApp::send(app.req(Method::GET, "/v1/webhooks/event-types"))
        .await
        .assert_error(401, "unauthenticated");

    // Deleted: gone, and audited.
    let r = call(&app, Method::DELETE, &one, &owner, &p, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    call(&app, Method::GET, &one, &owner, &p, None)
        .await
        .assert_error(404, "not_found");
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?limit=200", owner.org_id),
            &owner.token,
        )
        .await;
    let actions: Vec<&str> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.deleted",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

async fn private_addresses_are_refused_outside_development(app: TestApp) {
    let owner = app.user("owner").await;
    for url in [
        "http://127.0.0.1:9000/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "http://hooks.example.com/plain-http",
    ] {
        let r = create(
            &app,
            &owner,
            &owner.project_id,
            json!({"url": url, "events": ["*"]}),
        )
        .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "url", "{url}: {}", r.body);
    }
    let r = create(
        &app,
        &owner,
        &owner.project_id,
        json!({"url": "https://hooks.example.com/portcullis", "events": ["*"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn deliveries_verify_with_the_reference_library(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let p = owner.project_id.clone();
    let (id, old_secret) = endpoint(
        &app,
        &rx,
        &owner,
        &p,
        "main",
        json!(["project.updated", "client.created"]),
    )
    .await;

    // Changes of the project announce themselves; an unsubscribed one does not.
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &p)
            .json(&json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/clients", &owner.token)
            .header("x-project-id", &p)
            .json(&json!({"name": "App", "type": "public", "redirect_uris": ["https://app.example.com/cb"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let test = test_event(&app, &owner, &id).await;
    let test_id = test.body["id"].as_str().unwrap().to_owned();

    let got = rx.wait_for("main", 30, |g| g.len() >= 3).await;
    assert!(got.iter().all(|r| r["verified"] == true), "{got:#?}");
    let mut types: Vec<&str> = got.iter().map(|r| r["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["client.created", "project.updated", "webhook.test"]);
    assert!(got.iter().any(|r| r["id"] == test_id.as_str()));

    // The log shows each delivery with its attempt.
    let logged = wait_log(&app, &owner, &id, |l| {
        l.len() == 3 && l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    for d in &logged {
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
        assert_eq!(d["attempts"][0]["status_code"], 204);
        assert_eq!(d["payload"]["type"], d["event_type"]);
    }
    let only_tests = log(
        &app,
        &owner,
        &id,
        "?event_type=webhook.test&status=succeeded",
    )
    .await;
    assert_eq!(only_tests.len(), 1);

    // After a rotation both secrets sign: each verifies every delivery on its own.
    let r = call(
        &app,
        Method::POST,
        &format!("{HOOKS}/{id}/rotate-secret"),
        &owner,
        &p,
        None,
    )
    .await;
    let new_secret = r.body["secret"].as_str().unwrap().to_owned();
    rx.configure("main", &[&old_secret, &new_secret], 0, 0, 0)
        .await;
    test_event(&app, &owner, &id).await;
    let got = rx.wait_for("main", 30, |g| g.len() >= 4).await;
    let last = &got[3];
    assert_eq!(last["verified"], true, "{last}");
    assert_eq!(last["signatures"], 2, "{last}");
    // The metrics count the attempts and show the queue.
    let metrics = TestApp::send(app.req(Method::GET, "/metrics")).await;
    let text = metrics.body.as_str().unwrap().to_owned();
    let succeeded: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_webhook_deliveries_total{outcome=\"succeeded\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(succeeded >= 3, "{succeeded}");
    assert!(
        text.contains("portcullis_webhook_queue_depth{stage=\"deliveries\"}"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_webhook_oldest_due_age_seconds "),
        "{text}"
    );
    // A receiver that only knows the new secret verifies too.
    rx.configure("main", &[&new_secret], 0, 0, 0).await;
    test_event(&app, &owner, &id).await;
    let got = rx.wait_for("main", 30, |g| g.len() >= 5).await;
    assert_eq!(got[4]["verified"], true, "{}", got[4]);
}

async fn failed_attempts_are_retried_with_the_same_id(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let (id, secret) = endpoint(&app, &rx, &owner, &owner.project_id, "flaky", json!(["*"])).await;

    // Two 500s, then success.
    rx.configure("flaky", &[&secret], 2, 0, 0).await;
    let d = test_event(&app, &owner, &id).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = rx
        .wait_for("flaky", 30, |g| g.iter().any(|r| r["status"] == 204))
        .await;
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got.iter()
            .all(|r| r["id"] == d.as_str() && r["verified"] == true)
    );
    let logged = wait_log(&app, &owner, &id, |l| {
        l.iter().any(|x| x["status"] == "succeeded")
    })
    .await;
    let attempts = logged[0]["attempts"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(204)]);
    assert_eq!(attempts[0]["error_class"], "status");
    assert!(
        attempts[0]["response"]
            .as_str()
            .unwrap()
            .contains("told to fail")
    );
    assert_eq!(logged[0]["attempt_count"], 3);

    // A receiver that hangs past the timeout: the attempt times out, the retry succeeds.
    rx.configure("flaky", &[&secret], 0, 1, 3000).await;
    let d = test_event(&app, &owner, &id).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logged = wait_log(&app, &owner, &id, |l| {
        l.iter()
            .any(|x| x["id"] == d.as_str() && x["status"] == "succeeded")
    })
    .await;
    let this = logged.iter().find(|x| x["id"] == d.as_str()).unwrap();
    let attempts = this["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{this}");
    assert_eq!(attempts[0]["error_class"], "timeout", "{this}");
    assert_eq!(attempts[1]["status_code"], 204);
    let ids: Vec<Value> = rx
        .received("flaky")
        .await
        .iter()
        .skip(3)
        .map(|r| r["id"].clone())
        .collect();
    assert!(ids.iter().all(|i| i == d.as_str()), "{ids:?}");
}

async fn manual_retry_and_recover(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let p = owner.project_id.clone();
    let (id, secret) = endpoint(&app, &rx, &owner, &p, "down", json!(["*"])).await;
    // No retries configured: the first failure is final.
    rx.configure("down", &[&secret], 3, 0, 0).await;
    let first = test_event(&app, &owner, &id).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_log(&app, &owner, &id, |l| {
        l.len() == 1 && l[0]["status"] == "failed"
    })
    .await;

    // Retry now: sent again with the same id, and it succeeds... after two more failures
    // are used up by recover below. Retry this one first: it fails (fail budget 2 left).
    let r = call(
        &app,
        Method::POST,
        &format!("{HOOKS}/{id}/deliveries/{first}/retry"),
        &owner,
        &p,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    wait_log(&app, &owner, &id, |l| {
        l[0]["attempts"].as_array().unwrap().len() == 2
    })
    .await;
    let second = test_event(&app, &owner, &id).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_log(&app, &owner, &id, |l| {
        l.len() == 2 && l.iter().all(|d| d["status"] == "failed")
    })
    .await;
    let failed = log(&app, &owner, &id, "?status=failed").await;
    assert_eq!(failed.len(), 2);

    // Recover: everything that failed since a time is sent again; now the receiver is up.
    let since = "2000-01-01T00:00:00Z";
    let r = call(
        &app,
        Method::POST,
        &format!("{HOOKS}/{id}/recover"),
        &owner,
        &p,
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["requeued"], 2);
    wait_log(&app, &owner, &id, |l| {
        l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let got = rx.received("down").await;
    for d in [&first, &second] {
        let n = got.iter().filter(|r| r["id"] == d.as_str()).count();
        assert!(n >= 2, "{d} sent {n} times");
        assert!(
            got.iter()
                .any(|r| r["id"] == d.as_str() && r["status"] == 204)
        );
    }
    assert!(got.iter().all(|r| r["verified"] == true));
}

async fn an_endpoint_failing_for_the_window_is_disabled(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let p = owner.project_id.clone();
    let (id, secret) = endpoint(&app, &rx, &owner, &p, "dead", json!(["*"])).await;
    rx.configure("dead", &[&secret], 1000, 0, 0).await;
    test_event(&app, &owner, &id).await;
    let one = format!("{HOOKS}/{id}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let got = loop {
        let got = call(&app, Method::GET, &one, &owner, &p, None).await;
        if got.body["enabled"] == false {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {}",
            got.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(got.body["disabled_reason"], "failing");
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=webhook.disabled", owner.org_id),
            &owner.token,
        )
        .await;
    let events = audit.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", audit.body);
    assert_eq!(events[0]["target"], format!("webhook:{id}"));
    // Disabled: nothing more is attempted until an admin enables it again.
    let before = rx.received("dead").await.len();
    rx.configure("dead", &[&secret], 0, 0, 0).await;
    let r = call(
        &app,
        Method::PATCH,
        &one,
        &owner,
        &p,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["disabled_reason"], Value::Null);
    let got = rx
        .wait_for("dead", 30, |g| {
            g.len() > before && g.last().unwrap()["status"] == 204
        })
        .await;
    assert!(got.iter().all(|r| r["verified"] == true));
}

async fn org_events_reach_every_project_and_project_events_one(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", owner.org_id),
            &owner.token,
        )
        .json(&json!({"name": "Second"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = r.body["id"].as_str().unwrap().to_owned();
    let (first_id, _) = endpoint(&app, &rx, &owner, &owner.project_id, "first", json!(["*"])).await;
    endpoint(&app, &rx, &owner, &second, "second", json!(["*"])).await;
    endpoint(
        &app,
        &rx,
        &owner,
        &second,
        "members-only",
        json!(["member.removed"]),
    )
    .await;
    let stranger = app.user("stranger").await;
    endpoint(
        &app,
        &rx,
        &stranger,
        &stranger.project_id,
        "stranger",
        json!(["*"]),
    )
    .await;

    // An org event: both projects' endpoints hear it.
    let inv = app
        .invite(&owner.token, &owner.org_id, "new@example.org", "member")
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.body);
    // A project event: only the first project's.
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let types = |g: &[Value]| {
        g.iter()
            .map(|r| r["type"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    let first = rx.wait_for("first", 30, |g| g.len() >= 2).await;
    let mut t = types(&first);
    t.sort();
    assert_eq!(t, ["invitation.created", "project.updated"]);
    assert_eq!(first[0]["verified"], true);
    let second_got = rx.wait_for("second", 30, |g| !g.is_empty()).await;
    // The first endpoint's log knows both; wait for it so nothing is still in flight.
    wait_log(&app, &owner, &first_id, |l| {
        l.len() == 2 && l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(
        types(&rx.received("second").await),
        ["invitation.created"],
        "{second_got:?}"
    );
    assert!(rx.received("members-only").await.is_empty());
    assert!(rx.received("stranger").await.is_empty());
    let inv_event = &second_got[0];
    assert_eq!(inv_event["verified"], true);
}

/// Graceful shutdown lets the attempt in flight finish and records it: nothing is sent twice
/// after a planned restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_attempts_in_flight() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = Receiver::start().await;
    let data_dir =
        std::env::temp_dir().join(format!("portcullis-test-{}", uuid::Uuid::now_v7().simple()));
    let config = || {
        let mut c = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            dev: true,
            ..Config::default()
        };
        quick(&mut c);
        c.webhooks.timeout_ms = 5000;
        c.webhooks.lease_secs = 10;
        c
    };
    let server = portcullis_server::Server::start(config()).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    let (tx, rx_stop) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = rx_stop.await;
    }));
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": "owner@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let token = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let body: Value = r.json().await.unwrap();
    let project = body["project"]["id"].as_str().unwrap().to_owned();
    let hook: Value = c
        .post(format!("{base}{HOOKS}"))
        .bearer_auth(&token)
        .header("x-project-id", &project)
        .json(&json!({"url": rx.url("slow"), "events": ["*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The receiver takes 1.5 s to answer (within the 5 s timeout).
    rx.configure("slow", &[hook["secret"].as_str().unwrap()], 0, 1, 1500)
        .await;
    let id = hook["id"].as_str().unwrap();
    let r = c
        .post(format!("{base}{HOOKS}/{id}/test"))
        .bearer_auth(&token)
        .header("x-project-id", &project)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    rx.wait_for("slow", 30, |g| !g.is_empty()).await;
    // Shut down while the attempt is in flight; the server returns only once it is recorded.
    tx.send(()).unwrap();
    running.await.unwrap().unwrap();

    let server = portcullis_server::Server::start(config()).await.unwrap();
    let state = server.state.clone();
    let base = format!("http://{}", server.local_addr);
    let (_tx, rx_stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx_stop.await;
    }));
    let log: Value = c
        .get(format!("{base}{HOOKS}/{id}/deliveries"))
        .bearer_auth(&token)
        .header("x-project-id", &project)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &log["deliveries"][0];
    assert_eq!(d["status"], "succeeded", "{log}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{log}");
    // Nothing is due, so the restarted worker sends nothing more.
    let backlog = state
        .store
        .webhooks()
        .backlog(portcullis_core::now())
        .await
        .unwrap();
    assert_eq!(backlog.pending, 0);
    assert_eq!(rx.received("slow").await.len(), 1);
    let _ = std::fs::remove_dir_all(&data_dir);
}
