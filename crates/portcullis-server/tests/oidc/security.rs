#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OpenID Connect provider against an attacker with a free account, through HTTP on
//! SQLite and PostgreSQL: refresh tokens that outlive their session, logout with someone
//! else's token, codes burnt by the wrong client, ID tokens passed off as access tokens, and
//! apps that claim another app's custom scheme.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Reply, Signed, TestApp};
use portcullis_server::infra::keys::JwtType;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const REDIRECT: &str = "https://rp.example.com/callback";
const LOGOUT_REDIRECT: &str = "https://rp.example.com/bye";
const APP_REDIRECT: &str = "com.example.notes:/oauth/callback";

struct Client {
    id: String,
    secret: Option<String>,
}

async fn create_client(app: &TestApp, owner: &Signed, body: Value) -> Client {
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/clients", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = r.body.get("client").unwrap_or(&r.body);
    Client {
        id: c["client_id"]
            .as_str()
            .or(r.body["client_id"].as_str())
            .expect("client_id")
            .to_owned(),
        secret: r.body["client_secret"].as_str().map(str::to_owned),
    }
}

async fn confidential(app: &TestApp, owner: &Signed, logout_uri: &str) -> Client {
    create_client(
        app,
        owner,
        json!({
            "name": "Web app",
            "type": "confidential",
            "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": [logout_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await
}

fn basic(c: &Client) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", c.id, c.secret.as_deref().unwrap()))
    )
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn location(r: &Reply) -> url::Url {
    let loc = r
        .headers
        .get("location")
        .unwrap_or_else(|| panic!("no Location ({}): {}", r.status, r.body))
        .to_str()
        .unwrap();
    url::Url::parse(loc)
        .or_else(|_| url::Url::parse("http://portcullis.test").unwrap().join(loc))
        .unwrap()
}

fn location_params(r: &Reply) -> std::collections::HashMap<String, String> {
    location(r).query_pairs().into_owned().collect()
}

async fn authorize(app: &TestApp, session: &str, pairs: &[(&str, &str)]) -> Reply {
    TestApp::send(
        app.req(Method::GET, &format!("/oauth2/authorize?{}", query(pairs)))
            .header("cookie", format!("portcullis_session={session}")),
    )
    .await
}

async fn token(app: &TestApp, auth: Option<String>, form: &[(&str, &str)]) -> Reply {
    let mut rb = app
        .req(Method::POST, "/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query(form));
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    TestApp::send(rb).await
}

/// A code for `c`, issued in the browser session `session` (a first-party user: no consent).
async fn code_in(app: &TestApp, session: &str, c: &Client, scope: &str) -> String {
    let r = authorize(
        app,
        session,
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("nonce", "n-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    location_params(&r)["code"].clone()
}

/// Tokens for `c` from a code flow in the browser session `session`.
async fn tokens_in(app: &TestApp, session: &str, c: &Client, scope: &str) -> Value {
    let code = code_in(app, session, c, scope).await;
    let r = token(
        app,
        Some(basic(c)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn refresh(app: &TestApp, c: &Client, rt: &str) -> Reply {
    token(
        app,
        Some(basic(c)),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

async fn introspect(app: &TestApp, c: &Client, t: &str) -> Value {
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/introspect")
            .header("authorization", basic(c))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("token", t)])),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn jwt_part(jwt: &str, i: usize) -> Value {
    let part = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn text(r: &Reply) -> &str {
    r.body.as_str().unwrap_or_default()
}

/// A second browser session of `user`, with its id.
async fn sign_in_again(app: &TestApp, user: &Signed) -> (String, String) {
    let r = app.login(&user.email, "correct horse battery").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    (r.session_cookie().unwrap(), id)
}

async fn logout_get(app: &TestApp, cookie: Option<&str>, pairs: &[(&str, &str)]) -> Reply {
    let mut rb = app.req(Method::GET, &format!("/oauth2/logout?{}", query(pairs)));
    if let Some(t) = cookie {
        rb = rb.header("cookie", format!("portcullis_session={t}"));
    }
    TestApp::send(rb).await
}

async fn logout_confirm(
    app: &TestApp,
    cookie: &str,
    origin: Option<&str>,
    pairs: &[(&str, &str)],
) -> Reply {
    let mut rb = app
        .req(Method::POST, "/oauth2/logout")
        .header("cookie", format!("portcullis_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query(&[("continue", &query(pairs))]));
    if let Some(o) = origin {
        rb = rb.header("origin", o);
    }
    TestApp::send(rb).await
}

async fn live(app: &TestApp, session: &str) -> bool {
    app.get("/v1/me", session).await.status == StatusCode::OK
}

both_backends!(
    logout_ends_refresh_tokens_without_offline_access,
    a_revoked_session_takes_its_grants_along,
    logout_hints_identify_and_end_only_the_cookies_session,
    logout_without_a_matching_hint_asks_first,
    post_logout_redirects_need_the_registering_clients_hint,
    a_wrong_client_does_not_burn_the_code,
    access_tokens_are_typed_and_id_tokens_are_not_access_tokens,
    custom_scheme_public_clients_need_approval_once,
);

/// Item 5: a refresh token granted without offline_access dies with the browser session;
/// one with offline_access lives on.
async fn logout_ends_refresh_tokens_without_offline_access(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let online = tokens_in(&app, &owner.token, &c, "openid email").await;
    let offline = tokens_in(&app, &owner.token, &c, "openid offline_access").await;
    let rt = online["refresh_token"].as_str().unwrap();
    let at = online["access_token"].as_str().unwrap();
    // Both work while the session lives (and a rotation keeps the binding).
    let r = refresh(&app, &c, rt).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, &c, at).await["active"], true);
    assert_eq!(introspect(&app, &c, &rt).await["active"], true);

    let pending = code_in(&app, &owner.token, &c, "openid email").await;

    let r = logout_get(
        &app,
        Some(&owner.token),
        &[("id_token_hint", online["id_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(text(&r).contains("signed out"), "{}", r.body);
    assert!(!live(&app, &owner.token).await);

    // A code from the ended session buys nothing either.
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &pending),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.body);

    let r = refresh(&app, &c, &rt).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{}",
        r.body
    );
    assert_eq!(introspect(&app, &c, &rt).await, json!({"active": false}));
    assert_eq!(introspect(&app, &c, at).await, json!({"active": false}));
    let r = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", at)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    // offline_access outlives the session, and so do the access tokens it mints.
    let r = refresh(&app, &c, offline["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let at = r.body["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &c, at).await["active"], true);
    let r = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", at)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Item 5: revoking a session (DELETE /v1/sessions/{id}) ends the grants made in it, and its
/// access tokens introspect inactive at once.
async fn a_revoked_session_takes_its_grants_along(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let (laptop, laptop_id) = sign_in_again(&app, &owner).await;
    let t = tokens_in(&app, &laptop, &c, "openid email").await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &c, at).await["active"], true);

    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/sessions/{laptop_id}"),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(introspect(&app, &c, at).await, json!({"active": false}));
    assert_eq!(introspect(&app, &c, rt).await, json!({"active": false}));
    assert_eq!(refresh(&app, &c, rt).await.body["error"], "invalid_grant");
    // The session that revoked it is untouched.
    assert!(live(&app, &owner.token).await);
}

/// Item 5: a family ends at its absolute lifetime, however often it was rotated.
async fn families_end_at_their_absolute_lifetime(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let t = tokens_in(&app, &owner.token, &c, "openid offline_access").await;
    let r = refresh(&app, &c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    let exp = introspect(&app, &c, &rt).await["exp"].as_i64().unwrap();
    assert!(
        exp <= time::OffsetDateTime::now_utc().unix_timestamp() + 2,
        "the token reports the family's end, not its own 30 days: {exp}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = refresh(&app, &c, &rt).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{}",
        r.body
    );
    assert_eq!(introspect(&app, &c, &rt).await, json!({"active": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_end_at_their_absolute_lifetime_sqlite() {
    families_end_at_their_absolute_lifetime(
        TestApp::start_with(common::Backend::Sqlite, |c| {
            c.oidc.refresh_max_lifetime_secs = 2
        })
        .await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_end_at_their_absolute_lifetime_postgres() {
    families_end_at_their_absolute_lifetime(
        TestApp::start_with(common::Backend::Postgres, |c| {
            c.oidc.refresh_max_lifetime_secs = 2
        })
        .await,
    )
    .await;
}

/// Item 8: the hint must be an ID token of this server (expired is fine, an access token is
/// not), and logout ends the cookie's session only — never the one the hint names.
async fn logout_hints_identify_and_end_only_the_cookies_session(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let t = tokens_in(&app, &owner.token, &c, "openid").await;

    // An access token is no ID token: refused with an error page, nothing ends.
    let r = logout_get(
        &app,
        Some(&owner.token),
        &[("id_token_hint", t["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(text(&r).contains("not an ID token"), "{}", r.body);
    assert!(r.headers.get("location").is_none() && r.set_cookie().is_none());
    assert!(live(&app, &owner.token).await);
    // Nor is a token of somebody else's signing.
    let r = logout_get(
        &app,
        Some(&owner.token),
        &[("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(live(&app, &owner.token).await);

    // The hint was issued in the first session (its sid); the cookie is of a second one:
    // only the cookie's session ends.
    let (second, _) = sign_in_again(&app, &owner).await;
    assert_eq!(
        jwt_part(t["id_token"].as_str().unwrap(), 1)["sid"],
        app.get("/v1/me", &owner.token).await.body["session"]["id"]
    );
    let r = logout_get(
        &app,
        Some(&second),
        &[
            ("id_token_hint", t["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGOUT_REDIRECT),
            ("state", "s-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        location(&r).as_str(),
        format!("{LOGOUT_REDIRECT}?state=s-1")
    );
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    assert!(!live(&app, &second).await);
    assert!(
        live(&app, &owner.token).await,
        "the hint's session lives on"
    );

    // An expired ID token still identifies its client and user.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = app
        .state
        .keys
        .sign(
            portcullis_core::oauth::SigningAlg::EdDSA,
            JwtType::Jwt,
            &json!({"iss": app.base, "sub": owner.user_id, "aud": c.id, "azp": c.id,
                    "iat": now - 7200, "exp": now - 3600}),
        )
        .await
        .unwrap();
    let r = logout_get(
        &app,
        Some(&owner.token),
        &[
            ("id_token_hint", &expired),
            ("post_logout_redirect_uri", LOGOUT_REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(!live(&app, &owner.token).await);
}

/// Item 8: without a hint of the signed-in user, GET only asks; the confirmation is a POST
/// that must come from this server's own page.
async fn logout_without_a_matching_hint_asks_first(app: TestApp) {
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let others_client = confidential(&app, &other, LOGOUT_REDIRECT).await;
    let others = tokens_in(&app, &other.token, &others_client, "openid").await;

    // No hint: a confirmation page, nothing ends, no cookie is cleared.
    let r = logout_get(&app, Some(&owner.token), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        text(&r).contains("action=\"/oauth2/logout\"") && text(&r).contains("method=\"post\""),
        "{}",
        r.body
    );
    assert!(r.set_cookie().is_none());
    assert!(live(&app, &owner.token).await);
    // A forged confirmation from another site, or from nowhere, ends nothing.
    for origin in [Some("https://evil.example.com"), None] {
        let r = logout_confirm(&app, &owner.token, origin, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin:?}: {}", r.body);
        assert!(live(&app, &owner.token).await);
    }
    // Confirmed on our own page: signed out.
    let r = logout_confirm(&app, &owner.token, Some(&app.base), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(text(&r).contains("signed out"));
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    assert!(!live(&app, &owner.token).await);

    // Another user's ID token as hint: asked first, and confirming ends only the cookie's
    // session, never the session the hint names.
    let (mine, _) = sign_in_again(&app, &owner).await;
    let hint = [("id_token_hint", others["id_token"].as_str().unwrap())];
    let r = logout_get(&app, Some(&mine), &hint).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(text(&r).contains("Sign out?"), "{}", r.body);
    assert!(live(&app, &mine).await && live(&app, &other.token).await);
    let r = logout_confirm(&app, &mine, Some(&app.base), &hint).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!live(&app, &mine).await);
    assert!(
        live(&app, &other.token).await,
        "the hint's session is not ours to end"
    );

    // Without a session there is nothing to confirm.
    let r = logout_get(&app, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(text(&r).contains("signed out"));
}

/// Item 8: a post-logout redirect needs an ID token hint of the client that registered it.
async fn post_logout_redirects_need_the_registering_clients_hint(app: TestApp) {
    let owner = app.user("owner").await;
    let a = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let b = confidential(&app, &owner, "https://b.example.com/bye").await;
    let b_tokens = tokens_in(&app, &owner.token, &b, "openid").await;
    for pairs in [
        // B's hint cannot send the browser to A's URI.
        vec![
            ("id_token_hint", b_tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGOUT_REDIRECT),
        ],
        // A bare client_id proves nothing.
        vec![
            ("client_id", a.id.as_str()),
            ("post_logout_redirect_uri", LOGOUT_REDIRECT),
        ],
        // Nor does a client_id that is not the hint's.
        vec![
            ("id_token_hint", b_tokens["id_token"].as_str().unwrap()),
            ("client_id", a.id.as_str()),
        ],
    ] {
        let r = logout_get(&app, Some(&owner.token), &pairs).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{pairs:?}: {}", r.body);
        assert!(r.headers.get("location").is_none());
        assert!(live(&app, &owner.token).await, "{pairs:?}");
    }
    // B's hint with B's own URI works.
    let r = logout_get(
        &app,
        Some(&owner.token),
        &[
            ("id_token_hint", b_tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", "https://b.example.com/bye"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r).as_str(), "https://b.example.com/bye");
}

/// Item 11: a code presented by another client is refused without being spent; its own
/// client still redeems it.
async fn a_wrong_client_does_not_burn_the_code(app: TestApp) {
    let owner = app.user("owner").await;
    let rightful = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let thief = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let code = code_in(&app, &owner.token, &rightful, "openid offline_access").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    for _ in 0..2 {
        let r = token(&app, Some(basic(&thief)), &form).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{}",
            r.body
        );
    }
    let r = token(&app, Some(basic(&rightful)), &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Its family was started with it: it refreshes, and a replay revokes it.
    let rt = r.body["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &rightful, rt).await["active"], true);
    assert_eq!(
        token(&app, Some(basic(&rightful)), &form).await.body["error"],
        "invalid_grant"
    );
    assert_eq!(introspect(&app, &rightful, rt).await["active"], false);
}

/// Item 12: access tokens say `typ: at+jwt`; an ID token is never accepted as one.
async fn access_tokens_are_typed_and_id_tokens_are_not_access_tokens(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner, LOGOUT_REDIRECT).await;
    let t = tokens_in(&app, &owner.token, &c, "openid email").await;
    let at = t["access_token"].as_str().unwrap();
    let id_token = t["id_token"].as_str().unwrap();
    assert_eq!(jwt_part(at, 0)["typ"], "at+jwt");
    assert_eq!(jwt_part(id_token, 0)["typ"], "JWT");
    let r = refresh(&app, &c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        jwt_part(r.body["access_token"].as_str().unwrap(), 0)["typ"],
        "at+jwt"
    );

    app.get("/v1/me", id_token)
        .await
        .assert_error(401, "unauthenticated");
    let r = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", id_token)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    assert_eq!(
        introspect(&app, &c, id_token).await,
        json!({"active": false})
    );
    // The access token itself works everywhere it should.
    let r = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", at)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(introspect(&app, &c, at).await["active"], true);
}

/// Item 4: a public client redirecting to a custom scheme gets the user's approval the first
/// time even when first-party (never silently with prompt=none), and is remembered after.
async fn custom_scheme_public_clients_need_approval_once(app: TestApp) {
    let owner = app.user("owner").await;
    let c = create_client(
        &app,
        &owner,
        json!({
            "name": "Notes for iOS",
            "type": "public",
            "redirect_uris": [APP_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::now_v7().as_bytes().repeat(3));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let request = |prompt: Option<&'static str>| {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", c.id.as_str()),
            ("redirect_uri", APP_REDIRECT),
            ("scope", "openid offline_access"),
            ("state", "st-app"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(p) = prompt {
            pairs.push(("prompt", p));
        }
        pairs
    };

    // A malicious app claiming the scheme cannot get a code silently.
    let r = authorize(&app, &owner.token, &request(Some("none"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(location(&r).as_str().starts_with(APP_REDIRECT));
    let p = location_params(&r);
    assert_eq!(p["error"], "consent_required");
    assert!(!p.contains_key("code"));

    // The first time, the user is asked — first-party or not.
    let r = authorize(&app, &owner.token, &request(None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(text(&r).contains("Allow access?"), "{}", r.body);
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("com.example.notes:"),
        "the allowed redirect chain may end at the app"
    );
    let allowed = TestApp::send(
        app.req(Method::POST, "/oauth2/consent")
            .header("cookie", format!("portcullis_session={}", owner.token))
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[
                ("continue", &query(&request(None))),
                ("decision", "allow"),
            ])),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER, "{}", allowed.body);
    let back = allowed.headers["location"].to_str().unwrap().to_owned();
    let r = TestApp::send(
        app.req(Method::GET, &back)
            .header("cookie", format!("portcullis_session={}", owner.token)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let code = location_params(&r)["code"].clone();
    let r = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &c.id),
            ("code", &code),
            ("redirect_uri", APP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Remembered: the next authorization (and prompt=none) goes straight back with a code.
    for prompt in [None, Some("none")] {
        let r = authorize(&app, &owner.token, &request(prompt)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{prompt:?}: {}", r.body);
        assert!(location_params(&r).contains_key("code"), "{prompt:?}");
    }
}
