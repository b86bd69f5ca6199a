//! The rate-limit edge: classifies the matched route, spends the client's (and the secret
//! key's) budget, and answers `429 rate_limited` or adds the `RateLimit-*` headers.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::infra::limiter::{LimitKey, RouteClass};
use crate::state::AppState;

pub async fn throttle(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limiter) = state.limiter.as_deref() else {
        return next.run(req).await;
    };
    let class = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| RouteClass::of(req.method(), route.as_str()));
    let Some(class) = class else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = limiter.client_ip(peer, req.headers());
    let Some(mut decision) = limiter.check(class, &LimitKey::Ip(ip)).await else {
        return next.run(req).await;
    };
    if decision.allowed
        && class == RouteClass::Management
        && let Some(key) = LimitKey::secret_key(req.headers())
        && let Some(by_key) = limiter.check(class, &key).await
    {
        decision = decision.tighter(by_key);
    }
    if !decision.allowed {
        if class == RouteClass::OttExchange {
            // Counted with the exchange's other outcomes, as when the handler refuses it.
            state.metrics.ott_exchange(429);
        }
        return ApiError::rate_limited(
            format!(
                "too many requests ({}); retry after the Retry-After seconds",
                class.as_str()
            ),
            decision.quota.reset_secs,
        )
        .with_limit(decision.quota.limit)
        .into_response();
    }
    let mut response = next.run(req).await;
    // A handler's own limit (the mobile exchange's, per sign-in attempt) keeps its headers
    // when it leaves less than the route's.
    let handlers = response
        .headers()
        .get("ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if handlers.is_none_or(|left| decision.quota.remaining < left) {
        decision.quota.write_headers(response.headers_mut());
    }
    response
}
