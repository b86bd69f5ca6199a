//! A project's keys: the publishable key (with a copy button), the working secret keys as
//! prefixes (created, last used, until when a superseded one still works), and rotating
//! with a grace period: the new secret is shown once, in the answer to the rotation, and
//! then only as its prefix. Everything goes through the platform service, so the admin
//! rule, the grace limit and the `key.rotated` audit event are those of
//! `GET /v1/project/keys` and `POST /v1/project/keys/rotate`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use portcullis_core::plan::{KeyStanding, key_standing};
use serde_json::json;

use crate::features::console::guard::{ConsoleUser, ProjectAt};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, when};
use crate::features::platform::service::{PlatformError, PlatformService};
use crate::http::error::ApiError;
use crate::state::AppState;

/// The grace periods offered when rotating: (seconds, label). The API takes any up to
/// 30 days; these are the sensible ones.
pub const GRACES: &[(u64, &str)] = &[
    (0, "none: the current keys stop working now"),
    (3600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

/// The grace chosen when nobody picks one: a day to roll the new key out.
const DEFAULT_GRACE: u64 = 86_400;

pub struct KeyRow {
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    /// A newer key exists: this one works until then.
    pub stops_at: Option<String>,
}

/// A secret key just issued: it exists only in this answer.
pub struct Issued {
    pub secret: String,
    pub prefix: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    chrome: Chrome,
    org_id: String,
    project_id: String,
    project_name: String,
    publishable_key: String,
    mode: &'static str,
    keys: Vec<KeyRow>,
    /// The latest end of grace among superseded keys, for the page's warning.
    superseded_until: Option<String>,
    issued: Option<Issued>,
    graces: Vec<GraceChoice>,
}

pub struct GraceChoice {
    pub seconds: u64,
    pub label: &'static str,
    pub selected: bool,
}

fn service(state: &AppState) -> PlatformService<'_> {
    PlatformService {
        store: &*state.store,
    }
}

/// The service's refusal, with the role to ask for (the refusal page names it).
fn refusal(e: PlatformError) -> ApiError {
    let admin_only = matches!(e, PlatformError::NotAdmin);
    let e = ApiError::from(e);
    if admin_only {
        e.with_details(json!({"required_role": "admin"}))
    } else {
        e
    }
}

async fn keys_page(
    state: &AppState,
    user: &ConsoleUser,
    at: &ProjectAt,
    notice_text: Option<String>,
    issued: Option<Issued>,
) -> Result<Response, ApiError> {
    let keys = service(state).keys(&at.access).await.map_err(refusal)?;
    let now = portcullis_core::now();
    let rows: Vec<KeyRow> = keys
        .secret_keys
        .iter()
        .map(|k| KeyRow {
            prefix: k.prefix.clone(),
            created: when(k.created_at),
            last_used: k.last_used_at.map_or_else(|| "never".to_owned(), when),
            stops_at: match key_standing(k.expires_at, now) {
                KeyStanding::Superseded { until } => Some(when(until)),
                _ => None,
            },
        })
        .collect();
    let superseded_until = keys
        .secret_keys
        .iter()
        .filter_map(|k| match key_standing(k.expires_at, now) {
            KeyStanding::Superseded { until } => Some(until),
            _ => None,
        })
        .max()
        .map(when);
    let secret_on_page = issued.is_some();
    let page = KeysPage {
        chrome: user
            .chrome(Some(at.org), "projects", "Keys")
            .with_notice(notice_text),
        org_id: at.org.to_string(),
        project_id: at.record.project.id.to_string(),
        project_name: at.record.project.name.as_str().to_owned(),
        publishable_key: keys.publishable_key,
        mode: keys.mode.as_str(),
        keys: rows,
        superseded_until,
        issued,
        graces: GRACES
            .iter()
            .map(|&(seconds, label)| GraceChoice {
                seconds,
                label,
                selected: seconds == DEFAULT_GRACE,
            })
            .collect(),
    };
    let mut response = page::render(state, StatusCode::OK, &page);
    if secret_on_page {
        // As on the webhooks page: a page with a secret forbids caching twice over.
        response
            .headers_mut()
            .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    Ok(response)
}

/// `GET /console/orgs/{org}/projects/{project}/keys`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project)): Path<(String, String)>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result = async {
        let at = user.project(&state, &org, &project).await?;
        keys_page(&state, &user, &at, notice(q.notice.as_deref()), None).await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Keys", e))
}

/// The grace period posted by the rotate form, in seconds.
fn grace_seconds(raw: Option<&str>) -> Result<u64, ApiError> {
    match raw {
        None => Ok(DEFAULT_GRACE),
        Some(raw) => raw.trim().parse().map_err(|_| {
            ApiError::invalid_field("grace_seconds", "grace_seconds must be a whole number")
        }),
    }
}

/// `POST /console/orgs/{org}/projects/{project}/keys/rotate`: a new secret key; the page
/// that answers shows it once.
pub async fn rotate(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (form, at) = user
            .project_form(&state, &headers, &body, &org, &project)
            .await?;
        let grace = grace_seconds(form.get("grace_seconds"))?;
        let issued = service(&state)
            .rotate(&at.access, grace, &user.auth.audit)
            .await
            .map_err(refusal)?;
        tracing::info!(prefix = %issued.rotated.key.prefix, project = %at.record.project.id, "secret key rotated from the console");
        let replaced = issued.rotated.superseded.len();
        let notice_text = match (replaced, grace) {
            (0, _) => "Secret key created.".to_owned(),
            (_, 0) => "Secret key rotated. The previous keys stopped working now.".to_owned(),
            _ => "Secret key rotated. The previous keys keep working until their grace ends."
                .to_owned(),
        };
        keys_page(
            &state,
            &user,
            &at,
            Some(notice_text),
            Some(Issued {
                secret: issued.secret.expose().to_owned(),
                prefix: issued.rotated.key.prefix.clone(),
            }),
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Keys", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_defaults_to_a_day_and_must_be_a_number() {
        assert_eq!(grace_seconds(None).unwrap(), 86_400);
        assert_eq!(grace_seconds(Some(" 3600 ")).unwrap(), 3600);
        assert_eq!(grace_seconds(Some("0")).unwrap(), 0);
        assert!(grace_seconds(Some("-1")).is_err());
        assert!(grace_seconds(Some("1h")).is_err());
    }

    #[test]
    fn offered_graces_are_within_the_apis_limit() {
        for (s, _) in GRACES {
            assert!(*s <= portcullis_core::plan::MAX_GRACE_SECONDS);
        }
        assert!(GRACES.iter().any(|(s, _)| *s == DEFAULT_GRACE));
    }
}
