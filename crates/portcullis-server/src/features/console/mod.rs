//! The hosted admin console at `/console`: server-rendered pages over the same services
//! as the API, so whatever the API refuses the console refuses too (with a page that says
//! why and what to ask for).
//!
//! One module per page; each renders its own askama template (`templates/console/`,
//! compile-time checked and embedded) inside the shared chrome of `page.rs`, reads who is
//! signed in and checks posted forms through `guard.rs`, and calls feature services only:
//! no SQL and no rule of its own. A new page is a module here, its routes below, its
//! template, and (for an org section) a line in `page::ORG_SECTIONS`.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod account;
pub mod assets;
pub mod audit;
pub mod domains;
pub mod guard;
pub mod keys;
pub mod members;
pub mod mobile;
pub mod page;
pub mod platform;
pub mod projects;
pub mod sessions;
pub mod signin;
pub mod subscription;
pub mod webhooks;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(signin::root))
        .route("/console", get(signin::home))
        .route("/console/switch", get(signin::switch))
        .route(
            "/console/login",
            get(signin::login_form).post(signin::login),
        )
        .route("/console/logout", post(signin::logout))
        .route("/console/assets/{file}", get(assets::asset))
        .route("/console/{*rest}", get(signin::unknown))
        .route("/console/orgs/{org}/members", get(members::show))
        .route(
            "/console/orgs/{org}/invitations",
            post(members::create_invitation),
        )
        .route(
            "/console/orgs/{org}/invitations/{id}/revoke",
            post(members::revoke_invitation),
        )
        .route(
            "/console/orgs/{org}/members/{user}/role",
            post(members::change_role),
        )
        .route(
            "/console/orgs/{org}/members/{user}/remove",
            post(members::remove),
        )
        .route("/console/orgs/{org}/sessions", get(sessions::show))
        .route(
            "/console/orgs/{org}/sessions/{id}/revoke",
            post(sessions::revoke),
        )
        .route(
            "/console/orgs/{org}/members/{user}/sessions/revoke",
            post(sessions::revoke_all),
        )
        .route("/console/orgs/{org}/projects", get(projects::show))
        .route(
            "/console/orgs/{org}/projects/{project}",
            post(projects::update),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/webhooks",
            get(webhooks::show).post(webhooks::create),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/webhooks/{id}",
            post(webhooks::update),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/webhooks/{id}/delete",
            post(webhooks::delete),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/webhooks/{id}/test",
            post(webhooks::test),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/webhooks/{id}/rotate",
            post(webhooks::rotate),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/webhooks/{id}/deliveries/{delivery}/retry",
            post(webhooks::retry),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/keys",
            get(keys::show),
        )
        .route(
            "/console/orgs/{org}/projects/{project}/keys/rotate",
            post(keys::rotate),
        )
        .route(
            "/console/orgs/{org}/subscription",
            get(subscription::show).post(subscription::change),
        )
        .route(
            "/console/orgs/{org}/domains",
            get(domains::show).post(domains::claim),
        )
        .route(
            "/console/orgs/{org}/domains/{domain}/verify",
            post(domains::verify),
        )
        .route("/console/orgs/{org}/mobile", get(mobile::show))
        .route("/console/platform", get(platform::show))
        .route("/console/platform/doctor", get(platform::doctor))
        .route("/console/platform/keys/rotate", post(platform::rotate_key))
        .route("/console/account", get(account::show))
        .route(
            "/console/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route(
            "/console/account/consents/{client}/revoke",
            post(account::revoke_consent),
        )
        .route(
            "/invitations/accept",
            get(account::accept_form).post(account::accept),
        )
        .route("/console/orgs/{org}/audit", get(audit::show))
        .route("/console/orgs/{org}/audit/export", get(audit::export))
}
