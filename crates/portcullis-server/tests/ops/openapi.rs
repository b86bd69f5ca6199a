//! `docs/openapi.json` is the published copy of the generated document; CI fails when they
//! drift. Regenerate with `UPDATE_OPENAPI=1 cargo test -p portcullis-server --test openapi`.
//! The document must also pass an independent validator (`openapi-spec-validator` from PyPI),
//! so what utoipa emits is checked against the OpenAPI 3.1 schema, not only against itself.
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
        ("post", "/v1/auth/password-setup"),
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
        ("get", "/v1/orgs/{org_id}/invitations"),
        ("post", "/v1/orgs/{org_id}/invitations"),
        ("delete", "/v1/orgs/{org_id}/invitations/{id}"),
        ("post", "/v1/invitations/accept"),
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

/// Runs `python3 -m openapi_spec_validator` on the generated document. In CI (`CI=true`) a
/// missing validator fails the test; locally it skips with a notice, since `.ci/run` installs it.
#[test]
fn openapi_document_passes_an_independent_validator() {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let probe = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--version"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match &probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            !in_ci,
            "openapi-spec-validator is not installed (CI=true): {why}\n\
             install it with `python3 -m pip install openapi-spec-validator`"
        );
        // Straight to stderr: the test harness swallows `eprintln!` of passing tests.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"\n!!! SKIPPED: openapi-spec-validator is not installed, so the OpenAPI document was \
              NOT validated.\n!!! Install it with `python3 -m pip install openapi-spec-validator`.\n",
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("portcullis-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, portcullis_server::openapi::json()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "openapi-spec-validator rejects the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
