//! Mobile: the "connect this server" card a self-hosted operator shows to app users — the
//! deep link and its QR code (`/v1/mobile/connect.svg`), from the mobile service; and,
//! when the org's plan leaves mobile sign-in out, which plan that is (the app's sign-in
//! answers `feature_disabled` for this org).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_core::Role;
use portcullis_core::plan::Feature;

use crate::features::console::guard::ConsoleUser;
use crate::features::console::page::{self, Chrome, org_id};
use crate::features::mobile::mobile;
use crate::features::platform::service::PlatformService;
use crate::http::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/mobile.html")]
struct MobilePage {
    chrome: Chrome,
    link: Option<String>,
    unavailable: String,
    /// The org's plan, when it does not include mobile sign-in.
    plan_without_mobile: Option<String>,
}

/// `GET /console/orgs/{org}/mobile`: any member may show the card.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
) -> Response {
    let result = async {
        let org = org_id(&org)?;
        let access = user.org_access(&state, org, Role::Member).await?;
        let subscription = PlatformService {
            store: &*state.store,
        }
        .subscription(&access)
        .await?;
        let plan_without_mobile = (!subscription.plan.has(Feature::MobileAccess))
            .then(|| subscription.plan.key.as_str().to_owned());
        // Switched off or without an app scheme: an empty state that says why, not an error.
        let (link, unavailable) = match mobile(&state).connect_url() {
            Ok(url) => (Some(url), String::new()),
            Err(e) => (None, ApiError::from(e).message),
        };
        Ok::<_, ApiError>(page::render(
            &state,
            StatusCode::OK,
            &MobilePage {
                chrome: user.chrome(Some(org), "mobile", "Mobile"),
                link,
                unavailable,
                plan_without_mobile,
            },
        ))
    }
    .await;
    result.unwrap_or_else(|e| user.failed_in_org(&state, &org, "mobile", "Mobile", e))
}
