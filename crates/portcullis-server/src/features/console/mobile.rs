//! Mobile: the "connect this server" card a self-hosted operator shows to app users — the
//! deep link and its QR code (`/v1/mobile/connect.svg`), from the mobile service.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_core::Role;

use crate::features::console::guard::ConsoleUser;
use crate::features::console::page::{self, Chrome, org_id};
use crate::features::mobile::mobile;
use crate::http::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/mobile.html")]
struct MobilePage {
    chrome: Chrome,
    link: Option<String>,
    unavailable: String,
}

/// `GET /console/orgs/{org}/mobile`: any member may show the card.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(org): Path<String>,
) -> Response {
    let result = async {
        let org = org_id(&org)?;
        user.org_access(&state, org, Role::Member).await?;
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
            },
        ))
    }
    .await;
    result.unwrap_or_else(|e| page::failure(&state, Some(user.chrome(None, "mobile", "Mobile")), e))
}
