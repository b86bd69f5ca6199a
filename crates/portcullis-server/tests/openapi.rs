//! `docs/openapi.json` is the published copy of the generated document; CI fails when they
//! drift. Regenerate with `UPDATE_OPENAPI=1 cargo test -p portcullis-server --test openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn openapi_document_is_current() {
    let generated = format!("{}\n", portcullis_server::openapi::json());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p portcullis-server --test openapi`"
    );
}

#[test]
fn every_contract_route_of_the_foundation_is_documented() {
    let doc: serde_json::Value = serde_json::from_str(portcullis_server::openapi::json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("post", "/v1/auth/signup"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/logout"),
        ("get", "/v1/me"),
        ("get", "/v1/sessions"),
        ("delete", "/v1/sessions/{id}"),
        ("post", "/v1/orgs"),
        ("get", "/v1/orgs"),
        ("get", "/v1/orgs/{org_id}"),
        ("get", "/v1/orgs/{org_id}/members"),
        ("post", "/v1/orgs/{org_id}/members"),
        ("patch", "/v1/orgs/{org_id}/members/{user_id}"),
        ("delete", "/v1/orgs/{org_id}/members/{user_id}"),
        ("get", "/v1/orgs/{org_id}/sessions"),
        ("delete", "/v1/orgs/{org_id}/sessions/{id}"),
        ("get", "/v1/orgs/{org_id}/projects"),
        ("post", "/v1/orgs/{org_id}/projects"),
        ("get", "/v1/orgs/{org_id}/audit"),
        ("get", "/v1/project"),
        ("patch", "/v1/project"),
        ("get", "/v1/project/clients"),
        ("post", "/v1/project/clients"),
        ("get", "/v1/project/clients/{client_id}"),
        ("patch", "/v1/project/clients/{client_id}"),
        ("delete", "/v1/project/clients/{client_id}"),
        ("post", "/v1/project/clients/{client_id}/rotate-secret"),
        ("get", "/.well-known/openid-configuration"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/v1/admin/signing-keys"),
        ("post", "/v1/admin/signing-keys/rotate"),
        ("get", "/oauth2/authorize"),
        ("post", "/oauth2/login"),
        ("post", "/oauth2/consent"),
        ("post", "/oauth2/token"),
        ("get", "/oauth2/userinfo"),
        ("post", "/oauth2/introspect"),
        ("post", "/oauth2/revoke"),
        ("get", "/oauth2/logout"),
        ("get", "/v1/me/consents"),
        ("delete", "/v1/me/consents/{client_id}"),
    ];
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
