#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `/metrics` through HTTP: the product counters move when sign-ins, grants and rate limits
//! happen, the pool and process families are there, and the whole text is well-formed
//! Prometheus exposition — on SQLite and PostgreSQL.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Backend, TestApp};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Mobile sign-in on (so the exchange reaches its rate limit), one exchange per address
/// (the `ott_exchange` route class, answered at the edge).
fn config(c: &mut Config) {
    c.mobile.schemes = serde_json::from_value(json!("alga")).unwrap();
    c.platform.rate_limits.ott_exchange = portcullis_server::config::platform::QuotaConfig {
        limit: 1,
        window_secs: 60,
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    counters_move_and_the_text_parses(TestApp::start_with(Backend::Sqlite, config).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    counters_move_and_the_text_parses(TestApp::start_with(Backend::Postgres, config).await).await;
}

/// Samples by `name{labels}`, after checking the text is valid exposition format.
type Samples = BTreeMap<String, f64>;

async fn scrape(app: &TestApp) -> Samples {
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse_exposition(&r.text().await.unwrap())
}

fn at(samples: &Samples, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("{key} not exposed; have: {:#?}", samples.keys()))
}

async fn counters_move_and_the_text_parses(app: TestApp) {
    let user = app.user("metrics").await;
    let before = scrape(&app).await;

    // A sign-in and a failed sign-in.
    let r = app.login(&user.email, "correct horse battery").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = r.session_cookie().unwrap();
    app.login(&user.email, "wrong horse battery")
        .await
        .assert_error(401, "unauthenticated");

    // A client_credentials grant.
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/clients", &user.token)
            .header("x-project-id", &user.project_id)
            .json(&json!({
                "name": "Backend job",
                "type": "confidential",
                "redirect_uris": ["https://rp.example.com/cb"],
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_post",
            })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let client = r.body.get("client").unwrap_or(&r.body);
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    let r = TestApp::send(app.req(Method::POST, "/oauth2/token").form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A spent one-time token, then a rate-limited answer (one exchange per address).
    let exchange = || {
        TestApp::send(app.req(Method::POST, "/api/v1/mobile/auth/exchange").json(
            &json!({"ott": "ott_unknown", "state": "s-1",
                              "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                              "device": {"platform": "ios"}}),
        ))
    };
    exchange().await.assert_error(401, "ott_invalid");
    exchange().await.assert_error(429, "rate_limited");

    // The session cache answers a session it has seen.
    for _ in 0..2 {
        assert_eq!(app.get("/v1/me", &session).await.status, StatusCode::OK);
    }

    let after = scrape(&app).await;
    let moved = |key: &str| at(&after, key) - before.get(key).copied().unwrap_or(0.0);
    for (key, by) in [
        (
            r#"portcullis_sign_ins_total{method="password",outcome="succeeded"}"#,
            1.0,
        ),
        (
            r#"portcullis_sign_ins_total{method="password",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"portcullis_sign_ins_total{method="mobile",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"portcullis_sign_ins_total{method="sso",outcome="succeeded"}"#,
            0.0,
        ),
        (
            r#"portcullis_tokens_issued_total{grant="client_credentials"}"#,
            1.0,
        ),
        (
            r#"portcullis_tokens_issued_total{grant="authorization_code"}"#,
            0.0,
        ),
        (
            r#"portcullis_mobile_ott_exchanges_total{outcome="invalid"}"#,
            1.0,
        ),
        (
            r#"portcullis_mobile_ott_exchanges_total{outcome="rate_limited"}"#,
            1.0,
        ),
        (
            r#"portcullis_rate_limited_total{route_class="mobile"}"#,
            1.0,
        ),
        (
            r#"portcullis_rate_limited_total{route_class="sign_in"}"#,
            0.0,
        ),
        (
            r#"portcullis_refresh_token_reuse_detected_total{flow="oauth"}"#,
            0.0,
        ),
    ] {
        assert_eq!(moved(key), by, "{key}");
    }
    assert!(moved(r#"portcullis_session_cache_hits_total{kind="session"}"#) >= 1.0);
    assert!(
        moved(
            r#"portcullis_http_requests_total{method="POST",route="/api/v1/mobile/auth/exchange",status="429"}"#
        ) == 1.0
    );

    // The pools of the backend in use, with transactions counted.
    let pools: &[&str] = match app.state.store.backend() {
        portcullis_store::Backend::Sqlite => &["read", "write"],
        portcullis_store::Backend::Postgres => &["main"],
    };
    for pool in pools {
        let size = at(
            &after,
            &format!(r#"portcullis_db_pool_connections{{pool="{pool}"}}"#),
        );
        let idle = at(
            &after,
            &format!(r#"portcullis_db_pool_idle_connections{{pool="{pool}"}}"#),
        );
        let in_use = at(
            &after,
            &format!(r#"portcullis_db_pool_in_use_connections{{pool="{pool}"}}"#),
        );
        let max = at(
            &after,
            &format!(r#"portcullis_db_pool_max_connections{{pool="{pool}"}}"#),
        );
        assert_eq!(size, idle + in_use, "{pool}");
        assert!(size <= max, "{pool}");
    }
    let timed = if pools.contains(&"main") {
        "main"
    } else {
        "write"
    };
    assert!(
        moved(&format!(
            r#"portcullis_db_pool_acquire_wait_seconds_count{{pool="{timed}"}}"#
        )) >= 1.0
    );

    // The process, as every Prometheus client library names it.
    if std::path::Path::new("/proc/self/stat").exists() {
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(at(&after, name) > 0.0, "{name}");
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        let started = at(&after, "process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started}"
        );
    }
}

// ---- the exposition format ----------------------------------------------------------------

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The family a sample belongs to: histograms and summaries add suffixes to theirs.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    if types.contains_key(name) {
        return name;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base;
        }
    }
    name
}

/// Checks the text against the Prometheus text format (0.0.4) and returns its samples:
/// every family has `# HELP` and `# TYPE` before its samples, once each; names and label
/// names are valid; values are numbers; no sample appears twice.
fn parse_exposition(text: &str) -> Samples {
    let mut helps = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut samples = Samples::new();
    assert!(text.ends_with('\n'), "the text must end with a newline");
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(is_metric_name(name), "bad name in {line:?}");
            assert!(!help.trim().is_empty(), "empty help: {line:?}");
            assert!(helps.insert(name.to_owned()), "HELP twice: {line:?}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(is_metric_name(name), "bad name in {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line:?}"
            );
            assert!(helps.contains(name), "TYPE before HELP: {line:?}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line:?}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels close")),
            None => (series, ""),
        };
        assert!(is_metric_name(name), "bad metric name: {line:?}");
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (label, quoted) = pair.split_once('=').expect("label=value");
            assert!(is_label_name(label), "bad label name: {line:?}");
            assert!(
                quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                "unquoted label value: {line:?}"
            );
        }
        let family = family_of(name, &types);
        assert!(
            types.contains_key(family) && helps.contains(family),
            "sample without HELP and TYPE: {line:?}"
        );
        if types[family] == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter not named _total: {line:?}"
            );
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line:?}")),
        };
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "sample twice: {line:?}"
        );
    }
    assert!(
        helps.iter().all(|h| types.contains_key(h)),
        "HELP without TYPE"
    );
    samples
}
