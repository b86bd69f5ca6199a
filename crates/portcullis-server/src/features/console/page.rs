//! What every console page shares: the chrome around it (org switcher, navigation, the
//! signed-in person, the form token), the response headers, and the pages for failures —
//! an error page that always shows the correlation id, and a refusal page that says what
//! to ask for. A console request never answers with a bare 500 or a JSON envelope.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::features::console::assets;
use crate::http::cookies;
use crate::http::correlation;
use crate::http::error::ApiError;
use crate::state::AppState;

/// The sections of an organization, in navigation order: (path segment, label). A new
/// org page adds its line here and its module beside; a project's pages (webhooks, keys)
/// are reached from the projects page.
pub const ORG_SECTIONS: &[(&str, &str)] = &[
    ("members", "Members"),
    ("sessions", "Sessions"),
    ("projects", "Projects"),
    ("domains", "Domains & SSO"),
    ("subscription", "Subscription"),
    ("audit", "Audit log"),
    ("mobile", "Mobile"),
];

pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

pub struct NavLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The frame of a page: the base template reads it.
pub struct Chrome {
    pub title: String,
    pub signed_in: bool,
    pub email: String,
    pub csrf: String,
    pub orgs: Vec<OrgChoice>,
    /// The org the page is about; empty on account and platform pages.
    pub org_id: String,
    /// The current org section, kept when switching orgs.
    pub section: &'static str,
    pub nav: Vec<NavLink>,
    pub notice: Option<String>,
    pub assets: &'static str,
}

impl Chrome {
    /// A page shown before anyone is signed in (sign-in, errors at the door).
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            signed_in: false,
            email: String::new(),
            csrf: String::new(),
            orgs: Vec::new(),
            org_id: String::new(),
            section: "members",
            nav: Vec::new(),
            notice: None,
            assets: assets::version(),
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }
}

/// Headers of every console page: nothing cached, nothing framed, scripts only from this
/// server (no inline script), and HSTS when the server is reached over https.
pub fn secure_headers(state: &AppState, headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if state.secure_cookies {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// A rendered template with the console's headers. A template that fails to render (it
/// cannot, short of a formatting bug) becomes the error page, never a bare 500.
pub fn render<T: Template>(state: &AppState, status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => html_response(state, status, html),
        Err(e) => failure(state, None, ApiError::internal(format!("template: {e}"))),
    }
}

fn html_response(state: &AppState, status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(state, r.headers_mut());
    r
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    code: &'static str,
    message: String,
    correlation_id: String,
}

#[derive(Template)]
#[template(path = "console/refusal.html")]
struct RefusalPage {
    chrome: Chrome,
    message: String,
    ask_for: String,
    correlation_id: String,
}

/// A change the org's subscription refused (`402`): what happened, the numbers, and what
/// to do about it.
#[derive(Template)]
#[template(path = "console/plan_refusal.html")]
struct PlanRefusalPage {
    chrome: Chrome,
    code: &'static str,
    message: String,
    limit: Option<PlanLimit>,
    /// The subscription's status, when it is the status that refused.
    status: Option<String>,
    correlation_id: String,
}

/// A plan limit that was reached, from `subscription_limit_exceeded`'s details.
pub struct PlanLimit {
    pub resource: String,
    pub limit: u64,
    pub used: u64,
}

impl PlanLimit {
    fn from_details(details: Option<&serde_json::Value>) -> Option<Self> {
        let d = details?;
        Some(Self {
            resource: d.get("resource")?.as_str()?.to_owned(),
            limit: d.get("limit")?.as_u64()?,
            used: d.get("used")?.as_u64()?,
        })
    }

    /// What frees one of the resource, in the org's own hands.
    pub fn how_to_free(&self) -> &'static str {
        match self.resource.as_str() {
            "seats" => "remove a member or revoke a pending invitation",
            "projects" => "delete a project",
            _ => "remove one",
        }
    }
}

/// What a refused person should ask for, from the refusal's details.
fn ask_for(e: &ApiError) -> String {
    let required = e
        .details
        .as_ref()
        .and_then(|d| d.get("required_role"))
        .and_then(|r| r.as_str());
    match (e.code, required) {
        ("forbidden", Some(role)) => format!(
            "Ask an owner or admin of this organization to give you the {role} role, or to do this for you."
        ),
        ("forbidden", None) if e.message.contains("change subscriptions") => {
            "Only platform admins of this server change subscriptions. Ask one to do it for you."
                .into()
        }
        ("forbidden", None) if e.message.contains("platform") => {
            "Only platform operators can open this page. Ask the operator of this server.".into()
        }
        ("forbidden", None) => {
            "Ask an owner or admin of this organization for access, or to do this for you.".into()
        }
        ("feature_disabled", _) => {
            let details = e.details.as_ref();
            let field = |k: &str| details.and_then(|d| d.get(k)).and_then(|v| v.as_str());
            match (field("plan"), field("feature")) {
                (Some(plan), feature) => format!(
                    "The organization's {plan} plan does not include {}. Ask a platform admin of this server to move the organization to a plan that does.",
                    feature.unwrap_or("this feature")
                ),
                (None, _) => {
                    "This feature is switched off on this server. Ask the server's operator.".into()
                }
            }
        }
        _ => "Ask an admin of this organization, quoting the reference below.".into(),
    }
}

/// A failure as a page: sign-in again for a dead session, the refusal page for a
/// permission the API would refuse too, the error page (with the correlation id) for the
/// rest. Logged once, like the API's envelope.
pub fn failure(state: &AppState, chrome: Option<Chrome>, e: ApiError) -> Response {
    if e.status == StatusCode::UNAUTHORIZED && e.code == "unauthenticated" {
        return to_sign_in(state, "/console", true);
    }
    let correlation_id = correlation::current();
    let chrome = chrome.unwrap_or_else(|| Chrome::anonymous("Error"));
    let refusal = e.status == StatusCode::FORBIDDEN;
    let plan_refusal = e.status == StatusCode::PAYMENT_REQUIRED;
    let code = e.code;
    let ask = ask_for(&e);
    let message = e.message.clone();
    let limit = PlanLimit::from_details(e.details.as_ref());
    let status_detail = e
        .details
        .as_ref()
        .and_then(|d| d.get("status"))
        .and_then(|s| s.as_str())
        .map(str::to_owned);
    e.into_page(|status, _| {
        let html = if plan_refusal {
            PlanRefusalPage {
                chrome: Chrome {
                    title: "Not allowed by the plan".into(),
                    ..chrome
                },
                code,
                message,
                limit,
                status: status_detail,
                correlation_id: correlation_id.clone(),
            }
            .render()
        } else if refusal {
            RefusalPage {
                chrome: Chrome {
                    title: "Not allowed".into(),
                    ..chrome
                },
                message,
                ask_for: ask,
                correlation_id: correlation_id.clone(),
            }
            .render()
        } else {
            ErrorPage {
                chrome: Chrome {
                    title: format!("Error {}", status.as_u16()),
                    ..chrome
                },
                status: status.as_u16(),
                code,
                message,
                correlation_id: correlation_id.clone(),
            }
            .render()
        };
        match html {
            Ok(html) => html_response(state, status, html),
            // The last resort has no template to fail.
            Err(_) => html_response(
                state,
                status,
                format!(
                    "<!doctype html><title>Error</title><p>Something went wrong. Reference: {}</p>",
                    crate::http::html::escape(&correlation_id)
                ),
            ),
        }
    })
}

/// Where the sign-in page may send a person afterwards: a path of the console or the
/// invitation page on this server, never another host (`//evil`, `/\evil`) or scheme.
pub fn safe_return_to(raw: &str) -> Option<&str> {
    let ok = (raw == "/console"
        || raw.starts_with("/console/")
        || raw.starts_with("/console?")
        || raw == "/invitations/accept")
        && !raw.contains('\\')
        && !raw.contains("//")
        && raw.chars().all(|c| !c.is_control());
    ok.then_some(raw)
}

/// The sign-in page, coming back to `return_to` afterwards; `ended` when the browser's
/// session was revoked or expired (the page says so, and the dead cookie is dropped).
pub fn to_sign_in(state: &AppState, return_to: &str, ended: bool) -> Response {
    let mut location = String::from("/console/login");
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(back) = safe_return_to(return_to) {
        query.append_pair("return_to", back);
    }
    if ended {
        query.append_pair("reason", "ended");
    }
    let query = query.finish();
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    let mut response = Redirect::to(&location).into_response();
    if ended {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookies::clear_cookie(state));
    }
    response
}

/// A time as the console shows it: `2026-12-06 04:12 UTC`.
pub fn when(t: portcullis_core::Timestamp) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The org in a console path; a malformed id is the same 404 as an org the caller cannot
/// see (as on the API).
pub fn org_id(raw: &str) -> Result<portcullis_core::OrgId, ApiError> {
    portcullis_core::OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

/// The confirmation after a change, named by a fixed key in the redirect (`?notice=`), so
/// nothing a link carries is ever shown as text.
pub fn notice(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "invitation_revoked" => "Invitation revoked.",
        "role_changed" => "Role changed.",
        "member_removed" => "Member removed.",
        "session_revoked" => "Session revoked. That device must sign in again.",
        "sessions_revoked" => "All of the member's sessions were revoked.",
        "project_saved" => "Project saved.",
        "webhook_saved" => "Webhook endpoint saved.",
        "webhook_deleted" => "Webhook endpoint deleted. Nothing more is sent to it.",
        "webhook_test_sent" => "Test event queued. Reload to see its delivery.",
        "webhook_retried" => "Delivery queued again.",
        "domain_added" => "Domain added. Publish the TXT record, then verify.",
        "domain_verified" => "Domain verified.",
        "consent_revoked" => "Access withdrawn from the application.",
        "invitation_accepted" => "Invitation accepted. Welcome to the organization.",
        "subscription_changed" => "Subscription changed.",
        "key_rotated" => {
            "Signing key rotated. The previous key stays published until its tokens expire."
        }
        _ => return None,
    };
    Some(text.to_owned())
}

#[derive(serde::Deserialize, Default)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;
    use crate::http::error::ApiError;

    #[test]
    fn times_read_in_utc_to_the_minute() {
        let t = time::macros::datetime!(2026-12-06 05:12:59 +01:00);
        assert_eq!(super::when(t), "2026-12-06 04:12 UTC");
    }

    #[test]
    fn notices_are_fixed_texts() {
        assert_eq!(
            super::notice(Some("role_changed")).as_deref(),
            Some("Role changed.")
        );
        assert_eq!(super::notice(Some("<script>")), None);
        assert_eq!(super::notice(None), None);
    }

    #[test]
    fn a_plan_without_a_feature_is_named() {
        let e = ApiError::feature_disabled("mobile sign-in is not part of this plan")
            .with_details(serde_json::json!({"feature": "mobile_access", "plan": "starter"}));
        let ask = super::ask_for(&e);
        assert!(
            ask.contains("starter plan does not include mobile_access"),
            "{ask}"
        );
        let off = super::ask_for(&ApiError::feature_disabled("off"));
        assert!(off.contains("switched off on this server"), "{off}");
    }

    #[test]
    fn plan_limits_are_read_from_the_details() {
        let l = super::PlanLimit::from_details(Some(
            &serde_json::json!({"limit": 3, "used": 3, "resource": "seats"}),
        ))
        .unwrap();
        assert_eq!((l.limit, l.used, l.resource.as_str()), (3, 3, "seats"));
        assert!(l.how_to_free().contains("invitation"));
        assert!(
            super::PlanLimit::from_details(Some(&serde_json::json!({"status": "canceled"})))
                .is_none()
        );
        assert!(super::PlanLimit::from_details(None).is_none());
    }

    #[test]
    fn return_to_stays_in_the_console() {
        for ok in [
            "/console",
            "/console/orgs/x/members",
            "/console?org=1",
            "/invitations/accept",
        ] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example/console",
            "/console//evil",
            "/\\evil.example",
            "/console/\\x",
            "https://evil.example/console",
            "/v1/me",
            "/consolex",
            "/console/\nx",
            "",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
