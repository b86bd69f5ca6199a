//! The rate-limit edge: classifies the matched route, spends the client's (and the secret
//! key's) budget, and answers `429 rate_limited` or adds the `RateLimit-*` headers.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::limits::within_limit;
use crate::infra::limiter::{Decision, LimitKey, Limiter, RouteClass};
use crate::infra::rate_limit::Quota;
use crate::state::AppState;

/// The rate limit and then the body limit, in one layer (each `from_fn` layer costs a boxed
/// future and a service clone per request; this is the edge of every route when limiting is on).
pub async fn throttle_then_limit_body(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    // What the limiter needs, read before any await: a `&Request` is not `Send`.
    let asked = asked(&state, &req);
    let decision = match admit(&state, asked).await {
        Ok(decision) => decision,
        Err(refused) => return refused,
    };
    let mut response = within_limit(state.body_limits, req, next).await;
    if let (Some((class, decision)), Some(limiter)) = (decision, state.limiter.as_deref()) {
        // A handler's own limit (the mobile exchange's per sign-in attempt, the password
        // backoff, …) keeps its headers when it leaves less than the route's; it hands its
        // quota over as a response extension (`Quota::apply_to`).
        let handlers = response.extensions().get::<Quota>().map(|q| q.remaining);
        if handlers.is_none_or(|left| decision.quota.remaining < left) {
            limiter.write_headers(class, &decision, response.headers_mut());
        }
    }
    response
}

/// A limited route's class, the client's address and the secret key's budget, if any.
struct Asked {
    class: RouteClass,
    ip: IpAddr,
    key: Option<LimitKey>,
}

fn asked(state: &AppState, req: &Request) -> Option<Asked> {
    let limiter = state.limiter.as_deref()?;
    let class = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| RouteClass::of(req.method(), route.as_str()))?;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    Some(Asked {
        class,
        ip: limiter.client_ip(peer, req.headers()),
        key: match class {
            RouteClass::Management => LimitKey::secret_key(req.headers()),
            _ => None,
        },
    })
}

/// Spends the request's budgets: Ok with the class and decision to report (None when the
/// route has no limit), or the 429 answer.
async fn admit(
    state: &AppState,
    asked: Option<Asked>,
) -> Result<Option<(RouteClass, Decision)>, Response> {
    let (Some(limiter), Some(Asked { class, ip, key })) = (state.limiter.as_deref(), asked) else {
        return Ok(None);
    };
    let decision = if limiter.shares_budgets() {
        spend_shared(limiter, class, LimitKey::client(ip), key).await
    } else {
        spend_here(limiter, class, LimitKey::client(ip), key)
    };
    let Some(decision) = decision else {
        return Ok(None);
    };
    if !decision.allowed {
        if class == RouteClass::OttExchange {
            // Counted with the exchange's other outcomes, as when the handler refuses it.
            state.metrics.ott_exchange(429);
        }
        return Err(ApiError::rate_limited(
            format!(
                "too many requests ({}); retry after the Retry-After seconds",
                class.as_str()
            ),
            decision.quota.reset_secs,
        )
        .with_limit(decision.quota.limit)
        .into_response());
    }
    Ok(Some((class, decision)))
}

/// The client's budget and then the key's, of which the tighter decides.
async fn spend_shared(
    limiter: &Limiter,
    class: RouteClass,
    client: LimitKey,
    key: Option<LimitKey>,
) -> Option<Decision> {
    let decision = limiter.check(class, &client).await?;
    if decision.allowed
        && let Some(key) = key
        && let Some(by_key) = limiter.check(class, &key).await
    {
        return Some(decision.tighter(by_key));
    }
    Some(decision)
}

/// The same in this process only: nothing to wait for.
fn spend_here(
    limiter: &Limiter,
    class: RouteClass,
    client: LimitKey,
    key: Option<LimitKey>,
) -> Option<Decision> {
    let decision = limiter.check_here(class, &client)?;
    if decision.allowed
        && let Some(key) = key
        && let Some(by_key) = limiter.check_here(class, &key)
    {
        return Some(decision.tighter(by_key));
    }
    Some(decision)
}
