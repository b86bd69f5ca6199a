#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Rate limits through HTTP on SQLite and PostgreSQL: `429 rate_limited` with `Retry-After`
//! and the `RateLimit-*` headers, `X-Forwarded-For` only from trusted proxies, and a Redis
//! (a private `redis-server` this test starts) that dies mid-test: limits go on locally and
//! nothing answers 5xx. Two `serve` processes sharing one Redis budget are in
//! `crates/portcullis/tests/rate_limits.rs`.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, Reply, TestApp};
use portcullis_server::Config;
use portcullis_server::config::platform::{QuotaConfig, RateLimitHeaders};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(configured plain:
    answers_near_the_limit_carry_every_header => |c: &mut Config| {
        c.platform.rate_limits.password_sign_in = QuotaConfig { limit: 4, window_secs: 60 };
    },
    every_answer_carries_the_headers_when_configured => |c: &mut Config| {
        c.platform.rate_limit_headers = RateLimitHeaders::Always;
        c.platform.rate_limits.password_sign_in = QuotaConfig { limit: 3, window_secs: 60 };
    },
    forwarded_for_counts_only_from_trusted_proxies => |c: &mut Config| {
        c.platform.rate_limits.public_config = QuotaConfig { limit: 2, window_secs: 60 };
        c.platform.trusted_proxies = vec!["127.0.0.1".into()];
    },
    untrusted_peers_cannot_spread_their_budget => |c: &mut Config| {
        c.platform.rate_limits.public_config = QuotaConfig { limit: 2, window_secs: 60 };
    },
    a_key_prefix_cannot_spend_the_keys_budget => |c: &mut Config| {
        c.platform.rate_limits.management = QuotaConfig { limit: 3, window_secs: 60 };
        c.platform.trusted_proxies = vec!["127.0.0.1".into()];
    },
    rate_limiting_can_be_switched_off => |c: &mut Config| {
        c.platform.rate_limit_enabled = false;
    },
);

both_backends!(backend: redis_outage_falls_back_to_local_limits, redis_budget_refills_evenly);

fn plain(_: &mut Config) {}

fn assert_headers(r: &Reply, limit: u64) {
    let h = |name: &str| {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers))
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(h("ratelimit-limit"), limit);
    assert!(h("ratelimit-remaining") <= limit);
    assert!(h("ratelimit-reset") >= 1);
}

fn assert_no_headers(r: &Reply) {
    for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(r.headers.get(name).is_none(), "{name}: {:?}", r.headers);
    }
}

/// Wrong passwords (a `password_sign_in` limit of `limit` a minute) from `first_left` left
/// down to none, each answer with its headers; then the refusal: every header, and
/// `Retry-After` within one cell (60 s / limit) and equal to `RateLimit-Reset`.
async fn count_down_to_the_refusal(app: &TestApp, email: &str, limit: u64, first_left: u64) {
    for left in (0..=first_left).rev() {
        let r = app.login(email, "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_headers(&r, limit);
        assert_eq!(r.headers["ratelimit-remaining"], left.to_string().as_str());
    }
    let r = app.login(email, "correct horse battery").await;
    r.assert_error(429, "rate_limited");
    assert_headers(&r, limit);
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    let cell = 60 / limit;
    assert!(
        (1..=cell).contains(&retry),
        "one of {limit} cells per minute returns within {cell} s: {retry}"
    );
    assert_eq!(
        r.headers["ratelimit-reset"].to_str().unwrap(),
        retry.to_string()
    );
}

async fn answers_near_the_limit_carry_every_header(app: TestApp) {
    let u = app.user("limits").await;
    // More than half the budget left: nothing to pace, no headers (`rate_limit_headers`).
    let r = app.login(&u.email, "wrong password!").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_no_headers(&r);
    // Half or less: every answer says where the client stands, up to the refusal.
    count_down_to_the_refusal(&app, &u.email, 4, 2).await;
    // Other classes have their own budgets: the session check is far from its limit.
    let r = app.get("/v1/me", &u.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_no_headers(&r);
    // Unlimited routes carry no headers.
    assert_no_headers(&TestApp::send(app.req(Method::GET, "/healthz")).await);
}

async fn every_answer_carries_the_headers_when_configured(app: TestApp) {
    let u = app.user("limits").await;
    count_down_to_the_refusal(&app, &u.email, 3, 2).await;
    // Other classes have their own budgets.
    let r = app.get("/v1/me", &u.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_headers(&r, 60_000);
    assert_no_headers(&TestApp::send(app.req(Method::GET, "/healthz")).await);
}

async fn public_config(app: &TestApp, forwarded_for: Option<&str>) -> Reply {
    let mut rb = app.req(Method::GET, "/v1/public/config?publishable_key=pk_live_x");
    if let Some(ip) = forwarded_for {
        rb = rb.header("x-forwarded-for", ip);
    }
    TestApp::send(rb).await
}

async fn forwarded_for_counts_only_from_trusted_proxies(app: TestApp) {
    // The test client is 127.0.0.1, a trusted proxy here: each forwarded client has its own
    // budget.
    for ip in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let r = public_config(&app, Some(ip)).await;
            r.assert_error(404, "not_found");
        }
        public_config(&app, Some(ip))
            .await
            .assert_error(429, "rate_limited");
    }
}

async fn health_from(app: &TestApp, key: &str, ip: &str) -> Reply {
    TestApp::send(
        app.with_bearer(Method::GET, "/v1/backend/health", key)
            .header("x-forwarded-for", ip),
    )
    .await
}

async fn a_key_prefix_cannot_spend_the_keys_budget(app: TestApp) {
    // A secret key's budget is spent before the key is checked, and its display prefix is
    // no secret. An attacker sends made-up keys that start like the victim's, each from a
    // fresh address (own address budgets, forwarded by the trusted proxy 127.0.0.1).
    let owner = app.user("victim").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/keys/rotate", &owner.token)
            .header("x-project-id", &owner.project_id)
            .header("x-forwarded-for", "198.51.100.1")
            .json(&json!({"grace_seconds": 0})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["secret_key"].as_str().unwrap().to_owned();
    for (n, forged_rest) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let forged = format!("{}{}", &key[..16], forged_rest.repeat(key.len() - 16));
        let r = health_from(&app, &forged, &format!("203.0.113.{}", n + 1)).await;
        r.assert_error(401, "unauthenticated");
    }
    // The victim's own key, from addresses of its own, still has its whole budget ...
    for n in 1..=3 {
        let r = health_from(&app, &key, &format!("192.0.2.{n}")).await;
        assert_eq!(r.status, StatusCode::OK, "use {n}: {}", r.body);
    }
    // ... and the key's budget still binds across addresses.
    health_from(&app, &key, "192.0.2.4")
        .await
        .assert_error(429, "rate_limited");
}

async fn untrusted_peers_cannot_spread_their_budget(app: TestApp) {
    // No trusted proxy: X-Forwarded-For is ignored and the socket's address counts.
    public_config(&app, Some("203.0.113.1"))
        .await
        .assert_error(404, "not_found");
    public_config(&app, Some("203.0.113.2"))
        .await
        .assert_error(404, "not_found");
    public_config(&app, Some("203.0.113.3"))
        .await
        .assert_error(429, "rate_limited");
}

async fn rate_limiting_can_be_switched_off(app: TestApp) {
    let u = app.user("unlimited").await;
    for _ in 0..40 {
        let r = app.login(&u.email, "correct horse battery").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.headers.get("ratelimit-limit").is_none());
    }
}

/// A `redis-server` of this test's own on a free port, killed on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = Self { child, port };
        for _ in 0..100 {
            if redis.cli(&["PING"]).trim() == "PONG" {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {port} did not start");
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn redis_outage_falls_back_to_local_limits(backend: Backend) {
    let mut redis = PrivateRedis::start();
    let port = redis.port;
    let prefix = format!("pc-test-{}", uuid::Uuid::now_v7().simple());
    let key_prefix = prefix.clone();
    let app = TestApp::start_with(backend, move |c| {
        c.platform.redis_url = Some(format!("redis://127.0.0.1:{port}").into());
        c.platform.redis_key_prefix = key_prefix;
        c.platform.rate_limit_headers = RateLimitHeaders::Always;
        c.platform.rate_limits.public_config = QuotaConfig {
            limit: 3,
            window_secs: 60,
        };
    })
    .await;
    let u = app.user("outage").await;
    for left in [2, 1] {
        let r = public_config(&app, None).await;
        r.assert_error(404, "not_found");
        assert_eq!(r.headers["ratelimit-remaining"], left.to_string().as_str());
    }
    // The budget lives in Redis.
    let keys = redis.cli(&["KEYS", &format!("{prefix}:rl:public_config:*")]);
    assert!(keys.contains("ip:127.0.0.1"), "{keys:?}");
    // GCRA: the key holds the theoretical arrival time (microseconds on Redis's clock), two
    // emission intervals (2 × 20 s) ahead after two requests, and expires when the burst is
    // full again.
    let key = format!("{prefix}:rl:public_config:ip:127.0.0.1");
    let tat: u64 = redis.cli(&["GET", &key]).trim().parse().unwrap();
    let now: u64 = redis
        .cli(&["TIME"])
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .fold(0, |acc, v| if acc == 0 { v * 1_000_000 } else { acc + v });
    assert!(
        (39_000_000..=40_000_000).contains(&(tat - now)),
        "{tat} - {now}"
    );
    let ttl: u64 = redis.cli(&["PTTL", &key]).trim().parse().unwrap();
    assert!((39_000..=40_000).contains(&ttl), "{ttl}");

    redis.stop();
    // Redis is gone: no 5xx, sign-in works, and the local limiter still limits.
    let r = app.login(&u.email, "correct horse battery").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/v1/me", &u.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = public_config(&app, None).await;
        assert!(!r.status.is_server_error(), "{}", r.body);
        statuses.push(r.status.as_u16());
    }
    assert!(
        statuses.contains(&429),
        "the local limit still applies: {statuses:?}"
    );
    let r = TestApp::send(app.req(Method::POST, "/v1/auth/login").json(&json!({
        "email": u.email, "password": "correct horse battery"
    })))
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The shared budget is GCRA, like the local one: a burst of `limit`, then one request per
/// window / limit — never a fresh burst at a window's edge. On the real Redis at
/// 127.0.0.1:6379, under a prefix of this test's own.
async fn redis_budget_refills_evenly(backend: Backend) {
    let prefix = format!("pc-gcra-{}", uuid::Uuid::now_v7().simple());
    let key_prefix = prefix.clone();
    let app = TestApp::start_with(backend, move |c| {
        c.platform.redis_url = Some("redis://127.0.0.1:6379".to_owned().into());
        c.platform.redis_key_prefix = key_prefix;
        // One cell every 500 ms, a burst of 2.
        c.platform.rate_limits.public_config = QuotaConfig {
            limit: 2,
            window_secs: 1,
        };
    })
    .await;
    let statuses = |rs: &[Reply]| rs.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>();
    let mut burst = Vec::new();
    for _ in 0..3 {
        burst.push(public_config(&app, None).await);
    }
    assert_eq!(statuses(&burst), [404, 404, 429]);
    assert_eq!(burst[1].headers["ratelimit-remaining"], "0");
    assert_eq!(burst[2].headers["retry-after"], "1");
    // 600 ms later one cell is back, not a whole burst.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut later = Vec::new();
    for _ in 0..2 {
        later.push(public_config(&app, None).await);
    }
    assert_eq!(statuses(&later), [404, 429]);
    let keys = std::process::Command::new("redis-cli")
        .args(["-p", "6379", "KEYS", &format!("{prefix}:rl:*")])
        .output()
        .expect("redis-cli is installed");
    assert!(
        String::from_utf8_lossy(&keys.stdout).contains("public_config:ip:127.0.0.1"),
        "the budget lives in Redis"
    );
}
