#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Mobile sign-in through HTTP, acting like the app: capabilities, the browser hand-off, the
//! deep link, the one-time-token exchange, bearer access to the API, refresh rotation with
//! reuse detection, and sign-out — on SQLite and PostgreSQL.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, Reply, Signed, TestApp};
use portcullis_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const CALLBACK: &str = "alga://auth/callback";
/// A well-formed PKCE verifier that matches no challenge (RFC 7636 appendix B's).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// What every test server gets: the app's scheme registered, and no grace window for
/// refresh retries (so a second use of a rotated token is reuse at once).
fn mobile_config(c: &mut Config) {
    c.mobile.schemes = serde_json::from_value(json!("alga")).unwrap();
    c.mobile.universal_links =
        serde_json::from_value(json!(["https://app.example.com/auth/"])).unwrap();
    c.oidc.refresh_grace_secs = 0;
}

fn plain(_: &mut Config) {}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::now_v7().as_bytes().repeat(3));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn app_state() -> String {
    format!("st-{}", uuid::Uuid::now_v7().simple())
}

fn handoff_path(state: &str, challenge: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("state", state);
    q.append_pair("redirect_uri", CALLBACK);
    if let Some(c) = challenge {
        q.append_pair("code_challenge", c);
        q.append_pair("code_challenge_method", "S256");
    }
    format!("/auth/mobile/handoff?{}", q.finish())
}

fn location(r: &Reply) -> String {
    r.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location ({}): {}", r.status, r.body))
        .to_owned()
}

/// The deep link's query, parsed as the app does.
fn deep_link(r: &Reply) -> std::collections::HashMap<String, String> {
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let link = url::Url::parse(&location(r)).unwrap();
    assert_eq!(link.scheme(), "alga");
    assert_eq!(link.host_str(), Some("auth"));
    assert_eq!(link.path(), "/callback");
    link.query_pairs().into_owned().collect()
}

/// The confirmation page a signed-in browser gets before a token goes to an app scheme:
/// its hidden fields `(continue, csrf_token)`. Nothing was minted for it.
fn confirmation_form(r: &Reply) -> (String, String) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers.get("location").is_none(), "not redirected");
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.body.as_str().unwrap();
    assert!(html.contains("action=\"/auth/mobile/confirm\""), "{html}");
    assert!(
        !html.contains("ott_"),
        "no one-time token on the page: {html}"
    );
    (html_attr(html, "continue"), html_attr(html, "csrf_token"))
}

/// The browser answers the confirmation page, from this server's origin.
async fn confirm(
    app: &TestApp,
    cookie: &str,
    cont: &str,
    csrf: &str,
    decision: &str,
    correlation: &str,
) -> Reply {
    TestApp::send(
        app.with_cookie(Method::POST, "/auth/mobile/confirm", cookie)
            .header("x-correlation-id", correlation)
            .form(&[
                ("continue", cont),
                ("csrf_token", csrf),
                ("decision", decision),
            ]),
    )
    .await
}

/// A browser that is already signed in opens the hand-off, is asked, and continues: the
/// one-time token comes back on the deep link (minted by the request `correlation`).
async fn handoff_with_session(
    app: &TestApp,
    user: &Signed,
    state: &str,
    challenge: &str,
    correlation: &str,
) -> String {
    let page = TestApp::send(app.with_cookie(
        Method::GET,
        &handoff_path(state, Some(challenge)),
        &user.token,
    ))
    .await;
    let (cont, csrf) = confirmation_form(&page);
    let r = confirm(app, &user.token, &cont, &csrf, "continue", correlation).await;
    let q = deep_link(&r);
    assert_eq!(q.get("state").map(String::as_str), Some(state));
    let ott = q.get("ott").cloned().expect("ott on the deep link");
    assert!(ott.starts_with("ott_") && ott.len() >= 4 + 43, "{ott}");
    ott
}

fn device() -> Value {
    json!({"platform": "ios", "model": "iPhone15,2", "app_version": "1.4.0"})
}

async fn exchange(app: &TestApp, body: Value, correlation: &str) -> Reply {
    TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/exchange")
            .header("x-correlation-id", correlation)
            .json(&body),
    )
    .await
}

async fn refresh(app: &TestApp, token: &str, correlation: &str) -> Reply {
    TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/refresh")
            .header("x-correlation-id", correlation)
            .json(&json!({"refresh_token": token})),
    )
    .await
}

async fn caps(app: &TestApp) -> Reply {
    TestApp::send(app.req(Method::GET, "/api/v1/mobile/auth/capabilities")).await
}

fn corr(label: &str) -> String {
    format!("mobile-{label}-{}", uuid::Uuid::now_v7().simple())
}

/// Signs in through the hand-off (session present) and exchanges: (access, refresh).
async fn sign_in(app: &TestApp, user: &Signed) -> (String, String) {
    let (verifier, challenge) = pkce();
    let state = app_state();
    let ott = handoff_with_session(app, user, &state, &challenge, &corr("handoff")).await;
    let r = exchange(
        app,
        json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()}),
        &corr("exchange"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (
        r.body["access_token"].as_str().unwrap().to_owned(),
        r.body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Audit events of one request, as an org admin sees them.
async fn audit_actions(app: &TestApp, user: &Signed, correlation: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?correlation_id={correlation}",
                user.org_id
            ),
            &user.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = r.body["events"].as_array().unwrap().clone();
    for e in &events {
        assert_eq!(e["correlation_id"], json!(correlation));
    }
    events
}

fn has_action(events: &[Value], action: &str, outcome: &str) -> bool {
    events
        .iter()
        .any(|e| e["action"] == json!(action) && e["outcome"] == json!(outcome))
}

/// One-time tokens minted for `user` so far: the store writes each with its
/// `mobile.ott.issued` event in one transaction, so the audit log counts them.
async fn issued_count(app: &TestApp, user: &Signed) -> usize {
    let r = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?action=mobile.ott.issued&limit=200",
                user.org_id
            ),
            &user.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["events"].as_array().unwrap().len()
}

both_backends! {
    configured mobile_config:
    whole_journey => plain,
    handoff_through_the_login_page => plain,
    handoff_refuses_without_state_or_registered_redirect => plain,
    handoff_failures_go_back_to_the_app => plain,
    handoff_requires_pkce => plain,
    app_scheme_needs_confirmation => plain,
    universal_link_skips_the_confirmation => plain,
    expired_ott_is_refused => |c: &mut Config| c.mobile.ott_ttl_sec = 1,
    ott_is_single_use_and_bound => plain,
    exchange_payload_is_validated => plain,
    concurrent_exchanges_one_wins => |c: &mut Config| c.mobile.exchange_limit_per_client = 50,
    host_allowlist_is_enforced => |c: &mut Config| {
        c.mobile.host_allowlist = serde_json::from_value(json!("auth.example.com, psa.example.net")).unwrap();
    },
    own_host_is_allowed_by_default => plain,
    mobile_disabled => |c: &mut Config| c.mobile.enabled = false,
    password_login_off => |c: &mut Config| c.password_login = false,
    // The exchange's per-address limit is the `ott_exchange` route class.
    exchange_is_rate_limited_per_ip => |c: &mut Config| {
        c.platform.rate_limits.ott_exchange = portcullis_server::config::platform::QuotaConfig { limit: 3, window_secs: 60 };
    },
    // The deprecated mobile_exchange_limit_per_ip still sets it.
    exchange_per_ip_limit_keeps_its_old_key => |c: &mut Config| c.mobile.exchange_limit_per_ip = Some(3),
    exchange_is_rate_limited_per_client => |c: &mut Config| c.mobile.exchange_limit_per_client = 2,
    revoking_the_session_stops_the_tokens => plain,
    refresh_retry_within_grace_gets_the_same_successor => |c: &mut Config| c.oidc.refresh_grace_secs = 30,
    other_clients_tokens_cannot_call_the_api => plain,
    plan_without_mobile_access_is_refused => |c: &mut Config| {
        c.platform.plans.insert(
            "web-only".into(),
            portcullis_server::config::platform::PlanConfig {
                seat_limit: Some(10),
                project_limit: Some(10),
                features: vec![],
            },
        );
    },
}

/// An org moved to a plan without `mobile_access`: its refresh tokens and new hand-offs are
/// refused with `403 feature_disabled` naming the plan; web sign-in is untouched.
async fn plan_without_mobile_access_is_refused(app: TestApp) {
    let user = app.user("webonly").await;
    let (_, refresh_token) = sign_in(&app, &user).await;
    app.state
        .store
        .org(&portcullis_core::OrgAccess::system(
            portcullis_core::OrgId::parse(&user.org_id).unwrap(),
        ))
        .platform()
        .set_subscription(
            &portcullis_core::plan::Subscription {
                plan: portcullis_core::plan::PlanKey::parse("web-only").unwrap(),
                status: portcullis_core::plan::SubscriptionStatus::Active,
                current_period_start: portcullis_core::now(),
                current_period_end: None,
            },
            &portcullis_core::AuditContext::cli(),
        )
        .await
        .unwrap();
    let r = refresh(&app, &refresh_token, &corr("refresh")).await;
    r.assert_error(403, "feature_disabled");
    assert_eq!(r.body["details"]["plan"], "web-only");
    assert_eq!(r.body["details"]["feature"], "mobile_access");
    assert!(r.body["message"].as_str().unwrap().contains("web-only"));
    let page = TestApp::send(app.with_cookie(
        Method::GET,
        &handoff_path(&app_state(), Some(&pkce().1)),
        &user.token,
    ))
    .await;
    // The plan is asked when the one-time token would be issued: after the confirmation.
    let (cont, csrf) = confirmation_form(&page);
    let r = confirm(
        &app,
        &user.token,
        &cont,
        &csrf,
        "continue",
        &corr("confirm"),
    )
    .await;
    assert_eq!(deep_link(&r)["error"], "feature_disabled");
    let r = app.login(&user.email, "correct horse battery").await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn whole_journey(app: TestApp) {
    let user = app.user("mobile").await;

    // 1. The app asks what the server offers.
    let caps = caps(&app).await;
    assert_eq!(caps.status, StatusCode::OK, "{}", caps.body);
    assert_eq!(caps.body["enabled"], json!(true));
    assert_eq!(caps.body["password_login"], json!(true));
    assert_eq!(caps.body["ott_ttl_sec"], json!(60));
    assert!(caps.body["providers"].is_array());
    assert_eq!(caps.body["server"]["name"], json!("Portcullis"));
    assert!(caps.body["server"]["version"].as_str().is_some());

    // 2. The browser (already signed in) opens the hand-off: the question, no token yet.
    let (verifier, challenge) = pkce();
    let state = app_state();
    let page = TestApp::send(app.with_cookie(
        Method::GET,
        &handoff_path(&state, Some(&challenge)),
        &user.token,
    ))
    .await;
    let (cont, csrf) = confirmation_form(&page);
    let html = page.body.as_str().unwrap();
    assert!(html.contains("Continue to alga on this device?"), "{html}");
    assert!(html.contains(&user.email), "names the account: {html}");
    assert_eq!(issued_count(&app, &user).await, 0);
    // 3. The person continues; 4. the app parses the deep link.
    let c_handoff = corr("handoff");
    let r = confirm(&app, &user.token, &cont, &csrf, "continue", &c_handoff).await;
    let q = deep_link(&r);
    assert_eq!(q["state"], state);
    assert!(!q.contains_key("error"), "{q:?}");
    let ott = q["ott"].clone();
    assert!(ott.starts_with("ott_"), "{ott}");

    // 5. The exchange (with the PKCE verifier).
    let c_exchange = corr("exchange");
    let r = exchange(
        &app,
        json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()}),
        &c_exchange,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["expires_in"], json!(900));
    assert_eq!(r.body["user"]["id"], json!(user.user_id));
    assert_eq!(r.body["user"]["email"], json!(user.email));
    assert_eq!(r.body["org"]["id"], json!(user.org_id));
    assert_eq!(r.headers["cache-control"], "no-store");
    let access1 = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh1 = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(portcullis_core::token::is_refresh_token(&refresh1));
    assert_eq!(access1.split('.').count(), 3, "a JWT");

    // 6. The access token works on the API, through the device's session.
    let me = app.get("/v1/me", &access1).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["user"]["id"], json!(user.user_id));
    assert_eq!(me.body["session"]["device"]["platform"], json!("ios"));
    let sessions = app.get("/v1/sessions", &access1).await;
    assert_eq!(sessions.status, StatusCode::OK);
    let mobile_session = sessions.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == json!(true))
        .cloned()
        .expect("the mobile session is listed as current");
    assert_eq!(
        mobile_session["device"],
        json!({"platform": "ios", "model": "iPhone15,2", "app_version": "1.4.0"})
    );
    // The org admin sees the device too.
    let org_sessions = app
        .get(&format!("/v1/orgs/{}/sessions", user.org_id), &user.token)
        .await;
    assert!(
        org_sessions.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == mobile_session["id"] && s["device"]["model"] == json!("iPhone15,2")),
        "{}",
        org_sessions.body
    );

    // 7. Refresh rotates.
    let c_refresh = corr("refresh");
    let r = refresh(&app, &refresh1, &c_refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access2 = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh1);
    assert_eq!(app.get("/v1/me", &access2).await.status, StatusCode::OK);

    // 8. The old refresh token again (grace 0): reuse; the whole sign-in is revoked.
    let c_reuse = corr("reuse");
    let r = refresh(&app, &refresh1, &c_reuse).await;
    r.assert_error(401, "refresh_token_reused");
    refresh(&app, &refresh2, &corr("after-reuse"))
        .await
        .assert_error(401, "unauthenticated");
    app.get("/v1/me", &access2)
        .await
        .assert_error(401, "unauthenticated");
    app.get("/v1/me", &access1)
        .await
        .assert_error(401, "unauthenticated");

    // 9. A fresh sign-in works; signing out revokes it.
    let (access3, refresh3) = sign_in(&app, &user).await;
    assert_eq!(app.get("/v1/me", &access3).await.status, StatusCode::OK);
    let c_logout = corr("logout");
    let r = TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/revoke")
            .header("x-correlation-id", &c_logout)
            .json(&json!({"refresh_token": refresh3})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    refresh(&app, &refresh3, &corr("after-logout"))
        .await
        .assert_error(401, "unauthenticated");
    app.get("/v1/me", &access3)
        .await
        .assert_error(401, "unauthenticated");

    // 10. Every step is in the audit trail under the request's correlation id.
    let issued = audit_actions(&app, &user, &c_handoff).await;
    assert!(
        has_action(&issued, "mobile.ott.issued", "success"),
        "{issued:?}"
    );
    let exchanged = audit_actions(&app, &user, &c_exchange).await;
    assert!(
        has_action(&exchanged, "mobile.ott.exchanged", "success"),
        "{exchanged:?}"
    );
    assert!(
        has_action(&exchanged, "session.created", "success"),
        "{exchanged:?}"
    );
    assert!(
        exchanged
            .iter()
            .all(|e| e["actor_id"] == json!(user.user_id))
    );
    let refreshed = audit_actions(&app, &user, &c_refresh).await;
    assert!(
        has_action(&refreshed, "mobile.refresh.succeeded", "success"),
        "{refreshed:?}"
    );
    let reused = audit_actions(&app, &user, &c_reuse).await;
    assert!(
        has_action(&reused, "mobile.refresh.reuse_detected", "failure"),
        "{reused:?}"
    );
    assert!(
        has_action(&reused, "session.revoked", "success"),
        "{reused:?}"
    );
    let logout = audit_actions(&app, &user, &c_logout).await;
    assert!(
        has_action(&logout, "mobile.logout", "success"),
        "{logout:?}"
    );
}

fn html_attr(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("field in the form") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn handoff_through_the_login_page(app: TestApp) {
    let user = app.user("pw").await;
    let (verifier, challenge) = pkce();
    let state = app_state();
    // No browser session: the sign-in page.
    let page = TestApp::send(app.req(Method::GET, &handoff_path(&state, Some(&challenge)))).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.body.as_str().unwrap().to_owned();
    assert!(html.contains("action=\"/auth/mobile/login\""), "{html}");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action 'self' alga:")
    );
    let cont = html_attr(&html, "continue");
    let form = [
        ("email", user.email.as_str()),
        ("password", "correct horse battery"),
        ("continue", cont.as_str()),
    ];

    // The form must come from this server.
    let foreign = TestApp::send(
        app.req(Method::POST, "/auth/mobile/login")
            .header("origin", "https://evil.example.com")
            .form(&form),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    // A wrong password: the page again, with the error.
    let wrong = TestApp::send(
        app.req(Method::POST, "/auth/mobile/login")
            .header("origin", &app.base)
            .form(&[
                ("email", user.email.as_str()),
                ("password", "wrong password!"),
                ("continue", cont.as_str()),
            ]),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.as_str().unwrap().contains("incorrect"));

    let signed = TestApp::send(
        app.req(Method::POST, "/auth/mobile/login")
            .header("origin", &app.base)
            .form(&form),
    )
    .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let back = location(&signed);
    assert!(back.starts_with("/auth/mobile/handoff?"), "{back}");
    let cookie = signed.session_cookie().expect("signed in");

    // Back at the hand-off with the new session: still a question first, then the deep link.
    let r = TestApp::send(
        app.req(Method::GET, &back)
            .header("cookie", format!("portcullis_session={cookie}")),
    )
    .await;
    let (cont, csrf) = confirmation_form(&r);
    let r = confirm(&app, &cookie, &cont, &csrf, "continue", &corr("pw-confirm")).await;
    let q = deep_link(&r);
    assert_eq!(q["state"], state);
    let r = exchange(
        &app,
        json!({"ott": q["ott"], "state": state, "code_verifier": verifier, "device": {"platform": "android"}}),
        &corr("pw-exchange"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user"]["id"], json!(user.user_id));
}

async fn handoff_refuses_without_state_or_registered_redirect(app: TestApp) {
    let user = app.user("bad").await;
    let dead_end = |r: &Reply, needle: &str| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.headers.get("location").is_none(), "never redirected");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "an error page"
        );
        assert!(r.body.as_str().unwrap().contains(needle), "{}", r.body);
    };
    // Missing state (even with a session and a good redirect).
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &format!("/auth/mobile/handoff?redirect_uri={CALLBACK}"),
        &user.token,
    ))
    .await;
    dead_end(&r, "state is required");
    // Unregistered scheme, web URL outside the universal links, a lookalike host.
    for redirect in [
        "evil://auth/callback",
        "https://evil.example.com/auth/",
        "https://app.example.com.evil.net/auth/cb",
        "javascript:alert(1)",
    ] {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", "s1");
        q.append_pair("redirect_uri", redirect);
        let r = TestApp::send(app.with_cookie(
            Method::GET,
            &format!("/auth/mobile/handoff?{}", q.finish()),
            &user.token,
        ))
        .await;
        dead_end(&r, "redirect_uri");
    }
    // A registered universal link is fine.
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("state", "s2");
    q.append_pair("redirect_uri", "https://app.example.com/auth/done");
    q.append_pair("code_challenge", &pkce().1);
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &format!("/auth/mobile/handoff?{}", q.finish()),
        &user.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(location(&r).starts_with("https://app.example.com/auth/done?ott=ott_"));
}

async fn handoff_failures_go_back_to_the_app(app: TestApp) {
    let user = app.user("fail").await;
    let error_link = |r: &Reply| {
        let q = deep_link(r);
        assert!(!q.contains_key("ott"));
        assert_eq!(q["state"], "s-1");
        assert!(q.get("error_description").is_some_and(|d| !d.is_empty()));
        q["error"].clone()
    };
    // plain PKCE is refused, back to the app.
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &format!("/auth/mobile/handoff?state=s-1&redirect_uri={CALLBACK}&code_challenge=abc&code_challenge_method=plain"),
        &user.token,
    ))
    .await;
    assert_eq!(error_link(&r), "invalid_request");
    // An unknown provider, without a session.
    let r = TestApp::send(app.req(
        Method::GET,
        &format!("{}&provider=nope", handoff_path("s-1", Some(&pkce().1))),
    ))
    .await;
    assert_eq!(error_link(&r), "provider_unavailable");
}

/// PKCE S256 on every hand-off: without a challenge no token is minted, with or without a
/// browser session, for an app scheme or a universal link; the app hears why.
async fn handoff_requires_pkce(app: TestApp) {
    let user = app.user("nopkce").await;
    let refused = |r: &Reply, state: &str| {
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
        let link = url::Url::parse(&location(r)).unwrap();
        let q: std::collections::HashMap<String, String> =
            link.query_pairs().into_owned().collect();
        assert!(!q.contains_key("ott"), "{q:?}");
        assert_eq!(q["error"], "invalid_request");
        assert_eq!(q["state"], state);
        assert!(q["error_description"].contains("code_challenge"), "{q:?}");
    };
    for redirect in [CALLBACK, "https://app.example.com/auth/done"] {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", "s-nopkce");
        q.append_pair("redirect_uri", redirect);
        let path = format!("/auth/mobile/handoff?{}", q.finish());
        // Signed in, and not.
        refused(
            &TestApp::send(app.with_cookie(Method::GET, &path, &user.token)).await,
            "s-nopkce",
        );
        refused(
            &TestApp::send(app.req(Method::GET, &path)).await,
            "s-nopkce",
        );
        // A method without a challenge is no challenge either.
        refused(
            &TestApp::send(app.with_cookie(
                Method::GET,
                &format!("{path}&code_challenge_method=S256"),
                &user.token,
            ))
            .await,
            "s-nopkce",
        );
    }
    // No state (or a bad scheme) stays a dead end, challenge or not.
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &format!("/auth/mobile/handoff?redirect_uri={CALLBACK}"),
        &user.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("location").is_none());
    // The confirmation cannot be used to skip it: its continue query is checked again.
    let r = confirm(
        &app,
        &user.token,
        &format!("state=s-nopkce&redirect_uri={CALLBACK}"),
        "1.x",
        "continue",
        &corr("nopkce"),
    )
    .await;
    refused(&r, "s-nopkce");
    assert_eq!(
        issued_count(&app, &user).await,
        0,
        "no one-time token minted"
    );

    // The exchange needs the verifier: missing or malformed is 400 naming the field, and
    // the token is not spent by it; the right verifier then works.
    let (verifier, challenge) = pkce();
    let state = app_state();
    let ott = handoff_with_session(&app, &user, &state, &challenge, &corr("h")).await;
    let r = exchange(
        &app,
        json!({"ott": ott, "state": state, "device": device()}),
        &corr("nov"),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(
        r.body["details"]["field"],
        json!("code_verifier"),
        "{}",
        r.body
    );
    for bad in ["", "short", &format!("{verifier}+")] {
        let r = exchange(
            &app,
            json!({"ott": ott, "state": state, "code_verifier": bad, "device": device()}),
            &corr("badv"),
        )
        .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(
            r.body["details"]["field"],
            json!("code_verifier"),
            "{}",
            r.body
        );
    }
    let r = exchange(
        &app,
        json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()}),
        &corr("goodv"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A browser already signed in is asked before a token goes to an app scheme; only a
/// `POST` from that page, from this origin, with its token for this session, mints one.
async fn app_scheme_needs_confirmation(app: TestApp) {
    let user = app.user("confirm").await;
    let other = app.user("other").await;
    let (verifier, challenge) = pkce();
    let state = app_state();
    let path = handoff_path(&state, Some(&challenge));
    let page = TestApp::send(app.with_cookie(Method::GET, &path, &user.token)).await;
    let (cont, csrf) = confirmation_form(&page);
    let html = page.body.as_str().unwrap();
    assert!(html.contains("Continue to alga on this device?"), "{html}");
    assert!(html.contains(&user.email), "{html}");
    assert!(html.contains("value=\"cancel\""), "{html}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' alga:"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(cont, path.trim_start_matches("/auth/mobile/handoff?"));
    // Opening it again mints nothing either.
    let again = TestApp::send(app.with_cookie(Method::GET, &path, &user.token)).await;
    confirmation_form(&again);
    assert_eq!(issued_count(&app, &user).await, 0);

    let forbidden = |r: &Reply| {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.headers.get("location").is_none(), "not redirected");
        assert!(!r.body.as_str().unwrap_or_default().contains("ott_"));
    };
    // No token, a wrong one, a tampered one.
    forbidden(&confirm(&app, &user.token, &cont, "", "continue", &corr("c")).await);
    forbidden(
        &confirm(
            &app,
            &user.token,
            &cont,
            "1700000000.AAAA",
            "continue",
            &corr("c"),
        )
        .await,
    );
    let (issued, tag) = csrf.split_once('.').unwrap();
    let later = issued.parse::<i64>().unwrap() + 30;
    forbidden(
        &confirm(
            &app,
            &user.token,
            &cont,
            &format!("{later}.{tag}"),
            "continue",
            &corr("c"),
        )
        .await,
    );
    // The token is for this hand-off only: another state or challenge is refused.
    let other_cont = handoff_path(&app_state(), Some(&challenge))
        .trim_start_matches("/auth/mobile/handoff?")
        .to_owned();
    forbidden(
        &confirm(
            &app,
            &user.token,
            &other_cont,
            &csrf,
            "continue",
            &corr("c"),
        )
        .await,
    );
    // ... and for this browser session only: another user's session with this page's token,
    // and this user's session with the other user's page token.
    forbidden(&confirm(&app, &other.token, &cont, &csrf, "continue", &corr("c")).await);
    let other_page = TestApp::send(app.with_cookie(Method::GET, &path, &other.token)).await;
    let (_, other_csrf) = confirmation_form(&other_page);
    forbidden(
        &confirm(
            &app,
            &user.token,
            &cont,
            &other_csrf,
            "continue",
            &corr("c"),
        )
        .await,
    );
    // A foreign Origin, or none at all, is refused even with the right token.
    let form = [
        ("continue", cont.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "continue"),
    ];
    forbidden(
        &TestApp::send(
            app.req(Method::POST, "/auth/mobile/confirm")
                .header("cookie", format!("portcullis_session={}", user.token))
                .header("origin", "https://evil.example.com")
                .form(&form),
        )
        .await,
    );
    forbidden(
        &TestApp::send(
            app.req(Method::POST, "/auth/mobile/confirm")
                .header("cookie", format!("portcullis_session={}", user.token))
                .form(&form),
        )
        .await,
    );
    // A GET to the confirmation does nothing.
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &format!(
                "/auth/mobile/confirm?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish()
            ),
        &user.token,
    ))
    .await;
    assert!(
        !r.status.is_success() && !r.status.is_redirection(),
        "{}",
        r.status
    );
    assert_eq!(issued_count(&app, &user).await, 0, "nothing was minted");
    assert_eq!(issued_count(&app, &other).await, 0, "nothing was minted");

    // Cancel: back to the app with access_denied, no token.
    let r = confirm(&app, &user.token, &cont, &csrf, "cancel", &corr("cancel")).await;
    let q = deep_link(&r);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], state);
    assert!(!q.contains_key("ott"));
    assert_eq!(issued_count(&app, &user).await, 0);

    // Continue, with the page's token: the deep link, and the token works for the app.
    let c = corr("continue");
    let r = confirm(&app, &user.token, &cont, &csrf, "continue", &c).await;
    let q = deep_link(&r);
    assert_eq!(q["state"], state);
    assert!(!q.contains_key("error"));
    assert_eq!(issued_count(&app, &user).await, 1);
    assert!(has_action(
        &audit_actions(&app, &user, &c).await,
        "mobile.ott.issued",
        "success"
    ));
    let r = exchange(
        &app,
        json!({"ott": q["ott"], "state": state, "code_verifier": verifier, "device": device()}),
        &corr("x"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Signed out since the page was shown: back to the hand-off (which asks to sign in),
    // nothing minted.
    let page = TestApp::send(app.with_cookie(Method::GET, &path, &other.token)).await;
    let (cont, csrf) = confirmation_form(&page);
    let out = TestApp::send(app.with_cookie(Method::POST, "/v1/auth/logout", &other.token)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let r = confirm(&app, &other.token, &cont, &csrf, "continue", &corr("gone")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), path);
}

/// A universal link is the app's own (the OS checked the domain): no question, the token at once.
async fn universal_link_skips_the_confirmation(app: TestApp) {
    let user = app.user("ul").await;
    let (verifier, challenge) = pkce();
    let state = app_state();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("state", &state);
    q.append_pair("redirect_uri", "https://app.example.com/auth/done");
    q.append_pair("code_challenge", &challenge);
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &format!("/auth/mobile/handoff?{}", q.finish()),
        &user.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let link = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(
        link.origin().ascii_serialization(),
        "https://app.example.com"
    );
    assert_eq!(link.path(), "/auth/done");
    let q: std::collections::HashMap<String, String> = link.query_pairs().into_owned().collect();
    assert_eq!(q["state"], state);
    let r = exchange(
        &app,
        json!({"ott": q["ott"], "state": state, "code_verifier": verifier, "device": device()}),
        &corr("ul"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn expired_ott_is_refused(app: TestApp) {
    let user = app.user("exp").await;
    let (verifier, challenge) = pkce();
    let state = app_state();
    let ott = handoff_with_session(&app, &user, &state, &challenge, &corr("h")).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let c = corr("expired");
    exchange(
        &app,
        json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()}),
        &c,
    )
    .await
    .assert_error(401, "ott_invalid");
    let events = audit_actions(&app, &user, &c).await;
    assert!(
        has_action(&events, "mobile.ott.exchanged", "failure"),
        "{events:?}"
    );
    assert_eq!(events[0]["details"]["reason"], json!("expired"));
}

async fn ott_is_single_use_and_bound(app: TestApp) {
    let user = app.user("bound").await;
    let (verifier, challenge) = pkce();

    // Reused: the second exchange fails.
    let state = app_state();
    let ott = handoff_with_session(&app, &user, &state, &challenge, &corr("h")).await;
    let body = json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()});
    assert_eq!(
        exchange(&app, body.clone(), &corr("1")).await.status,
        StatusCode::OK
    );
    exchange(&app, body, &corr("2"))
        .await
        .assert_error(401, "ott_invalid");

    // PKCE mismatch, and the failed attempt burns the token.
    let state = app_state();
    let ott = handoff_with_session(&app, &user, &state, &challenge, &corr("h")).await;
    let (other_verifier, _) = pkce();
    exchange(
        &app,
        json!({"ott": ott, "state": state, "code_verifier": other_verifier, "device": device()}),
        &corr("pkce"),
    )
    .await
    .assert_error(401, "ott_invalid");
    exchange(
        &app,
        json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()}),
        &corr("pkce-retry"),
    )
    .await
    .assert_error(401, "ott_invalid");
    // Wrong state.
    let state = app_state();
    let ott = handoff_with_session(&app, &user, &state, &challenge, &corr("h")).await;
    let c = corr("state");
    exchange(
        &app,
        json!({"ott": ott, "state": "another-state", "code_verifier": verifier, "device": device()}),
        &c,
    )
    .await
    .assert_error(401, "ott_invalid");
    let events = audit_actions(&app, &user, &c).await;
    assert_eq!(events[0]["details"]["reason"], json!("state_mismatch"));

    // Unknown and malformed tokens.
    for bogus in [
        "ott_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "nonsense",
    ] {
        exchange(
            &app,
            json!({"ott": bogus, "state": "x", "code_verifier": VERIFIER, "device": device()}),
            &corr("u"),
        )
        .await
        .assert_error(401, "ott_invalid");
    }
}

async fn exchange_payload_is_validated(app: TestApp) {
    let field_error = |r: &Reply, field: &str| {
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], json!(field), "{}", r.body);
    };
    let r = exchange(
        &app,
        json!({"ott": "ott_x", "state": "s", "code_verifier": VERIFIER}),
        &corr("p"),
    )
    .await;
    field_error(&r, "device");
    let r = exchange(
        &app,
        json!({"ott": "ott_x", "state": "s", "device": device(), "extra": 1}),
        &corr("p"),
    )
    .await;
    field_error(&r, "extra");
    let r = exchange(
        &app,
        json!({"ott": "ott_x", "state": "s", "code_verifier": VERIFIER, "device": {"platform": ""}}),
        &corr("p"),
    )
    .await;
    field_error(&r, "device.platform");
    let r = exchange(
        &app,
        json!({"ott": "ott_x", "state": "s", "code_verifier": VERIFIER, "device": {"platform": "ios", "model": "x".repeat(500)}}),
        &corr("p"),
    )
    .await;
    field_error(&r, "device.model");
    let r = exchange(
        &app,
        json!({"state": "s", "code_verifier": VERIFIER, "device": device()}),
        &corr("p"),
    )
    .await;
    field_error(&r, "ott");
    let r = TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/exchange")
            .body("ott=1"),
    )
    .await;
    r.assert_error(400, "invalid_request");
    for path in ["/api/v1/mobile/auth/refresh", "/api/v1/mobile/auth/revoke"] {
        let r = TestApp::send(
            app.req(Method::POST, path)
                .json(&json!({"refresh": "rt_x"})),
        )
        .await;
        field_error(&r, "refresh");
        let r = TestApp::send(app.req(Method::POST, path).json(&json!({}))).await;
        field_error(&r, "refresh_token");
    }
}

async fn refresh_retry_within_grace_gets_the_same_successor(app: TestApp) {
    let user = app.user("grace").await;
    let (_, refresh1) = sign_in(&app, &user).await;
    let first = refresh(&app, &refresh1, &corr("r1")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The app retried (its first answer was lost): the same successor, no revocation.
    let again = refresh(&app, &refresh1, &corr("r2")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["refresh_token"], first.body["refresh_token"]);
    let next = refresh(
        &app,
        first.body["refresh_token"].as_str().unwrap(),
        &corr("r3"),
    )
    .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
}

async fn concurrent_exchanges_one_wins(app: TestApp) {
    let user = app.user("race").await;
    let (verifier, challenge) = pkce();
    let state = app_state();
    let ott = handoff_with_session(&app, &user, &state, &challenge, &corr("h")).await;
    let body = json!({"ott": ott, "state": state, "code_verifier": verifier, "device": device()});
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/mobile/auth/exchange", app.base);
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("x-correlation-id", format!("race-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

async fn host_allowlist_is_enforced(app: TestApp) {
    // The test server's own host (127.0.0.1) is not in the list.
    let r = caps(&app).await;
    r.assert_error(403, "host_not_allowlisted");
    assert_eq!(
        r.body["details"]["host"],
        json!(app.base.trim_start_matches("http://"))
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("PORTCULLIS_MOBILE_HOST_ALLOWLIST")
    );
    TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/exchange")
            .json(&json!({"ott": "ott_x", "state": "s", "device": device()})),
    )
    .await
    .assert_error(403, "host_not_allowlisted");
    TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/refresh")
            .json(&json!({"refresh_token": "rt_x"})),
    )
    .await
    .assert_error(403, "host_not_allowlisted");
    // A listed host (any case, any port) is served.
    let r = TestApp::send(
        app.req(Method::GET, "/api/v1/mobile/auth/capabilities")
            .header("host", "PSA.example.net:8443"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The hand-off sends the refusal back to the app.
    let r = TestApp::send(app.req(
        Method::GET,
        &format!("/auth/mobile/handoff?state=s-1&redirect_uri={CALLBACK}"),
    ))
    .await;
    assert_eq!(deep_link(&r)["error"], "host_not_allowlisted");
}

async fn own_host_is_allowed_by_default(app: TestApp) {
    let r = TestApp::send(
        app.req(Method::GET, "/api/v1/mobile/auth/capabilities")
            .header("host", "evil.example.com"),
    )
    .await;
    r.assert_error(403, "host_not_allowlisted");
    assert_eq!(r.body["details"]["host"], json!("evil.example.com"));
    let r = caps(&app).await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn mobile_disabled(app: TestApp) {
    let user = app.user("off").await;
    let r = caps(&app).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["enabled"], json!(false));
    TestApp::send(
        app.req(Method::POST, "/api/v1/mobile/auth/exchange")
            .json(&json!({"ott": "ott_x", "state": "s", "device": device()})),
    )
    .await
    .assert_error(403, "feature_disabled");
    for path in ["/api/v1/mobile/auth/refresh", "/api/v1/mobile/auth/revoke"] {
        TestApp::send(
            app.req(Method::POST, path)
                .json(&json!({"refresh_token": "rt_x"})),
        )
        .await
        .assert_error(403, "feature_disabled");
    }
    let r = TestApp::send(app.with_cookie(
        Method::GET,
        &handoff_path("s-1", Some(&pkce().1)),
        &user.token,
    ))
    .await;
    assert_eq!(deep_link(&r)["error"], "feature_disabled");
}

async fn password_login_off(app: TestApp) {
    let user = app.user("nopw").await;
    let r = caps(&app).await;
    assert_eq!(r.body["password_login"], json!(false));
    app.login(&user.email, "correct horse battery")
        .await
        .assert_error(403, "feature_disabled");
    // No session and no provider: nothing to sign in with; the app hears so.
    let r = TestApp::send(app.req(Method::GET, &handoff_path("s-1", Some(&pkce().1)))).await;
    assert_eq!(deep_link(&r)["error"], "feature_disabled");
    // The form refuses too.
    let r = TestApp::send(
        app.req(Method::POST, "/auth/mobile/login")
            .header("origin", &app.base)
            .form(&[
                ("email", user.email.as_str()),
                ("password", "correct horse battery"),
                (
                    "continue",
                    "state=s-1&redirect_uri=alga%3A%2F%2Fauth%2Fcallback",
                ),
            ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.as_str().unwrap().contains("feature_disabled"));
    // A browser that already has a session still completes the hand-off.
    let ott = handoff_with_session(&app, &user, "s-2", &pkce().1, &corr("h")).await;
    assert!(ott.starts_with("ott_"));
}

fn assert_limited(r: &Reply) {
    r.assert_error(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert!(r.headers.get("ratelimit-limit").is_some());
    assert!(r.headers.get("ratelimit-reset").is_some());
}

async fn exchange_is_rate_limited_per_ip(app: TestApp) {
    for i in 0..3 {
        let r = exchange(
            &app,
            json!({"ott": "ott_unknown", "state": format!("s-{i}"), "code_verifier": VERIFIER, "device": device()}),
            &corr("rl"),
        )
        .await;
        r.assert_error(401, "ott_invalid");
        assert_eq!(r.headers["ratelimit-limit"], "3");
    }
    let r = exchange(
        &app,
        json!({"ott": "ott_unknown", "state": "s-9", "code_verifier": VERIFIER, "device": device()}),
        &corr("rl"),
    )
    .await;
    assert_limited(&r);
    assert_eq!(r.headers["ratelimit-limit"], "3");
}

async fn exchange_per_ip_limit_keeps_its_old_key(app: TestApp) {
    exchange_is_rate_limited_per_ip(app).await;
}

async fn exchange_is_rate_limited_per_client(app: TestApp) {
    let body = json!({"ott": "ott_unknown", "state": "the-same-attempt", "code_verifier": VERIFIER, "device": device()});
    for _ in 0..2 {
        exchange(&app, body.clone(), &corr("rl"))
            .await
            .assert_error(401, "ott_invalid");
    }
    assert_limited(&exchange(&app, body, &corr("rl")).await);
    // Another sign-in attempt from the same address is not held up.
    exchange(
        &app,
        json!({"ott": "ott_unknown", "state": "another-attempt", "code_verifier": VERIFIER, "device": device()}),
        &corr("rl"),
    )
    .await
    .assert_error(401, "ott_invalid");
}

async fn revoking_the_session_stops_the_tokens(app: TestApp) {
    let user = app.user("lost").await;
    let (access, refresh_token) = sign_in(&app, &user).await;
    let me = app.get("/v1/me", &access).await;
    assert_eq!(me.status, StatusCode::OK);
    let sid = me.body["session"]["id"].as_str().unwrap().to_owned();
    // Lost phone: the user revokes the device's session from the browser.
    let r =
        TestApp::send(app.with_cookie(Method::DELETE, &format!("/v1/sessions/{sid}"), &user.token))
            .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    app.get("/v1/me", &access)
        .await
        .assert_error(401, "unauthenticated");
    refresh(&app, &refresh_token, &corr("r"))
        .await
        .assert_error(401, "unauthenticated");
    // The browser session itself is untouched.
    assert_eq!(app.get("/v1/me", &user.token).await.status, StatusCode::OK);
}

async fn other_clients_tokens_cannot_call_the_api(app: TestApp) {
    let user = app.user("rp").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/clients", &user.token)
            .header("x-project-id", &user.project_id)
            .json(&json!({
                "name": "Backend",
                "type": "confidential",
                "redirect_uris": ["https://rp.example.com/cb"],
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_post",
            })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = if r.body.get("client").is_some() {
        &r.body["client"]
    } else {
        &r.body
    };
    let id = c["client_id"].as_str().unwrap().to_owned();
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    let token = TestApp::send(app.req(Method::POST, "/oauth2/token").form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ]))
    .await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.body);
    let access = token.body["access_token"].as_str().unwrap();
    let r = app.get("/v1/me", access).await;
    r.assert_error(401, "unauthenticated");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("OAuth applications")
    );
    // Nor does a mobile refresh token refresh at the OAuth token endpoint, or an OAuth
    // client's token at the mobile one.
    let (_, mobile_refresh) = sign_in(&app, &user).await;
    let r = TestApp::send(app.req(Method::POST, "/oauth2/token").form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", mobile_refresh.as_str()),
        ("client_id", "portcullis-mobile"),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"], json!("invalid_client"));
}

#[test]
fn mobile_routes_are_documented() {
    let doc: Value = serde_json::from_str(portcullis_server::openapi::json()).unwrap();
    for (method, path) in [
        ("get", "/api/v1/mobile/auth/capabilities"),
        ("post", "/api/v1/mobile/auth/exchange"),
        ("post", "/api/v1/mobile/auth/refresh"),
        ("post", "/api/v1/mobile/auth/revoke"),
        ("get", "/auth/mobile/handoff"),
        ("post", "/auth/mobile/login"),
        ("post", "/auth/mobile/confirm"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    for schema in [
        "Capabilities",
        "ExchangeRequest",
        "ExchangeResponse",
        "TokenPair",
        "DeviceDto",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

// ---- through an upstream provider --------------------------------------------------------

/// `conformance/upstream.mjs` (panva's oidc-provider) as the upstream for the SSO hand-off.
struct Upstream {
    issuer: String,
    _child: tokio::process::Child,
}

async fn start_upstream(port: u16) -> Upstream {
    use tokio::io::AsyncBufReadExt;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "needs the upstream OpenID Provider: run `npm ci --prefix conformance` (Node.js >= 20)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("upstream.mjs"))
        .arg("--port=0")
        .arg("--client-id=portcullis-test")
        .arg("--client-secret=upstream-client-secret-0123456789")
        .arg(format!(
            "--redirect-uri=http://127.0.0.1:{port}/v1/auth/sso/*"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("Node.js (`node` on PATH) runs the upstream OpenID Provider");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stdout.read_line(&mut line),
    )
    .await
    .expect("upstream.mjs prints its issuer")
    .unwrap();
    tokio::spawn(async move {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).await.is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    let first: Value = serde_json::from_str(line.trim()).unwrap();
    Upstream {
        issuer: first["issuer"].as_str().unwrap().to_owned(),
        _child: child,
    }
}

fn cookie_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// The app asks for a provider: capabilities list it, the hand-off goes through the
/// upstream sign-in and comes back to the hand-off, which sends the one-time token.
async fn handoff_through_an_upstream_provider(backend: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = start_upstream(port).await;
    let issuer = upstream.issuer.clone();
    let app = TestApp::start_with(backend, |c| {
        mobile_config(c);
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.sso.oidc.insert(
            "upstream".into(),
            portcullis_server::config::sso::GenericOidcSso {
                issuer: Some(issuer),
                client_id: Some("portcullis-test".into()),
                client_secret: Some(portcullis_server::config::sso::ConfigSecret(
                    "upstream-client-secret-0123456789".into(),
                )),
                name: Some("Upstream IdP".into()),
                ..Default::default()
            },
        );
    })
    .await;
    // Providers load in the background; capabilities offer only available ones.
    let mut offered = false;
    for _ in 0..100 {
        let r = caps(&app).await;
        if r.body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == json!("upstream") && p["name"] == json!("Upstream IdP"))
        {
            offered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(offered, "the provider is offered in capabilities");

    let (verifier, challenge) = pkce();
    let state = app_state();
    let mut url = url::Url::parse(&format!(
        "{}{}&provider=upstream",
        app.base,
        handoff_path(&state, Some(&challenge))
    ))
    .unwrap();
    // The first hop goes to this server's SSO start, carrying the hand-off as return_to.
    let mut jar: std::collections::HashMap<String, std::collections::HashMap<String, String>> =
        Default::default();
    let mut deep = None;
    for hop in 0..25 {
        let mut rb = app.client.get(url.as_str());
        if let Some(cookies) = jar.get(&cookie_key(&url)).filter(|c| !c.is_empty()) {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            rb = rb.header("cookie", header.join("; "));
        }
        let r = TestApp::send(rb).await;
        for v in r.headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let cookies = jar.entry(cookie_key(&url)).or_default();
            if value.is_empty() || attrs.to_ascii_lowercase().contains("max-age=0") {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        if r.status == StatusCode::OK && url.path() == "/auth/mobile/handoff" {
            // Signed in through the upstream: asked before the token goes to the app scheme.
            let (cont, csrf) = confirmation_form(&r);
            let cookie = jar[&cookie_key(&url)]["portcullis_session"].clone();
            let r = confirm(&app, &cookie, &cont, &csrf, "continue", &corr("sso")).await;
            deep = Some(url::Url::parse(&location(&r)).unwrap());
            break;
        }
        assert!(
            r.status.is_redirection(),
            "hop {hop} {url}: {} {}",
            r.status,
            r.body
        );
        let next = url.join(&location(&r)).unwrap();
        if hop == 0 {
            assert_eq!(next.path(), "/v1/auth/sso/upstream/start");
            let return_to: String = next
                .query_pairs()
                .find(|(k, _)| k == "return_to")
                .unwrap()
                .1
                .into_owned();
            assert!(return_to.starts_with(&format!("{}/auth/mobile/handoff?", app.base)));
        }
        assert_ne!(
            next.scheme(),
            "alga",
            "no token to the app scheme without asking"
        );
        url = next;
    }
    let deep = deep.expect("the browser ends at the app's deep link");
    let q: std::collections::HashMap<String, String> = deep.query_pairs().into_owned().collect();
    assert_eq!(q["state"], state);
    let r = exchange(
        &app,
        json!({"ott": q["ott"], "state": state, "code_verifier": verifier, "device": device()}),
        &corr("sso"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user"]["email"], json!("alice@example.com"));
    let me = app
        .get("/v1/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
}

mod handoff_through_an_upstream_provider {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::handoff_through_an_upstream_provider(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::handoff_through_an_upstream_provider(super::Backend::Postgres).await;
    }
}
