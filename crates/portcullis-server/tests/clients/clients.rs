#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! OAuth clients of a project (`/v1/project/clients`), through a real server, on SQLite and
//! on PostgreSQL.

use crate::common;

use common::{Reply, Signed, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    confidential_and_public_clients_are_created_with_defaults,
    invalid_clients_are_refused_naming_the_field,
    clients_are_read_patched_and_deleted,
    rotating_shows_a_new_secret_once,
    members_without_admin_role_only_read,
    other_tenants_and_other_projects_see_no_client,
    client_changes_are_audited_under_the_correlation_id,
    rotated_or_deleted_clients_stop_authenticating_at_once,
);

const CLIENTS: &str = "/v1/project/clients";

/// A bearer request in `project`, with an optional JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: &Signed,
    project: &str,
    body: Option<Value>,
) -> Reply {
    let mut rb = app
        .with_bearer(method, path, &who.token)
        .header("x-project-id", project);
    if let Some(body) = body {
        rb = rb.json(&body);
    }
    TestApp::send(rb).await
}

async fn create(app: &TestApp, who: &Signed, body: Value) -> Reply {
    call(app, Method::POST, CLIENTS, who, &who.project_id, Some(body)).await
}

fn web_app() -> Value {
    json!({
        "name": "Web app",
        "type": "confidential",
        "redirect_uris": ["https://app.example.com/callback"],
        "post_logout_redirect_uris": ["https://app.example.com/"],
    })
}

fn native_app() -> Value {
    json!({
        "name": "CLI",
        "type": "public",
        "redirect_uris": ["http://127.0.0.1/callback", "com.example.cli:/oauth"],
    })
}

fn id_of(r: &Reply) -> String {
    r.body["client_id"].as_str().unwrap().to_owned()
}

/// No reply after the one that issued it carries a secret or anything derived from one.
fn assert_no_secret(body: &Value, secret: &str) {
    let text = body.to_string();
    assert!(!text.contains(secret), "secret leaked: {text}");
    assert!(
        !text.contains("client_secret\""),
        "secret field present: {text}"
    );
    assert!(!text.contains("hash"), "digest present: {text}");
}

async fn confidential_and_public_clients_are_created_with_defaults(app: TestApp) {
    let u = app.user("owner").await;
    let r = create(&app, &u, web_app()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pcs_") && secret.len() == 47, "{secret}");
    let web = id_of(&r);
    assert!(web.starts_with("pcc_"), "{web}");
    assert_eq!(r.body["project_id"], json!(u.project_id));
    assert_eq!(r.body["name"], "Web app");
    assert_eq!(r.body["type"], "confidential");
    assert_eq!(
        r.body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(r.body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(r.body["access_token_ttl_secs"], 600);
    assert_eq!(r.body["signing_alg"], "EdDSA");
    assert_eq!(r.body["pkce_required"], false);
    assert_eq!(
        r.body["post_logout_redirect_uris"],
        json!(["https://app.example.com/"])
    );

    let r = create(&app, &u, native_app()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("client_secret").is_none(), "{}", r.body);
    assert_eq!(r.body["token_endpoint_auth_method"], "none");
    assert_eq!(r.body["pkce_required"], true);
    assert_eq!(
        r.body["redirect_uris"],
        json!(["http://127.0.0.1/callback", "com.example.cli:/oauth"])
    );
    let cli = id_of(&r);

    // Every other option, and a machine-to-machine client without redirect URIs.
    let r = create(
        &app,
        &u,
        json!({
            "name": "Backend job", "type": "confidential", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post", "access_token_ttl_secs": 3600,
            "signing_alg": "ES256",
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["redirect_uris"], json!([]));
    assert_eq!(r.body["grant_types"], json!(["client_credentials"]));
    assert_eq!(r.body["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(r.body["access_token_ttl_secs"], 3600);
    assert_eq!(r.body["signing_alg"], "ES256");
    assert!(r.body["client_secret"].as_str().unwrap() != secret);

    // The secret was shown once: never again, in the list or one by one.
    let list = call(&app, Method::GET, CLIENTS, &u, &u.project_id, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let ids: Vec<&str> = list.body["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(&ids[..2], [web.as_str(), cli.as_str()], "oldest first");
    assert_no_secret(&list.body, &secret);
    for id in [&web, &cli] {
        let r = call(
            &app,
            Method::GET,
            &format!("{CLIENTS}/{id}"),
            &u,
            &u.project_id,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["client_id"], json!(id));
        assert_no_secret(&r.body, &secret);
    }
}

async fn invalid_clients_are_refused_naming_the_field(app: TestApp) {
    let u = app.user("owner").await;
    let with = |patch: Value| {
        let mut body = web_app();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            with(json!({"redirect_uris": ["/callback"]})),
            "redirect_uris",
        ),
        (
            with(json!({"redirect_uris": ["http://app.example.com/cb"]})),
            "redirect_uris",
        ),
        (
            with(json!({"redirect_uris": ["https://*.example.com/cb"]})),
            "redirect_uris",
        ),
        (
            with(json!({"redirect_uris": ["http://127.0.0.1:*/cb"]})),
            "redirect_uris",
        ),
        (
            with(json!({"redirect_uris": ["https://app.example.com/cb#x"]})),
            "redirect_uris",
        ),
        (with(json!({"redirect_uris": []})), "redirect_uris"),
        (
            with(json!({"post_logout_redirect_uris": ["http://evil.example.com/"]})),
            "post_logout_redirect_uris",
        ),
        (
            with(
                json!({"type": "public", "grant_types": ["authorization_code", "client_credentials"]}),
            ),
            "grant_types",
        ),
        (
            with(json!({"type": "public", "token_endpoint_auth_method": "client_secret_basic"})),
            "token_endpoint_auth_method",
        ),
        (
            with(json!({"token_endpoint_auth_method": "none"})),
            "token_endpoint_auth_method",
        ),
        (
            with(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "token_endpoint_auth_method",
        ),
        (with(json!({"grant_types": ["implicit"]})), "grant_types"),
        (
            with(json!({"grant_types": ["refresh_token"]})),
            "grant_types",
        ),
        (
            with(json!({"access_token_ttl_secs": 299})),
            "access_token_ttl_secs",
        ),
        (
            with(json!({"access_token_ttl_secs": 3601})),
            "access_token_ttl_secs",
        ),
        (
            with(json!({"access_token_ttl_secs": -5})),
            "access_token_ttl_secs",
        ),
        (with(json!({"signing_alg": "HS256"})), "signing_alg"),
        (with(json!({"type": "trusted"})), "type"),
        (with(json!({"name": "  "})), "name"),
        (with(json!({"client_secret": "mine"})), "client_secret"),
        (json!({"name": "No type"}), "type"),
    ];
    for (body, field) in cases {
        let r = create(&app, &u, body.clone()).await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], field, "{body} → {}", r.body);
    }
    let r = TestApp::send(
        app.with_bearer(Method::POST, CLIENTS, &u.token)
            .header("x-project-id", &u.project_id)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    r.assert_error(400, "invalid_request");
    // Nothing was created by the refused requests.
    let list = call(&app, Method::GET, CLIENTS, &u, &u.project_id, None).await;
    assert_eq!(list.body["clients"], json!([]));
}

async fn clients_are_read_patched_and_deleted(app: TestApp) {
    let u = app.user("owner").await;
    let created = create(&app, &u, native_app()).await;
    let id = id_of(&created);
    let path = format!("{CLIENTS}/{id}");
    let patch = |body: Value| call(&app, Method::PATCH, &path, &u, &u.project_id, Some(body));

    let r = patch(json!({
        "name": "CLI v2",
        "redirect_uris": ["http://localhost/callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1/bye"],
        "access_token_ttl_secs": 900,
        "signing_alg": "RS256",
        "type": "public",
    }))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "CLI v2");
    assert_eq!(
        r.body["redirect_uris"],
        json!(["http://localhost/callback"])
    );
    assert_eq!(
        r.body["post_logout_redirect_uris"],
        json!(["http://127.0.0.1/bye"])
    );
    assert_eq!(r.body["access_token_ttl_secs"], 900);
    assert_eq!(r.body["signing_alg"], "RS256");
    assert_eq!(r.body["grant_types"], created.body["grant_types"]);
    assert_eq!(r.body["created_at"], created.body["created_at"]);
    let got = call(&app, Method::GET, &path, &u, &u.project_id, None).await;
    assert_eq!(got.body, r.body);

    // Refused patches name the field and change nothing.
    for (body, field) in [
        (
            json!({"grant_types": ["authorization_code", "client_credentials"]}),
            "grant_types",
        ),
        (
            json!({"token_endpoint_auth_method": "client_secret_post"}),
            "token_endpoint_auth_method",
        ),
        (json!({"redirect_uris": []}), "redirect_uris"),
        (
            json!({"redirect_uris": ["http://example.com/cb"]}),
            "redirect_uris",
        ),
        (
            json!({"access_token_ttl_secs": 100000}),
            "access_token_ttl_secs",
        ),
        (json!({"type": "confidential"}), "type"),
        (json!({"secret": "x"}), "secret"),
    ] {
        let r = patch(body.clone()).await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], field, "{body} → {}", r.body);
    }
    let unchanged = call(&app, Method::GET, &path, &u, &u.project_id, None).await;
    assert_eq!(unchanged.body, got.body);

    let r = call(&app, Method::DELETE, &path, &u, &u.project_id, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Deleted is gone for every route.
    call(&app, Method::GET, &path, &u, &u.project_id, None)
        .await
        .assert_error(404, "not_found");
    patch(json!({"name": "again"}))
        .await
        .assert_error(404, "not_found");
    call(&app, Method::DELETE, &path, &u, &u.project_id, None)
        .await
        .assert_error(404, "not_found");
    let list = call(&app, Method::GET, CLIENTS, &u, &u.project_id, None).await;
    assert_eq!(list.body["clients"], json!([]));
    // An id that cannot be a client id is simply not found.
    call(
        &app,
        Method::GET,
        &format!("{CLIENTS}/%20"),
        &u,
        &u.project_id,
        None,
    )
    .await
    .assert_error(404, "not_found");
}

async fn rotating_shows_a_new_secret_once(app: TestApp) {
    let u = app.user("owner").await;
    let created = create(&app, &u, web_app()).await;
    let old = created.body["client_secret"].as_str().unwrap().to_owned();
    let id = id_of(&created);
    let rotate = format!("{CLIENTS}/{id}/rotate-secret");

    let r = call(&app, Method::POST, &rotate, &u, &u.project_id, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let new = r.body["client_secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("pcs_") && new != old);
    assert_eq!(r.body["client_id"], json!(id));
    let got = call(
        &app,
        Method::GET,
        &format!("{CLIENTS}/{id}"),
        &u,
        &u.project_id,
        None,
    )
    .await;
    assert_no_secret(&got.body, &new);
    // That the old secret stops verifying is checked in the store suite, through the
    // lookup the token endpoint uses.

    let public = id_of(&create(&app, &u, native_app()).await);
    let r = call(
        &app,
        Method::POST,
        &format!("{CLIENTS}/{public}/rotate-secret"),
        &u,
        &u.project_id,
        None,
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["details"]["field"], "type");
    call(
        &app,
        Method::POST,
        &format!("{CLIENTS}/pcc_unknown/rotate-secret"),
        &u,
        &u.project_id,
        None,
    )
    .await
    .assert_error(404, "not_found");
}

async fn members_without_admin_role_only_read(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    let id = id_of(&create(&app, &owner, web_app()).await);
    let one = format!("{CLIENTS}/{id}");
    let p = &owner.project_id;

    // A member of the project reads the clients (without secrets)…
    let list = call(&app, Method::GET, CLIENTS, &member, p, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["clients"].as_array().unwrap().len(), 1);
    assert_eq!(
        call(&app, Method::GET, &one, &member, p, None).await.status,
        StatusCode::OK
    );
    // …but changes nothing.
    for (method, path, body) in [
        (Method::POST, CLIENTS.to_owned(), Some(web_app())),
        (Method::PATCH, one.clone(), Some(json!({"name": "mine"}))),
        (Method::DELETE, one.clone(), None),
        (Method::POST, format!("{one}/rotate-secret"), None),
    ] {
        let r = call(&app, method.clone(), &path, &member, p, body).await;
        r.assert_error(403, "forbidden");
        assert_eq!(
            r.body["details"]["required_role"], "admin",
            "{method} {path}"
        );
    }
    let got = call(&app, Method::GET, &one, &owner, p, None).await;
    assert_eq!(got.body["name"], "Web app");
}

async fn other_tenants_and_other_projects_see_no_client(app: TestApp) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = id_of(&create(&app, &alice, web_app()).await);
    let one = format!("{CLIENTS}/{id}");

    // Another tenant naming alice's project: the project itself is invisible.
    for (method, path, body) in [
        (Method::GET, CLIENTS.to_owned(), None),
        (Method::POST, CLIENTS.to_owned(), Some(web_app())),
        (Method::GET, one.clone(), None),
        (Method::PATCH, one.clone(), Some(json!({"name": "pwned"}))),
        (Method::DELETE, one.clone(), None),
        (Method::POST, format!("{one}/rotate-secret"), None),
    ] {
        call(&app, method, &path, &bob, &alice.project_id, body)
            .await
            .assert_error(404, "not_found");
    }
    // Another tenant naming their own project and alice's client id.
    for (method, path, body) in [
        (Method::GET, one.clone(), None),
        (Method::PATCH, one.clone(), Some(json!({"name": "pwned"}))),
        (Method::DELETE, one.clone(), None),
        (Method::POST, format!("{one}/rotate-secret"), None),
    ] {
        call(&app, method, &path, &bob, &bob.project_id, body)
            .await
            .assert_error(404, "not_found");
    }
    // Alice's other project does not hold the client either.
    let p = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", alice.org_id),
            &alice.token,
        )
        .json(&json!({"name": "Second"})),
    )
    .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let second = p.body["id"].as_str().unwrap();
    call(&app, Method::GET, &one, &alice, second, None)
        .await
        .assert_error(404, "not_found");
    call(&app, Method::DELETE, &one, &alice, second, None)
        .await
        .assert_error(404, "not_found");
    let list = call(&app, Method::GET, CLIENTS, &alice, second, None).await;
    assert_eq!(list.body["clients"], json!([]));
    // Still there, untouched, in its own project.
    let got = call(&app, Method::GET, &one, &alice, &alice.project_id, None).await;
    assert_eq!(got.body["name"], "Web app");

    // The project context is required, and so are credentials.
    TestApp::send(app.with_bearer(Method::GET, CLIENTS, &alice.token))
        .await
        .assert_error(400, "invalid_request");
    TestApp::send(
        app.req(Method::GET, CLIENTS)
            .header("x-project-id", &alice.project_id),
    )
    .await
    .assert_error(401, "unauthenticated");
}

async fn client_changes_are_audited_under_the_correlation_id(app: TestApp) {
    let u = app.user("owner").await;
    let step = |method: Method, path: String, body: Option<Value>, correlation: &'static str| {
        let mut rb = app
            .with_bearer(method, &path, &u.token)
            .header("x-project-id", &u.project_id)
            .header("x-correlation-id", correlation);
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        TestApp::send(rb)
    };
    let created = step(
        Method::POST,
        CLIENTS.into(),
        Some(web_app()),
        "clients-create-1",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["client_secret"].as_str().unwrap().to_owned();
    let id = id_of(&created);
    let one = format!("{CLIENTS}/{id}");
    let r = step(
        Method::PATCH,
        one.clone(),
        Some(json!({"name": "Renamed", "access_token_ttl_secs": 600, "signing_alg": "ES256"})),
        "clients-patch-1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = step(
        Method::POST,
        format!("{one}/rotate-secret"),
        None,
        "clients-rotate-1",
    )
    .await;
    let rotated = r.body["client_secret"].as_str().unwrap().to_owned();
    let r = step(Method::DELETE, one.clone(), None, "clients-delete-1").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let target = format!("client:{id}");
    for (correlation, action) in [
        ("clients-create-1", "client.created"),
        ("clients-patch-1", "client.updated"),
        ("clients-rotate-1", "client.secret_rotated"),
        ("clients-delete-1", "client.deleted"),
    ] {
        let audit = app
            .get(
                &format!("/v1/orgs/{}/audit?correlation_id={correlation}", u.org_id),
                &u.token,
            )
            .await;
        assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
        let events = audit.body["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{correlation}: {}", audit.body);
        let e = &events[0];
        assert_eq!(e["action"], action);
        assert_eq!(e["target"], json!(target));
        assert_eq!(e["actor_id"], json!(u.user_id));
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["details"]["project_id"], json!(u.project_id));
        let text = e.to_string();
        assert!(
            !text.contains(&secret) && !text.contains(&rotated),
            "{text}"
        );
        if action == "client.updated" {
            // Only what changed: the lifetime was already 600.
            assert_eq!(e["details"]["changed"], json!(["name", "signing_alg"]));
        }
    }
}

/// The OAuth endpoints cache clients by id: a rotation or deletion must still take effect on
/// the very next request. Introspection is the cheapest call that authenticates a client.
async fn rotated_or_deleted_clients_stop_authenticating_at_once(app: TestApp) {
    let u = app.user("owner").await;
    let created = create(&app, &u, web_app()).await;
    let id = id_of(&created);
    let old = created.body["client_secret"].as_str().unwrap().to_owned();
    let introspect = |secret: String| {
        TestApp::send(
            app.req(Method::POST, "/oauth2/introspect")
                .basic_auth(&id, Some(secret))
                .form(&[("token", "not-a-token")]),
        )
    };
    for _ in 0..2 {
        let r = introspect(old.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], false);
    }

    let one = format!("{CLIENTS}/{id}");
    let r = call(
        &app,
        Method::POST,
        &format!("{one}/rotate-secret"),
        &u,
        &u.project_id,
        None,
    )
    .await;
    let new = r.body["client_secret"].as_str().unwrap().to_owned();
    let r = introspect(old.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_client");
    assert_eq!(introspect(new.clone()).await.status, StatusCode::OK);

    let r = call(&app, Method::DELETE, &one, &u, &u.project_id, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = introspect(new).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_client");
}
