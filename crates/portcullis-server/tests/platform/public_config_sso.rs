#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The public config lists the project's org's own SSO providers (beside the server-wide
//! ones) with what a client needs to start a sign-in, and never another org's.

use crate::common;

use std::time::Duration;

use common::upstream::{CLIENT_ID, CLIENT_SECRET, Upstream, free_port};
use common::{Backend, Reply, Signed, TestApp};
use portcullis_server::config::sso::{ConfigSecret, GenericOidcSso};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(backend: public_config_lists_the_orgs_own_providers);

async fn publishable_key(app: &TestApp, who: &Signed) -> String {
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project/keys", &who.token)
            .header("x-project-id", &who.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["publishable_key"].as_str().unwrap().to_owned()
}

async fn config(app: &TestApp, pk: &str) -> Reply {
    let r = TestApp::send(app.req(
        Method::GET,
        &format!("/v1/public/config?publishable_key={pk}"),
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["sign_in_methods"]["sso"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn etag(r: &Reply) -> String {
    r.headers["etag"].to_str().unwrap().to_owned()
}

/// Registers an SSO provider at `issuer` for `who`'s org; its sign-in id.
async fn register(app: &TestApp, who: &Signed, name: &str, issuer: &str) -> (String, String) {
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/sso-providers", who.org_id),
            &who.token,
        )
        .json(&json!({"name": name, "issuer": issuer,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["sign_in_id"].as_str().unwrap().to_owned(),
    )
}

/// The config of `pk` once it lists `id` (an org provider's discovery loads first).
async fn config_listing(app: &TestApp, pk: &str, id: &str) -> Reply {
    for _ in 0..100 {
        let r = config(app, pk).await;
        if ids(&r).iter().any(|i| i == id) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never appeared in the public config");
}

async fn public_config_lists_the_orgs_own_providers(backend: Backend) {
    let port = free_port();
    let up = Upstream::start(port, &[]).await;
    let issuer = up.issuer.clone();
    let app = TestApp::start_with(backend, |cfg| {
        cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
        // The upstream runs on loopback.
        cfg.federation.sso_allow_private_networks = true;
        cfg.sso.oidc.insert(
            "upstream".into(),
            GenericOidcSso {
                issuer: Some(issuer.clone()),
                client_id: Some(CLIENT_ID.into()),
                client_secret: Some(ConfigSecret(CLIENT_SECRET.into())),
                name: Some("Upstream IdP".into()),
                ..GenericOidcSso::default()
            },
        );
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let alice_pk = publishable_key(&app, &alice).await;
    let bob_pk = publishable_key(&app, &bob).await;

    // The server-wide provider, with where to start a sign-in for this project.
    let before = config_listing(&app, &alice_pk, "upstream").await;
    assert_eq!(
        before.body["sign_in_methods"]["sso"],
        json!([{
            "id": "upstream",
            "name": "Upstream IdP",
            "scope": "server",
            "start_url": format!("{}/v1/auth/sso/upstream/start?project={}", app.base, alice.project_id),
        }])
    );

    // Each org registers its own provider; one more of Alice's cannot load its discovery.
    let (alice_row, alice_idp) = register(&app, &alice, "Alice IdP", &issuer).await;
    let (_, bob_idp) = register(&app, &bob, "Bob IdP", &issuer).await;
    let (_, dead) = register(&app, &alice, "Dead IdP", "http://127.0.0.1:9/").await;

    let r = config_listing(&app, &alice_pk, &alice_idp).await;
    let start_url = format!(
        "{}/v1/auth/sso/{alice_idp}/start?project={}",
        app.base, alice.project_id
    );
    assert_eq!(
        r.body["sign_in_methods"]["sso"],
        json!([
            {"id": "upstream", "name": "Upstream IdP", "scope": "server",
             "start_url": format!("{}/v1/auth/sso/upstream/start?project={}", app.base, alice.project_id)},
            {"id": alice_idp, "name": "Alice IdP", "scope": "org", "start_url": start_url},
        ])
    );
    // Never another org's provider, never an unusable one, nothing secret or internal.
    let text = r.body.to_string();
    for absent in [
        bob_idp.as_str(),
        "Bob IdP",
        dead.as_str(),
        CLIENT_SECRET,
        CLIENT_ID,
        issuer.as_str(),
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    // The ETag follows the org's providers.
    let listed = etag(&r);
    assert_ne!(listed, etag(&before));
    let r = TestApp::send(
        app.req(
            Method::GET,
            &format!("/v1/public/config?publishable_key={alice_pk}"),
        )
        .header("if-none-match", etag(&before)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // The start URL starts a sign-in at the upstream.
    let path = start_url.strip_prefix(&app.base).unwrap();
    let r = TestApp::send(app.req(Method::GET, path)).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap();
    assert!(location.starts_with(&issuer), "{location}");

    // Bob's project lists Bob's provider, not Alice's.
    let r = config_listing(&app, &bob_pk, &bob_idp).await;
    let bob_ids = ids(&r);
    assert!(!bob_ids.contains(&alice_idp), "{bob_ids:?}");
    assert_eq!(bob_ids, ["upstream".to_owned(), bob_idp.clone()]);

    // Renamed: the new name and a new ETag.
    let r = TestApp::send(
        app.with_bearer(
            Method::PATCH,
            &format!("/v1/orgs/{}/sso-providers/{alice_row}", alice.org_id),
            &alice.token,
        )
        .json(&json!({"name": "Alice SSO"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = config(&app, &alice_pk).await;
    let names: Vec<Value> = r.body["sign_in_methods"]["sso"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, [json!("Upstream IdP"), json!("Alice SSO")]);
    let renamed = etag(&r);
    assert_ne!(renamed, listed);

    // Deleted: gone, and the ETag of the config without it.
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/sso-providers/{alice_row}", alice.org_id),
        &alice.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = config(&app, &alice_pk).await;
    assert_eq!(ids(&r), ["upstream"]);
    assert_ne!(etag(&r), renamed);
    assert_eq!(etag(&r), etag(&before));
}
