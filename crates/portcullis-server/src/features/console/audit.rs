//! The audit log: filters (correlation id, action, actor, time range), each event's
//! detail, older pages, and an export of the filtered events as CSV or JSON Lines.
//! Pasting the correlation id from someone's error page finds what that request did.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{
    AuditEvent, AuditEventId, AuditQuery, OrgAccess, OrgId, Oversight, Role, UserId,
};
use serde::Deserialize;

use crate::features::console::guard::ConsoleUser;
use crate::features::console::page::{self, Chrome, org_id, when};
use crate::features::orgs::service::{AUDIT_PAGE_SIZE, Orgs};
use crate::http::dto::AuditEventDto;
use crate::http::error::ApiError;
use crate::state::AppState;

/// An export stops after this many events; narrow the filters for more.
pub const EXPORT_MAX_EVENTS: usize = 10_000;
const EXPORT_PAGE: u32 = 200;

/// The filter form as submitted: empty fields mean "any".
#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    pub correlation_id: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub actor_id: String,
    #[serde(default)]
    pub actor_key: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub cursor: String,
    #[serde(default)]
    pub format: String,
}

/// `2026-12-06T04:00` (what a datetime-local field sends, read as UTC) or RFC 3339.
pub fn parse_time(field: &str, raw: &str) -> Result<Option<portcullis_core::Timestamp>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let rfc3339 = time::format_description::well_known::Rfc3339;
    let full = if raw.len() == 16 {
        format!("{raw}:00Z")
    } else {
        raw.to_owned()
    };
    time::OffsetDateTime::parse(&full, &rfc3339)
        .map(Some)
        .map_err(|_| {
            ApiError::invalid_field(
                field,
                format!("{field} must be a date and time such as 2026-12-06T04:00 (UTC) or an RFC 3339 timestamp"),
            )
        })
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl Filters {
    /// The store's query for these filters; a malformed field is `invalid_request` naming it.
    pub fn query(&self, limit: u32) -> Result<AuditQuery, ApiError> {
        Ok(AuditQuery {
            correlation_id: non_empty(&self.correlation_id),
            action: non_empty(&self.action),
            actor_id: non_empty(&self.actor_id)
                .map(|s| {
                    UserId::parse(&s).ok_or_else(|| {
                        ApiError::invalid_field("actor_id", "actor must be a user id (UUID)")
                    })
                })
                .transpose()?,
            actor_key: non_empty(&self.actor_key)
                .as_deref()
                .map(AuditQuery::actor_key_filter)
                .transpose()?,
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
            limit,
            before: non_empty(&self.cursor)
                .map(|s| {
                    AuditEventId::parse(&s).ok_or_else(|| {
                        ApiError::invalid_field("cursor", "cursor is not one this server issued")
                    })
                })
                .transpose()?,
            // Decided by the service from the caller's access.
            oversight: Oversight::nobody(),
        })
    }

    /// The filters as a query string (for the next page and the export links).
    pub fn to_query(&self, cursor: Option<&str>, format: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("correlation_id", &self.correlation_id),
            ("action", &self.action),
            ("actor_id", &self.actor_id),
            ("actor_key", &self.actor_key),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        if let Some(f) = format {
            q.append_pair("format", f);
        }
        q.finish()
    }
}

pub struct EventRow {
    pub id: String,
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub target: String,
    pub ip: String,
    pub user_agent: String,
    pub correlation_id: String,
    /// The query finding every event of this request.
    pub correlation_query: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    org_id: String,
    filters: Filters,
    events: Vec<EventRow>,
    error: Option<String>,
    error_field: String,
    next: Option<String>,
    csv: String,
    jsonl: String,
}

fn orgs(state: &AppState) -> Orgs<'_> {
    Orgs {
        store: &*state.store,
        cache: &state.cache,
    }
}

/// Member emails by id, to name actors.
async fn names(state: &AppState, access: &OrgAccess) -> Result<HashMap<UserId, String>, ApiError> {
    Ok(orgs(state)
        .members(access)
        .await?
        .into_iter()
        .map(|m| (m.record.user.id, m.record.user.email.as_str().to_owned()))
        .collect())
}

fn row(e: &AuditEvent, names: &HashMap<UserId, String>) -> EventRow {
    let dto = AuditEventDto::from(e);
    EventRow {
        id: e.id.to_string(),
        at: when(e.at),
        action: e.action.clone(),
        outcome: dto.outcome,
        actor: e
            .actor_id
            .map(|a| names.get(&a).cloned().unwrap_or_else(|| a.to_string()))
            .or_else(|| e.actor_key.clone())
            .unwrap_or_default(),
        target: e.target.clone().unwrap_or_default(),
        ip: e.ip.clone().unwrap_or_default(),
        user_agent: e.user_agent.clone().unwrap_or_default(),
        correlation_id: e.correlation_id.clone(),
        correlation_query: Filters {
            correlation_id: e.correlation_id.clone(),
            ..Filters::default()
        }
        .to_query(None, None),
        details: serde_json::to_string_pretty(&e.details).unwrap_or_default(),
    }
}

async fn audit_page(
    state: &AppState,
    user: &ConsoleUser,
    org: OrgId,
    filters: Filters,
) -> Result<Response, ApiError> {
    let access = user.org_access(state, org, Role::Admin).await?;
    let names = names(state, &access).await?;
    let mut page = AuditPage {
        chrome: user.chrome(Some(org), "audit", "Audit log"),
        org_id: org.to_string(),
        csv: filters.to_query(None, Some("csv")),
        jsonl: filters.to_query(None, Some("jsonl")),
        filters,
        events: Vec::new(),
        error: None,
        error_field: String::new(),
        next: None,
    };
    // A malformed filter is shown beside the form, not as an error page.
    let status = match page.filters.query(AUDIT_PAGE_SIZE) {
        Ok(query) => {
            let found = orgs(state).audit_page(&access, query).await?;
            page.events = found.events.iter().map(|e| row(e, &names)).collect();
            page.next = found
                .next_cursor
                .map(|c| page.filters.to_query(Some(&c.to_string()), None));
            StatusCode::OK
        }
        Err(e) => {
            page.error_field = e
                .details
                .as_ref()
                .and_then(|d| d.get("field"))
                .and_then(|f| f.as_str())
                .unwrap_or_default()
                .to_owned();
            page.error = Some(e.message);
            StatusCode::BAD_REQUEST
        }
    };
    Ok(page::render(state, status, &page))
}

/// `GET /console/orgs/{org}/audit?correlation_id=&action=&actor_id=&since=&until=&cursor=`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // A query the form never makes (e.g. a repeated field) just starts over, unfiltered.
    let filters = filters.map(|Query(f)| f).unwrap_or_default();
    let result = async { audit_page(&state, &user, org_id(&org)?, filters).await }.await;
    result
        .unwrap_or_else(|e| page::failure(&state, Some(user.chrome(None, "audit", "Audit log")), e))
}

/// One CSV field: quoted when needed, and a leading `= + - @` defused so a spreadsheet
/// never runs a cell as a formula (a user agent or target is attacker-chosen text).
pub fn csv_field(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

const CSV_HEADER: &str =
    "id,at,action,outcome,actor_id,actor_key,target,ip,user_agent,correlation_id,details\r\n";

fn csv_line(e: &AuditEventDto) -> String {
    let fields = [
        e.id.to_string(),
        e.at.clone(),
        e.action.clone(),
        e.outcome.clone(),
        e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
        e.actor_key.clone().unwrap_or_default(),
        e.target.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.correlation_id.clone(),
        e.details.to_string(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// `GET /console/orgs/{org}/audit/export?format=csv|jsonl&…filters`: every matching event,
/// newest first, up to [`EXPORT_MAX_EVENTS`], as a download.
pub async fn export(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // A query the form never makes (e.g. a repeated field) just starts over, unfiltered.
    let filters = filters.map(|Query(f)| f).unwrap_or_default();
    let result = async {
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Admin).await?;
        let jsonl = match filters.format.as_str() {
            "jsonl" => true,
            "csv" | "" => false,
            _ => {
                return Err(ApiError::invalid_field(
                    "format",
                    "format must be csv or jsonl",
                ));
            }
        };
        let mut out = String::from(if jsonl { "" } else { CSV_HEADER });
        let mut query = filters.query(EXPORT_PAGE)?;
        let mut count = 0;
        loop {
            let page = orgs(&state).audit_page(&access, query.clone()).await?;
            for e in &page.events {
                let dto = AuditEventDto::from(e);
                if jsonl {
                    out.push_str(&serde_json::to_string(&dto).map_err(ApiError::internal)?);
                    out.push('\n');
                } else {
                    out.push_str(&csv_line(&dto));
                }
            }
            count += page.events.len();
            match page.next_cursor {
                Some(c) if count < EXPORT_MAX_EVENTS => query.before = Some(c),
                _ => break,
            }
        }
        let (content_type, ext) = if jsonl {
            ("application/x-ndjson", "jsonl")
        } else {
            ("text/csv; charset=utf-8", "csv")
        };
        let mut r = out.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit-{org}.{ext}\""))
        {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        page::secure_headers(&state, h);
        Ok(r)
    }
    .await;
    result
        .unwrap_or_else(|e| page::failure(&state, Some(user.chrome(None, "audit", "Audit log")), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn times_accept_the_form_field_and_rfc3339() {
        let t = parse_time("since", "2026-12-06T04:00").unwrap().unwrap();
        assert_eq!(t.unix_timestamp(), 1796529600);
        assert!(
            parse_time("since", "2026-12-06T04:00:00+01:00")
                .unwrap()
                .is_some()
        );
        assert!(parse_time("since", "").unwrap().is_none());
        let e = parse_time("until", "yesterday").unwrap_err();
        assert_eq!(e.code, "invalid_request");
        assert_eq!(e.details.unwrap()["field"], "until");
    }

    #[test]
    fn filters_round_trip_through_the_query() {
        let f = Filters {
            correlation_id: "abc-1".into(),
            action: " login.failed ".into(),
            ..Filters::default()
        };
        assert_eq!(
            f.to_query(Some("c1"), Some("csv")),
            "correlation_id=abc-1&action=login.failed&cursor=c1&format=csv"
        );
        let q = f.query(10).unwrap();
        assert_eq!(q.correlation_id.as_deref(), Some("abc-1"));
        assert_eq!(q.action.as_deref(), Some("login.failed"));
        assert!(
            Filters {
                actor_id: "nope".into(),
                ..Filters::default()
            }
            .query(10)
            .is_err()
        );
    }
}
