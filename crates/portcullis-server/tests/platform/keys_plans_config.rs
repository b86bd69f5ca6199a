#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The developer platform through HTTP on SQLite and PostgreSQL: project keys and their
//! rotation grace, secret-key authentication, public config, backend health, disabled
//! projects, subscriptions and the plan limits (402).

use crate::common;

use common::{Reply, Signed, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// The outbox is read directly, so no webhook worker may fan it out meanwhile.
both_backends!(configured no_worker:
    keys_rotate_with_grace => |_c: &mut portcullis_server::Config| {},
    subscription_is_read_by_members_and_set_by_platform_admins => |_c: &mut portcullis_server::Config| {},
);

fn no_worker(c: &mut portcullis_server::Config) {
    c.webhooks.worker = false;
}

both_backends!(
    working_keys_are_capped_per_project,
    secret_key_acts_for_its_project_only,
    secret_key_manages_its_orgs_members_and_sessions_only,
    key_made_changes_name_the_key_as_their_actor,
    mistyped_keys_are_refused_before_the_database,
    disabled_project_refuses_its_keys,
    public_config_by_publishable_key,
    project_limit_answers_402_with_details,
    seat_limit_counts_members_and_pending_invitations,
    inactive_subscription_refuses_changes_not_reads,
    concurrent_adds_at_the_limit_never_pass_it,
);

async fn make_platform_admin(app: &TestApp, who: &Signed) {
    app.state
        .store
        .accounts()
        .set_platform_admin(
            portcullis_core::UserId::parse(&who.user_id).unwrap(),
            true,
            &portcullis_core::AuditContext::cli(),
        )
        .await
        .unwrap();
}

async fn keys(app: &TestApp, owner: &Signed) -> Reply {
    TestApp::send(
        app.with_bearer(Method::GET, "/v1/project/keys", &owner.token)
            .header("x-project-id", &owner.project_id),
    )
    .await
}

async fn rotate(app: &TestApp, owner: &Signed, grace: u64) -> Reply {
    TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/keys/rotate", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"grace_seconds": grace})),
    )
    .await
}

async fn issue_key(app: &TestApp, owner: &Signed) -> String {
    let r = rotate(app, owner, 0).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["secret_key"].as_str().unwrap().to_owned()
}

async fn health(app: &TestApp, key: &str) -> Reply {
    TestApp::send(app.with_bearer(Method::GET, "/v1/backend/health", key)).await
}

async fn keys_rotate_with_grace(app: TestApp) {
    let owner = app.user("keys").await;
    let r = keys(&app, &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pk = r.body["publishable_key"].as_str().unwrap();
    assert!(pk.starts_with("pk_live_"), "{pk}");
    assert_eq!(r.body["mode"], "live");
    assert_eq!(
        r.body["secret_keys"],
        json!([]),
        "existing projects get keys on rotation"
    );

    // The first key supersedes nothing.
    let first = rotate(&app, &owner, 0).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let old = first.body["secret_key"].as_str().unwrap().to_owned();
    assert!(old.starts_with("sk_live_") && old.len() == 54, "{old}");
    assert_eq!(first.body["prefix"], json!(&old[..16]));
    assert_eq!(first.body["superseded"], json!([]));
    let h = health(&app, &old).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    assert_eq!(h.body["ok"], true);
    assert_eq!(h.body["project_id"], json!(owner.project_id));
    assert_eq!(h.body["key_prefix"], json!(&old[..16]));
    assert!(h.body.get("warning").is_none());

    // Rotate with a short grace: both keys work, the old one with a warning.
    let second = rotate(&app, &owner, 3).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let new = second.body["secret_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(second.body["superseded"][0]["prefix"], json!(&old[..16]));
    let expires = second.body["superseded"][0]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let h = health(&app, &old).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    assert_eq!(h.body["superseded_key_expires_at"], json!(expires));
    let warning = h.body["warning"].as_str().unwrap();
    assert!(
        warning.contains(&new[..16]) && warning.contains(&expires),
        "{warning}"
    );
    let h = health(&app, &new).await;
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.body.get("warning").is_none());
    assert_eq!(h.body["superseded_key_expires_at"], json!(expires));

    // The listing shows prefixes and the grace, never a key.
    let listed = keys(&app, &owner).await;
    let text = listed.body.to_string();
    assert!(!text.contains(&old) && !text.contains(&new));
    assert_eq!(listed.body["secret_keys"][0]["prefix"], json!(&new[..16]));
    assert_eq!(listed.body["secret_keys"][1]["expires_at"], json!(expires));

    // Audited with prefixes only.
    let audit = app
        .get(
            &format!("/v1/orgs/{}/audit?action=key.rotated", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let events = audit.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let text = audit.body.to_string();
    assert!(text.contains(&new[..16]) && !text.contains(&new) && !text.contains(&old));
    // Queued for webhooks in the same transaction, with prefixes only.
    let queued = app
        .state
        .store
        .outbox()
        .due(portcullis_core::now() + time::Duration::hours(1), 100)
        .await
        .unwrap();
    let rotated: Vec<_> = queued
        .iter()
        .filter(|q| q.event.event_type == "key.rotated")
        .collect();
    assert_eq!(rotated.len(), 2, "{queued:?}");
    let payloads = format!(
        "{:?}",
        rotated.iter().map(|q| &q.event.payload).collect::<Vec<_>>()
    );
    assert!(payloads.contains(&new[..16]) && !payloads.contains(&new) && !payloads.contains(&old));

    // The key use is recorded in a batch, not per request.
    assert!(app.state.key_usage.flush(&*app.state.store).await.unwrap() >= 1);
    let listed = keys(&app, &owner).await;
    assert!(
        listed.body["secret_keys"][0]["last_used_at"].is_string(),
        "{}",
        listed.body
    );

    // Past the grace the old key is refused like any unknown key.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    health(&app, &old)
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(health(&app, &new).await.status, StatusCode::OK);
    let listed = keys(&app, &owner).await;
    assert_eq!(listed.body["secret_keys"].as_array().unwrap().len(), 1);

    // Rotation needs a body with grace_seconds, within 30 days.
    TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/keys/rotate", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({})),
    )
    .await
    .assert_error(400, "invalid_request");
    rotate(&app, &owner, 31 * 24 * 3600)
        .await
        .assert_error(400, "invalid_request");
}

async fn working_keys_are_capped_per_project(app: TestApp) {
    let owner = app.user("capped").await;
    let limit = portcullis_core::plan::MAX_WORKING_SECRET_KEYS as usize;
    // Rotating in a loop with a grace period keeps every older key working: up to the cap.
    let mut issued = Vec::new();
    for _ in 0..limit {
        let r = rotate(&app, &owner, 3600).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        issued.push(r.body["secret_key"].as_str().unwrap().to_owned());
    }
    let refused = rotate(&app, &owner, 3600).await;
    refused.assert_error(409, "conflict");
    assert_eq!(refused.body["details"]["limit"], json!(limit));
    assert_eq!(refused.body["details"]["resource"], "secret_keys");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("grace_seconds = 0")
    );
    // Refused means nothing changed: the same keys work, none was shortened.
    let listed = keys(&app, &owner).await;
    assert_eq!(
        listed.body["secret_keys"].as_array().unwrap().len(),
        limit,
        "{}",
        listed.body
    );
    for key in [&issued[0], &issued[limit - 1]] {
        assert_eq!(health(&app, key).await.status, StatusCode::OK);
    }
    // A rotation without grace ends the others now, so it is always allowed.
    let fresh = issue_key(&app, &owner).await;
    assert_eq!(health(&app, &fresh).await.status, StatusCode::OK);
    health(&app, &issued[0])
        .await
        .assert_error(401, "unauthenticated");
    let listed = keys(&app, &owner).await;
    assert_eq!(listed.body["secret_keys"].as_array().unwrap().len(), 1);
    // Another project's cap is its own.
    let other = app.user("uncapped").await;
    assert_eq!(rotate(&app, &other, 3600).await.status, StatusCode::CREATED);
}

async fn secret_key_acts_for_its_project_only(app: TestApp) {
    let owner = app.user("backend").await;
    let other = app.user("other").await;
    let key = issue_key(&app, &owner).await;

    // The key fixes the project: no X-Project-ID needed.
    let r = app.get("/v1/project", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], json!(owner.project_id));
    let r = app.get("/v1/project/clients", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/clients", &key)
            .json(&json!({"name": "Backend app", "type": "confidential", "redirect_uris": ["https://app.example.com/cb"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Naming another project is refused, not silently ignored.
    TestApp::send(
        app.with_bearer(Method::GET, "/v1/project", &key)
            .header("x-project-id", &other.project_id),
    )
    .await
    .assert_error(403, "forbidden");
    // The other tenant's keys stay out of reach.
    TestApp::send(
        app.with_bearer(Method::GET, "/v1/project/keys", &key)
            .header("x-project-id", &other.project_id),
    )
    .await
    .assert_error(403, "forbidden");
    // A session of another user cannot see this project's keys.
    TestApp::send(
        app.with_bearer(Method::GET, "/v1/project/keys", &other.token)
            .header("x-project-id", &owner.project_id),
    )
    .await
    .assert_error(404, "not_found");
    // A secret key is no session: user routes refuse it.
    app.get("/v1/me", &key)
        .await
        .assert_error(401, "unauthenticated");
    // Health needs a secret key.
    health(&app, &owner.token)
        .await
        .assert_error(401, "unauthenticated");
    TestApp::send(app.req(Method::GET, "/v1/backend/health"))
        .await
        .assert_error(401, "unauthenticated");
}

/// A backend manages its org's people with the project's secret key: members, invitations and
/// sessions of that org, as an admin would; another org stays invisible and owner-only
/// changes stay with people.
async fn secret_key_manages_its_orgs_members_and_sessions_only(app: TestApp) {
    let owner = app.user("backend-org").await;
    let other = app.user("other-org").await;
    let key = issue_key(&app, &owner).await;
    let members = format!("/v1/orgs/{}/members", owner.org_id);

    let r = app.get(&format!("/v1/orgs/{}", owner.org_id), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get(&members, &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"][0]["user"]["id"], json!(owner.user_id));
    let r = app
        .get(&format!("/v1/orgs/{}/sessions", owner.org_id), &key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Invitations: issued, listed and revoked by the key, audited.
    let invitations = format!("/v1/orgs/{}/invitations", owner.org_id);
    let r = TestApp::send(
        app.with_bearer(Method::POST, &invitations, &key)
            .json(&json!({"email": "new.hire@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let inv = r.body["id"].as_str().unwrap().to_owned();
    let r = app.get(&invitations, &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["invitations"].as_array().unwrap().len(), 1);
    let r =
        TestApp::send(app.with_bearer(Method::DELETE, &format!("{invitations}/{inv}"), &key)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Owner-only: the key is an admin, never an owner.
    TestApp::send(
        app.with_bearer(Method::POST, &invitations, &key)
            .json(&json!({"email": "co.owner@example.com", "role": "owner"})),
    )
    .await
    .assert_error(403, "forbidden");

    // Another org does not exist for this key, on every org route it may use.
    for path in [
        format!("/v1/orgs/{}", other.org_id),
        format!("/v1/orgs/{}/members", other.org_id),
        format!("/v1/orgs/{}/sessions", other.org_id),
        format!("/v1/orgs/{}/invitations", other.org_id),
    ] {
        app.get(&path, &key).await.assert_error(404, "not_found");
    }
    TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/members/{}", other.org_id, other.user_id),
        &key,
    ))
    .await
    .assert_error(404, "not_found");
    TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/invitations", other.org_id),
            &key,
        )
        .json(&json!({"email": "spy@example.com", "role": "member"})),
    )
    .await
    .assert_error(404, "not_found");
    // The other org is untouched.
    let r = app
        .get(&format!("/v1/orgs/{}/members", other.org_id), &other.token)
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = app
        .get(
            &format!("/v1/orgs/{}/invitations", other.org_id),
            &other.token,
        )
        .await;
    assert_eq!(
        r.body["invitations"].as_array().unwrap().len(),
        0,
        "{}",
        r.body
    );
    // Routes for people, not backends, still need a session.
    TestApp::send(app.with_bearer(
        Method::GET,
        &format!("/v1/orgs/{}/audit", owner.org_id),
        &key,
    ))
    .await
    .assert_error(401, "unauthenticated");
}

/// What a secret key changes is audited with the key (its prefix, never the key) as the
/// actor; what a person changes is not.
async fn key_made_changes_name_the_key_as_their_actor(app: TestApp) {
    let owner = app.user("actor-key").await;
    let key = issue_key(&app, &owner).await;
    let prefix = &key[..16];
    let invitations = format!("/v1/orgs/{}/invitations", owner.org_id);
    let r = TestApp::send(
        app.with_bearer(Method::POST, &invitations, &key)
            .json(&json!({"email": "by.key@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/keys/rotate", &key)
            .json(&json!({"grace_seconds": 60})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let audit = |action: &'static str| {
        let app = &app;
        let owner = &owner;
        async move {
            let r = app
                .get(
                    &format!("/v1/orgs/{}/audit?action={action}", owner.org_id),
                    &owner.token,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["events"].as_array().unwrap().clone()
        }
    };
    let invited = audit("invitation.created").await;
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(invited[0]["actor_key"], prefix);
    assert_eq!(invited[0]["actor_id"], Value::Null);
    // Two rotations: the owner's (a person: no key) and the key's own.
    let rotated = audit("key.rotated").await;
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert_eq!(rotated[0]["actor_key"], prefix);
    assert!(rotated[1].get("actor_key").is_none(), "{}", rotated[1]);
    assert_eq!(rotated[1]["actor_id"], json!(owner.user_id));
    let all = app
        .get(&format!("/v1/orgs/{}/audit", owner.org_id), &owner.token)
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(
        !all.body.to_string().contains(&key),
        "the key itself is never in the trail"
    );

    // What did this key do? Filtered by its prefix: its two changes, nothing of the owner's.
    let by_key = app
        .get(
            &format!("/v1/orgs/{}/audit?actor_key={prefix}", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(by_key.status, StatusCode::OK, "{}", by_key.body);
    let events = by_key.body["events"].as_array().unwrap();
    let actions: Vec<_> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["key.rotated", "invitation.created"],
        "{}",
        by_key.body
    );
    assert!(events.iter().all(|e| e["actor_key"] == prefix));
    // Another key's prefix finds nothing; a whole key or a malformed prefix is refused.
    let other = format!("{}{}", &prefix[..8], "zzzzzzzz");
    let none = app
        .get(
            &format!("/v1/orgs/{}/audit?actor_key={other}", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(none.body["events"], json!([]), "{}", none.body);
    // An attacker with a free account: their own key's prefix in the victim's org shows
    // nothing of theirs, and the victim's prefix gets them nothing of the victim's org.
    let attacker = app.user("key-attacker").await;
    let theirs = issue_key(&app, &attacker).await;
    let mine = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?actor_key={}",
                owner.org_id,
                &theirs[..16]
            ),
            &owner.token,
        )
        .await;
    assert_eq!(mine.body["events"], json!([]), "{}", mine.body);
    app.get(
        &format!("/v1/orgs/{}/audit?actor_key={prefix}", owner.org_id),
        &attacker.token,
    )
    .await
    .assert_error(404, "not_found");
    let own_org = app
        .get(
            &format!("/v1/orgs/{}/audit?actor_key={prefix}", attacker.org_id),
            &attacker.token,
        )
        .await;
    assert_eq!(own_org.body["events"], json!([]), "{}", own_org.body);
    for bad in [key.as_str(), "sk_live_", "pk_live_abcd1234"] {
        let r = app
            .get(
                &format!("/v1/orgs/{}/audit?actor_key={bad}", owner.org_id),
                &owner.token,
            )
            .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "actor_key");
        assert!(!r.body.to_string().contains(&key), "no key echoed back");
    }
    // The console's filter and export take the same prefix.
    let page = TestApp::send(app.with_cookie(
        Method::GET,
        &format!("/console/orgs/{}/audit?actor_key={prefix}", owner.org_id),
        &owner.token,
    ))
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.body.as_str().unwrap();
    assert!(html.contains("invitation.created") && html.contains("key.rotated"));
    let csv = TestApp::send(app.with_cookie(
        Method::GET,
        &format!(
            "/console/orgs/{}/audit/export?actor_key={prefix}&format=csv",
            owner.org_id
        ),
        &owner.token,
    ))
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.as_str().unwrap();
    assert!(
        text.starts_with("id,at,action,outcome,actor_id,actor_key,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().skip(1).all(|l| l.contains(prefix)), "{text}");
}

/// Flips one character of the key's body: the checksum no longer matches.
fn typo(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    bytes[20] = if bytes[20] == b'x' { b'y' } else { b'x' };
    String::from_utf8(bytes).unwrap()
}

async fn mistyped_keys_are_refused_before_the_database(app: TestApp) {
    let owner = app.user("typo").await;
    let key = issue_key(&app, &owner).await;
    let r = health(&app, &typo(&key)).await;
    r.assert_error(401, "unauthenticated");
    assert!(
        r.body["message"].as_str().unwrap().contains("checksum"),
        "{}",
        r.body
    );
    let r = app.get("/v1/project", &typo(&key)).await;
    r.assert_error(401, "unauthenticated");
    // A well-formed key nobody issued is refused after the lookup, with another message.
    let unknown =
        portcullis_core::token::SecretKey::generate(portcullis_core::KeyMode::Live).unwrap();
    let r = health(&app, unknown.expose()).await;
    r.assert_error(401, "unauthenticated");
    assert!(!r.body["message"].as_str().unwrap().contains("checksum"));

    // On PostgreSQL, cut the server off its database: a typo is still answered (it never
    // needed the database), while a well-formed key can no longer be looked up.
    if app.database_url.starts_with("postgres") {
        let name = app
            .database_url
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .unwrap()
            .to_owned();
        let admin = portcullis_store::testing::postgres_admin_url();
        let sql = format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        );
        let out = std::process::Command::new("psql")
            .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-c", &sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = health(&app, &typo(&key)).await;
        r.assert_error(401, "unauthenticated");
        assert!(r.body["message"].as_str().unwrap().contains("checksum"));
        let r = health(&app, &key).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
        let restore = format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true;");
        let out = std::process::Command::new("psql")
            .args([admin.as_str(), "-c", &restore])
            .output()
            .expect("psql runs");
        assert!(out.status.success());
    }
}

async fn disabled_project_refuses_its_keys(app: TestApp) {
    let owner = app.user("disabled").await;
    let key = issue_key(&app, &owner).await;
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    health(&app, &key)
        .await
        .assert_error(403, "project_disabled");
    app.get("/v1/project/keys", &key)
        .await
        .assert_error(403, "project_disabled");
    // Its admins still reach it (to enable it again); the public config says disabled.
    let r = keys(&app, &owner).await;
    assert_eq!(r.status, StatusCode::OK);
    let pk = r.body["publishable_key"].as_str().unwrap().to_owned();
    let r = TestApp::send(app.req(
        Method::GET,
        &format!("/v1/public/config?publishable_key={pk}"),
    ))
    .await;
    assert_eq!(r.body["status"], "disabled");
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"status": "active"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(health(&app, &key).await.status, StatusCode::OK);
}

async fn public_config_by_publishable_key(app: TestApp) {
    let owner = app.user("public").await;
    let r = TestApp::send(
        app.with_bearer(Method::PATCH, "/v1/project", &owner.token)
            .header("x-project-id", &owner.project_id)
            .json(&json!({"redirect_uris": ["https://app.example.com/cb"], "allowed_origins": ["https://app.example.com"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = issue_key(&app, &owner).await;
    let pk = keys(&app, &owner).await.body["publishable_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/public/config?publishable_key={pk}");
    let r = TestApp::send(app.req(Method::GET, &path)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["project_id"], json!(owner.project_id));
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["mode"], "live");
    assert_eq!(
        r.body["redirect_uris"],
        json!(["https://app.example.com/cb"])
    );
    assert_eq!(
        r.body["allowed_origins"],
        json!(["https://app.example.com"])
    );
    assert_eq!(r.body["sign_in_methods"]["password"], true);
    assert!(r.body["sign_in_methods"]["sso"].is_array());
    assert!(
        !r.body.to_string().contains("sk_"),
        "nothing secret: {}",
        r.body
    );
    assert!(!r.body.to_string().contains(&key[..16]));
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(r.headers["cache-control"], "public, max-age=60");
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = TestApp::send(app.req(Method::GET, &path).header("if-none-match", &etag)).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag);

    // Unknown, mistyped, of the wrong mode, or missing.
    let unknown = portcullis_core::token::PublishableKey {
        mode: portcullis_core::KeyMode::Live,
        project_id: portcullis_core::ProjectId::new(),
    }
    .encode();
    let wrong_mode = portcullis_core::token::PublishableKey {
        mode: portcullis_core::KeyMode::Test,
        project_id: portcullis_core::ProjectId::parse(&owner.project_id).unwrap(),
    }
    .encode();
    let mut typo = pk.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    for bad in [
        unknown,
        wrong_mode,
        String::from_utf8(typo).unwrap(),
        "pk_live_x".into(),
    ] {
        TestApp::send(app.req(
            Method::GET,
            &format!("/v1/public/config?publishable_key={bad}"),
        ))
        .await
        .assert_error(404, "not_found");
    }
    TestApp::send(app.req(Method::GET, "/v1/public/config"))
        .await
        .assert_error(400, "invalid_request");

    // A project created in test mode has test keys.
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", owner.org_id),
            &owner.token,
        )
        .json(&json!({"name": "Staging", "mode": "test"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let staging = r.body["id"].as_str().unwrap().to_owned();
    let r = TestApp::send(
        app.with_bearer(Method::GET, "/v1/project/keys", &owner.token)
            .header("x-project-id", &staging),
    )
    .await;
    assert_eq!(r.body["mode"], "test");
    let test_pk = r.body["publishable_key"].as_str().unwrap().to_owned();
    assert!(test_pk.starts_with("pk_test_"));
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/project/keys/rotate", &owner.token)
            .header("x-project-id", &staging)
            .json(&json!({"grace_seconds": 0})),
    )
    .await;
    assert!(
        r.body["secret_key"]
            .as_str()
            .unwrap()
            .starts_with("sk_test_")
    );
    let r = TestApp::send(app.req(
        Method::GET,
        &format!("/v1/public/config?publishable_key={test_pk}"),
    ))
    .await;
    assert_eq!(r.body["mode"], "test");
    TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", owner.org_id),
            &owner.token,
        )
        .json(&json!({"name": "Prod", "mode": "prod"})),
    )
    .await
    .assert_error(400, "invalid_request");
}

async fn subscription(app: &TestApp, who: &Signed, org: &str) -> Reply {
    app.get(&format!("/v1/orgs/{org}/subscription"), &who.token)
        .await
}

async fn put_subscription(app: &TestApp, who: &Signed, org: &str, body: Value) -> Reply {
    TestApp::send(
        app.with_bearer(
            Method::PUT,
            &format!("/v1/orgs/{org}/subscription"),
            &who.token,
        )
        .json(&body),
    )
    .await
}

async fn subscription_is_read_by_members_and_set_by_platform_admins(app: TestApp) {
    let owner = app.user("sub").await;
    let outsider = app.user("outsider").await;
    let admin = app.user("operator").await;
    make_platform_admin(&app, &admin).await;
    let r = subscription(&app, &owner, &owner.org_id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["plan"], "free");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["seats"], json!({"used": 1, "limit": 3}));
    assert_eq!(r.body["projects"], json!({"used": 1, "limit": 3}));
    assert_eq!(r.body["features"], json!(["mobile_access"]));
    assert!(r.body["current_period_start"].is_string());

    subscription(&app, &outsider, &owner.org_id)
        .await
        .assert_error(404, "not_found");
    // Org owners do not set their own plan.
    put_subscription(
        &app,
        &owner,
        &owner.org_id,
        json!({"plan": "enterprise", "status": "active"}),
    )
    .await
    .assert_error(403, "forbidden");
    put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "gold", "status": "active"}),
    )
    .await
    .assert_error(400, "invalid_request");
    put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "team", "status": "paid"}),
    )
    .await
    .assert_error(400, "invalid_request");
    let r = put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "team", "status": "trialing", "current_period_end": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["plan"], "team");
    assert_eq!(r.body["status"], "trialing");
    assert_eq!(r.body["seats"]["limit"], 25);
    assert_eq!(r.body["projects"]["limit"], 20);
    assert_eq!(r.body["current_period_end"], "2099-01-01T00:00:00Z");
    let r = subscription(&app, &owner, &owner.org_id).await;
    assert_eq!(r.body["plan"], "team");
    let audit = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?action=subscription.changed",
                owner.org_id
            ),
            &owner.token,
        )
        .await;
    let event = &audit.body["events"][0];
    assert_eq!(event["details"]["from"]["plan"], "free");
    assert_eq!(event["details"]["to"]["plan"], "team");
    let r = put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "enterprise", "status": "active"}),
    )
    .await;
    assert_eq!(r.body["seats"]["limit"], Value::Null);
    assert_eq!(r.body["projects"]["limit"], Value::Null);
    // The change is queued for webhooks in the same transaction.
    let queued = app
        .state
        .store
        .outbox()
        .due(portcullis_core::now() + time::Duration::hours(1), 100)
        .await
        .unwrap();
    assert!(
        queued
            .iter()
            .any(|q| q.event.event_type == "subscription.changed"),
        "{queued:?}"
    );
}

async fn create_project(app: &TestApp, owner: &Signed, name: &str) -> Reply {
    TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/projects", owner.org_id),
            &owner.token,
        )
        .json(&json!({"name": name})),
    )
    .await
}

async fn project_limit_answers_402_with_details(app: TestApp) {
    let owner = app.user("projects").await;
    for name in ["Two", "Three"] {
        let r = create_project(&app, &owner, name).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = create_project(&app, &owner, "Four").await;
    r.assert_error(402, "subscription_limit_exceeded");
    assert_eq!(
        r.body["details"],
        json!({"limit": 3, "used": 3, "resource": "projects"})
    );
    let r = app
        .get(&format!("/v1/orgs/{}/projects", owner.org_id), &owner.token)
        .await;
    assert_eq!(
        r.body["projects"].as_array().unwrap().len(),
        3,
        "nothing written"
    );
}

async fn seat_limit_counts_members_and_pending_invitations(app: TestApp) {
    let owner = app.user("seats").await;
    let member = app.user("member").await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    // Owner + member = 2 seats; one pending invitation takes the third.
    let r = app
        .invite(&owner.token, &owner.org_id, "pending@example.com", "member")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .invite(&owner.token, &owner.org_id, "fourth@example.com", "member")
        .await;
    r.assert_error(402, "subscription_limit_exceeded");
    assert_eq!(
        r.body["details"],
        json!({"limit": 3, "used": 3, "resource": "seats"})
    );
    let r = subscription(&app, &owner, &owner.org_id).await;
    assert_eq!(r.body["seats"], json!({"used": 3, "limit": 3}));
    // Adding a member directly counts against the same seats (a platform admin may add
    // anyone, so this reaches the limit check).
    let admin = app.user("operator").await;
    make_platform_admin(&app, &admin).await;
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{}/members", owner.org_id),
            &admin.token,
        )
        .json(&json!({"email": "direct@example.com", "role": "member"})),
    )
    .await;
    r.assert_error(402, "subscription_limit_exceeded");
    assert_eq!(r.body["details"]["resource"], "seats");
    // On a bigger plan the same invitation goes through.
    let r = put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "team", "status": "active"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .invite(&owner.token, &owner.org_id, "fourth@example.com", "member")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn inactive_subscription_refuses_changes_not_reads(app: TestApp) {
    let owner = app.user("inactive").await;
    let admin = app.user("operator").await;
    make_platform_admin(&app, &admin).await;
    let r = put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "team", "status": "past_due"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = create_project(&app, &owner, "Blocked").await;
    r.assert_error(402, "subscription_inactive");
    assert_eq!(r.body["details"]["status"], "past_due");
    app.invite(&owner.token, &owner.org_id, "x@example.com", "member")
        .await
        .assert_error(402, "subscription_inactive");
    // Reads and sign-in keep working.
    let r = app
        .get(&format!("/v1/orgs/{}/projects", owner.org_id), &owner.token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.login(&owner.email, "correct horse battery").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for status in ["canceled", "inactive"] {
        put_subscription(
            &app,
            &admin,
            &owner.org_id,
            json!({"plan": "team", "status": status}),
        )
        .await;
        create_project(&app, &owner, "Blocked")
            .await
            .assert_error(402, "subscription_inactive");
    }
    put_subscription(
        &app,
        &admin,
        &owner.org_id,
        json!({"plan": "team", "status": "active"}),
    )
    .await;
    assert_eq!(
        create_project(&app, &owner, "Allowed").await.status,
        StatusCode::CREATED
    );
}

/// Four concurrent creates with two slots left: exactly two pass, whatever the interleaving.
async fn concurrent_adds_at_the_limit_never_pass_it(app: TestApp) {
    let owner = app.user("race").await;
    let (a, b, c, d) = tokio::join!(
        create_project(&app, &owner, "Racer 1"),
        create_project(&app, &owner, "Racer 2"),
        create_project(&app, &owner, "Racer 3"),
        create_project(&app, &owner, "Racer 4"),
    );
    let replies = [a, b, c, d];
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.assert_error(402, "subscription_limit_exceeded");
    }
    assert_eq!(created, 2);
    let r = subscription(&app, &owner, &owner.org_id).await;
    assert_eq!(r.body["projects"], json!({"used": 3, "limit": 3}));
}
