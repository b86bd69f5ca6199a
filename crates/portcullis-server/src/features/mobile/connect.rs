//! "Connect this server": the deep link a mobile app scans to learn which server to use,
//! `SCHEME://server?url=ORIGIN`, as JSON and as a QR code for the console's card.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use qrcodegen::{QrCode, QrCodeEcc};

use super::mobile;
use crate::http::dto::MobileConnect;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Modules of white border around the code; the QR specification asks for four.
const QUIET_ZONE: i32 = 4;

#[utoipa::path(get, path = "/v1/mobile/connect", tag = "mobile",
    responses(
        (status = 200, description = "The deep link a mobile app opens to connect to this server", body = MobileConnect),
        (status = 403, description = "feature_disabled: mobile sign-in is off", body = crate::http::dto::ErrorBody),
        (status = 404, description = "not_found: no app scheme is registered", body = crate::http::dto::ErrorBody),
    ))]
pub async fn connect(State(state): State<AppState>) -> Result<Json<MobileConnect>, ApiError> {
    Ok(Json(MobileConnect {
        url: mobile(&state).connect_url()?,
    }))
}

#[utoipa::path(get, path = "/v1/mobile/connect.svg", tag = "mobile",
    responses(
        (status = 200, description = "The connect link as a QR code (image/svg+xml)", content_type = "image/svg+xml", body = String),
        (status = 403, description = "feature_disabled: mobile sign-in is off", body = crate::http::dto::ErrorBody),
        (status = 404, description = "not_found: no app scheme is registered", body = crate::http::dto::ErrorBody),
    ))]
pub async fn connect_svg(State(state): State<AppState>) -> Result<Response, ApiError> {
    let url = mobile(&state).connect_url()?;
    let code = QrCode::encode_text(&url, QrCodeEcc::Medium)
        .map_err(|e| ApiError::internal(format!("connect link too long for a QR code: {e:?}")))?;
    let mut response = qr_svg(&code).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    Ok(response)
}

/// One path of unit squares, one per dark module, inside a quiet zone: crisp at any size
/// (`shape-rendering="crispEdges"`), and small (a 33×33 code is ≈ 6 KB).
fn qr_svg(code: &QrCode) -> String {
    let size = code.size();
    let full = size + 2 * QUIET_ZONE;
    let mut path = String::with_capacity((size * size * 8) as usize);
    for y in 0..size {
        for x in 0..size {
            if code.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + QUIET_ZONE, y + QUIET_ZONE));
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {full} {full}\" \
         width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\
         <path d=\"{path}\" fill=\"#000000\"/></svg>\n",
        px = full * 8
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_one_square_per_dark_module_inside_the_quiet_zone() {
        let code = QrCode::encode_text(
            "alga://server?url=https%3A%2F%2Fa.example",
            QrCodeEcc::Medium,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let svg = qr_svg(&code);
        let dark = (0..code.size())
            .flat_map(|y| (0..code.size()).map(move |x| (x, y)))
            .filter(|&(x, y)| code.get_module(x, y))
            .count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
        let full = code.size() + 8;
        assert!(svg.contains(&format!("viewBox=\"0 0 {full} {full}\"")));
        // The top-left finder pattern starts right after the quiet zone.
        assert!(svg.contains("M4,4h1v1h-1z"));
        assert!(!svg.contains("M3,"));
    }
}
