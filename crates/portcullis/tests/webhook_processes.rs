#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Webhook delivery across process deaths and nodes: real `portcullis serve` processes and
//! the Node receiver (`conformance/webhook-receiver.mjs`), which verifies every delivery with
//! the reference `standardwebhooks` library.
//!
//! - `kill -9` while a backlog is pending and an attempt is in flight, then a restart on the
//!   same database: every event is delivered, each under the one `webhook-id` it had before.
//! - Two nodes on one PostgreSQL database share the queue: every event delivered, none twice.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

mod support;

use support::{MASTER_KEY, Node, temp_dir};

struct Receiver {
    base: String,
    _child: tokio::process::Child,
}

fn conformance() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

impl Receiver {
    async fn start() -> Receiver {
        let dir = conformance();
        assert!(
            dir.join("node_modules/standardwebhooks").exists(),
            "run `npm ci --prefix conformance` first"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("webhook-receiver.mjs"))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
            .as_u64()
            .unwrap();
        Receiver {
            base: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }

    async fn configure(&self, c: &reqwest::Client, secret: &str, hang: u32, hang_ms: u64) {
        c.put(format!("{}/_control/main", self.base))
            .json(&json!({"secrets": [secret], "hang": hang, "hang_ms": hang_ms}))
            .send()
            .await
            .unwrap();
    }

    async fn received(&self, c: &reqwest::Client) -> Vec<Value> {
        let v: Value = c
            .get(format!("{}/_control/main", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["received"].as_array().cloned().unwrap_or_default()
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

struct Owner {
    token: String,
    project: String,
}

async fn owner(c: &reqwest::Client, base: &str) -> Owner {
    let r = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": format!("owner-{}@example.com", std::process::id()), "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let body: Value = r.json().await.unwrap();
    Owner {
        token,
        project: body["project"]["id"].as_str().unwrap().to_owned(),
    }
}

async fn post(c: &reqwest::Client, base: &str, o: &Owner, path: &str, body: Value) -> Value {
    let r = c
        .post(format!("{base}{path}"))
        .bearer_auth(&o.token)
        .header("x-project-id", &o.project)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

/// Queues `n` events through the outbox (project renames) and `n` test events.
async fn queue(c: &reqwest::Client, base: &str, o: &Owner, hook: &str, n: usize, tag: &str) {
    for i in 0..n {
        let r = c
            .patch(format!("{base}/v1/project"))
            .bearer_auth(&o.token)
            .header("x-project-id", &o.project)
            .json(&json!({"name": format!("{tag} {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        post(
            c,
            base,
            o,
            &format!("/v1/project/webhooks/{hook}/test"),
            json!({}),
        )
        .await;
    }
}

async fn deliveries(c: &reqwest::Client, base: &str, o: &Owner, hook: &str) -> Vec<Value> {
    let v: Value = c
        .get(format!(
            "{base}/v1/project/webhooks/{hook}/deliveries?limit=200"
        ))
        .bearer_auth(&o.token)
        .header("x-project-id", &o.project)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits (at most `secs`) until every one of `expected` deliveries is logged as succeeded.
async fn all_succeeded(
    c: &reqwest::Client,
    base: &str,
    o: &Owner,
    hook: &str,
    expected: usize,
    secs: u64,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let log = deliveries(c, base, o, hook).await;
        if log.len() == expected && log.iter().all(|d| d["status"] == "succeeded") {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not everything was delivered: {} logged, {} succeeded",
            log.len(),
            log.iter().filter(|d| d["status"] == "succeeded").count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The receiver's successful deliveries by `webhook-id`, checking each verified.
fn successes(received: &[Value]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in received {
        assert_eq!(r["verified"], true, "a delivery did not verify: {r}");
        if r["status"] == 204 {
            *out.entry(r["id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    out
}

fn quick_env(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        // Far longer than any test: deliveries start because the worker was woken (by its
        // own node, or another's NOTIFY) or had them scheduled, never by polling.
        ("PORTCULLIS_WEBHOOK_FALLBACK_POLL_MS", "60000".to_owned()),
        ("PORTCULLIS_WEBHOOK_LEASE_SECS", "3".to_owned()),
        ("PORTCULLIS_WEBHOOK_TIMEOUT_MS", "2000".to_owned()),
        // The backlog is queued with test sends, more than a project's default budget.
        ("PORTCULLIS_WEBHOOK_SENDS_PER_MINUTE", "100000".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    env
}

fn start(dir: &Path, env: &[(&'static str, String)]) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Node::start(dir, &["--dev"], &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backlog_then_restart_delivers_every_event_with_stable_ids() {
    let c = client();
    let rx = Receiver::start().await;
    let dir = temp_dir();
    // One attempt at a time to the endpoint, so a backlog builds behind a slow receiver.
    let env = quick_env(&[("PORTCULLIS_WEBHOOK_ENDPOINT_CONCURRENCY", "1".to_owned())]);
    let node = start(&dir, &env);
    let o = owner(&c, &node.base).await;
    let hook = post(
        &c,
        &node.base,
        &o,
        "/v1/project/webhooks",
        json!({"url": format!("{}/hooks/main", rx.base), "events": ["project.updated"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    // The first delivery hangs (in flight until the 2 s timeout) while the rest queue.
    rx.configure(&c, hook["secret"].as_str().unwrap(), 1, 10_000)
        .await;
    queue(&c, &node.base, &o, &id, 15, "before").await;
    // Wait until the hanging attempt has reached the receiver, then kill -9 (SIGKILL).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rx.received(&c).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached the receiver: {}",
            node.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight = rx.received(&c).await[0]["id"].as_str().unwrap().to_owned();
    let before_kill = deliveries(&c, &node.base, &o, &id).await;
    assert!(
        before_kill.iter().any(|d| d["status"] == "pending"),
        "the backlog was already gone before the kill"
    );
    drop(node);

    // Restarted on the same database: the rest, and the attempt cut short, are delivered.
    let node = start(&dir, &env);
    let log = all_succeeded(&c, &node.base, &o, &id, 30, 90).await;
    let logged: HashSet<String> = log
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged.len(), 30);
    let got = successes(&rx.received(&c).await);
    let received: HashSet<String> = got.keys().cloned().collect();
    assert_eq!(
        received, logged,
        "every logged delivery arrived, and nothing else"
    );
    // The attempt in flight at the kill came again under the same webhook-id.
    let all = rx.received(&c).await;
    let tries = all.iter().filter(|r| r["id"] == in_flight.as_str()).count();
    assert!(
        tries >= 2,
        "the interrupted delivery was sent {tries} time(s)"
    );
    assert!(got.contains_key(&in_flight));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_deliver_every_event_once() {
    let db = portcullis_store::testing::fresh_postgres_database()
        .await
        .expect("PostgreSQL must be reachable (PORTCULLIS_TEST_POSTGRES_URL)");
    let c = client();
    let rx = Receiver::start().await;
    let dir = temp_dir();
    let env = quick_env(&[
        ("PORTCULLIS_DATABASE_URL", db.url.clone()),
        ("PORTCULLIS_MASTER_KEY", MASTER_KEY.to_owned()),
        // Leases far longer than any attempt: a second send could only come from two nodes
        // taking one delivery.
        ("PORTCULLIS_WEBHOOK_LEASE_SECS", "60".to_owned()),
    ]);
    let a = start(&dir, &env);
    let b = start(&dir, &env);
    let o = owner(&c, &a.base).await;
    let hook = post(
        &c,
        &a.base,
        &o,
        "/v1/project/webhooks",
        json!({"url": format!("{}/hooks/main", rx.base), "events": ["*"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    rx.configure(&c, hook["secret"].as_str().unwrap(), 0, 0)
        .await;
    // Events written through both nodes, in parallel.
    tokio::join!(
        queue(&c, &a.base, &o, &id, 40, "a"),
        queue(&c, &b.base, &o, &id, 40, "b"),
    );
    let log = all_succeeded(&c, &b.base, &o, &id, 160, 120).await;
    let logged: HashSet<String> = log
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    let got = successes(&rx.received(&c).await);
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), logged);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let total = rx.received(&c).await.len();
    assert_eq!(
        total, 160,
        "every attempt reached the receiver exactly once"
    );
    // The attempts logged by the two nodes add up to what the receiver saw: each attempt
    // was made by exactly one of them.
    let attempts = |n: &Node| {
        n.logs()
            .iter()
            .filter(|l| l.contains("webhook attempt"))
            .count()
    };
    let (by_a, by_b) = (attempts(&a), attempts(&b));
    eprintln!("attempts: node a {by_a}, node b {by_b}");
    assert_eq!(by_a + by_b, 160);
}
