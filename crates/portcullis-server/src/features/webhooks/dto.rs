//! The JSON shapes of the webhook routes.

use portcullis_core::webhook::{EventType, Reach};
use portcullis_store::webhooks::{Attempt, DeliveryLog, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::dto::ts;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `https://` (plain http to loopback only in development mode); never a private address.
    #[schema(example = "https://api.example.com/portcullis/webhooks")]
    pub url: String,
    /// Event types of `GET /v1/webhooks/event-types`, or `"*"` for all.
    #[schema(example = json!(["member.added", "member.removed"]))]
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhookRequest {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// Enabling an endpoint the server disabled clears its failure record.
    pub enabled: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookDto {
    pub id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why the server disabled it (`failing`: every attempt failed for the whole window).
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed.
    pub failing_since: Option<String>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&WebhookEndpoint> for WebhookDto {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.0,
            project_id: e.project_id.0,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.names().to_vec(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(ts),
            previous_secret_expires_at: e.previous_secret_expires_at.map(ts),
            created_at: ts(e.created_at),
            updated_at: ts(e.updated_at),
        }
    }
}

/// An endpoint with its signing secret, in the one reply that shows it (creation, rotation).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// `whsec_` + base64 of 32 random bytes: the key of any Standard Webhooks library.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwaW5H2Z1QyvE=")]
    pub secret: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookDto>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AttemptDto {
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// The first KiB of the answer (or of the error).
    pub response: String,
    /// `status` (non-2xx), `timeout`, `connect` or `other`; absent on success.
    pub error_class: Option<String>,
}

impl From<&Attempt> for AttemptDto {
    fn from(a: &Attempt) -> Self {
        Self {
            at: ts(a.at),
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            response: a.response.clone(),
            error_class: a.error_class.map(|c| c.as_str().to_owned()),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveryDto {
    /// The `webhook-id` header: the same on every attempt.
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempt_count: u32,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The body every attempt sends.
    pub payload: serde_json::Value,
    /// Oldest first.
    pub attempts: Vec<AttemptDto>,
}

impl From<&DeliveryLog> for DeliveryDto {
    fn from(l: &DeliveryLog) -> Self {
        let d = &l.delivery;
        Self {
            id: d.id.0,
            event_id: d.event_id,
            event_type: d.event_type.clone(),
            status: d.status.as_str().to_owned(),
            attempt_count: d.attempts,
            next_attempt_at: (d.status == portcullis_core::webhook::DeliveryStatus::Pending)
                .then(|| ts(d.next_attempt_at)),
            last_status: d.last_status,
            created_at: ts(d.created_at),
            finished_at: d.finished_at.map(ts),
            payload: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
            attempts: l.attempts.iter().map(AttemptDto::from).collect(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryDto>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    pub event_type: Option<String>,
    /// RFC 3339: deliveries of events since then.
    pub since: Option<String>,
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// RFC 3339: every delivery that failed and was created since then is sent again.
    pub since: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Recovered {
    pub requeued: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EventTypeDto {
    pub name: String,
    /// `org`: every project's subscribed endpoints hear it; `project`: that project's only.
    pub scope: String,
    pub description: String,
    /// A body as receivers get it.
    pub example: serde_json::Value,
}

impl From<&EventType> for EventTypeDto {
    fn from(t: &EventType) -> Self {
        let org = "01938a7e-1f2a-7c3d-9e4f-5a6b7c8d9e0f";
        let project = "01938a7e-2b3c-7d4e-8f5a-6b7c8d9e0f1a";
        let mut data = serde_json::json!({
            "org_id": org,
            "actor_id": "01938a7e-3c4d-7e5f-9a6b-7c8d9e0f1a2b",
            "correlation_id": "4f1c2d3e-example",
        });
        if let Some(map) = data.as_object_mut() {
            let (kind, _) = t.name.split_once('.').unwrap_or((t.name, ""));
            map.insert(
                format!("{kind}_id"),
                serde_json::Value::from("01938a7e-4d5e-7f6a-8b7c-8d9e0f1a2b3c"),
            );
            if t.reach == Reach::Project {
                map.insert("project_id".into(), serde_json::Value::from(project));
            }
        }
        Self {
            name: t.name.to_owned(),
            scope: match t.reach {
                Reach::Org => "org",
                Reach::Project => "project",
            }
            .to_owned(),
            description: t.description.to_owned(),
            example: serde_json::json!({
                "type": t.name,
                "timestamp": "2026-01-01T12:00:00Z",
                "data": data,
            }),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EventTypeList {
    pub event_types: Vec<EventTypeDto>,
}
