//! Webhooks of one project: its endpoints (URL, events, enabled), creating one (the signing
//! secret shown once, with a copy button, and never again), editing, deleting, sending a
//! test, each endpoint's recent deliveries with every attempt, retrying a delivery, and
//! rotating the secret (the new one shown once). Everything goes through the webhooks
//! service, so the admin rule, the URL policy and the audit trail are the API's.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use portcullis_core::webhook::{CATALOGUE, DeliveryId, TEST_EVENT, WebhookId};
use portcullis_store::webhooks::{DeliveryQuery, WebhookEndpoint};

use crate::features::console::guard::{ConsoleUser, ProjectAt, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, when};
use crate::features::webhooks::service::{Change, NewEndpoint, ProjectWebhooks};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Deliveries shown per endpoint: the newest; the API pages through the rest.
const DELIVERIES_SHOWN: u32 = 10;

pub struct AttemptRow {
    pub at: String,
    pub status: String,
    pub duration_ms: u64,
    pub response: String,
    pub error_class: &'static str,
}

pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub status: &'static str,
    pub created: String,
    pub attempts: Vec<AttemptRow>,
}

pub struct EndpointCard {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub previous_secret_until: Option<String>,
    pub deliveries: Vec<DeliveryRow>,
}

/// A secret just made (by creating or rotating): it exists only in this answer.
pub struct Shown {
    pub endpoint_url: String,
    pub secret: String,
    pub rotated: bool,
}

/// What the create form said, shown again beside its error.
#[derive(Default)]
struct Refused {
    error: Option<String>,
    url: String,
    events: String,
    description: String,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    org_id: String,
    project_id: String,
    project_name: String,
    endpoints: Vec<EndpointCard>,
    shown: Option<Shown>,
    create_error: Option<String>,
    create_url: String,
    create_events: String,
    create_description: String,
    event_names: Vec<&'static str>,
}

fn service<'a>(
    state: &'a AppState,
    user: &'a ConsoleUser,
    at: &'a ProjectAt,
) -> ProjectWebhooks<'a> {
    ProjectWebhooks {
        scope: state.store.project(&at.access),
        sender: &state.webhooks,
        project: &at.record.project,
        role: at.role,
        audit: &user.auth.audit,
    }
}

/// Event names as typed: separated by commas or white space.
fn event_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(raw).ok_or_else(|| ApiError::not_found("no such webhook endpoint"))
}

async fn card(hooks: &ProjectWebhooks<'_>, e: &WebhookEndpoint) -> Result<EndpointCard, ApiError> {
    let log = hooks
        .deliveries(
            e.id,
            &DeliveryQuery {
                limit: DELIVERIES_SHOWN,
                ..DeliveryQuery::default()
            },
        )
        .await?;
    Ok(EndpointCard {
        id: e.id.to_string(),
        url: e.url.clone(),
        description: e.description.clone(),
        events: e.events.names().join(", "),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since.map(when),
        previous_secret_until: e.previous_secret_expires_at.map(when),
        deliveries: log
            .iter()
            .map(|d| DeliveryRow {
                id: d.delivery.id.to_string(),
                event_type: d.delivery.event_type.clone(),
                status: d.delivery.status.as_str(),
                created: when(d.delivery.created_at),
                attempts: d
                    .attempts
                    .iter()
                    .map(|a| AttemptRow {
                        at: when(a.at),
                        status: a
                            .status_code
                            .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                        duration_ms: a.duration_ms,
                        response: a.response.chars().take(200).collect(),
                        error_class: a.error_class.map_or("", |c| c.as_str()),
                    })
                    .collect(),
            })
            .collect(),
    })
}

async fn webhooks_page(
    state: &AppState,
    user: &ConsoleUser,
    at: &ProjectAt,
    status: StatusCode,
    notice_text: Option<String>,
    shown: Option<Shown>,
    refused: Refused,
) -> Result<Response, ApiError> {
    let hooks = service(state, user, at);
    let record = &at.record;
    let list = hooks.list().await?;
    let mut endpoints = Vec::with_capacity(list.len());
    for e in &list {
        endpoints.push(card(&hooks, e).await?);
    }
    let secret_on_page = shown.is_some();
    let page = WebhooksPage {
        chrome: user
            .chrome(Some(at.org), "projects", "Webhooks")
            .with_notice(notice_text),
        org_id: at.org.to_string(),
        project_id: record.project.id.to_string(),
        project_name: record.project.name.as_str().to_owned(),
        endpoints,
        shown,
        create_error: refused.error,
        create_url: refused.url,
        create_events: if refused.events.is_empty() {
            "*".to_owned()
        } else {
            refused.events
        },
        create_description: refused.description,
        event_names: CATALOGUE
            .iter()
            .map(|t| t.name)
            .filter(|n| *n != TEST_EVENT)
            .collect(),
    };
    let mut response = page::render(state, status, &page);
    if secret_on_page {
        // The console already sends no-store; a page with a secret says so twice, so that
        // no proxy in between keeps a copy whatever else changes.
        response
            .headers_mut()
            .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    Ok(response)
}

fn back(at: &ProjectAt, notice: &str) -> Response {
    see_other(&format!(
        "/console/orgs/{}/projects/{}/webhooks?notice={notice}",
        at.org, at.record.project.id
    ))
}

/// `GET /console/orgs/{org}/projects/{project}/webhooks`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw)): Path<(String, String)>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result = async {
        let at = user.project(&state, &org, &project_raw).await?;
        webhooks_page(
            &state,
            &user,
            &at,
            StatusCode::OK,
            notice(q.notice.as_deref()),
            None,
            Refused::default(),
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

/// `POST …/webhooks`: a new endpoint; the answer is the page with its secret, once.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (form, at) = user
            .project_form(&state, &headers, &body, &org, &project_raw)
            .await?;
        let url = form.get("url").unwrap_or_default().to_owned();
        let events = form.get("events").unwrap_or("*").to_owned();
        let description = form.get("description").unwrap_or_default().to_owned();
        let made = service(&state, &user, &at)
            .create(NewEndpoint {
                url: url.clone(),
                events: event_list(&events),
                description: Some(description.clone()),
                enabled: Some(true),
            })
            .await;
        let (shown, refused, status) = match made {
            Ok((endpoint, secret)) => (
                Some(Shown {
                    endpoint_url: endpoint.url,
                    secret: secret.expose(),
                    rotated: false,
                }),
                Refused::default(),
                StatusCode::OK,
            ),
            Err(e) => {
                let e = ApiError::from(e);
                // A bad field is shown beside the form; anything else is the error page.
                if e.status != StatusCode::BAD_REQUEST {
                    return Err(e);
                }
                (
                    None,
                    Refused {
                        error: Some(e.message.clone()),
                        url,
                        events,
                        description,
                    },
                    StatusCode::BAD_REQUEST,
                )
            }
        };
        let notice_text = shown
            .as_ref()
            .map(|_| "Webhook endpoint created.".to_owned());
        webhooks_page(&state, &user, &at, status, notice_text, shown, refused).await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

/// `POST …/webhooks/{id}`: URL, events and enabled.
pub async fn update(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (form, at) = user
            .project_form(&state, &headers, &body, &org, &project_raw)
            .await?;
        service(&state, &user, &at)
            .update(
                webhook_id(&id)?,
                Change {
                    url: form.get("url").map(str::to_owned),
                    events: form.get("events").map(event_list),
                    description: Some(form.get("description").unwrap_or_default().to_owned()),
                    // An unticked box is not sent at all.
                    enabled: Some(form.get("enabled").is_some()),
                },
            )
            .await?;
        Ok(back(&at, "webhook_saved"))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

/// `POST …/webhooks/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (_, at) = user
            .project_form(&state, &headers, &body, &org, &project_raw)
            .await?;
        service(&state, &user, &at).delete(webhook_id(&id)?).await?;
        Ok(back(&at, "webhook_deleted"))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

/// `POST …/webhooks/{id}/test`: queues a `webhook.test` delivery, due now.
pub async fn test(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (_, at) = user
            .project_form(&state, &headers, &body, &org, &project_raw)
            .await?;
        service(&state, &user, &at).test(webhook_id(&id)?).await?;
        Ok(back(&at, "webhook_test_sent"))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

/// `POST …/webhooks/{id}/rotate`: the answer is the page with the new secret, once.
pub async fn rotate(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (_, at) = user
            .project_form(&state, &headers, &body, &org, &project_raw)
            .await?;
        let (endpoint, secret) = service(&state, &user, &at)
            .rotate_secret(webhook_id(&id)?)
            .await?;
        webhooks_page(
            &state,
            &user,
            &at,
            StatusCode::OK,
            Some("Secret rotated. The previous secret keeps signing for 24 hours.".to_owned()),
            Some(Shown {
                endpoint_url: endpoint.url,
                secret: secret.expose(),
                rotated: true,
            }),
            Refused::default(),
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

/// `POST …/webhooks/{id}/deliveries/{delivery}/retry`: sends it again now.
pub async fn retry(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((org, project_raw, id, delivery)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (_, at) = user
            .project_form(&state, &headers, &body, &org, &project_raw)
            .await?;
        let delivery = DeliveryId::parse(&delivery)
            .ok_or_else(|| ApiError::not_found("no such delivery of this endpoint"))?;
        service(&state, &user, &at)
            .retry(webhook_id(&id)?, delivery)
            .await?;
        Ok(back(&at, "webhook_retried"))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "projects", "Webhooks", e))
}

#[cfg(test)]
mod tests {
    use super::event_list;

    #[test]
    fn events_split_on_commas_and_spaces() {
        assert_eq!(
            event_list(" user.created, session.revoked\nmember.added ,,"),
            ["user.created", "session.revoked", "member.added"]
        );
        assert!(event_list(" , ").is_empty());
    }
}
