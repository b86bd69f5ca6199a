//! Platform operators' page: every org (search by name or slug), every configured server-wide SSO
//! provider with whether it is available now (and why not), and the signing keys (with rotation). Anyone else
//! gets the refusal page, as the API's operator routes answer 403.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::oauth::SigningAlg;
use serde::Deserialize;

use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, notice, when};
use crate::features::signing_keys::service as signing_keys;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Orgs shown at most; the search narrows them.
const ORGS_SHOWN: usize = 200;

pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub personal: bool,
    pub created: String,
}

pub struct KeyRow {
    pub kid: String,
    pub alg: &'static str,
    pub created: String,
    pub state: String,
}

pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub available: bool,
    pub why_not: String,
}

#[derive(Template)]
#[template(path = "console/platform.html")]
struct PlatformPage {
    chrome: Chrome,
    q: String,
    orgs: Vec<OrgRow>,
    more: usize,
    keys: Vec<KeyRow>,
    providers: Vec<ProviderRow>,
    algs: Vec<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct PlatformQuery {
    #[serde(default)]
    q: String,
    notice: Option<String>,
}

fn operator_only(user: &ConsoleUser) -> Result<(), ApiError> {
    if user.is_platform_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only platform admins may open the platform page",
        ))
    }
}

/// Whether an org matches the search (case-insensitive, name or slug or id).
pub fn matches(needle: &str, name: &str, slug: &str, id: &str) -> bool {
    let needle = needle.trim().to_lowercase();
    needle.is_empty()
        || name.to_lowercase().contains(&needle)
        || slug.to_lowercase().contains(&needle)
        || id == needle
}

/// `GET /console/platform?q=`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: Result<Query<PlatformQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let result = async {
        operator_only(&user)?;
        let all = state.store.orgs().list_all_orgs().await?;
        let matching: Vec<_> = all
            .iter()
            .filter(|o| matches(&q.q, o.name.as_str(), o.slug.as_str(), &o.id.to_string()))
            .collect();
        let keys = signing_keys::list(&state.keys).await?;
        let now = portcullis_core::now();
        let page = PlatformPage {
            chrome: user
                .chrome(None, "platform", "Platform")
                .with_notice(notice(q.notice.as_deref())),
            more: matching.len().saturating_sub(ORGS_SHOWN),
            orgs: matching
                .iter()
                .take(ORGS_SHOWN)
                .map(|o| OrgRow {
                    id: o.id.to_string(),
                    name: o.name.as_str().to_owned(),
                    slug: o.slug.as_str().to_owned(),
                    personal: o.personal,
                    created: when(o.created_at),
                })
                .collect(),
            q: q.q.clone(),
            keys: keys
                .iter()
                .map(|k| KeyRow {
                    kid: k.kid.clone(),
                    alg: k.alg.as_str(),
                    created: when(k.created_at),
                    state: match (k.retired_at, k.publish_until) {
                        (None, _) => "active: signs new tokens".into(),
                        (Some(_), Some(until)) if until > now => {
                            format!("retired, published until {}", when(until))
                        }
                        (Some(at), _) => format!("retired {}", when(at)),
                    },
                })
                .collect(),
            providers: state
                .sso
                .statuses()
                .into_iter()
                .map(|p| ProviderRow {
                    id: p.id,
                    name: p.name,
                    available: p.available,
                    why_not: p.why_not.unwrap_or_default(),
                })
                .collect(),
            algs: SigningAlg::ALL.iter().map(|a| a.as_str()).collect(),
        };
        Ok::<_, ApiError>(page::render(&state, StatusCode::OK, &page))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "platform", "Platform")), e)
    })
}

/// `POST /console/platform/keys/rotate`: a new active key of the chosen algorithm (the old
/// one stays published until its tokens expire); audited as the API's rotation is.
pub async fn rotate_key(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = user.form(&state, &headers, &body)?;
        operator_only(&user)?;
        let alg = SigningAlg::parse(form.get("alg").unwrap_or("EdDSA"))?;
        signing_keys::rotate(&state.keys, Some(alg), &user.auth.audit).await?;
        Ok::<_, ApiError>(see_other("/console/platform?notice=key_rotated"))
    }
    .await;
    result.unwrap_or_else(|e| {
        page::failure(&state, Some(user.chrome(None, "platform", "Platform")), e)
    })
}

pub struct FindingRow {
    pub check: String,
    /// `ok`, `warn` or `fail`.
    pub level: &'static str,
    pub detail: String,
    pub fix: String,
}

#[derive(Template)]
#[template(path = "console/doctor.html")]
struct DoctorPage {
    chrome: Chrome,
    findings: Vec<FindingRow>,
    failed: bool,
    warned: bool,
}

/// `GET /console/platform/doctor`: the checks of `portcullis doctor`, run now against the
/// configuration this server started with (database, keys, SSO discovery, URLs, mobile).
pub async fn doctor(State(state): State<AppState>, user: ConsoleUser) -> Response {
    let result = async {
        operator_only(&user)?;
        let report = crate::support::doctor::run(&state.config, &[]).await;
        let findings = report
            .findings
            .iter()
            // Unknown keys are known only where the configuration was loaded (start-up and
            // the CLI); this run was given none, so it cannot say "every key is known".
            .filter(|f| f.check != "configuration")
            .map(|f| FindingRow {
                check: f.check.clone(),
                level: match f.level {
                    crate::support::doctor::Level::Ok => "ok",
                    crate::support::doctor::Level::Warn => "warn",
                    crate::support::doctor::Level::Fail => "fail",
                },
                detail: f.detail.clone(),
                fix: f.fix.clone().unwrap_or_default(),
            })
            .collect();
        Ok::<_, ApiError>(page::render(
            &state,
            StatusCode::OK,
            &DoctorPage {
                chrome: user.chrome(None, "platform", "Doctor"),
                findings,
                failed: report.failed(),
                warned: report.warned(),
            },
        ))
    }
    .await;
    result
        .unwrap_or_else(|e| page::failure(&state, Some(user.chrome(None, "platform", "Doctor")), e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_by_name_slug_or_exact_id() {
        assert!(super::matches("", "Acme", "acme", "id"));
        assert!(super::matches(" acm ", "Acme Inc", "x", "id"));
        assert!(super::matches("ACME-", "x", "acme-1", "id"));
        assert!(super::matches("0193", "x", "y", "0193"));
        assert!(!super::matches("019", "x", "y", "0193"));
        assert!(!super::matches("zeta", "Acme", "acme", "id"));
    }
}
