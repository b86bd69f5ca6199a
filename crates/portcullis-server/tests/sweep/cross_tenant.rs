#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The cross-tenant sweep: every route of `/openapi.json` that names a resource (an id in its
//! path, or a project in `X-Project-ID`) is called by an ordinary signed-up user with another
//! org's ids, and must never answer 2xx. The route list is read from the running server, so a
//! route added later is swept without touching this file. Afterwards the victim's account,
//! sessions and resources must be as they were.

use crate::common;

use common::{Reply, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(no_route_lets_a_tenant_reach_another_tenants_resources);

/// What the victim owns, by the name of the path parameter that addresses it.
struct Victim {
    token: String,
    user_id: String,
    org_id: String,
    project_id: String,
    /// A second, idle session of the victim (the one an attacker would revoke).
    other_session_id: String,
    client_id: String,
    sso_provider_id: Option<String>,
    invitation_id: Option<String>,
    domain: Option<String>,
    webhook_id: Option<String>,
    delivery_id: Option<String>,
}

impl Victim {
    async fn set_up(app: &TestApp, spec: &Value) -> Victim {
        let v = app.user("victim").await;
        let login = app.login(&v.email, "correct horse battery").await;
        assert_eq!(login.status.as_u16(), 200, "{}", login.body);
        let other_session_id = login.body["session"]["id"].as_str().unwrap().to_owned();
        let client = TestApp::send(
            app.with_bearer(Method::POST, "/v1/project/clients", &v.token)
                .header("x-project-id", &v.project_id)
                .json(&json!({
                    "name": "Victim app",
                    "type": "confidential",
                    "redirect_uris": ["https://victim.example.com/callback"],
                })),
        )
        .await;
        assert_eq!(client.status.as_u16(), 201, "{}", client.body);
        let org = &v.org_id;
        let sso = TestApp::send(
            app.with_bearer(
                Method::POST,
                &format!("/v1/orgs/{org}/sso-providers"),
                &v.token,
            )
            .json(&json!({
                "name": "Victim IdP",
                "issuer": "https://idp.victim.example.com",
                "client_id": "victim-client",
                "client_secret": "victim-secret",
            })),
        )
        .await;
        let documented = |path: &str| spec["paths"].get(path).is_some();
        let invitation = if documented("/v1/orgs/{org_id}/invitations") {
            let r = TestApp::send(
                app.with_bearer(
                    Method::POST,
                    &format!("/v1/orgs/{org}/invitations"),
                    &v.token,
                )
                .json(&json!({"email": "invitee@victim.example.com", "role": "member"})),
            )
            .await;
            r.body["id"].as_str().map(str::to_owned)
        } else {
            None
        };
        let domain = if documented("/v1/orgs/{org_id}/domains") {
            let r = TestApp::send(
                app.with_bearer(Method::POST, &format!("/v1/orgs/{org}/domains"), &v.token)
                    .json(&json!({"domain": "victim.example.com"})),
            )
            .await;
            r.body["domain"].as_str().map(str::to_owned)
        } else {
            None
        };
        let (webhook_id, delivery_id) = if documented("/v1/project/webhooks") {
            let hook = TestApp::send(
                app.with_bearer(Method::POST, "/v1/project/webhooks", &v.token)
                    .header("x-project-id", &v.project_id)
                    .json(&json!({"url": "http://127.0.0.1:9/victim", "events": ["*"]})),
            )
            .await;
            assert_eq!(hook.status.as_u16(), 201, "{}", hook.body);
            let id = hook.body["id"].as_str().unwrap().to_owned();
            let test = TestApp::send(
                app.with_bearer(
                    Method::POST,
                    &format!("/v1/project/webhooks/{id}/test"),
                    &v.token,
                )
                .header("x-project-id", &v.project_id),
            )
            .await;
            assert_eq!(test.status.as_u16(), 202, "{}", test.body);
            (Some(id), test.body["id"].as_str().map(str::to_owned))
        } else {
            (None, None)
        };
        Victim {
            webhook_id,
            delivery_id,
            token: v.token,
            user_id: v.user_id,
            org_id: v.org_id,
            project_id: v.project_id,
            other_session_id,
            client_id: client.body["client_id"].as_str().unwrap().to_owned(),
            sso_provider_id: sso.body["id"].as_str().map(str::to_owned),
            invitation_id: invitation,
            domain,
        }
    }

    /// The victim's value for a path parameter, chosen by its name and the segment before it.
    fn value_for(&self, name: &str, previous_segment: &str) -> String {
        let unknown = || uuid::Uuid::now_v7().to_string();
        match (name, previous_segment) {
            ("org_id", _) => self.org_id.clone(),
            ("user_id", _) => self.user_id.clone(),
            ("client_id", _) => self.client_id.clone(),
            ("domain", _) => self
                .domain
                .clone()
                .unwrap_or_else(|| "victim.example.com".into()),
            ("provider", _) => self
                .sso_provider_id
                .as_ref()
                .map_or_else(|| "upstream".into(), |id| format!("org_{id}")),
            ("id", "sessions") => self.other_session_id.clone(),
            ("id", "sso-providers") => self.sso_provider_id.clone().unwrap_or_else(unknown),
            ("id", "invitations") => self.invitation_id.clone().unwrap_or_else(unknown),
            ("id", "webhooks") => self.webhook_id.clone().unwrap_or_else(unknown),
            ("delivery_id", _) => self.delivery_id.clone().unwrap_or_else(unknown),
            _ => unknown(),
        }
    }
}

/// A plausible body for a mutation, so that authorization, not validation, has to refuse it.
fn body_for(method: &Method, path: &str) -> Value {
    let last = path.rsplit('/').next().unwrap_or_default();
    match (method.as_str(), last) {
        ("PATCH", "{user_id}") => json!({"role": "member"}),
        ("POST", "members") => {
            json!({"email": "new-member@attacker.example.com", "role": "member"})
        }
        ("POST", "invitations") => {
            json!({"email": "someone@attacker.example.com", "role": "member"})
        }
        ("POST", "projects") => json!({"name": "Planted project"}),
        ("POST", "domains") => json!({"domain": "planted.example.com"}),
        ("POST", "clients") => json!({
            "name": "Planted app",
            "type": "confidential",
            "redirect_uris": ["https://attacker.example.com/callback"],
        }),
        ("PATCH", "project") => json!({"name": "Renamed by attacker"}),
        ("PATCH", "{client_id}") => json!({"name": "Renamed by attacker"}),
        ("PATCH", "{id}") if path.contains("/webhooks/") => json!({"enabled": false}),
        ("PATCH", "{id}") => json!({"name": "Renamed by attacker"}),
        ("POST", "webhooks") => json!({"url": "http://127.0.0.1:9/attacker", "events": ["*"]}),
        ("POST", "recover") => json!({"since": "2000-01-01T00:00:00Z"}),
        ("POST", "sso-providers") => json!({
            "name": "Planted IdP",
            "issuer": "https://idp.attacker.example.com",
            "client_id": "attacker",
            "client_secret": "attacker-secret",
        }),
        _ => json!({}),
    }
}

fn fill(path: &str, victim: &Victim) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            out.push(victim.value_for(name, previous));
        } else {
            out.push(segment.to_owned());
        }
        previous = segment;
    }
    out.join("/")
}

async fn no_route_lets_a_tenant_reach_another_tenants_resources(app: TestApp) {
    let spec = TestApp::send(app.req(Method::GET, "/openapi.json"))
        .await
        .body;
    let victim = Victim::set_up(&app, &spec).await;
    let attacker = app.user("attacker").await;

    let mut swept = 0;
    let mut refused = Vec::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for (method, op) in operations.as_object().expect("operations") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let takes_project = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| {
                    p["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("x-project-id"))
                })
            });
            if !path.contains('{') && !takes_project {
                continue;
            }
            let url = fill(path, &victim);
            // The victim's project in the header, and (for routes with ids) the attacker's
            // own project with the victim's ids in the path.
            let mut headers = vec![Some(victim.project_id.clone())];
            if takes_project && path.contains('{') {
                headers.push(Some(attacker.project_id.clone()));
            }
            if !takes_project {
                headers = vec![None];
            }
            for project in headers {
                let mut rb = app
                    .with_bearer(method.clone(), &url, &attacker.token)
                    .header("origin", "https://attacker.example.com");
                if let Some(p) = &project {
                    rb = rb.header("x-project-id", p);
                }
                if matches!(method, Method::POST | Method::PATCH | Method::PUT) {
                    rb = rb.json(&body_for(&method, path));
                }
                let r: Reply = TestApp::send(rb).await;
                swept += 1;
                assert!(
                    !r.status.is_success(),
                    "{method} {url} (X-Project-ID {project:?}) answered {} to another tenant: {}",
                    r.status,
                    r.body
                );
                refused.push(r.status.as_u16());
            }
        }
    }
    assert!(
        swept >= 25,
        "only {swept} calls swept: the route list shrank?"
    );
    // Each refusal is an authorization answer, not a crash.
    assert!(
        refused.iter().all(|s| *s < 500),
        "server errors in the sweep: {refused:?}"
    );

    // The victim is untouched: signed in, both sessions alive, the app and the org intact.
    let me = app.get("/v1/me", &victim.token).await;
    assert_eq!(me.status.as_u16(), 200, "{}", me.body);
    let sessions = app.get("/v1/sessions", &victim.token).await;
    assert_eq!(
        sessions.body["sessions"].as_array().map(Vec::len),
        Some(2),
        "{}",
        sessions.body
    );
    let client = TestApp::send(
        app.with_bearer(
            Method::GET,
            &format!("/v1/project/clients/{}", victim.client_id),
            &victim.token,
        )
        .header("x-project-id", &victim.project_id),
    )
    .await;
    assert_eq!(client.status.as_u16(), 200, "{}", client.body);
    assert_eq!(client.body["name"], json!("Victim app"));
    if let Some(id) = &victim.webhook_id {
        let hook = TestApp::send(
            app.with_bearer(
                Method::GET,
                &format!("/v1/project/webhooks/{id}"),
                &victim.token,
            )
            .header("x-project-id", &victim.project_id),
        )
        .await;
        assert_eq!(hook.status.as_u16(), 200, "{}", hook.body);
        assert_eq!(hook.body["enabled"], json!(true), "{}", hook.body);
        assert_eq!(hook.body["previous_secret_expires_at"], Value::Null);
    }
    let members = app
        .get(
            &format!("/v1/orgs/{}/members", victim.org_id),
            &victim.token,
        )
        .await;
    assert_eq!(
        members.body["members"].as_array().map(Vec::len),
        Some(1),
        "{}",
        members.body
    );
    let project = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &victim.token)
            .header("x-project-id", &victim.project_id),
    )
    .await;
    assert_eq!(project.body["name"], json!("Default project"));
}
