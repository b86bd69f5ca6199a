//! The OpenAPI 3.1 description, generated from the handlers' annotations. A copy is kept
//! in `docs/openapi.json`; a test fails when the two drift apart.

use std::sync::OnceLock;

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::oidc;
use crate::routes::{auth, clients, connect, health, me, mobile, orgs, project, signing_keys, sso};

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis", description = "Multi-tenant authentication and session platform. Errors use the envelope `{code, message, correlation_id, details?}`; every response carries `x-correlation-id`."),
    paths(
        health::healthz, health::readyz, health::metrics, health::openapi,
        auth::signup, auth::login, auth::logout,
        me::me, me::list_sessions, me::revoke_session,
        orgs::create_org, orgs::list_orgs, orgs::get_org,
        orgs::list_members, orgs::add_member, orgs::change_role, orgs::remove_member,
        orgs::list_org_sessions, orgs::revoke_org_session,
        orgs::list_projects, orgs::create_project, orgs::audit,
        project::get_project, project::patch_project,
        clients::list_clients, clients::create_client, clients::get_client,
        clients::patch_client, clients::delete_client, clients::rotate_client_secret,
        signing_keys::jwks, signing_keys::list_signing_keys, signing_keys::rotate_signing_key,
        me::list_consents, me::revoke_consent,
        oidc::discovery::openid_configuration, oidc::authorize::authorize, oidc::authorize::login_form,
        oidc::authorize::consent_form, oidc::token::token, oidc::resources::userinfo,
        oidc::resources::introspect, oidc::resources::revoke, oidc::logout::logout,
        sso::list_available, sso::start, sso::callback,
        sso::list_org_providers, sso::create_org_provider, sso::get_org_provider,
        sso::patch_org_provider, sso::delete_org_provider,
        mobile::capabilities, mobile::exchange, mobile::refresh, mobile::revoke,
        crate::mobile::handoff::handoff, crate::mobile::handoff::login,
        connect::connect, connect::connect_svg,
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
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("portcullis_session"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = crate::routes::health::VERSION.to_owned();
        doc.to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}
