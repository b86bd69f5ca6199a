//! Liveness, readiness, metrics and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use portcullis_core::TokenHash;

use crate::http::dto::{Health, Readiness, ReadinessCheck};
use crate::http::error::ApiError;
use crate::state::AppState;

use crate::{COMMIT, VERSION};

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: VERSION.into(),
        commit: COMMIT.into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Database reachable and migrations applied", body = Readiness),
        (status = 503, description = "A check failed; `checks` names it", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let db = state.store.ping().await;
    checks.push(ReadinessCheck {
        name: "database".into(),
        ok: db.is_ok(),
        error: db.err().map(|e| e.to_string()),
    });
    let migrations = state.store.migrations_current().await;
    let (ok, error) = match migrations {
        Ok(true) => (true, None),
        Ok(false) => (
            false,
            Some("migrations pending: run `portcullis migrate`".to_owned()),
        ),
        Err(e) => (false, Some(e.to_string())),
    };
    checks.push(ReadinessCheck {
        name: "migrations".into(),
        ok,
        error,
    });
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" }.into(),
            checks,
        }),
    )
        .into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "unauthenticated: metrics_token is set and the request did not bear it", body = crate::http::dto::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.metrics_token {
        // Hashes compared in constant time: neither the token nor its length leaks.
        let presented = portcullis_guard::bearer(&headers).map(TokenHash::of);
        if !presented.is_some_and(|p| p.ct_eq(expected)) {
            return ApiError::unauthenticated(
                "metrics require Authorization: Bearer with the configured metrics_token",
            )
            .into_response();
        }
    }
    let mut text = state
        .metrics
        .render(&state.cache.lookups(), &state.store.pool_stats());
    // The webhook queue lives in the database; every node reports the same shared queue.
    let now = portcullis_core::now();
    match state.store.webhooks().backlog(now).await {
        Ok(b) => crate::infra::metrics::render_webhook_backlog(
            &mut text,
            b.pending,
            b.unfanned,
            b.oldest_due
                .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0)),
        ),
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the webhook queue"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
