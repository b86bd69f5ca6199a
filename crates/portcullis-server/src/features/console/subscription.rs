//! An org's subscription, for the runbook "check the organization subscription state in
//! the hosted console": plan, status, period, seats and projects used against the plan's
//! limits, and the plan's features. Platform admins also get the form that sets plan,
//! status and the period's end, through the same service as
//! `PUT /v1/orgs/{id}/subscription` (audited `subscription.changed`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::plan::Plan;
use portcullis_core::{OrgId, Role, Timestamp};

use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, NoticeQuery, notice, org_id, when};
use crate::features::platform::service::{PlatformError, PlatformService};
use crate::http::error::ApiError;
use crate::state::AppState;

pub const STATUSES: &[&str] = &["active", "trialing", "past_due", "canceled", "inactive"];

pub struct Usage {
    pub used: u64,
    /// None: unlimited.
    pub limit: Option<u32>,
    pub full: bool,
}

impl Usage {
    fn new(used: u64, limit: Option<u32>) -> Self {
        Self {
            used,
            limit,
            full: limit.is_some_and(|l| used >= u64::from(l)),
        }
    }
}

pub struct PlanChoice {
    pub key: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/subscription.html")]
struct SubscriptionPage {
    chrome: Chrome,
    org_id: String,
    plan: String,
    status: &'static str,
    active: bool,
    period_start: String,
    period_end: Option<String>,
    seats: Usage,
    projects: Usage,
    features: Vec<&'static str>,
    operator: bool,
    plans: Vec<PlanChoice>,
    statuses: &'static [&'static str],
    /// The form's end date (`YYYY-MM-DD`): the current one, or what was posted.
    end_value: String,
    form_error: Option<String>,
}

/// What a refused change said, shown again beside the form.
#[derive(Default)]
struct Refused {
    error: Option<String>,
    end_value: Option<String>,
}

fn service(state: &AppState) -> PlatformService<'_> {
    PlatformService {
        store: &*state.store,
    }
}

/// A plan as the select shows it: `team (25 seats, 20 projects)`.
fn plan_label(p: &Plan) -> String {
    let count = |n: Option<u32>, what: &str| {
        n.map_or(format!("unlimited {what}"), |n| format!("{n} {what}"))
    };
    format!(
        "{} ({}, {})",
        p.key.as_str(),
        count(p.seat_limit, "seats"),
        count(p.project_limit, "projects")
    )
}

/// The plans a platform admin may choose from (as configured), smallest first.
fn plan_choices(state: &AppState, current: &str) -> Vec<PlanChoice> {
    let mut plans = state.config.platform.plans().unwrap_or_default();
    plans.sort_by_key(|p| {
        (
            p.seat_limit.is_none(),
            p.seat_limit,
            p.key.as_str().to_owned(),
        )
    });
    let mut choices: Vec<PlanChoice> = plans
        .iter()
        .map(|p| PlanChoice {
            key: p.key.as_str().to_owned(),
            label: plan_label(p),
            selected: p.key.as_str() == current,
        })
        .collect();
    // A plan no longer configured still shows as the current one.
    if !choices.iter().any(|c| c.selected) {
        choices.insert(
            0,
            PlanChoice {
                key: current.to_owned(),
                label: format!("{current} (no longer configured)"),
                selected: true,
            },
        );
    }
    choices
}

/// `YYYY-MM-DD` of a time, in UTC.
fn day(t: Timestamp) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// The form's end of period: a date (`YYYY-MM-DD`, the browser's date input) meaning the
/// start of that day in UTC; empty for none.
fn period_end(raw: &str) -> Result<Option<Timestamp>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format)
        .map(|d| Some(d.midnight().assume_utc()))
        .map_err(|_| {
            ApiError::invalid_field(
                "current_period_end",
                "the end of the period must be a date (YYYY-MM-DD)",
            )
        })
}

async fn subscription_page(
    state: &AppState,
    user: &ConsoleUser,
    org: OrgId,
    status: StatusCode,
    notice_text: Option<String>,
    refused: Refused,
) -> Result<Response, ApiError> {
    let access = user.org_access(state, org, Role::Member).await?;
    let s = service(state).subscription(&access).await?;
    let plan = s.subscription.plan.as_str().to_owned();
    let operator = access.is_operator();
    let page = SubscriptionPage {
        chrome: user
            .chrome(Some(org), "subscription", "Subscription")
            .with_notice(notice_text),
        org_id: org.to_string(),
        status: s.subscription.status.as_str(),
        active: s.subscription.status.allows_changes(),
        period_start: when(s.subscription.current_period_start),
        period_end: s.subscription.current_period_end.map(when),
        seats: Usage::new(s.usage.seats, s.plan.seat_limit),
        projects: Usage::new(s.usage.projects, s.plan.project_limit),
        features: s.plan.features.iter().map(|f| f.as_str()).collect(),
        plans: if operator {
            plan_choices(state, &plan)
        } else {
            Vec::new()
        },
        plan,
        operator,
        statuses: STATUSES,
        end_value: refused.end_value.unwrap_or_else(|| {
            s.subscription
                .current_period_end
                .map(day)
                .unwrap_or_default()
        }),
        form_error: refused.error,
    };
    Ok(page::render(state, status, &page))
}

/// `GET /console/orgs/{org}/subscription`: every member may read it, as on the API.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let result = async {
        subscription_page(
            &state,
            &user,
            org_id(&org)?,
            StatusCode::OK,
            notice(q.notice.as_deref()),
            Refused::default(),
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "subscription", "Subscription", e))
}

/// `POST /console/orgs/{org}/subscription`: plan, status and end of period; platform
/// admins only (the service refuses anyone else). A bad field is shown beside the form.
pub async fn change(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = user.form(&state, &headers, &body)?;
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Member).await?;
        // The service refuses anyone else too; asked first, so that someone who may not
        // change the plan hears that rather than about a mistyped date.
        if !access.is_operator() {
            return Err(PlatformError::NotOperator.into());
        }
        let raw_end = form.get("current_period_end").unwrap_or_default();
        let changed = match period_end(raw_end) {
            Ok(end) => service(&state)
                .set_subscription(
                    &access,
                    form.get("plan").unwrap_or_default(),
                    form.get("status").unwrap_or_default(),
                    end,
                    &user.auth.audit,
                )
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        };
        match changed {
            Ok(_) => Ok(see_other(&format!(
                "/console/orgs/{org}/subscription?notice=subscription_changed"
            ))),
            Err(e) if e.status == StatusCode::BAD_REQUEST => {
                subscription_page(
                    &state,
                    &user,
                    org,
                    StatusCode::BAD_REQUEST,
                    None,
                    Refused {
                        error: Some(e.message),
                        end_value: Some(raw_end.to_owned()),
                    },
                )
                .await
            }
            Err(e) => Err(e),
        }
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "subscription", "Subscription", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_end_is_a_utc_date_or_nothing() {
        assert_eq!(period_end(" ").unwrap(), None);
        assert_eq!(
            period_end("2030-01-31").unwrap(),
            Some(time::macros::datetime!(2030-01-31 00:00 UTC))
        );
        assert!(period_end("31/01/2030").is_err());
        assert!(period_end("2030-02-30").is_err());
        assert_eq!(
            day(time::macros::datetime!(2030-01-31 23:59 -02:00)),
            "2030-02-01"
        );
    }

    #[test]
    fn plans_read_with_their_limits() {
        let plans = portcullis_core::plan::built_in_plans();
        let labels: Vec<String> = plans.iter().map(plan_label).collect();
        assert!(labels.contains(&"free (3 seats, 3 projects)".to_owned()));
        assert!(labels.contains(&"enterprise (unlimited seats, unlimited projects)".to_owned()));
    }

    #[test]
    fn usage_is_full_at_the_limit() {
        assert!(Usage::new(3, Some(3)).full);
        assert!(!Usage::new(2, Some(3)).full);
        assert!(!Usage::new(300, None).full);
    }
}
