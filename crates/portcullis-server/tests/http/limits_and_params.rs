#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The edge against an attacker's input, through HTTP: parameter floods and oversized
//! bodies, password guessing on every sign-in surface, planted session cookies, and the
//! metrics token. Sign-in limits run on SQLite and PostgreSQL; the rest touch no storage
//! and run on SQLite.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Backend, Reply, TestApp};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `p0=v&p1=v&…`: `n` distinct parameters.
fn distinct_params(n: usize) -> String {
    (0..n)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends raw HTTP/1.1 (`head` without its blank line, then `body`) and returns the status
/// and the answer. For what reqwest will not send: a `Content-Length` whose body never
/// comes, or a chunked body that never ends.
async fn raw(app: &TestApp, head: &str, body: &[u8]) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    stream.write_all(body).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), read_answer(&mut stream))
        .await
        .expect("the server answers without waiting for the rest of the body");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (status, answer)
}

/// One HTTP answer with a `Content-Length`: the head, then that many bytes.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before a whole answer: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..head_end]
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("the answer has a Content-Length");
        if out.len() >= head_end + 4 + length {
            return text;
        }
    }
}

/// A chunked body of `total` bytes of distinct parameters, without its final chunk: the
/// server must cut it at its limit rather than wait for the end.
fn chunked(total: usize) -> Vec<u8> {
    let data = distinct_params(total / 6);
    let data = &data.as_bytes()[..total.min(data.len())];
    let mut out = Vec::new();
    for chunk in data.chunks(8192) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn assert_oauth_too_large(r: &Reply) {
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_request", "{}", r.body);
    assert_eq!(r.body["code"], "payload_too_large", "{}", r.body);
    assert!(r.body["correlation_id"].is_string(), "{}", r.body);
}

fn form_post(app: &TestApp, path: &str, body: String) -> reqwest::RequestBuilder {
    app.req(Method::POST, path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &app.base)
        .body(body)
}

fn mobile_config(c: &mut Config) {
    c.mobile.schemes = serde_json::from_value(json!("alga")).unwrap();
}

/// 100,000 distinct parameters (≈ 0.8 MB) and a few thousand (under the form limit) on the
/// OAuth endpoints: 413 and 400, each in the RFC shape. Before the set and the cap this
/// took minutes of CPU per request, before anyone was authenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_floods_on_the_oauth_endpoints() {
    let app = TestApp::start(Backend::Sqlite).await;
    let flood = distinct_params(100_000);
    let many = distinct_params(5_000);
    assert!(flood.len() > 64 * 1024 && many.len() < 64 * 1024);
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let r = TestApp::send(form_post(&app, path, flood.clone())).await;
        assert_oauth_too_large(&r);

        let r = TestApp::send(form_post(&app, path, many.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_request", "{}", r.body);
        assert!(
            r.body["error_description"]
                .as_str()
                .unwrap()
                .contains("too many parameters"),
            "{}",
            r.body
        );
    }
    // A repeated parameter is still refused (RFC 6749 §3.1), at the cap too.
    let r = TestApp::send(form_post(
        &app,
        "/oauth2/token",
        format!("{}&p3=again", distinct_params(60)),
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("\"p3\""),
        "{}",
        r.body
    );
    // A declared length over the limit is refused before the body is sent.
    let (status, text) = raw(
        &app,
        "POST /oauth2/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000",
        b"",
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    // A chunked body is cut at the limit, without its end ever coming.
    let (status, text) = raw(
        &app,
        "POST /oauth2/introspect HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked",
        &chunked(80 * 1024),
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
}

/// The JSON API: bodies over `max_json_body_bytes` are `413 payload_too_large` in the
/// envelope, declared or chunked; under it, the JSON rules answer as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_json_bodies_are_refused() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.security.max_json_body_bytes = 64 * 1024;
    })
    .await;
    let keys: serde_json::Map<String, Value> =
        (0..100_000).map(|i| (format!("k{i}"), json!(1))).collect();
    let r = TestApp::send(
        app.req(Method::POST, "/v1/auth/login")
            .json(&Value::Object(keys)),
    )
    .await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(r.body["details"]["limit_bytes"], 64 * 1024);

    let r = TestApp::send(
        app.req(Method::POST, "/v1/auth/signup")
            .json(&json!({"email": "a@example.com", "password": "x".repeat(70 * 1024)})),
    )
    .await;
    r.assert_error(413, "payload_too_large");

    let (status, text) = raw(
        &app,
        "POST /v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
        &chunked(70 * 1024),
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("\"code\":\"payload_too_large\""), "{text}");

    // Under the limit, nothing changes.
    let r = TestApp::send(
        app.req(Method::POST, "/v1/auth/login")
            .json(&json!({"email": "a@example.com", "password": "p", "extra": 1})),
    )
    .await;
    r.assert_error(400, "invalid_request");
}

/// The mobile hand-off: a flooded query (as long as a URI can be, 64 KiB) is an error page,
/// never a redirect; a flooded or oversized sign-in form likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_floods_on_the_mobile_hand_off() {
    let app = TestApp::start_with(Backend::Sqlite, mobile_config).await;
    let query = format!(
        "state=s1&redirect_uri=alga%3A%2F%2Fcb&{}",
        distinct_params(7_000)
    );
    assert!(query.len() > 50_000);
    let r = TestApp::send(app.req(Method::GET, &format!("/auth/mobile/handoff?{query}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.headers.get("location").is_none());
    assert!(
        r.body.as_str().unwrap().contains("too many parameters"),
        "{}",
        r.body
    );

    let r = TestApp::send(form_post(
        &app,
        "/auth/mobile/login",
        distinct_params(100_000),
    ))
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let r = TestApp::send(form_post(
        &app,
        "/auth/mobile/login",
        distinct_params(5_000),
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = TestApp::send(form_post(&app, "/oauth2/login", distinct_params(100_000))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
}

// ---- Password guessing -----------------------------------------------------------------

/// Small allowances and a long first wait, so nothing here depends on timing.
fn throttled(c: &mut Config) {
    mobile_config(c);
    c.security.sign_in_limit_per_account = 3;
    c.security.sign_in_limit_per_ip = 100;
    c.security.sign_in_backoff_secs = 120;
}

/// A client whose requests come from `127.0.0.x`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Surface {
    /// `POST /v1/auth/login`
    Api,
    /// `POST /oauth2/login`, the provider's sign-in page
    OidcPage,
    /// `POST /auth/mobile/login`, the hand-off's sign-in page
    MobilePage,
}

const SURFACES: [Surface; 3] = [Surface::Api, Surface::OidcPage, Surface::MobilePage];

async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    surface: Surface,
    email: &str,
    password: &str,
) -> Reply {
    let rb = match surface {
        Surface::Api => client
            .post(format!("{}/v1/auth/login", app.base))
            .json(&json!({"email": email, "password": password})),
        Surface::OidcPage => client
            .post(format!("{}/oauth2/login", app.base))
            .header("origin", &app.base)
            .form(&[("email", email), ("password", password), ("continue", "")]),
        Surface::MobilePage => client
            .post(format!("{}/auth/mobile/login", app.base))
            .header("origin", &app.base)
            .form(&[
                ("email", email),
                ("password", password),
                ("continue", "state=s1&redirect_uri=alga%3A%2F%2Fcb"),
            ]),
    };
    TestApp::send(rb).await
}

fn signed_in(r: &Reply, surface: Surface) -> bool {
    let ok = match surface {
        Surface::Api => StatusCode::OK,
        Surface::OidcPage | Surface::MobilePage => StatusCode::SEE_OTHER,
    };
    r.status == ok && r.session_cookie().is_some()
}

/// A 429 with `Retry-After` and `RateLimit-*`; the envelope on the API, a page on the pages.
fn assert_throttled(r: &Reply, surface: Surface, limit: u32) {
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{surface:?}: {}",
        r.body
    );
    let header = |name: &str| -> u64 {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("{surface:?}: no {name}"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let retry = header("retry-after");
    assert!(
        (1..=120).contains(&retry),
        "{surface:?}: Retry-After {retry}"
    );
    assert_eq!(header("ratelimit-limit"), u64::from(limit));
    assert_eq!(header("ratelimit-remaining"), 0);
    assert_eq!(header("ratelimit-reset"), retry);
    assert!(r.session_cookie().is_none());
    match surface {
        Surface::Api => r.assert_error(429, "rate_limited"),
        Surface::OidcPage | Surface::MobilePage => {
            let html = r.body.as_str().unwrap();
            assert!(html.contains("Too many sign-in attempts"), "{html}");
            assert!(html.contains("<form"), "the sign-in page again: {html}");
        }
    }
}

/// Wrong passwords for one account from one address, spread over the three surfaces, add
/// up; then every surface answers 429 — even to the right password — from that address,
/// while another address is not held back and the owner still signs in from it.
async fn guessing_one_account_backs_off_on_every_surface(app: TestApp) {
    let victim = app.user("victim").await;
    let attacker = client_from(1);
    for surface in SURFACES {
        let r = sign_in(&app, &attacker, surface, &victim.email, "guess guess guess").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{surface:?}: {}",
            r.body
        );
    }
    for surface in SURFACES {
        let r = sign_in(&app, &attacker, surface, &victim.email, "guess again guess").await;
        assert_throttled(&r, surface, 3);
        let r = sign_in(
            &app,
            &attacker,
            surface,
            &victim.email,
            "correct horse battery",
        )
        .await;
        assert_throttled(&r, surface, 3);
    }
    // The email's case does not make it another account.
    let r = sign_in(
        &app,
        &attacker,
        Surface::Api,
        &victim.email.to_uppercase(),
        "x guess x guess",
    )
    .await;
    assert_throttled(&r, Surface::Api, 3);

    // No victim lockout: from another address, a wrong password is just wrong, and the
    // right one works on every surface.
    let owner = client_from(2);
    let r = sign_in(&app, &owner, Surface::Api, &victim.email, "typo typo typo").await;
    r.assert_error(401, "unauthenticated");
    for surface in SURFACES {
        let r = sign_in(
            &app,
            &owner,
            surface,
            &victim.email,
            "correct horse battery",
        )
        .await;
        assert!(
            signed_in(&r, surface),
            "{surface:?}: {} {}",
            r.status,
            r.body
        );
    }
    // Other accounts from the attacker's address are not held back by this one's count.
    let other = app.user("other").await;
    let r = sign_in(
        &app,
        &attacker,
        Surface::Api,
        &other.email,
        "correct horse battery",
    )
    .await;
    assert!(signed_in(&r, Surface::Api), "{}", r.body);
}

/// One address guessing many accounts runs into the per-address limit; a right password
/// does not use it up, and another address is not affected.
async fn guessing_from_one_address_backs_off(app: TestApp) {
    let user = app.user("spray").await;
    let attacker = client_from(1);
    // Right passwords are given back: they never run the allowance down.
    for _ in 0..6 {
        let r = sign_in(
            &app,
            &attacker,
            Surface::Api,
            &user.email,
            "correct horse battery",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    for i in 0..4 {
        let r = sign_in(
            &app,
            &attacker,
            Surface::Api,
            &format!("sprayed-{i}@example.com"),
            "Password123!",
        )
        .await;
        r.assert_error(401, "unauthenticated");
    }
    let r = sign_in(
        &app,
        &attacker,
        Surface::MobilePage,
        "sprayed-9@example.com",
        "Password123!",
    )
    .await;
    assert_throttled(&r, Surface::MobilePage, 4);
    let r = sign_in(
        &app,
        &attacker,
        Surface::Api,
        &user.email,
        "correct horse battery",
    )
    .await;
    assert_throttled(&r, Surface::Api, 4);
    let r = sign_in(
        &app,
        &client_from(2),
        Surface::OidcPage,
        &user.email,
        "correct horse battery",
    )
    .await;
    assert!(signed_in(&r, Surface::OidcPage), "{} {}", r.status, r.body);
}

/// Sign-ups from one address back off too (each hashes a password, and a refused one tells
/// whether an email is registered).
async fn signups_back_off_per_address(app: TestApp) {
    let from = |last| {
        let client = client_from(last);
        let base = app.base.clone();
        move |email: &str| {
            client
                .post(format!("{base}/v1/auth/signup"))
                .json(&json!({"email": email, "password": "correct horse battery"}))
        }
    };
    let first = from(1);
    for i in 0..3 {
        let r = TestApp::send(first(&format!("new-{i}@example.com"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = TestApp::send(first("new-3@example.com")).await;
    r.assert_error(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.headers["ratelimit-limit"], "3");
    // Nothing was created: the email is still free, from another address.
    let r = TestApp::send(from(2)("new-3@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

mod guessing_one_account {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = super::TestApp::start_with(super::Backend::Sqlite, super::throttled).await;
        super::guessing_one_account_backs_off_on_every_surface(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = super::TestApp::start_with(super::Backend::Postgres, super::throttled).await;
        super::guessing_one_account_backs_off_on_every_surface(app).await;
    }
}

fn per_address(c: &mut Config) {
    throttled(c);
    c.security.sign_in_limit_per_ip = 4;
    c.security.sign_in_limit_per_account = 100;
}

mod guessing_from_one_address {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = super::TestApp::start_with(super::Backend::Sqlite, super::per_address).await;
        super::guessing_from_one_address_backs_off(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = super::TestApp::start_with(super::Backend::Postgres, super::per_address).await;
        super::guessing_from_one_address_backs_off(app).await;
    }
}

fn few_signups(c: &mut Config) {
    c.security.signup_limit_per_ip = 3;
    c.security.sign_in_backoff_secs = 120;
}

mod signups_per_address {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = super::TestApp::start_with(super::Backend::Sqlite, super::few_signups).await;
        super::signups_back_off_per_address(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = super::TestApp::start_with(super::Backend::Postgres, super::few_signups).await;
        super::signups_back_off_per_address(app).await;
    }
}

// ---- Session cookie names ---------------------------------------------------------------

async fn me_with_cookie(app: &TestApp, cookie: &str) -> Reply {
    TestApp::send(app.req(Method::GET, "/v1/me").header("cookie", cookie)).await
}

/// Behind https only the prefixed names are read: an unprefixed cookie (which a sibling
/// subdomain or anyone on a plain-http path can plant) is not a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_deployments_refuse_the_unprefixed_cookie() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://auth.example.test".into());
    })
    .await;
    let user = app.user("cookies").await;
    me_with_cookie(&app, &format!("portcullis_session={}", user.token))
        .await
        .assert_error(401, "unauthenticated");
    for name in ["__Host-portcullis_session", "__Secure-portcullis_session"] {
        let r = me_with_cookie(&app, &format!("{name}={}", user.token)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
    }
    // A planted unprefixed cookie beside a bearer token does not shadow it.
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/me", &user.token)
            .header("cookie", "portcullis_session=planted"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_deployments_read_the_unprefixed_cookie() {
    let app = TestApp::start(Backend::Sqlite).await;
    let user = app.user("cookies").await;
    for name in [
        "portcullis_session",
        "__Host-portcullis_session",
        "__Secure-portcullis_session",
    ] {
        let r = me_with_cookie(&app, &format!("{name}={}", user.token)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
    }
}

// ---- Metrics token ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token() {
    const TOKEN: &str = "scrape-me-0123456789abcdef";
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.security.metrics_token = Some(TOKEN.into());
    })
    .await;
    TestApp::send(app.req(Method::GET, "/metrics"))
        .await
        .assert_error(401, "unauthenticated");
    for wrong in ["scrape-me-0123456789abcdeX", "scrape-me", ""] {
        TestApp::send(app.req(Method::GET, "/metrics").bearer_auth(wrong))
            .await
            .assert_error(401, "unauthenticated");
    }
    // A session is not a metrics token.
    let user = app.user("metrics").await;
    TestApp::send(app.with_bearer(Method::GET, "/metrics", &user.token))
        .await
        .assert_error(401, "unauthenticated");
    let r = TestApp::send(app.req(Method::GET, "/metrics").bearer_auth(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .as_str()
            .unwrap()
            .contains("portcullis_http_requests_total")
    );

    // Unset: open, as before.
    let open = TestApp::start(Backend::Sqlite).await;
    let r = TestApp::send(open.req(Method::GET, "/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
}
