#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The console's subscription page over HTTP, on both backends: plan, status, period and
//! usage for every member; the plan change for platform admins only (the same service as
//! `PUT /v1/orgs/{id}/subscription`, audited `subscription.changed`), a bad field shown
//! beside the form; the 402 page when an action passes the plan's limit or the
//! subscription is inactive (the numbers, what to do, the correlation id); other tenants
//! shown nothing.

use crate::common;
use crate::console_pages::{
    assert_page_error, csrf_of, make_platform_admin, page, post_form, text,
};

use common::{Signed, TestApp};
use reqwest::StatusCode;

both_backends!(
    members_read_and_operators_change_the_plan,
    the_402_page_says_what_to_do,
);
both_backends!(configured plain: a_plan_without_mobile_is_named => |c: &mut portcullis_server::config::Config| {
    c.platform.plans.insert(
        "web-only".into(),
        portcullis_server::config::platform::PlanConfig {
            seat_limit: Some(10),
            project_limit: Some(10),
            features: vec![],
        },
    );
});

fn plain(_: &mut portcullis_server::config::Config) {}

async fn api_subscription(app: &TestApp, who: &Signed, org: &str) -> serde_json::Value {
    let r = app
        .get(&format!("/v1/orgs/{org}/subscription"), &who.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn members_read_and_operators_change_the_plan(app: TestApp) {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let operator = app.user("operator").await;
    make_platform_admin(&app, &operator).await;
    app.join(&owner.token, &owner.org_id, &member, "member")
        .await;
    let base = format!("/console/orgs/{}/subscription", owner.org_id);

    // Every member reads the plan and the usage; only operators get the form.
    for who in [&owner, &member] {
        let r = page(&app, &base, &who.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
        let html = text(&r);
        assert!(html.contains("<strong>free</strong>"), "{html}");
        assert!(
            html.contains("<strong>2</strong> used of <strong>3</strong>"),
            "seats: {html}"
        );
        assert!(
            html.contains("<strong>1</strong> used of <strong>3</strong>"),
            "projects"
        );
        assert!(
            !html.contains("change-subscription"),
            "no form for {}",
            who.email
        );
        assert!(
            html.contains("aria-current=\"page\">Subscription"),
            "in the navigation"
        );
    }

    // An org owner cannot change the plan: the refusal page, nothing changed.
    let csrf = csrf_of(&text(&page(&app, &base, &owner.token).await));
    let r = post_form(
        &app,
        &base,
        &owner.token,
        &[
            ("plan", "enterprise"),
            ("status", "active"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_page_error(&r, 403);
    assert!(text(&r).contains("platform admins"), "{}", text(&r));
    assert_eq!(
        api_subscription(&app, &owner, &owner.org_id).await["plan"],
        "free"
    );

    // Someone of another org: 404, as on the API.
    let outsider_csrf = csrf_of(&text(
        &page(&app, "/console/account", &outsider.token).await,
    ));
    assert_page_error(&page(&app, &base, &outsider.token).await, 404);
    let r = post_form(
        &app,
        &base,
        &outsider.token,
        &[
            ("plan", "enterprise"),
            ("status", "active"),
            ("csrf_token", &outsider_csrf),
        ],
    )
    .await;
    assert_page_error(&r, 404);

    // The operator: the form, from the platform page's list too.
    let platform = text(&page(&app, "/console/platform", &operator.token).await);
    assert!(platform.contains(&format!("href=\"{base}\"")), "{platform}");
    let r = page(&app, &base, &operator.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let html = text(&r);
    assert!(html.contains("id=\"change-subscription\""));
    assert!(html.contains("team (25 seats, 20 projects)"), "{html}");
    let csrf = csrf_of(&html);
    // A bad field stays on the form; nothing changed.
    for (plan, end, says) in [
        ("gold", "", "no plan"),
        ("team", "2001-01-01", "in the future"),
        ("team", "01/02/2030", "YYYY-MM-DD"),
    ] {
        let r = post_form(
            &app,
            &base,
            &operator.token,
            &[
                ("plan", plan),
                ("status", "active"),
                ("current_period_end", end),
                ("csrf_token", &csrf),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
        assert!(text(&r).contains(says), "{says}: {}", text(&r));
        assert!(text(&r).contains("aria-invalid=\"true\""));
    }
    assert_eq!(
        api_subscription(&app, &owner, &owner.org_id).await["plan"],
        "free"
    );
    let r = post_form(
        &app,
        &base,
        &operator.token,
        &[
            ("plan", "team"),
            ("status", "past_due"),
            ("current_period_end", "2099-01-31"),
            ("csrf_token", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with("notice=subscription_changed")
    );
    let s = api_subscription(&app, &owner, &owner.org_id).await;
    assert_eq!(
        (s["plan"].as_str(), s["status"].as_str()),
        (Some("team"), Some("past_due"))
    );
    assert!(
        s["current_period_end"]
            .as_str()
            .unwrap()
            .starts_with("2099-01-31T00:00:00"),
        "{s}"
    );
    let html = text(&page(&app, &base, &owner.token).await);
    assert!(
        html.contains("id=\"inactive-warning\""),
        "past_due refuses changes"
    );
    assert!(html.contains("to 2099-01-31 00:00 UTC"));
    let audit = app
        .get(
            &format!(
                "/v1/orgs/{}/audit?action=subscription.changed",
                owner.org_id
            ),
            &owner.token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert_eq!(
        audit.body["events"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
}

async fn invite(app: &TestApp, admin: &Signed, csrf: &str, email: &str) -> common::Reply {
    post_form(
        app,
        &format!("/console/orgs/{}/invitations", admin.org_id),
        &admin.token,
        &[("email", email), ("role", "member"), ("csrf_token", csrf)],
    )
    .await
}

async fn the_402_page_says_what_to_do(app: TestApp) {
    let owner = app.user("owner").await;
    let members = format!("/console/orgs/{}/members", owner.org_id);
    let html = text(&page(&app, &members, &owner.token).await);
    assert!(!html.contains("id=\"seats-full\""));
    let csrf = csrf_of(&html);
    // The free plan has 3 seats: the owner and two invitations fill them.
    for i in 0..2 {
        let r = invite(&app, &owner, &csrf, &format!("seat{i}@example.com")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    }
    let html = text(&page(&app, &members, &owner.token).await);
    assert!(
        html.contains("id=\"seats-full\""),
        "the form says the seats are taken"
    );
    let r = invite(&app, &owner, &csrf, "one-too-many@example.com").await;
    assert_page_error(&r, 402);
    let html = text(&r);
    assert!(html.contains("subscription_limit_exceeded"), "{html}");
    assert!(
        html.contains("The plan allows <strong>3</strong> seats"),
        "{html}"
    );
    assert!(html.contains("<strong>3</strong> are in use"), "{html}");
    assert!(html.contains("revoke a pending invitation"), "{html}");
    assert!(html.contains("platform admin"), "{html}");
    assert!(
        html.contains(&format!(
            "href=\"/console/orgs/{}/subscription\"",
            owner.org_id
        )),
        "links to the subscription"
    );
    let pending = app
        .get(
            &format!("/v1/orgs/{}/invitations", owner.org_id),
            &owner.token,
        )
        .await;
    assert_eq!(
        pending.body["invitations"].as_array().unwrap().len(),
        2,
        "nothing invited past the limit: {}",
        pending.body
    );

    // An inactive subscription refuses any change, with its status and what to ask for.
    let operator = app.user("operator").await;
    make_platform_admin(&app, &operator).await;
    let base = format!("/console/orgs/{}/subscription", owner.org_id);
    let op_csrf = csrf_of(&text(&page(&app, &base, &operator.token).await));
    let r = post_form(
        &app,
        &base,
        &operator.token,
        &[
            ("plan", "team"),
            ("status", "canceled"),
            ("csrf_token", &op_csrf),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
    let r = invite(&app, &owner, &csrf, "later@example.com").await;
    assert_page_error(&r, 402);
    let html = text(&r);
    assert!(html.contains("subscription_inactive"), "{html}");
    assert!(
        html.contains("subscription is <strong>canceled</strong>"),
        "{html}"
    );
    assert!(html.contains("reactivate"), "{html}");
}

/// An org on a plan without `mobile_access`: the mobile page names the plan (the app's
/// sign-in answers `feature_disabled` for it), and the plan is one an operator can pick.
async fn a_plan_without_mobile_is_named(app: TestApp) {
    let owner = app.user("webonly").await;
    let mobile = format!("/console/orgs/{}/mobile", owner.org_id);
    let html = text(&page(&app, &mobile, &owner.token).await);
    assert!(!html.contains("plan-without-mobile"), "{html}");
    app.on_plan(&owner.org_id, "web-only").await;
    let r = page(&app, &mobile, &owner.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let html = text(&r);
    assert!(html.contains("id=\"plan-without-mobile\""), "{html}");
    assert!(html.contains("<strong>web-only</strong> plan does not include mobile sign-in"));
    let operator = app.user("operator").await;
    make_platform_admin(&app, &operator).await;
    let html = text(
        &page(
            &app,
            &format!("/console/orgs/{}/subscription", owner.org_id),
            &operator.token,
        )
        .await,
    );
    assert!(html.contains("web-only (10 seats, 10 projects)"), "{html}");
    assert!(html.contains("<td>none</td>"), "no features: {html}");
}
