#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! How the delivery worker finds work without polling the database: committed webhook work
//! wakes it (on PostgreSQL another node's too, by NOTIFY), and an idle worker only looks at
//! the fallback poll, counted by `portcullis_webhook_worker_rounds_total`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common;

use common::receiver::Receiver;
use common::{Backend, Signed, TestApp};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(an_idle_worker_sleeps_until_an_event_wakes_it);

/// The worker's rounds so far, by reason, from `/metrics`.
async fn rounds(app: &TestApp) -> HashMap<String, u64> {
    let r = TestApp::send(app.req(Method::GET, "/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap().to_owned();
    let prefix = "portcullis_webhook_worker_rounds_total{reason=\"";
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|rest| {
            let (reason, n) = rest.split_once("\"} ").unwrap();
            (reason.to_owned(), n.parse().unwrap())
        })
        .collect()
}

fn total(r: &HashMap<String, u64>) -> u64 {
    r.values().sum()
}

/// An endpoint of `who`'s project for `project.updated`, at the receiver's `name`.
async fn endpoint(app: &TestApp, rx: &Receiver, who: &Signed, name: &str) {
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/webhooks", &who.token)
            .header("x-project-id", &who.project_id)
            .json(&json!({"url": rx.url(name), "events": ["project.updated"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    rx.configure(name, &[r.body["secret"].as_str().unwrap()], 0, 0, 0)
        .await;
}

async fn rename(app: &TestApp, who: &Signed, name: &str) {
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &who.token)
            .header("x-project-id", &who.project_id)
            .json(&json!({"name": name})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The default fallback poll (5 s): idle, the worker looks at most twice in 3 s (it used to
/// look every 200 ms: 15 rounds, some 60 statements on PostgreSQL); an event wakes it at once.
async fn an_idle_worker_sleeps_until_an_event_wakes_it(app: TestApp) {
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    endpoint(&app, &rx, &owner, "idle").await;
    // The sign-up's and the endpoint's rounds are over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rounds(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rounds(&app).await;
    // One fallback round may fall in the window, and on PostgreSQL the node's own NOTIFY of
    // the endpoint's change may arrive late on a loaded machine: at most two, not fifteen.
    assert!(
        total(&idle) - total(&before) <= 2,
        "an idle worker looked {} times in 3 s: {before:?} → {idle:?}",
        total(&idle) - total(&before)
    );

    let sent = Instant::now();
    rename(&app, &owner, "Woken").await;
    rx.wait_for("idle", 10, |got| got.len() == 1).await;
    let latency = sent.elapsed();
    eprintln!("change to first attempt, woken: {latency:?}");
    assert!(
        latency < Duration::from_secs(3),
        "delivered after {latency:?}: the worker waited for its fallback poll"
    );
    let after = rounds(&app).await;
    assert!(after["woken"] > idle["woken"], "{idle:?} → {after:?}");
}

/// SQLite has no cross-process feed: a write by another process (here a second store on the
/// same file, whose commits reach no sink of the server) is found by the fallback poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_another_processes_event_is_found_by_the_fallback_poll() {
    let app = TestApp::start_with(Backend::Sqlite, |c: &mut Config| {
        c.webhooks.fallback_poll_ms = 1000;
    })
    .await;
    let rx = Receiver::start().await;
    let owner = app.user("owner").await;
    endpoint(&app, &rx, &owner, "fallback").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rounds(&app).await;
    let other = portcullis_store::connect(&app.database_url).await.unwrap();
    let org = portcullis_core::OrgId::parse(&owner.org_id).unwrap();
    let project = portcullis_core::ProjectId::parse(&owner.project_id).unwrap();
    other
        .outbox()
        .enqueue(
            &portcullis_core::OutboxEvent {
                org_id: org,
                project_id: Some(project),
                event_type: "project.updated".into(),
                payload: json!({"project_id": project, "changed": ["name"]}),
            },
            &[],
        )
        .await
        .unwrap();
    rx.wait_for("fallback", 10, |got| got.len() == 1).await;
    let after = rounds(&app).await;
    assert_eq!(after["woken"], before["woken"], "{before:?} → {after:?}");
    assert!(
        after["fallback"] > before["fallback"],
        "{before:?} → {after:?}"
    );
}

/// Two nodes on one PostgreSQL database: an event written through the node without a worker
/// reaches the other node's worker by NOTIFY, well before its fallback poll (60 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_another_nodes_event_wakes_this_nodes_worker() {
    let a = TestApp::start_with(Backend::Postgres, |c: &mut Config| {
        c.webhooks.fallback_poll_ms = 60_000;
    })
    .await;
    let b = a
        .another_node(|c: &mut Config| {
            c.webhooks.worker = false;
        })
        .await;
    let rx = Receiver::start().await;
    let owner = a.user("owner").await;
    endpoint(&a, &rx, &owner, "cluster").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rounds(&a).await;

    let sent = Instant::now();
    rename(&b, &owner, "Renamed on b").await;
    rx.wait_for("cluster", 10, |got| got.len() == 1).await;
    let latency = sent.elapsed();
    eprintln!("change on node b to first attempt by node a: {latency:?}");
    assert!(
        latency < Duration::from_secs(3),
        "delivered after {latency:?}: node a did not hear of node b's event"
    );
    let after = rounds(&a).await;
    assert!(after["woken"] > before["woken"], "{before:?} → {after:?}");
    assert_eq!(
        total(&rounds(&b).await),
        0,
        "node b runs no worker, so it counts no rounds"
    );
}
