//! Domains and SSO: the org's domain claims (the TXT record to publish, a verify button;
//! platform operators may also mark one verified) and its own SSO providers with whether
//! each can be used now. Through the domains and SSO services, as the API.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::{DomainName, OrgId, Role, VerificationMethod};

use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, org_id, when};
use crate::features::domains::service::{DomainError, Domains};
use crate::features::sso::service::Sso;
use crate::http::error::ApiError;
use crate::state::AppState;

pub struct DomainRow {
    pub domain: String,
    pub verified: bool,
    pub txt_name: String,
    pub txt_value: String,
    pub since: String,
}

pub struct ProviderRow {
    pub name: String,
    pub issuer: String,
    pub sign_in_id: String,
    pub available: bool,
}

#[derive(Template)]
#[template(path = "console/domains.html")]
struct DomainsPage {
    chrome: Chrome,
    org_id: String,
    domains: Vec<DomainRow>,
    providers: Vec<ProviderRow>,
    platform_admin: bool,
    error: Option<String>,
    domain_input: String,
}

fn domains(state: &AppState) -> Domains<'_> {
    Domains {
        store: &*state.store,
        dns: &state.dns,
        free_mail: &state.free_mail_domains,
    }
}

fn sso(state: &AppState) -> Sso<'_> {
    Sso {
        store: &*state.store,
        cache: &state.cache,
        sessions: &state.sessions,
        metrics: &state.metrics,
        providers: &state.sso,
        master_key: &state.master_key,
        public_url: &state.public_url,
        public_origin: &state.public_origin,
    }
}

async fn domains_page(
    state: &AppState,
    user: &ConsoleUser,
    org: OrgId,
    status: StatusCode,
    notice_text: Option<String>,
    error: Option<String>,
    domain_input: String,
) -> Result<Response, ApiError> {
    let access = user.org_access(state, org, Role::Admin).await?;
    let claims = domains(state).list(&access).await?;
    let providers = sso(state).org_providers(&access).await?;
    let mut rows = Vec::with_capacity(providers.len());
    for p in &providers {
        rows.push(ProviderRow {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            sign_in_id: crate::infra::upstream::org_provider_id(p.id),
            // Usable once its discovery loaded and its secret opens.
            available: state.sso.resolve_org(p).await.is_some(),
        });
    }
    let page = DomainsPage {
        chrome: user
            .chrome(Some(org), "domains", "Domains & SSO")
            .with_notice(notice_text),
        org_id: org.to_string(),
        domains: claims
            .iter()
            .map(|d| DomainRow {
                domain: d.domain.as_str().to_owned(),
                verified: d.status.as_str() == "verified",
                txt_name: d.domain.challenge_name(),
                txt_value: d.challenge_value(),
                since: when(d.verified_at.unwrap_or(d.created_at)),
            })
            .collect(),
        providers: rows,
        platform_admin: user.is_platform_admin(),
        error,
        domain_input,
    };
    Ok(page::render(state, status, &page))
}

/// `GET /console/orgs/{org}/domains`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result = async {
        let org = org_id(&org)?;
        domains_page(
            &state,
            &user,
            org,
            StatusCode::OK,
            notice(q.notice.as_deref()),
            None,
            String::new(),
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(
            &state,
            Some(user.chrome(None, "domains", "Domains & SSO")),
            e,
        )
    })
}

/// The form's own mistakes (a bad name, a missing TXT record) stay on the page.
fn on_page(e: &ApiError) -> bool {
    e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT
}

/// `POST /console/orgs/{org}/domains`: claims a domain (pending until verified).
pub async fn claim(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let raw = form.get("domain").unwrap_or_default();
        match domains(&state).claim(&access, raw, &user.auth.audit).await {
            Ok(_) => Ok(see_other(&format!(
                "/console/orgs/{org}/domains?notice=domain_added"
            ))),
            Err(e) => {
                let e = ApiError::from(e);
                if !on_page(&e) {
                    return Err(e);
                }
                domains_page(
                    &state,
                    &user,
                    org,
                    e.status,
                    None,
                    Some(e.message),
                    raw.to_owned(),
                )
                .await
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(
            &state,
            Some(user.chrome(None, "domains", "Domains & SSO")),
            e,
        )
    })
}

/// `POST /console/orgs/{org}/domains/{domain}/verify`: looks the TXT record up (or, for a
/// platform operator choosing `method=admin`, marks it verified).
pub async fn verify(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, domain)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let domain =
            DomainName::parse(&domain).map_err(|_| ApiError::from(DomainError::NotFound))?;
        let method = match form.get("method") {
            Some("admin") => VerificationMethod::Admin,
            _ => VerificationMethod::Dns,
        };
        match domains(&state)
            .verify(
                &access,
                &user.auth.principal,
                &domain,
                method,
                &user.auth.audit,
            )
            .await
        {
            Ok(_) => Ok(see_other(&format!(
                "/console/orgs/{org}/domains?notice=domain_verified"
            ))),
            Err(e) => {
                let e = ApiError::from(e);
                if !on_page(&e) {
                    return Err(e);
                }
                domains_page(
                    &state,
                    &user,
                    org,
                    e.status,
                    None,
                    Some(e.message),
                    String::new(),
                )
                .await
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(
            &state,
            Some(user.chrome(None, "domains", "Domains & SSO")),
            e,
        )
    })
}
