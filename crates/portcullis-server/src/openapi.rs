//! The OpenAPI 3.1 description, generated from the handlers' annotations. A copy is kept
//! in `docs/openapi.json`; a test fails when the two drift apart.

use std::sync::OnceLock;

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::features::mobile::{confirm, connect, handoff};
use crate::features::ops::http as health;
use crate::features::{
    auth, clients, domains, invitations, me, mobile, oidc, orgs, platform, projects, signing_keys,
    sso, webhooks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis", description = "Multi-tenant authentication and session platform. Errors use the envelope `{code, message, correlation_id, details?}`; every response carries `x-correlation-id`."),
    paths(
        health::healthz, health::readyz, health::metrics, openapi,
        auth::http::signup, auth::http::login, auth::http::logout, auth::http::password_setup,
        me::http::me, me::http::list_sessions, me::http::revoke_session,
        orgs::http::create_org, orgs::http::list_orgs, orgs::http::get_org,
        orgs::http::list_members, orgs::http::add_member, orgs::http::change_role, orgs::http::remove_member,
        orgs::http::list_org_sessions, orgs::http::revoke_org_session,
        invitations::http::create_invitation, invitations::http::list_invitations,
        invitations::http::revoke_invitation, invitations::http::accept_invitation,
        orgs::http::list_projects, orgs::http::create_project, orgs::http::audit,
        domains::http::list_domains, domains::http::create_domain, domains::http::verify_domain,
        domains::http::delete_domain,
        projects::http::get_project, projects::http::patch_project,
        clients::http::list_clients, clients::http::create_client, clients::http::get_client,
        clients::http::patch_client, clients::http::delete_client, clients::http::rotate_client_secret,
        webhooks::http::event_types, webhooks::http::list_webhooks, webhooks::http::create_webhook,
        webhooks::http::get_webhook, webhooks::http::patch_webhook, webhooks::http::delete_webhook,
        webhooks::http::rotate_webhook_secret, webhooks::http::test_webhook,
        webhooks::http::list_deliveries, webhooks::http::retry_delivery, webhooks::http::recover,
        signing_keys::http::jwks, signing_keys::http::list_signing_keys, signing_keys::http::rotate_signing_key,
        me::http::list_consents, me::http::revoke_consent,
        oidc::discovery::openid_configuration, oidc::http::authorize::authorize,
        oidc::http::authorize::login_form, oidc::http::authorize::consent_form,
        oidc::http::token::token, oidc::http::resources::userinfo,
        oidc::http::resources::introspect, oidc::http::resources::revoke, oidc::http::logout::logout, oidc::http::logout::confirm_logout,
        sso::http::list_available, sso::http::start, sso::http::callback,
        sso::http::list_org_providers, sso::http::create_org_provider, sso::http::get_org_provider,
        sso::http::patch_org_provider, sso::http::delete_org_provider,
        mobile::http::capabilities, mobile::http::exchange, mobile::http::refresh, mobile::http::revoke,
        handoff::handoff, handoff::login, confirm::confirm,
        connect::connect, connect::connect_svg,
        platform::http::list_keys, platform::http::rotate_key, platform::http::public_config,
        platform::http::backend_health, platform::http::get_subscription,
        platform::http::put_subscription,
    ),
    modifiers(&Security),
    security(("session_cookie" = []), ("bearer" = [])),
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "portcullis_session",
                "Over plain http. Behind https only __Host-portcullis_session (what the server \
                 sets) or __Secure-portcullis_session is read.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_live_… / sk_test_…")
                    .description(Some(
                        "A project's secret key; it fixes the project (no X-Project-ID).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = crate::VERSION.to_owned();
        doc.to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

/// Serves the document at `/openapi.json`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi))
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)")))]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}
