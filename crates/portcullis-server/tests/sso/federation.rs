#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Upstream SSO (federation) end to end, on SQLite and on PostgreSQL. The upstream is a real,
//! independent OpenID Provider: panva's `oidc-provider` (OpenID Certified) run by
//! `conformance/upstream.mjs`. The browser is played by hand: redirects are followed one by
//! one and cookies carried per host, so every hop is visible.
//!
//! Node.js and `npm ci --prefix conformance` are required: without them these tests fail
//! (they never skip).

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::upstream::{CLIENT_ID, CLIENT_SECRET, Upstream, free_port};
use common::{Backend, Reply, TestApp};
use portcullis_server::config::sso::{ConfigSecret, GenericOidcSso};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The server-wide provider's id in these tests.
const PROVIDER: &str = "upstream";

both_backends!(
    backend:
    sign_in_creates_the_user_then_reuses_the_identity,
    verified_owner_claims_an_account_registered_with_a_password,
    unverified_email_never_creates_or_links,
    provider_omitting_the_email_claim_is_refused,
    conformant_upstream_releases_the_email_at_userinfo,
    state_and_cookie_are_checked,
    upstream_error_is_reported,
    return_to_must_not_be_an_open_redirect,
    unavailable_providers_are_not_offered,
    org_provider_crud_and_sign_in_joins_the_org,
    attackers_org_provider_cannot_take_over_accounts,
    org_provider_vouches_inside_its_verified_domain,
    deleted_org_provider_identities_cannot_sign_in,
    org_provider_addresses_must_be_public,
    oversized_upstream_answers_are_refused,
    sso_join_respects_the_plan_and_sign_in_goes_on,
);

// ---- the upstream ------------------------------------------------------------------------

fn provider_config(issuer: &str) -> GenericOidcSso {
    GenericOidcSso {
        issuer: Some(issuer.to_owned()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(ConfigSecret(CLIENT_SECRET.into())),
        name: Some("Upstream IdP".into()),
        ..GenericOidcSso::default()
    }
}

/// An upstream (started with `flags`) and a Portcullis that has it as the server-wide
/// provider `upstream`.
async fn start_pair(backend: Backend, flags: &[&str]) -> (TestApp, Upstream) {
    let port = free_port();
    let upstream = Upstream::start(port, flags).await;
    let issuer = upstream.issuer.clone();
    let app = TestApp::start_with(backend, |cfg| {
        cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
        cfg.sso
            .oidc
            .insert(PROVIDER.into(), provider_config(&issuer));
    })
    .await;
    wait_available(&app, PROVIDER, "").await;
    (app, upstream)
}

/// Waits until the provider list (optionally `?org=…`) offers `id`.
async fn wait_available(app: &TestApp, id: &str, query: &str) {
    for _ in 0..100 {
        let r =
            TestApp::send(app.req(Method::GET, &format!("/v1/auth/sso/providers{query}"))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("provider {id} never became available");
}

// ---- the browser -------------------------------------------------------------------------

/// Cookies per `host:port`, as a browser would keep them (paths ignored: harmless here).
#[derive(Default)]
struct Browser {
    jar: HashMap<String, HashMap<String, String>>,
    /// The `project` parameter its sign-ins name, if any.
    project: Option<String>,
}

fn host_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    )
}

impl Browser {
    fn cookie_header(&self, url: &str) -> Option<String> {
        let jar = self.jar.get(&host_of(url))?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep(&mut self, url: &str, headers: &reqwest::header::HeaderMap) {
        let jar = self.jar.entry(host_of(url)).or_default();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let expired = attrs.to_ascii_lowercase().contains("max-age=0")
                || attrs.contains("1970")
                || value.is_empty();
            if expired {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jar.get(&host_of(url))?.get(name).cloned()
    }

    async fn get(&mut self, app: &TestApp, url: &str) -> Reply {
        let mut rb = app.client.get(url);
        if let Some(c) = self.cookie_header(url) {
            rb = rb.header("cookie", c);
        }
        let r = TestApp::send(rb).await;
        self.keep(url, &r.headers);
        r
    }

    /// Follows redirects from `url` until the next hop is Portcullis' SSO callback; returns
    /// that callback URL without calling it.
    async fn until_callback(&mut self, app: &TestApp, mut url: String) -> String {
        for _ in 0..20 {
            if url.starts_with(&app.base) && url.contains("/callback") {
                return url;
            }
            let r = self.get(app, &url).await;
            assert!(
                r.status.is_redirection(),
                "expected a redirect from {url}, got {}: {}",
                r.status,
                r.body
            );
            let location = r.headers["location"].to_str().unwrap();
            url = url::Url::parse(&url)
                .unwrap()
                .join(location)
                .unwrap()
                .to_string();
        }
        panic!("too many redirects");
    }

    /// `/start` → upstream → the callback URL (not yet called).
    async fn start(
        &mut self,
        app: &TestApp,
        provider: &str,
        hint: &str,
        return_to: &str,
    ) -> String {
        let mut start = format!(
            "{}/v1/auth/sso/{provider}/start?return_to={}&login_hint={}",
            app.base,
            urlencode(return_to),
            urlencode(hint)
        );
        if let Some(project) = &self.project {
            start.push_str(&format!("&project={project}"));
        }
        let r = self.get(app, &start).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
        let cookie = r.set_cookie().unwrap();
        assert!(cookie.starts_with("portcullis_sso="), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(cookie.contains("Max-Age=600"), "{cookie}");
        let location = r.headers["location"].to_str().unwrap().to_owned();
        let auth = url::Url::parse(&location).unwrap();
        let q: HashMap<_, _> = auth.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(q["scope"].split(' ').any(|s| s == "email"));
        assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
        assert_eq!(q["login_hint"], hint);
        assert_eq!(
            q["redirect_uri"],
            format!("{}/v1/auth/sso/{provider}/callback", app.base)
        );
        self.until_callback(app, location).await
    }

    /// A whole sign-in; returns the callback's answer.
    async fn sign_in(
        &mut self,
        app: &TestApp,
        provider: &str,
        hint: &str,
        return_to: &str,
    ) -> Reply {
        let callback = self.start(app, provider, hint, return_to).await;
        self.get(app, &callback).await
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn with_query(url: &str, key: &str, value: Option<&str>) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != key)
        .collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(key, v);
        }
    }
    u.to_string()
}

/// The session token a successful callback set.
fn session_from(r: &Reply) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find_map(|c| c.strip_prefix("portcullis_session="))
        .and_then(|c| c.split(';').next())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.headers))
        .to_owned()
}

fn clears_state_cookie(r: &Reply) -> bool {
    r.headers.get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with("portcullis_sso=;")
            && v.to_str().unwrap().contains("Max-Age=0")
    })
}

async fn me(app: &TestApp, token: &str) -> Value {
    let r = app.get("/v1/me", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn audit(app: &TestApp, token: &str, org: &str, action: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/v1/orgs/{org}/audit?action={action}"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["events"].as_array().unwrap().clone()
}

/// Makes a platform admin (a fresh user) and has them verify `domain` for `org` (claimed
/// by the org's admin `admin_token` first): the offline path, no DNS.
async fn verify_by_platform_admin(app: &TestApp, admin_token: &str, org: &str, domain: &str) {
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/domains"),
            admin_token,
        )
        .json(&json!({ "domain": domain })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let operator = platform_admin(app, "operator").await;
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/domains/{domain}/verify"),
            &operator.token,
        )
        .json(&json!({"method": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A fresh user made platform admin.
async fn platform_admin(app: &TestApp, label: &str) -> common::Signed {
    let u = app.user(label).await;
    make_platform_admin(app, &u.user_id).await;
    u
}

async fn make_platform_admin(app: &TestApp, user_id: &str) {
    app.state
        .store
        .accounts()
        .set_platform_admin(
            portcullis_core::UserId::parse(user_id).unwrap(),
            true,
            &portcullis_core::AuditContext::cli(),
        )
        .await
        .unwrap();
}

// ---- the tests ---------------------------------------------------------------------------

async fn sign_in_creates_the_user_then_reuses_the_identity(backend: Backend) {
    let (app, _up) = start_pair(backend, &[]).await;
    let r = TestApp::send(app.req(Method::GET, "/v1/auth/sso/providers")).await;
    assert_eq!(
        r.body,
        json!({"providers": [{"id": PROVIDER, "name": "Upstream IdP"}]})
    );
    assert_eq!(
        app.state.sso.available(),
        vec![portcullis_server::infra::upstream::ProviderSummary {
            id: PROVIDER.into(),
            name: "Upstream IdP".into()
        }]
    );

    let mut browser = Browser::default();
    let r = browser
        .sign_in(&app, PROVIDER, "alice@example.com", "/welcome?x=1")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.headers["location"], "/welcome?x=1");
    assert!(clears_state_cookie(&r), "the sign-in cookie is single-use");
    let token = session_from(&r);
    let correlation = r.headers["x-correlation-id"].to_str().unwrap().to_owned();
    let first = me(&app, &token).await;
    assert_eq!(first["user"]["email"], "alice@example.com");
    assert_eq!(first["user"]["name"], "Alice");
    let memberships = first["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 1, "{first}");
    assert_eq!(memberships[0]["role"], "owner");
    assert_eq!(memberships[0]["org"]["personal"], true);
    assert_eq!(memberships[0]["projects"].as_array().unwrap().len(), 1);
    let org = memberships[0]["org"]["id"].as_str().unwrap().to_owned();

    // Audited like a password sign-in, with the method, under the callback's correlation id.
    let signup = audit(&app, &token, &org, "user.signup").await;
    assert_eq!(signup.len(), 1);
    assert_eq!(signup[0]["correlation_id"], correlation.as_str());
    let logins = audit(&app, &token, &org, "login.succeeded").await;
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["details"]["method"], "sso");
    assert_eq!(logins[0]["details"]["provider"], PROVIDER);
    assert_eq!(logins[0]["correlation_id"], correlation.as_str());
    assert_eq!(audit(&app, &token, &org, "session.created").await.len(), 1);

    // A second sign-in (a fresh browser) is the same user, through the linked identity.
    let mut other = Browser::default();
    let r = other.sign_in(&app, PROVIDER, "alice@example.com", "").await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.headers["location"], "/", "return_to defaults to /");
    let second = me(&app, &session_from(&r)).await;
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(second["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(audit(&app, &token, &org, "login.succeeded").await.len(), 2);
    assert_eq!(audit(&app, &token, &org, "user.signup").await.len(), 1);
    // Two sessions now.
    let r = app.get("/v1/sessions", &token).await;
    assert_eq!(
        r.body["sessions"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
}

/// Pre-account takeover: someone registers the victim's address with a password before the
/// victim ever signs in. The verified owner arriving through the upstream wins: the
/// password is removed and every session of the squatter ends.
async fn verified_owner_claims_an_account_registered_with_a_password(backend: Backend) {
    let (app, up) = start_pair(backend, &[]).await;
    let r = app.signup("alice@example.com", "squatter password 1").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let user_id = r.body["user"]["id"].clone();
    let org = r.body["org"]["id"].as_str().unwrap().to_owned();
    let squatter_signup = r.session_cookie().unwrap();
    let squatter_login = app
        .login("alice@example.com", "squatter password 1")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(me(&app, &squatter_login).await["user"]["id"], user_id);

    let mut browser = Browser::default();
    let r = browser
        .sign_in(&app, PROVIDER, "alice@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let token = session_from(&r);
    let body = me(&app, &token).await;
    assert_eq!(
        body["user"]["id"], user_id,
        "the same account, now the owner's"
    );
    // The squatter is out: the password no longer works, the sessions are revoked.
    let r = app.login("alice@example.com", "squatter password 1").await;
    r.assert_error(401, "unauthenticated");
    for old in [&squatter_signup, &squatter_login] {
        app.get("/v1/me", old)
            .await
            .assert_error(401, "unauthenticated");
    }
    let r = app.get("/v1/sessions", &token).await;
    assert_eq!(
        r.body["sessions"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    // Audited: user.claimed (with what it took), the link, both revocations.
    let claimed = audit(&app, &token, &org, "user.claimed").await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0]["details"]["password_removed"], true);
    assert_eq!(claimed[0]["details"]["sessions_revoked"], 2);
    assert_eq!(claimed[0]["details"]["provider"], PROVIDER);
    assert_eq!(
        claimed[0]["target"],
        format!("user:{}", user_id.as_str().unwrap())
    );
    let linked = audit(&app, &token, &org, "sso.identity.linked").await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["details"]["issuer"], up.issuer.as_str());
    assert_eq!(audit(&app, &token, &org, "session.revoked").await.len(), 2);
    // The next sign-in goes by the identity; nothing is claimed twice.
    let r = Browser::default()
        .sign_in(&app, PROVIDER, "alice@example.com", "/")
        .await;
    assert_eq!(me(&app, &session_from(&r)).await["user"]["id"], user_id);
    assert_eq!(audit(&app, &token, &org, "user.claimed").await.len(), 1);
    // Never the other way round: signing up again with a password does not take it back.
    app.signup("alice@example.com", "squatter password 2")
        .await
        .assert_error(409, "conflict");
}

async fn unverified_email_never_creates_or_links(backend: Backend) {
    let (app, _up) = start_pair(backend, &[]).await;
    let r = app.signup("bob@example.com", "correct horse battery").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let bob_session = r.session_cookie().unwrap();
    let mut browser = Browser::default();
    let r = browser
        .sign_in(&app, PROVIDER, "bob@example.com", "/")
        .await;
    r.assert_error(403, "email_not_verified");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("verified"), "{message}");
    assert!(
        r.headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("portcullis_session=")),
        "no session"
    );
    // Bob's account is untouched: password and session work.
    assert_eq!(
        me(&app, &bob_session).await["user"]["email"],
        "bob@example.com"
    );
    assert_eq!(
        app.login("bob@example.com", "correct horse battery")
            .await
            .status,
        StatusCode::OK
    );
    // Without an existing account, an unverified email does not make one either.
    let r = Browser::default()
        .sign_in(&app, PROVIDER, "unverified-carol@example.com", "/")
        .await;
    r.assert_error(403, "email_not_verified");
    let email = portcullis_core::Email::parse("unverified-carol@example.com").unwrap();
    assert!(
        app.state
            .store
            .accounts()
            .user_by_email(&email)
            .await
            .unwrap()
            .is_none()
    );
}

async fn provider_omitting_the_email_claim_is_refused(backend: Backend) {
    let (app, _up) = start_pair(backend, &["--no-email"]).await;
    let mut browser = Browser::default();
    let r = browser
        .sign_in(&app, PROVIDER, "alice@example.com", "/")
        .await;
    r.assert_error(400, "email_is_missing");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("userinfo"), "{message}");
    assert!(message.contains("`email` claim"), "{message}");
    assert!(message.contains("`email` scope"), "{message}");
    assert!(message.contains("Upstream IdP"), "{message}");
    assert!(clears_state_cookie(&r));
    // Nobody was created.
    let r = app.login("alice@example.com", "whatever password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// A spec-conformant upstream (OpenID Connect Core §5.4) releases `email` only at userinfo
/// when it issues an access token; the ID token carries `sub` alone.
async fn conformant_upstream_releases_the_email_at_userinfo(backend: Backend) {
    let (app, _up) = start_pair(backend, &["--conform"]).await;
    let r = Browser::default()
        .sign_in(&app, PROVIDER, "grace@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let body = me(&app, &session_from(&r)).await;
    assert_eq!(body["user"]["email"], "grace@example.com");
    assert_eq!(body["user"]["name"], "Grace");
    // Its unverified addresses are just as unverified there.
    Browser::default()
        .sign_in(&app, PROVIDER, "unverified-hal@example.com", "/")
        .await
        .assert_error(403, "email_not_verified");
}

async fn state_and_cookie_are_checked(backend: Backend) {
    let (app, _up) = start_pair(backend, &[]).await;

    // A forged state, with the browser's cookie.
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, PROVIDER, "alice@example.com", "/")
        .await;
    let forged = with_query(&callback, "state", Some("forged-state"));
    let r = browser.get(&app, &forged).await;
    r.assert_error(400, "state_mismatch");
    assert!(clears_state_cookie(&r));

    // No state at all.
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, PROVIDER, "alice@example.com", "/")
        .await;
    let r = browser
        .get(&app, &with_query(&callback, "state", None))
        .await;
    r.assert_error(400, "state_mismatch");

    // The right state, but the cookie is missing (another browser, or it expired).
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, PROVIDER, "alice@example.com", "/")
        .await;
    let r = TestApp::send(app.client.get(&callback)).await;
    r.assert_error(400, "state_mismatch");
    assert!(r.body["message"].as_str().unwrap().contains("cookie"));

    // The right state with a tampered cookie.
    let sealed = browser.cookie(&app.base, "portcullis_sso").unwrap();
    let mut tampered = sealed.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let r = TestApp::send(app.client.get(&callback).header(
        "cookie",
        format!("portcullis_sso={}", String::from_utf8(tampered).unwrap()),
    ))
    .await;
    r.assert_error(400, "state_mismatch");

    // Another sign-in's cookie with this sign-in's state.
    let mut second = Browser::default();
    let _ = second.start(&app, PROVIDER, "alice@example.com", "/").await;
    let other_cookie = second.cookie(&app.base, "portcullis_sso").unwrap();
    let r = TestApp::send(
        app.client
            .get(&callback)
            .header("cookie", format!("portcullis_sso={other_cookie}")),
    )
    .await;
    r.assert_error(400, "state_mismatch");

    // The untouched original still completes: nothing above consumed it.
    let r = TestApp::send(
        app.client
            .get(&callback)
            .header("cookie", format!("portcullis_sso={sealed}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    // The upstream's code is single-use: replaying the whole callback fails upstream.
    let r = TestApp::send(
        app.client
            .get(&callback)
            .header("cookie", format!("portcullis_sso={sealed}")),
    )
    .await;
    r.assert_error(400, "invalid_request");
}

async fn upstream_error_is_reported(backend: Backend) {
    let (app, _up) = start_pair(backend, &[]).await;
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, PROVIDER, "alice@example.com", "/")
        .await;
    let mut denied = with_query(&callback, "code", None);
    denied = with_query(&denied, "error", Some("access_denied"));
    denied = with_query(&denied, "error_description", Some("The user said no"));
    let r = browser.get(&app, &denied).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["upstream_error"], "access_denied");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("The user said no")
    );
    // RFC 9207: a response naming another issuer is refused (mix-up defense).
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, PROVIDER, "alice@example.com", "/")
        .await;
    assert!(
        callback.contains("iss="),
        "oidc-provider names itself: {callback}"
    );
    let r = browser
        .get(
            &app,
            &with_query(&callback, "iss", Some("https://evil.example.com")),
        )
        .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "iss");
    // An error answer with a forged state is a state problem first.
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, PROVIDER, "alice@example.com", "/")
        .await;
    let forged = with_query(
        &with_query(&callback, "error", Some("access_denied")),
        "state",
        Some("nope"),
    );
    browser
        .get(&app, &forged)
        .await
        .assert_error(400, "state_mismatch");
}

async fn return_to_must_not_be_an_open_redirect(backend: Backend) {
    let (app, _up) = start_pair(backend, &[]).await;
    let start = |return_to: &str| {
        format!(
            "/v1/auth/sso/{PROVIDER}/start?return_to={}",
            urlencode(return_to)
        )
    };
    for bad in [
        "https://evil.example.com/",
        "//evil.example.com/x",
        "/\\evil.example.com",
        "javascript:alert(1)",
        "https://app.example.com/not-yet-allowed",
    ] {
        let r = TestApp::send(app.req(Method::GET, &start(bad))).await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "return_to", "{bad}");
        assert!(r.set_cookie().is_none(), "no sign-in starts for {bad}");
    }
    for good in ["/console", &format!("{}/somewhere", app.base)] {
        let r = TestApp::send(app.req(Method::GET, &start(good))).await;
        assert_eq!(r.status, StatusCode::FOUND, "{good}: {}", r.body);
    }
    // An allowed origin of the project the sign-in is for becomes a valid destination;
    // another project's allowed origins never do.
    let u = app.user("owner").await;
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &u.token)
            .header("x-project-id", &u.project_id)
            .json(&json!({"allowed_origins": ["https://app.example.com"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stranger = app.user("stranger").await;
    let target = urlencode("https://app.example.com/signed-in");
    for project in [
        String::new(),
        format!("&project={}", stranger.project_id),
        "&project=not-a-uuid".to_owned(),
        format!("&project={}", uuid::Uuid::now_v7()),
    ] {
        let r = TestApp::send(app.req(
            Method::GET,
            &format!("/v1/auth/sso/{PROVIDER}/start?return_to={target}{project}"),
        ))
        .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "return_to", "{project}");
    }
    let mut browser = Browser {
        project: Some(u.project_id.clone()),
        ..Browser::default()
    };
    let r = browser
        .sign_in(
            &app,
            PROVIDER,
            "alice@example.com",
            "https://app.example.com/signed-in",
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.headers["location"], "https://app.example.com/signed-in");
}

async fn unavailable_providers_are_not_offered(backend: Backend) {
    // Nothing listens on the reserved port; another provider lacks its secret.
    let dead = free_port();
    let app = TestApp::start_with(backend, |cfg| {
        cfg.sso.oidc.insert(
            "down".into(),
            provider_config(&format!("http://127.0.0.1:{dead}")),
        );
        let mut no_secret = provider_config("https://idp.example.com");
        no_secret.client_secret = None;
        cfg.sso.oidc.insert("nosecret".into(), no_secret);
    })
    .await;
    // Start-up did not wait for the upstream, and readiness does not depend on it.
    let r = TestApp::send(app.req(Method::GET, "/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = TestApp::send(app.req(Method::GET, "/v1/auth/sso/providers")).await;
    assert_eq!(r.body, json!({"providers": []}));
    assert!(app.state.sso.available().is_empty());
    for id in ["down", "nosecret", "nonexistent", "org_not-a-uuid"] {
        let r = TestApp::send(app.req(Method::GET, &format!("/v1/auth/sso/{id}/start"))).await;
        r.assert_error(404, "not_found");
    }
    let r = TestApp::send(app.req(
        Method::GET,
        &format!("/v1/auth/sso/org_{}/start", uuid::Uuid::now_v7()),
    ))
    .await;
    r.assert_error(404, "not_found");
    let r = TestApp::send(app.req(Method::GET, "/v1/auth/sso/down/callback?code=x&state=y")).await;
    r.assert_error(400, "state_mismatch");
}

async fn org_provider_crud_and_sign_in_joins_the_org(backend: Backend) {
    let port = free_port();
    let up = Upstream::start(port, &[]).await;
    let app = TestApp::start_with(backend, |cfg| {
        cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
        // The upstream runs on loopback.
        cfg.federation.sso_allow_private_networks = true;
    })
    .await;
    let admin = app.user("admin").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &admin.token)
            .json(&json!({"name": "Acme", "slug": "acme"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let org = r.body["org"]["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/orgs/{org}/sso-providers");

    // Validation: unknown fields, bad issuer, empty secret.
    let body = json!({"name": "Acme IdP", "issuer": up.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
    let mut extra = body.clone();
    extra["color"] = json!("red");
    let r = TestApp::send(
        app.with_bearer(Method::POST, &base, &admin.token)
            .json(&extra),
    )
    .await;
    r.assert_error(400, "invalid_request");
    let mut bad = body.clone();
    bad["issuer"] = json!("http://idp.example.com");
    // Plain http only with sso_allow_private_networks (this test's lab setting; see
    // org_provider_addresses_must_be_public for the default).
    let r = TestApp::send(
        app.with_bearer(Method::POST, &base, &admin.token)
            .json(&bad),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "the lab setting allows http: {}",
        r.body
    );
    let dev_id = r.body["id"].as_str().unwrap().to_owned();
    bad["issuer"] = json!("ftp://idp.example.com");
    let r = TestApp::send(
        app.with_bearer(Method::POST, &base, &admin.token)
            .json(&bad),
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "issuer");
    let mut empty = body.clone();
    empty["client_secret"] = json!(" ");
    let r = TestApp::send(
        app.with_bearer(Method::POST, &base, &admin.token)
            .json(&empty),
    )
    .await;
    assert_eq!(r.body["details"]["field"], "client_secret");

    // Create: the secret is never returned.
    let r = TestApp::send(
        app.with_bearer(Method::POST, &base, &admin.token)
            .json(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(!r.body.to_string().contains(CLIENT_SECRET));
    assert!(r.body.get("client_secret").is_none());
    assert_eq!(r.body["scopes"], json!(["openid", "email", "profile"]));
    let id = r.body["id"].as_str().unwrap().to_owned();
    let sign_in_id = r.body["sign_in_id"].as_str().unwrap().to_owned();
    assert_eq!(sign_in_id, format!("org_{id}"));

    // Stored sealed: the raw column is not the secret and does not contain it.
    let row = app
        .state
        .store
        .sso()
        .provider_by_id(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let raw = &row.client_secret_sealed;
    assert_eq!(raw.len(), 1 + 12 + CLIENT_SECRET.len() + 16);
    assert!(
        !raw.windows(CLIENT_SECRET.len())
            .any(|w| w == CLIENT_SECRET.as_bytes())
    );

    let r = app.get(&base, &admin.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["providers"].as_array().unwrap().len(), 2);
    assert!(!r.body.to_string().contains(CLIENT_SECRET));
    let r = app.get(&format!("{base}/{id}"), &admin.token).await;
    assert_eq!(r.body["name"], "Acme IdP");
    assert!(!r.body.to_string().contains(CLIENT_SECRET));

    let r = TestApp::send(
        app.with_bearer(Method::PATCH, &format!("{base}/{id}"), &admin.token)
            .json(&json!({"name": "Acme SSO", "scopes": ["email", "profile"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Acme SSO");
    assert_eq!(r.body["scopes"], json!(["openid", "email", "profile"]));
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, &format!("{base}/{id}"), &admin.token)
            .json(&json!({"client_secret": "x", "secret": "unknown field"})),
    )
    .await;
    r.assert_error(400, "invalid_request");

    // Listed publicly for the org's slug, once available; the unreachable one is not.
    wait_available(&app, &sign_in_id, "?org=acme").await;
    let r = TestApp::send(app.req(Method::GET, "/v1/auth/sso/providers?org=acme")).await;
    assert_eq!(
        r.body,
        json!({"providers": [{"id": sign_in_id, "name": "Acme SSO"}]})
    );
    let r = TestApp::send(app.req(Method::GET, "/v1/auth/sso/providers?org=nobody")).await;
    assert_eq!(r.body, json!({"providers": []}));
    let r = TestApp::send(app.req(Method::GET, &format!("/v1/auth/sso/org_{dev_id}/start"))).await;
    r.assert_error(404, "not_found");

    // Members may not manage providers; other orgs cannot see them.
    let member = app.user("member").await;
    app.join(&admin.token, &org, &member, "member").await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, &base, &member.token)
            .json(&body),
    )
    .await;
    r.assert_error(403, "forbidden");
    let r = app.get(&base, &member.token).await;
    r.assert_error(403, "forbidden");
    let outsider = app.user("outsider").await;
    let r = app.get(&base, &outsider.token).await;
    r.assert_error(404, "not_found");
    let r = app
        .get(
            &format!("/v1/orgs/{}/sso-providers/{id}", outsider.org_id),
            &outsider.token,
        )
        .await;
    r.assert_error(404, "not_found");

    // The org's provider vouches for its verified domain only: example.com, verified here
    // by a platform admin (no DNS in this test).
    let r = Browser::default()
        .sign_in(&app, &sign_in_id, "dave@example.com", "/acme")
        .await;
    r.assert_error(403, "domain_not_verified");
    verify_by_platform_admin(&app, &admin.token, &org, "example.com").await;

    // Sign-in through the org's provider: a new user, JIT member of the org.
    let mut browser = Browser::default();
    let r = browser
        .sign_in(&app, &sign_in_id, "dave@example.com", "/acme")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(r.headers["location"], "/acme");
    let dave = me(&app, &session_from(&r)).await;
    let memberships = dave["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 2, "{dave}");
    let acme = memberships
        .iter()
        .find(|m| m["org"]["id"] == org.as_str())
        .unwrap();
    assert_eq!(acme["role"], "member");
    assert!(
        memberships
            .iter()
            .any(|m| m["org"]["personal"] == true && m["role"] == "owner")
    );
    let r = app
        .get(&format!("/v1/orgs/{org}/members"), &admin.token)
        .await;
    assert!(r.body.to_string().contains("dave@example.com"));

    // A removed member is not let back in by signing in again.
    let dave_id = dave["user"]["id"].as_str().unwrap();
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{org}/members/{dave_id}"),
        &admin.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = Browser::default()
        .sign_in(&app, &sign_in_id, "dave@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let again = me(&app, &session_from(&r)).await;
    assert_eq!(again["user"]["id"], dave["user"]["id"]);
    assert!(
        again["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["org"]["id"] != org.as_str()),
        "{again}"
    );

    // Audited.
    for action in ["sso.provider.created", "sso.provider.updated"] {
        let events = audit(&app, &admin.token, &org, action).await;
        assert!(!events.is_empty(), "{action}");
        assert!(!Value::Array(events).to_string().contains(CLIENT_SECRET));
    }
    let joined = audit(&app, &admin.token, &org, "member.added").await;
    assert!(
        joined.iter().any(|e| e["details"]["via"] == "sso"),
        "{joined:?}"
    );

    // Deleted: gone from the API and from sign-in.
    let r =
        TestApp::send(app.with_bearer(Method::DELETE, &format!("{base}/{id}"), &admin.token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        audit(&app, &admin.token, &org, "sso.provider.deleted")
            .await
            .len(),
        1
    );
    let r = app.get(&format!("{base}/{id}"), &admin.token).await;
    r.assert_error(404, "not_found");
    let r =
        TestApp::send(app.with_bearer(Method::DELETE, &format!("{base}/{id}"), &admin.token)).await;
    r.assert_error(404, "not_found");
    let r = TestApp::send(app.req(Method::GET, &format!("/v1/auth/sso/{sign_in_id}/start"))).await;
    r.assert_error(404, "not_found");
}

// ---- account takeover through an org's provider --------------------------------------------

/// An upstream and a Portcullis where org providers may live on loopback (the upstream
/// does), optionally asking `dns_port` for TXT records.
async fn start_for_org_providers(backend: Backend, dns_port: Option<u16>) -> (TestApp, Upstream) {
    let port = free_port();
    let up = Upstream::start(port, &[]).await;
    let app = TestApp::start_with(backend, |cfg| {
        cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
        cfg.federation.sso_allow_private_networks = true;
        cfg.federation.dns_resolver = dns_port.map(|p| format!("127.0.0.1:{p}"));
    })
    .await;
    (app, up)
}

/// `owner` creates an org with this slug and registers the upstream as its SSO provider;
/// returns the org id and the provider's sign-in id, once it is available.
async fn org_with_provider(
    app: &TestApp,
    up: &Upstream,
    owner: &common::Signed,
    slug: &str,
) -> (String, String) {
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &owner.token)
            .json(&json!({"name": slug, "slug": slug})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let org = r.body["org"]["id"].as_str().unwrap().to_owned();
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/sso-providers"),
            &owner.token,
        )
        .json(&json!({"name": format!("{slug} IdP"), "issuer": up.issuer,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let sign_in_id = r.body["sign_in_id"].as_str().unwrap().to_owned();
    wait_available(app, &sign_in_id, &format!("?org={slug}")).await;
    (org, sign_in_id)
}

fn sets_no_session(r: &Reply) -> bool {
    r.headers
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("portcullis_session="))
}

/// The attack: a free user registers an org provider pointing at an upstream they
/// run, which asserts the victim's address as verified. Nothing of the victim's is touched.
async fn attackers_org_provider_cannot_take_over_accounts(backend: Backend) {
    let (app, up) = start_for_org_providers(backend, None).await;
    let r = app
        .signup("victim@example.com", "victim's password 1")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let victim = r.session_cookie().unwrap();
    let victim_id = r.body["user"]["id"].as_str().unwrap().to_owned();
    let r = app.signup("root@example.com", "operator's password").await;
    let root = r.session_cookie().unwrap();
    make_platform_admin(&app, r.body["user"]["id"].as_str().unwrap()).await;

    let attacker = app.user("attacker").await;
    let (org, provider) = org_with_provider(&app, &up, &attacker, "evil").await;
    // Even a pending claim on the victims' domain vouches for nothing.
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/domains"),
            &attacker.token,
        )
        .json(&json!({"domain": "example.com"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    for target in [
        "victim@example.com",
        "root@example.com",
        "nobody-yet@example.com",
    ] {
        let r = Browser::default()
            .sign_in(&app, &provider, target, "/")
            .await;
        r.assert_error(403, "domain_not_verified");
        assert!(sets_no_session(&r), "{target}");
        assert_eq!(r.body["details"]["domain"], "example.com");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains("verified domains"), "{message}");
        // No identity was linked through the attacker's provider.
        let linked = app
            .state
            .store
            .sso()
            .user_by_identity(&provider, &up.issuer, target)
            .await
            .unwrap();
        assert!(linked.is_none(), "{target}");
    }
    let nobody = portcullis_core::Email::parse("nobody-yet@example.com").unwrap();
    assert!(
        app.state
            .store
            .accounts()
            .user_by_email(&nobody)
            .await
            .unwrap()
            .is_none()
    );
    // The victims' accounts are untouched: sessions alive, passwords working, nothing new.
    for (token, email, password) in [
        (&victim, "victim@example.com", "victim's password 1"),
        (&root, "root@example.com", "operator's password"),
    ] {
        let body = me(&app, token).await;
        assert_eq!(body["user"]["email"], email);
        assert_eq!(body["memberships"].as_array().unwrap().len(), 1, "{body}");
        let r = app.get("/v1/sessions", token).await;
        assert_eq!(r.body["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(app.login(email, password).await.status, StatusCode::OK);
    }
    // The attacker's org sees its provider's refusals, naming nobody.
    let failed = audit(&app, &attacker.token, &org, "login.failed").await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    for e in &failed {
        assert_eq!(e["details"]["reason"], "domain_not_verified");
        assert_eq!(e["details"]["provider"], provider.as_str());
        assert_eq!(e["outcome"], "failure");
        assert_eq!(e["actor_id"], Value::Null);
        assert!(!e.to_string().contains(&victim_id));
    }
    assert!(
        audit(&app, &attacker.token, &org, "sso.identity.linked")
            .await
            .is_empty()
    );
}

/// With its domain verified (a TXT record served by dnsmasq), an org's provider creates
/// accounts just in time, claims squatted ones, refuses unverified addresses and platform
/// admins, and stops vouching once the domain is deleted.
async fn org_provider_vouches_inside_its_verified_domain(backend: Backend) {
    let dns_port = common::dns::free_port();
    let (app, up) = start_for_org_providers(backend, Some(dns_port)).await;
    let owner = app.user("acme-owner").await;
    let (org, provider) = org_with_provider(&app, &up, &owner, "acme").await;
    let domains = format!("/v1/orgs/{org}/domains");
    let r = TestApp::send(
        app.with_bearer(Method::POST, &domains, &owner.token)
            .json(&json!({"domain": "acme-corp.test"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let record = (
        r.body["txt_record"]["name"].as_str().unwrap().to_owned(),
        r.body["txt_record"]["value"].as_str().unwrap().to_owned(),
    );
    // A squatter registered an address in the domain before its owner ever signed in.
    let r = app
        .signup("frank@acme-corp.test", "squatter password")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let squatter = r.session_cookie().unwrap();
    let frank_id = r.body["user"]["id"].clone();
    let r = app.signup("root@acme-corp.test", "operator password").await;
    let root = r.session_cookie().unwrap();
    make_platform_admin(&app, r.body["user"]["id"].as_str().unwrap()).await;

    // Pending: nothing yet.
    Browser::default()
        .sign_in(&app, &provider, "dave@acme-corp.test", "/")
        .await
        .assert_error(403, "domain_not_verified");
    let dns = common::dns::Dnsmasq::start(
        dns_port,
        &[(record.0.as_str(), record.1.as_str())],
        &["test"],
    )
    .await;
    let r = TestApp::send(app.with_bearer(
        Method::POST,
        &format!("{domains}/acme-corp.test/verify"),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "verified");
    dns.stop().await;

    // Just in time: a new account inside the domain, a member of the org.
    let r = Browser::default()
        .sign_in(&app, &provider, "dave@acme-corp.test", "/welcome")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let dave_token = session_from(&r);
    let dave = me(&app, &dave_token).await;
    assert_eq!(dave["user"]["email"], "dave@acme-corp.test");
    assert!(
        dave["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["org"]["id"] == org.as_str() && m["role"] == "member"),
        "{dave}"
    );
    // Inside the domain, but not verified by the upstream.
    let r = Browser::default()
        .sign_in(&app, &provider, "unverified-erin@acme-corp.test", "/")
        .await;
    r.assert_error(403, "email_not_verified");
    assert!(sets_no_session(&r));
    // Outside the domain.
    Browser::default()
        .sign_in(&app, &provider, "mallory@example.com", "/")
        .await
        .assert_error(403, "domain_not_verified");
    Browser::default()
        .sign_in(&app, &provider, "dave@eu.acme-corp.test", "/")
        .await
        .assert_error(403, "domain_not_verified");
    // Never a platform admin, even inside the domain.
    let r = Browser::default()
        .sign_in(&app, &provider, "root@acme-corp.test", "/")
        .await;
    r.assert_error(403, "forbidden");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("platform administrators")
    );
    assert_eq!(
        me(&app, &root).await["user"]["email"],
        "root@acme-corp.test"
    );
    // The squatted address: the owner claims it.
    let r = Browser::default()
        .sign_in(&app, &provider, "frank@acme-corp.test", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let frank = session_from(&r);
    assert_eq!(me(&app, &frank).await["user"]["id"], frank_id);
    app.get("/v1/me", &squatter)
        .await
        .assert_error(401, "unauthenticated");
    app.login("frank@acme-corp.test", "squatter password")
        .await
        .assert_error(401, "unauthenticated");
    let claimed = audit(&app, &owner.token, &org, "login.failed").await;
    let reasons: Vec<&str> = claimed
        .iter()
        .filter(|e| e["details"]["method"] == "sso")
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"email_not_verified"), "{reasons:?}");
    assert!(reasons.contains(&"platform_admin"), "{reasons:?}");
    assert!(reasons.contains(&"domain_not_verified"), "{reasons:?}");

    // The domain deleted: the provider vouches for nobody there any more, linked or not.
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("{domains}/acme-corp.test"),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    for who in ["dave@acme-corp.test", "frank@acme-corp.test"] {
        Browser::default()
            .sign_in(&app, &provider, who, "/")
            .await
            .assert_error(403, "domain_not_verified");
    }
    // Dave's existing session is his, untouched.
    assert_eq!(
        me(&app, &dave_token).await["user"]["email"],
        "dave@acme-corp.test"
    );
}

/// Deleting an org's provider deletes the identities it linked: a sign-in through it that
/// was already under way cannot finish.
async fn deleted_org_provider_identities_cannot_sign_in(backend: Backend) {
    let (app, up) = start_for_org_providers(backend, None).await;
    let owner = app.user("gone-owner").await;
    let (org, provider) = org_with_provider(&app, &up, &owner, "gone").await;
    verify_by_platform_admin(&app, &owner.token, &org, "gone-corp.test").await;
    let r = Browser::default()
        .sign_in(&app, &provider, "ida@gone-corp.test", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    // upstream.mjs: the subject is the account id, the address.
    let subject = "ida@gone-corp.test";
    assert!(
        app.state
            .store
            .sso()
            .user_by_identity(&provider, &up.issuer, subject)
            .await
            .unwrap()
            .is_some()
    );
    // A second sign-in gets as far as the callback; then the provider is deleted.
    let mut browser = Browser::default();
    let callback = browser
        .start(&app, &provider, "ida@gone-corp.test", "/")
        .await;
    let id = provider.strip_prefix("org_").unwrap();
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{org}/sso-providers/{id}"),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = browser.get(&app, &callback).await;
    r.assert_error(404, "not_found");
    assert!(sets_no_session(&r));
    assert!(
        app.state
            .store
            .sso()
            .user_by_identity(&provider, &up.issuer, subject)
            .await
            .unwrap()
            .is_none(),
        "the identity went with its provider"
    );
    // Another provider naming the same issuer does not inherit it.
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/sso-providers"),
            &owner.token,
        )
        .json(&json!({"name": "again", "issuer": up.issuer,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})),
    )
    .await;
    let again = r.body["sign_in_id"].as_str().unwrap().to_owned();
    assert!(
        app.state
            .store
            .sso()
            .user_by_identity(&again, &up.issuer, subject)
            .await
            .unwrap()
            .is_none()
    );
}

/// SSRF: without `sso_allow_private_networks`, an org's provider must be `https://` on a
/// public address — checked at registration and again at every connection.
async fn org_provider_addresses_must_be_public(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user("ssrf").await;
    let org = &admin.org_id;
    let base = format!("/v1/orgs/{org}/sso-providers");
    // Something to be reached, which must never be.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
    for issuer in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
        format!("https://[::1]:{port}"),
        format!("https://[::ffff:127.0.0.1]:{port}"),
        "https://10.0.0.8/realms/x".to_owned(),
        "https://192.168.1.10".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://0x7f000001".to_owned(),
        format!("http://127.0.0.1:{port}"),
        "http://idp.example.com".to_owned(),
    ] {
        let r = TestApp::send(
            app.with_bearer(Method::POST, &base, &admin.token)
                .json(&json!({"name": "x", "issuer": issuer,
                    "client_id": "c", "client_secret": "s"})),
        )
        .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "issuer", "{issuer}");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("sso_allow_private_networks"),
            "{issuer}: {}",
            r.body
        );
    }
    // A name that passed registration and resolves to a private address by the time of the
    // connection (DNS rebinding): stored as if it had, and never connected to.
    let now = portcullis_core::now();
    let id = uuid::Uuid::now_v7();
    let row = portcullis_store::OrgSsoProvider {
        id,
        org_id: portcullis_core::OrgId::parse(org).unwrap(),
        name: "rebound".into(),
        issuer: format!("https://localhost:{port}"),
        client_id: "c".into(),
        client_secret_sealed: portcullis_server::infra::upstream::seal_client_secret(
            &app.state.master_key,
            id,
            "s",
        )
        .unwrap(),
        scopes: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    app.state
        .store
        .org(&portcullis_core::OrgAccess::system(row.org_id))
        .sso_providers()
        .create_provider(&row, &portcullis_core::AuditContext::cli())
        .await
        .unwrap();
    let r = TestApp::send(app.req(Method::GET, &format!("/v1/auth/sso/org_{id}/start"))).await;
    r.assert_error(404, "not_found");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !accepted.is_finished(),
        "the server connected to a private address"
    );
    accepted.abort();
}

/// A tiny OpenID Provider that serves only discovery and JWKS, its discovery document
/// padded to `pad` bytes of whitespace.
async fn discovery_only_upstream(pad: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let base = issuer.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let base = base.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let body = if request.starts_with("GET /jwks") {
                    json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "kid": "1",
                        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                        "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]})
                    .to_string()
                } else {
                    let doc = json!({"issuer": base,
                        "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": format!("{base}/token"),
                        "jwks_uri": format!("{base}/jwks")})
                    .to_string();
                    format!("{}{}", &doc[..doc.len() - 1], " ".repeat(pad) + "}")
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    issuer
}

/// Every upstream answer is read up to 1 MiB only: a provider whose discovery document is
/// larger is never offered, while the same document without the padding is.
async fn oversized_upstream_answers_are_refused(backend: Backend) {
    let big = discovery_only_upstream(2 * 1024 * 1024).await;
    let small = discovery_only_upstream(100).await;
    let app = TestApp::start_with(backend, |cfg| {
        cfg.sso.oidc.insert("big".into(), provider_config(&big));
        cfg.sso.oidc.insert("small".into(), provider_config(&small));
    })
    .await;
    wait_available(&app, "small", "").await;
    let r = TestApp::send(app.req(Method::GET, "/v1/auth/sso/providers")).await;
    assert_eq!(
        r.body["providers"],
        json!([{"id": "small", "name": "Upstream IdP"}]),
        "the oversized one is not offered"
    );
    TestApp::send(app.req(Method::GET, "/v1/auth/sso/big/start"))
        .await
        .assert_error(404, "not_found");
}

// ---- just-in-time membership within the plan ------------------------------------------------

/// The org ids a session's user is a member of.
async fn member_orgs(app: &TestApp, r: &Reply) -> Vec<String> {
    me(app, &session_from(r)).await["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["org"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn sso_join_respects_the_plan_and_sign_in_goes_on(backend: Backend) {
    let (app, up) = start_for_org_providers(backend, None).await;
    let owner = app.user("owner").await;
    let (org, idp) = org_with_provider(&app, &up, &owner, "seats").await;
    verify_by_platform_admin(&app, &owner.token, &org, "example.com").await;
    // The free plan's 3 seats: the owner and two pending invitations.
    for who in ["one@example.com", "two@example.com"] {
        let r = app.invite(&owner.token, &org, who, "member").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    // Full: the sign-in succeeds, without a membership, and the refusal is audited.
    let r = Browser::default()
        .sign_in(&app, &idp, "dave@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert!(!member_orgs(&app, &r).await.contains(&org));
    let refused = audit(&app, &owner.token, &org, "member.join_refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "failure");
    let details = &refused[0]["details"];
    assert_eq!(details["reason"], "subscription_limit_exceeded");
    assert_eq!(
        (&details["resource"], &details["limit"], &details["used"]),
        (&json!("seats"), &json!(3), &json!(3))
    );
    let r = app
        .get(&format!("/v1/orgs/{org}/subscription"), &owner.token)
        .await;
    assert_eq!(r.body["seats"], json!({"used": 3, "limit": 3}));

    // A freed seat is taken by the next sign-in.
    let r = app
        .get(&format!("/v1/orgs/{org}/invitations"), &owner.token)
        .await;
    let inv = r.body["invitations"][0]["id"].as_str().unwrap().to_owned();
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{org}/invitations/{inv}"),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = Browser::default()
        .sign_in(&app, &idp, "dave@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert!(member_orgs(&app, &r).await.contains(&org));

    // Inactive: on a plan with room, the membership is still refused; signing in is not.
    let operator = platform_admin(&app, "billing").await;
    let r = TestApp::send(
        app.with_bearer(
            Method::PUT,
            &format!("/v1/orgs/{org}/subscription"),
            &operator.token,
        )
        .json(&json!({"plan": "team", "status": "past_due"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = Browser::default()
        .sign_in(&app, &idp, "erin@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert!(!member_orgs(&app, &r).await.contains(&org));
    let refused = audit(&app, &owner.token, &org, "member.join_refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|e| e["details"]["reason"] == "subscription_inactive"
                && e["details"]["status"] == "past_due"),
        "{refused:?}"
    );
    // Dave, already a member, signs in as before.
    let r = Browser::default()
        .sign_in(&app, &idp, "dave@example.com", "/")
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert!(member_orgs(&app, &r).await.contains(&org));
}
