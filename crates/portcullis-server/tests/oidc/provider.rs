#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OpenID Connect provider through HTTP, as a browser and a relying party use it, on
//! SQLite and PostgreSQL.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Signed, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const REDIRECT: &str = "https://rp.example.com/callback";
const LOGOUT_REDIRECT: &str = "https://rp.example.com/bye";

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
    let c = if r.body.get("client").is_some() {
        &r.body["client"]
    } else {
        &r.body
    };
    Client {
        id: c["client_id"]
            .as_str()
            .or(r.body["client_id"].as_str())
            .expect("client_id")
            .to_owned(),
        secret: r.body["client_secret"].as_str().map(str::to_owned),
    }
}

async fn confidential(app: &TestApp, owner: &Signed) -> Client {
    create_client(
        app,
        owner,
        json!({
            "name": "Web app",
            "type": "confidential",
            "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": [LOGOUT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await
}

async fn public(app: &TestApp, owner: &Signed) -> Client {
    create_client(
        app,
        owner,
        json!({
            "name": "Native app",
            "type": "public",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::now_v7().as_bytes().repeat(3));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
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

fn location_params(r: &common::Reply) -> std::collections::HashMap<String, String> {
    let loc = r
        .headers
        .get("location")
        .unwrap_or_else(|| panic!("no Location ({}): {}", r.status, r.body))
        .to_str()
        .unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn authorize(app: &TestApp, session: Option<&str>, pairs: &[(&str, &str)]) -> common::Reply {
    let mut rb = app.req(Method::GET, &format!("/oauth2/authorize?{}", query(pairs)));
    if let Some(t) = session {
        rb = rb.header("cookie", format!("portcullis_session={t}"));
    }
    TestApp::send(rb).await
}

async fn token(app: &TestApp, auth: Option<String>, form: &[(&str, &str)]) -> common::Reply {
    let mut rb = app
        .req(Method::POST, "/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query(form));
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    TestApp::send(rb).await
}

/// The code flow for a confidential client and a signed-in owner (first-party: no consent).
async fn code_for(app: &TestApp, owner: &Signed, c: &Client, scope: &str) -> String {
    let r = authorize(
        app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st-1"),
            ("nonce", "n-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = location_params(&r);
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["iss"], app.base);
    p["code"].clone()
}

async fn tokens_for(app: &TestApp, owner: &Signed, c: &Client) -> Value {
    let code = code_for(app, owner, c, "openid email profile offline_access").await;
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
    assert_eq!(r.headers["cache-control"], "no-store");
    r.body
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn introspect(app: &TestApp, c: &Client, t: &str) -> Value {
    let rb = app
        .req(Method::POST, "/oauth2/introspect")
        .header("authorization", basic(c))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query(&[("token", t)]));
    let r = TestApp::send(rb).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

both_backends!(
    discovery_is_accurate,
    code_flow_issues_verified_tokens,
    authorization_errors_never_redirect_to_unregistered_uris,
    token_endpoint_errors,
    pkce_for_public_clients,
    login_page_then_code,
    third_party_clients_need_consent,
    refresh_rotation_grace_and_reuse,
    concurrent_refreshes_mint_one_successor,
    code_replay_revokes_issued_tokens,
    introspection_revocation_and_userinfo,
    client_credentials_grant,
    rp_initiated_logout,
    disabled_project_gets_no_tokens,
);

async fn discovery_is_accurate(app: TestApp) {
    let d = TestApp::send(app.req(Method::GET, "/.well-known/openid-configuration"))
        .await
        .body;
    assert_eq!(d["issuer"], app.base);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{}/oauth2/authorize", app.base)
    );
    assert_eq!(d["jwks_uri"], format!("{}/.well-known/jwks.json", app.base));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(
            d["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(g))
        );
    }
    let jwks = TestApp::send(app.req(Method::GET, "/.well-known/jwks.json"))
        .await
        .body;
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
}

async fn code_flow_issues_verified_tokens(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let t = tokens_for(&app, &owner, &c).await;
    assert_eq!(t["token_type"], "Bearer");
    assert!(portcullis_core::token::is_refresh_token(
        t["refresh_token"].as_str().unwrap()
    ));
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], app.base);
    assert_eq!(id["aud"], json!(c.id));
    assert_eq!(id["sub"], json!(owner.user_id));
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["email"], json!(owner.email));
    assert_eq!(id["org_id"], json!(owner.org_id));
    assert_eq!(id["project_id"], json!(owner.project_id));
    assert!(id["auth_time"].is_i64() && id["sid"].is_string());
    let at = t["access_token"].as_str().unwrap();
    let info = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", at)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["sub"], json!(owner.user_id));
    assert_eq!(info.body["email"], json!(owner.email));
    let i = introspect(&app, &c, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], json!(c.id));
    assert_eq!(i["sub"], json!(owner.user_id));
}

async fn authorization_errors_never_redirect_to_unregistered_uris(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let r = authorize(
        &app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", "pcc_unknown"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("location").is_none());
    for bad in [
        "https://evil.example.com/callback",
        "https://rp.example.com/callback/",
        "https://rp.example.com/callback?x=1",
    ] {
        let r = authorize(
            &app,
            Some(&owner.token),
            &[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", bad),
                ("scope", "openid"),
                ("state", "s"),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.headers.get("location").is_none(), "{bad} redirected");
        assert!(r.body.as_str().unwrap().contains("not registered"));
    }
    // With a registered redirect URI, errors go back to the client with state.
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("response_type", "token")], "unsupported_response_type"),
        (
            &[("response_type", "code"), ("scope", "openid admin")],
            "invalid_scope",
        ),
        (
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", "abc"),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            &[
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none"),
                ("max_age", "-1"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let mut pairs = vec![
            ("client_id", c.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "keep"),
        ];
        pairs.extend_from_slice(extra);
        if !pairs.iter().any(|(k, _)| *k == "scope") {
            pairs.push(("scope", "openid"));
        }
        let r = authorize(&app, Some(&owner.token), &pairs).await;
        let p = location_params(&r);
        assert_eq!(p["error"], error, "{extra:?}");
        assert_eq!(p["state"], "keep");
    }
    // prompt=none without a session.
    let r = authorize(
        &app,
        None,
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    )
    .await;
    assert_eq!(location_params(&r)["error"], "login_required");
}

async fn token_endpoint_errors(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let wrong = format!("Basic {}", STANDARD.encode(format!("{}:nope", c.id)));
    let r = token(&app, Some(wrong), &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_client");
    assert!(r.headers.get("www-authenticate").is_some());
    assert!(r.body["correlation_id"].is_string());
    let r = token(
        &app,
        None,
        &[("grant_type", "client_credentials"), ("client_id", &c.id)],
    )
    .await;
    assert_eq!(
        r.body["error"], "invalid_client",
        "auth method must match the registered one"
    );
    // A request that does not say which client it is fails client authentication (RFC 6749
    // §5.2), without a Basic challenge since it did not try Basic.
    for form in [
        &[("grant_type", "client_credentials")][..],
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", c.secret.as_deref().unwrap()),
        ][..],
    ] {
        let r = token(&app, None, form).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{}",
            r.body
        );
        assert!(r.headers.get("www-authenticate").is_none());
        assert!(r.body["correlation_id"].is_string());
    }
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", c.secret.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "two authentication methods"
    );
    let r = token(&app, Some(basic(&c)), &[("scope", "openid")]).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "grant_type missing"
    );
    let r = token(&app, Some(basic(&c)), &[("grant_type", "password")]).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_request");
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "authorization_code"),
            ("code", "ac_bogus"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    let code = code_for(&app, &owner, &c, "openid").await;
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example.com/other"),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    let r = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_scope");
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt_bogus"),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    let body = query(&[
        ("grant_type", "client_credentials"),
        ("grant_type", "client_credentials"),
    ]);
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/token")
            .header("authorization", basic(&c))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await;
    assert_eq!(r.body["error"], "invalid_request");
}

async fn pkce_for_public_clients(app: TestApp) {
    let owner = app.user("owner").await;
    let c = public(&app, &owner).await;
    let redirect = "http://127.0.0.1:53124/cb"; // any loopback port (RFC 8252)
    let r = authorize(
        &app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", redirect),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(
        location_params(&r)["error"],
        "invalid_request",
        "PKCE is mandatory"
    );
    let (verifier, challenge) = pkce();
    // An S256 challenge is 43 characters; a longer one could never be met.
    let r = authorize(
        &app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", redirect),
            ("scope", "openid"),
            ("code_challenge", &format!("{challenge}A")),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(location_params(&r)["error"], "invalid_request");
    let r = authorize(
        &app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", redirect),
            ("scope", "openid offline_access"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = location_params(&r)["code"].clone();
    let r = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &c.id),
            ("code", &code),
            ("redirect_uri", redirect),
            (
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier-x",
            ),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    // The code is spent by the failed attempt; a fresh one with the right verifier works.
    let r = authorize(
        &app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", redirect),
            ("scope", "openid offline_access"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = location_params(&r)["code"].clone();
    let r = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &c.id),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["refresh_token"].is_string());
    let r = token(
        &app,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &c.id),
            ("refresh_token", r.body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn login_page_then_code(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let pairs = [
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "abc"),
    ];
    let page = authorize(&app, None, &pairs).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/oauth2/login\"") && html.contains("Web app")
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let form = |password: &str| {
        query(&[
            ("email", &owner.email),
            ("password", password),
            ("continue", &query(&pairs)),
        ])
    };
    // From another origin: refused.
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/login")
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form("correct horse battery")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // An opaque origin (`Origin: null`, a sandboxed frame) is nobody's, even with our
    // page as the referer.
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/login")
            .header("origin", "null")
            .header("referer", format!("{}/oauth2/authorize", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form("correct horse battery")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.session_cookie().is_none());
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/login")
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form("wrong password")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.as_str().unwrap().contains("incorrect"));
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/login")
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form("correct horse battery")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let token = r.session_cookie().unwrap();
    let loc = r.headers["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with("/oauth2/authorize?"));
    let r = TestApp::send(
        app.req(Method::GET, &loc)
            .header("cookie", format!("portcullis_session={token}")),
    )
    .await;
    let p = location_params(&r);
    assert!(p["code"].starts_with("ac_"));
    assert_eq!(p["state"], "abc");
    // prompt=login shows the page even with a session.
    let mut again = pairs.to_vec();
    again.push(("prompt", "login"));
    assert_eq!(
        authorize(&app, Some(&token), &again).await.status,
        StatusCode::OK
    );
}

async fn third_party_clients_need_consent(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let outsider = app.user("outsider").await;
    let pairs = [
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "s1"),
    ];
    let mut none = pairs.to_vec();
    none.push(("prompt", "none"));
    assert_eq!(
        location_params(&authorize(&app, Some(&outsider.token), &none).await)["error"],
        "consent_required"
    );
    let page = authorize(&app, Some(&outsider.token), &pairs).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .as_str()
            .unwrap()
            .contains("see your email address")
    );
    let consent = |decision: &str| {
        app.req(Method::POST, "/oauth2/consent")
            .header("cookie", format!("portcullis_session={}", outsider.token))
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[
                ("continue", &query(&pairs)),
                ("decision", decision),
            ]))
    };
    let r = TestApp::send(consent("deny")).await;
    assert_eq!(location_params(&r)["error"], "access_denied");
    let r = TestApp::send(consent("allow")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = authorize(&app, Some(&outsider.token), &pairs).await;
    assert!(
        location_params(&r).contains_key("code"),
        "consent is remembered"
    );
    // A wider scope asks again; withdrawing consent asks again.
    let mut wider = pairs.to_vec();
    wider[3] = ("scope", "openid email profile");
    assert_eq!(
        authorize(&app, Some(&outsider.token), &wider).await.status,
        StatusCode::OK
    );
    let consents = app.get("/v1/me/consents", &outsider.token).await;
    assert_eq!(consents.body["consents"][0]["client_id"], json!(c.id));
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/me/consents/{}", c.id),
        &outsider.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        authorize(&app, Some(&outsider.token), &pairs).await.status,
        StatusCode::OK
    );
}

async fn refresh_rotation_grace_and_reuse(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let t = tokens_for(&app, &owner, &c).await;
    let rt0 = t["refresh_token"].as_str().unwrap().to_owned();
    let r1 = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt0)],
    )
    .await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.body);
    let rt1 = r1.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt0);
    assert!(r1.body["id_token"].is_string());
    // A retry of rt0 inside the grace window gets the same successor, not a logout.
    let retry = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt0)],
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body["refresh_token"], json!(rt1));
    // Narrowing the scope works; widening does not.
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(r.body["scope"], "openid");
    let rt2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    let other = confidential(&app, &owner).await;
    let r = token(
        &app,
        Some(basic(&other)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant", "another client's token");
    assert_eq!(
        introspect(&app, &c, &rt2).await["active"],
        true,
        "…and it was left untouched"
    );
}

async fn concurrent_refreshes_mint_one_successor(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let rt = tokens_for(&app, &owner, &c).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = std::sync::Arc::new(app);
    let auth = basic(&c);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (app, auth, rt) = (app.clone(), auth.clone(), rt.clone());
            tokio::spawn(async move {
                token(
                    &app,
                    Some(auth),
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
            })
        })
        .collect();
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        successors.insert(r.body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "exactly one successor");
    let next = successors.into_iter().next().unwrap();
    assert_eq!(introspect(&app, &c, &next).await["active"], true);
    assert_eq!(introspect(&app, &c, &rt).await["active"], false);
}

async fn code_replay_revokes_issued_tokens(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let code = code_for(&app, &owner, &c, "openid offline_access").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let first = token(&app, Some(basic(&c)), &form).await;
    assert_eq!(first.status, StatusCode::OK);
    let replay = token(&app, Some(basic(&c)), &form).await;
    assert_eq!(replay.body["error"], "invalid_grant");
    let at = first.body["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &c, at).await["active"], false);
    assert_eq!(
        introspect(&app, &c, first.body["refresh_token"].as_str().unwrap()).await["active"],
        false
    );
    let r = token(
        &app,
        Some(basic(&c)),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first.body["refresh_token"].as_str().unwrap(),
            ),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=oauth.code.replayed", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(audit.body["events"].as_array().unwrap().len(), 1);
}

async fn introspection_revocation_and_userinfo(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let other = confidential(&app, &owner).await;
    let t = tokens_for(&app, &owner, &c).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &other, at).await,
        json!({"active": false}),
        "only the owning client learns anything"
    );
    assert_eq!(
        introspect(&app, &c, rt).await["token_type"],
        "refresh_token"
    );
    assert_eq!(
        introspect(&app, &c, "garbage").await,
        json!({"active": false})
    );
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("token", at)])),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "no client authentication"
    );
    let r = TestApp::send(
        app.req(Method::POST, "/oauth2/introspect")
            .header("authorization", basic(&c))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(""),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "token missing"
    );
    // Revoking the access token ends it at introspection and userinfo.
    let revoke = |tok: &str| {
        app.req(Method::POST, "/oauth2/revoke")
            .header("authorization", basic(&c))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("token", tok)]))
    };
    assert_eq!(TestApp::send(revoke(at)).await.status, StatusCode::OK);
    assert_eq!(introspect(&app, &c, at).await["active"], false);
    let r = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", at)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    // Revoking the refresh token ends its family.
    assert_eq!(TestApp::send(revoke(rt)).await.status, StatusCode::OK);
    let r = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(
        TestApp::send(revoke("unknown-token")).await.status,
        StatusCode::OK
    );
    TestApp::send(app.req(Method::GET, "/oauth2/userinfo")).await;
    let r = TestApp::send(app.req(Method::GET, "/oauth2/userinfo")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn client_credentials_grant(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let r = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "client_credentials"), ("scope", "email")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let claims = jwt_claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], json!(c.id));
    assert_eq!(claims["project_id"], json!(owner.project_id));
    assert!(r.body.get("refresh_token").is_none() && r.body.get("id_token").is_none());
    // The client is its own subject: userinfo has no user to describe (RFC 6750 §3.1).
    let at = r.body["access_token"].as_str().unwrap();
    let r = TestApp::send(app.with_bearer(Method::GET, "/oauth2/userinfo", at)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );
    let post = token(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", c.secret.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        post.body["error"], "invalid_client",
        "registered for basic, not post"
    );
    let pc = public(&app, &owner).await;
    let r = token(
        &app,
        None,
        &[("grant_type", "client_credentials"), ("client_id", &pc.id)],
    )
    .await;
    assert_eq!(r.body["error"], "unauthorized_client");
}

async fn rp_initiated_logout(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let t = tokens_for(&app, &owner, &c).await;
    let id_token = t["id_token"].as_str().unwrap();
    let r = TestApp::send(app.req(
        Method::GET,
        &format!(
            "/oauth2/logout?{}",
            query(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://evil.example.com/")
            ])
        ),
    ))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("location").is_none());
    assert_eq!(
        app.get("/v1/me", &owner.token).await.status,
        StatusCode::OK,
        "a refused logout ends nothing"
    );
    let r = TestApp::send(
        app.req(
            Method::GET,
            &format!(
                "/oauth2/logout?{}",
                query(&[
                    ("id_token_hint", id_token),
                    ("post_logout_redirect_uri", LOGOUT_REDIRECT),
                    ("state", "bye-1")
                ])
            ),
        )
        .header("cookie", format!("portcullis_session={}", owner.token)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        format!("{LOGOUT_REDIRECT}?state=bye-1")
    );
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    app.get("/v1/me", &owner.token)
        .await
        .assert_error(401, "unauthenticated");
    let r = TestApp::send(app.req(Method::GET, "/oauth2/logout")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.as_str().unwrap().contains("signed out"));
}

async fn reuse_after_grace(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    let t = tokens_for(&app, &owner, &c).await;
    let rt0 = t["refresh_token"].as_str().unwrap().to_owned();
    let r1 = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt0)],
    )
    .await;
    let rt1 = r1.body["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let stolen = TestApp::send(
        app.req(Method::POST, "/oauth2/token")
            .header("authorization", basic(&c))
            .header("x-correlation-id", "reuse-check-1")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt0),
            ])),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
    assert_eq!(stolen.body["error"], "invalid_grant");
    assert_eq!(stolen.body["code"], "refresh_token_reused");
    assert_eq!(stolen.body["correlation_id"], "reuse-check-1");
    // The whole family is gone, the legitimate successor included.
    let r = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(
        introspect(&app, &c, r1.body["access_token"].as_str().unwrap()).await["active"],
        false
    );
    let audit = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?correlation_id=reuse-check-1",
                owner.org_id
            ),
            &owner.token,
        )
        .await;
    let e = &audit.body["events"][0];
    assert_eq!(e["action"], "oauth.refresh.reuse_detected");
    assert_eq!(e["outcome"], "failure");
    assert_eq!(e["actor_id"], json!(owner.user_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_after_grace_revokes_the_family_sqlite() {
    reuse_after_grace(
        TestApp::start_with(common::Backend::Sqlite, |c| c.oidc.refresh_grace_secs = 1).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_after_grace_revokes_the_family_postgres() {
    reuse_after_grace(
        TestApp::start_with(common::Backend::Postgres, |c| c.oidc.refresh_grace_secs = 1).await,
    )
    .await;
}

async fn disabled_project_gets_no_tokens(app: TestApp) {
    let owner = app.user("owner").await;
    let c = confidential(&app, &owner).await;
    // Warm the client cache first: disabling must take effect anyway.
    assert_eq!(
        token(
            &app,
            Some(basic(&c)),
            &[("grant_type", "client_credentials")]
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = token(
        &app,
        Some(basic(&c)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], "project_disabled");
    let r = authorize(
        &app,
        Some(&owner.token),
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("location").is_none());
    assert!(r.body.as_str().unwrap().contains("project_disabled"));
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"status": "active"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        token(
            &app,
            Some(basic(&c)),
            &[("grant_type", "client_credentials")]
        )
        .await
        .status,
        StatusCode::OK
    );
}
