#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Over HTTP, on both backends: My account never lists the invitations pending to its
//! address (addresses are not verified); the platform page lists every configured
//! SSO provider with whether it is available and why not.

use crate::common;
use crate::console_pages::{page, text};

use common::TestApp;
use reqwest::StatusCode;

both_backends!(account_never_lists_invitations_to_its_address);

/// Accounts' addresses are not verified, so My account never shows which orgs invited an
/// address: whoever signed up with it would learn them. The invitation link stays the way in.
async fn account_never_lists_invitations_to_its_address(app: TestApp) {
    let owner = app.user("owner").await;
    let invitee = app.user("invitee").await;
    app.invite(&owner.token, &owner.org_id, &invitee.email, "admin")
        .await;
    let org = app
        .get(&format!("/v1/orgs/{}", owner.org_id), &owner.token)
        .await;
    let org_name = org.body["name"].as_str().unwrap().to_owned();
    let r = page(&app, "/console/account", &invitee.token).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = text(&r);
    assert!(html.contains("Invitations arrive by email"), "{html}");
    assert!(!html.contains("invited-table"), "{html}");
    assert!(!html.contains(&org_name.replace('\'', "&#39;")), "{html}");
}

both_backends!(backend: platform_lists_every_configured_provider);

/// The platform page lists every configured server-wide SSO provider, available or not,
/// and why not: here one without its client secret.
async fn platform_lists_every_configured_provider(backend: common::Backend) {
    use portcullis_server::config::sso::GenericOidcSso;
    let app = TestApp::start_with(backend, |c| {
        c.sso.oidc.insert(
            "nosecret".into(),
            GenericOidcSso {
                issuer: Some("https://idp.example.com".into()),
                client_id: Some("portcullis".into()),
                client_secret: None,
                name: Some("No Secret IdP".into()),
                ..GenericOidcSso::default()
            },
        );
    })
    .await;
    let operator = app.user("operator").await;
    crate::console_pages::make_platform_admin(&app, &operator).await;
    let r = page(&app, "/console/platform", &operator.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let html = text(&r);
    let at = html.find("id=\"sso-table\"").expect("the providers table");
    let table = &html[at..at + html[at..].find("</table>").unwrap()];
    assert!(table.contains("<code>nosecret</code>"), "{table}");
    assert!(table.contains("unavailable"), "{table}");
    assert!(table.contains("credentials do not resolve"), "{table}");
    assert!(!table.contains(">available<"), "{table}");
}

both_backends!(members_page_shows_seats_against_the_plan);

/// The members page shows the seats used and the plan's limit, as the subscription API
/// counts them (members and pending invitations).
async fn members_page_shows_seats_against_the_plan(app: TestApp) {
    let owner = app.user("owner").await;
    app.invite(&owner.token, &owner.org_id, "seat@example.org", "member")
        .await;
    let sub = app
        .get(
            &format!("/v1/orgs/{}/subscription", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(sub.status, StatusCode::OK, "{}", sub.body);
    assert_eq!(sub.body["seats"]["used"], 2, "{}", sub.body);
    let r = page(
        &app,
        &format!("/console/orgs/{}/members", owner.org_id),
        &owner.token,
    )
    .await;
    let html = text(&r);
    let expected = match sub.body["seats"]["limit"].as_u64() {
        Some(limit) => {
            format!("Seats used: <strong>2</strong> of <strong>{limit}</strong> on this plan")
        }
        None => "Seats used: <strong>2</strong> (no limit on this plan)".to_owned(),
    };
    assert!(html.contains(&expected), "{expected} in {html}");
}
