#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Rate limits across processes: two `portcullis serve` nodes on one PostgreSQL share one
//! budget through the real Redis at 127.0.0.1:6379 (keys under a prefix of this test's own),
//! and `doctor` reports Redis, a backend still on a superseded key, and an org at its limit.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{BIN, MASTER_KEY, Node, temp_dir};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn prefix() -> String {
    format!(
        "pc-nodes-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_redis_budget() {
    let db = portcullis_store::testing::fresh_postgres_database()
        .await
        .expect("PostgreSQL must be reachable");
    let dir = temp_dir();
    let prefix = prefix();
    let env = [
        ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
        ("PORTCULLIS_MASTER_KEY", MASTER_KEY),
        ("PORTCULLIS_REDIS_URL", REDIS_URL),
        ("PORTCULLIS_REDIS_KEY_PREFIX", prefix.as_str()),
        ("PORTCULLIS_RATE_LIMITS__PUBLIC_CONFIG__LIMIT", "4"),
        // Every answer carries RateLimit-Remaining (by default only those at half or less).
        ("PORTCULLIS_RATE_LIMIT_HEADERS", "always"),
    ];
    let a = Node::start(&dir, &[], &env);
    let b = Node::start(&dir, &[], &env);
    let c = client();
    let mut answers = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = c
            .get(format!(
                "{}/v1/public/config?publishable_key=pk_live_x",
                node.base
            ))
            .send()
            .await
            .unwrap();
        answers.push((
            r.status().as_u16(),
            r.headers()
                .get("ratelimit-remaining")
                .map(|v| v.to_str().unwrap().to_owned()),
        ));
    }
    // Per node, each would allow 4 (8 in all); shared, the two allow 4 together.
    let allowed = answers.iter().filter(|(s, _)| *s == 404).count();
    let limited = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!((allowed, limited), (4, 4), "{answers:?}");
    assert_eq!(
        answers[..4]
            .iter()
            .map(|(_, rem)| rem.clone().unwrap())
            .collect::<Vec<_>>(),
        ["3", "2", "1", "0"],
        "one budget counted down across both nodes: {answers:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn doctor(dir: &std::path::Path, env: &[(&str, &str)]) -> Vec<Value> {
    let mut cmd = Command::new(BIN);
    cmd.args(["doctor", "--json"]).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run doctor");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["findings"].as_array().cloned().unwrap_or_default()
}

fn findings<'a>(all: &'a [Value], check: &str) -> Vec<&'a Value> {
    all.iter().filter(|f| f["check"] == check).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_redis_superseded_keys_and_full_orgs() {
    let db = portcullis_store::testing::fresh_postgres_database()
        .await
        .expect("PostgreSQL must be reachable");
    let dir = temp_dir();
    let prefix = prefix();
    let env = [
        ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
        ("PORTCULLIS_MASTER_KEY", MASTER_KEY),
        ("PORTCULLIS_REDIS_URL", REDIS_URL),
        ("PORTCULLIS_REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    let node = Node::start(&dir, &[], &env);
    let c = client();
    let r = c
        .post(format!("{}/v1/auth/signup", node.base))
        .json(&json!({"email": "doctor-platform@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
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
    let org = body["org"]["id"].as_str().unwrap().to_owned();
    let project = body["project"]["id"].as_str().unwrap().to_owned();
    // Three of three projects: the free plan is full.
    for name in ["Two", "Three"] {
        let r = c
            .post(format!("{}/v1/orgs/{org}/projects", node.base))
            .bearer_auth(&token)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let rotate = || async {
        let r = c
            .post(format!("{}/v1/project/keys/rotate", node.base))
            .bearer_auth(&token)
            .header("x-project-id", &project)
            .json(&json!({"grace_seconds": 3600}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.unwrap();
        v["secret_key"].as_str().unwrap().to_owned()
    };
    let old = rotate().await;
    let _new = rotate().await;
    // A backend still on the old key.
    let r = c
        .get(format!("{}/v1/backend/health", node.base))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let doctor_env = [
        ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
        ("PORTCULLIS_MASTER_KEY", MASTER_KEY),
        ("PORTCULLIS_REDIS_URL", REDIS_URL),
    ];
    let all = doctor(&dir, &doctor_env);
    let redis = findings(&all, "redis");
    assert_eq!(redis[0]["level"], "ok", "{all:?}");
    assert!(redis[0]["detail"].as_str().unwrap().contains("reachable"));
    let full = findings(&all, "plan_limits");
    assert!(
        full.iter().any(|f| f["level"] == "warn"
            && f["detail"].as_str().unwrap().contains(&org)
            && f["detail"].as_str().unwrap().contains("3 of 3 projects")),
        "{all:?}"
    );
    // Key use is written in batches (every 10 s): wait for the batch, not for a time.
    let started = Instant::now();
    loop {
        let all = doctor(&dir, &doctor_env);
        let stale = findings(&all, "superseded_keys");
        if stale
            .iter()
            .any(|f| f["level"] == "warn" && f["detail"].as_str().unwrap().contains(&old[..16]))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the superseded key's use never showed: {all:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let unreachable = doctor(
        &dir,
        &[
            ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
            ("PORTCULLIS_MASTER_KEY", MASTER_KEY),
            ("PORTCULLIS_REDIS_URL", "redis://127.0.0.1:1"),
        ],
    );
    assert_eq!(findings(&unreachable, "redis")[0]["level"], "warn");
    let _ = std::fs::remove_dir_all(dir);
}
