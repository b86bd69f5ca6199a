#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Verified domains through HTTP, on SQLite and PostgreSQL: claiming (free-mail domains
//! refused), proving by a TXT record that a real DNS server (dnsmasq) serves, one org per
//! verified domain while pending claims coexist, a platform admin's verification without
//! DNS, deleting, and the audit trail.

use crate::common;

use common::dns::{Dnsmasq, free_port};
use common::{Backend, Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    backend:
    claims_are_checked_and_scoped,
    dns_proves_a_claim_and_one_org_holds_it,
    platform_admins_verify_without_dns,
);

const DOMAIN: &str = "acme-corp.test";

async fn start(backend: Backend, dns_port: u16) -> TestApp {
    TestApp::start_with(backend, |cfg| {
        cfg.federation.dns_resolver = Some(format!("127.0.0.1:{dns_port}"));
        cfg.federation.free_mail_domains.0 = vec!["corp-mail.test".into(), "webmail.*".into()];
    })
    .await
}

/// A fresh user with a new (non-personal) org they own; returns the user and the org id.
async fn org_owner(app: &TestApp, label: &str) -> (common::Signed, String) {
    let u = app.user(label).await;
    let r = TestApp::send(
        app.with_bearer(Method::POST, "/v1/orgs", &u.token)
            .json(&json!({"name": format!("{label} Inc")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let org = r.body["org"]["id"].as_str().unwrap().to_owned();
    (u, org)
}

async fn claim(app: &TestApp, token: &str, org: &str, domain: &str) -> Reply {
    TestApp::send(
        app.with_bearer(Method::POST, &format!("/v1/orgs/{org}/domains"), token)
            .json(&json!({ "domain": domain })),
    )
    .await
}

async fn verify(app: &TestApp, token: &str, org: &str, domain: &str, body: Option<Value>) -> Reply {
    let rb = app.with_bearer(
        Method::POST,
        &format!("/v1/orgs/{org}/domains/{domain}/verify"),
        token,
    );
    TestApp::send(match body {
        Some(b) => rb.json(&b),
        None => rb,
    })
    .await
}

async fn actions(app: &TestApp, token: &str, org: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/orgs/{org}/audit"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("domain."))
        .cloned()
        .collect()
}

async fn claims_are_checked_and_scoped(backend: Backend) {
    let app = start(backend, free_port()).await;
    let (owner, org) = org_owner(&app, "acme").await;

    let r = claim(&app, &owner.token, &org, " Acme-Corp.TEST. ").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["domain"], DOMAIN);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(
        r.body["txt_record"]["name"],
        "_portcullis-challenge.acme-corp.test"
    );
    let value = r.body["txt_record"]["value"].as_str().unwrap();
    assert!(value.starts_with("portcullis-verification="), "{value}");
    assert!(value.len() > "portcullis-verification=".len() + 30);
    assert_eq!(r.body["verified_at"], Value::Null);

    // Again: this org has it already.
    claim(&app, &owner.token, &org, DOMAIN)
        .await
        .assert_error(409, "conflict");
    // Free-mail domains, built in and configured, and things that are not domains.
    for free in [
        "gmail.com",
        "GoogleMail.com",
        "outlook.com",
        "gmx.net",
        "yandex.ru",
        "proton.me",
        "corp-mail.test",
        "webmail.org",
    ] {
        let r = claim(&app, &owner.token, &org, free).await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "domain", "{free}");
        assert!(
            r.body["message"].as_str().unwrap().contains("free-mail"),
            "{free}: {}",
            r.body
        );
    }
    for bad in ["localhost", "10.0.0.1", "*.acme.test", "a b.test", ""] {
        let r = claim(&app, &owner.token, &org, bad).await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.body["details"]["field"], "domain", "{bad}");
    }
    let r = TestApp::send(
        app.with_bearer(
            Method::POST,
            &format!("/v1/orgs/{org}/domains"),
            &owner.token,
        )
        .json(&json!({"domain": "x.test", "verified": true})),
    )
    .await;
    r.assert_error(400, "invalid_request");

    // Listed for the org's admins only; invisible to other orgs.
    let r = app
        .get(&format!("/v1/orgs/{org}/domains"), &owner.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = r.body["domains"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["txt_record"]["value"], value);
    let member = app.user("member").await;
    app.join(&owner.token, &org, &member, "member").await;
    app.get(&format!("/v1/orgs/{org}/domains"), &member.token)
        .await
        .assert_error(403, "forbidden");
    claim(&app, &member.token, &org, "member.test")
        .await
        .assert_error(403, "forbidden");
    verify(&app, &member.token, &org, DOMAIN, None)
        .await
        .assert_error(403, "forbidden");
    let outsider = app.user("outsider").await;
    app.get(&format!("/v1/orgs/{org}/domains"), &outsider.token)
        .await
        .assert_error(404, "not_found");
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{org}/domains/{DOMAIN}"),
        &outsider.token,
    ))
    .await;
    r.assert_error(404, "not_found");
    // Their own org has no such claim.
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{}/domains/{DOMAIN}", outsider.org_id),
        &outsider.token,
    ))
    .await;
    r.assert_error(404, "not_found");
    verify(&app, &outsider.token, &outsider.org_id, DOMAIN, None)
        .await
        .assert_error(404, "not_found");

    // Verifying "by admin" is for platform admins only; a bad method is a bad request.
    let r = verify(
        &app,
        &owner.token,
        &org,
        DOMAIN,
        Some(json!({"method": "admin"})),
    )
    .await;
    r.assert_error(403, "forbidden");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("platform admins")
    );
    verify(
        &app,
        &owner.token,
        &org,
        DOMAIN,
        Some(json!({"method": "trust-me"})),
    )
    .await
    .assert_error(400, "invalid_request");
    verify(
        &app,
        &owner.token,
        &org,
        DOMAIN,
        Some(json!({"how": "dns"})),
    )
    .await
    .assert_error(400, "invalid_request");

    // Nothing answers DNS on the configured port: a clear failure, still pending.
    let r = verify(&app, &owner.token, &org, DOMAIN, None).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(
        r.body["details"]["reason"], "dns_lookup_failed",
        "{}",
        r.body
    );
    assert_eq!(r.body["details"]["expected"]["value"], value);

    // Deleted: gone, audited.
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{org}/domains/{DOMAIN}"),
        &owner.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .get(&format!("/v1/orgs/{org}/domains"), &owner.token)
        .await;
    assert_eq!(r.body["domains"], json!([]));
    let trail = actions(&app, &owner.token, &org).await;
    let names: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["domain.deleted", "domain.created"]);
    assert_eq!(trail[0]["target"], format!("domain:{DOMAIN}"));
    assert_eq!(trail[1]["actor_id"], owner.user_id.as_str());
}

async fn dns_proves_a_claim_and_one_org_holds_it(backend: Backend) {
    let port = free_port();
    let app = start(backend, port).await;
    let (acme, acme_org) = org_owner(&app, "acme").await;
    let (rival, rival_org) = org_owner(&app, "rival").await;

    let r = claim(&app, &acme.token, &acme_org, DOMAIN).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let acme_value = r.body["txt_record"]["value"].as_str().unwrap().to_owned();
    let record = r.body["txt_record"]["name"].as_str().unwrap().to_owned();
    // A rival's pending claim of the same domain is allowed and blocks nobody.
    let r = claim(&app, &rival.token, &rival_org, DOMAIN).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rival_value = r.body["txt_record"]["value"].as_str().unwrap().to_owned();
    assert_ne!(acme_value, rival_value, "each claim has its own token");

    // DNS serves only the rival's record, and an unrelated one: Acme's is missing.
    let dns = Dnsmasq::start(
        port,
        &[(&record, &rival_value), (&record, "v=spf1 -all")],
        &["test"],
    )
    .await;
    let r = verify(&app, &acme.token, &acme_org, DOMAIN, None).await;
    r.assert_error(400, "invalid_request");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains(&record), "{message}");
    assert!(message.contains(&acme_value), "{message}");
    assert!(message.contains("v=spf1 -all"), "{message}");
    assert_eq!(r.body["details"]["reason"], "txt_record_missing");
    assert_eq!(r.body["details"]["expected"]["name"], record.as_str());
    assert_eq!(r.body["details"]["expected"]["value"], acme_value.as_str());
    let found = r.body["details"]["found"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    // No record at all under a domain the server knows: NXDOMAIN, reported as "none".
    let r = claim(&app, &acme.token, &acme_org, "empty.test").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = verify(&app, &acme.token, &acme_org, "empty.test", None).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(
        r.body["details"]["reason"], "txt_record_missing",
        "{}",
        r.body
    );
    assert_eq!(r.body["details"]["found"], json!([]));
    dns.stop().await;

    // Now Acme's record is published (next to the rival's).
    let dns = Dnsmasq::start(
        port,
        &[(&record, &acme_value), (&record, &rival_value)],
        &["test"],
    )
    .await;
    let r = verify(&app, &acme.token, &acme_org, DOMAIN, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["method"], "dns");
    assert!(r.body["verified_at"].is_string());
    // Again: nothing changes.
    let r = verify(&app, &acme.token, &acme_org, DOMAIN, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The rival proves its record too, but the domain is Acme's.
    let r = verify(&app, &rival.token, &rival_org, DOMAIN, None).await;
    r.assert_error(409, "conflict");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("another organization")
    );
    // A third org cannot even claim it now.
    let (third, third_org) = org_owner(&app, "third").await;
    claim(&app, &third.token, &third_org, DOMAIN)
        .await
        .assert_error(409, "conflict");
    let r = app
        .get(&format!("/v1/orgs/{rival_org}/domains"), &rival.token)
        .await;
    assert_eq!(r.body["domains"][0]["status"], "pending");

    // Acme lets it go; the rival's pending claim can be proven now.
    let r = TestApp::send(app.with_bearer(
        Method::DELETE,
        &format!("/v1/orgs/{acme_org}/domains/{DOMAIN}"),
        &acme.token,
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = verify(&app, &rival.token, &rival_org, DOMAIN, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "verified");
    dns.stop().await;

    let trail = actions(&app, &acme.token, &acme_org).await;
    let names: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "domain.deleted",
            "domain.verified",
            "domain.created",
            "domain.created"
        ]
    );
    assert_eq!(trail[1]["details"]["method"], "dns");
    assert_eq!(trail[1]["details"]["domain"], DOMAIN);
    let rival_trail = actions(&app, &rival.token, &rival_org).await;
    assert_eq!(rival_trail[0]["action"], "domain.verified");
}

async fn platform_admins_verify_without_dns(backend: Backend) {
    let app = start(backend, free_port()).await;
    let (owner, org) = org_owner(&app, "offline").await;
    let r = claim(&app, &owner.token, &org, "intranet.test").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let operator = app.user("operator").await;
    app.state
        .store
        .accounts()
        .set_platform_admin(
            portcullis_core::UserId::parse(&operator.user_id).unwrap(),
            true,
            &portcullis_core::AuditContext::cli(),
        )
        .await
        .unwrap();
    let r = verify(
        &app,
        &operator.token,
        &org,
        "intranet.test",
        Some(json!({"method": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["method"], "admin");
    let trail = actions(&app, &owner.token, &org).await;
    assert_eq!(trail[0]["action"], "domain.verified");
    assert_eq!(trail[0]["details"]["method"], "admin");
    assert_eq!(trail[0]["actor_id"], operator.user_id.as_str());
}
