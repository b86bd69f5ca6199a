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
    let limiter = state.limiter.as_deref();
    let spent = match limiter {
        Some(limiter) if limiter.shares_budgets() => match asked(limiter, &req) {
            // Boxed: the Redis call's future is large, and this function's future (moved into
            // a box on every request) would otherwise be as large on the local path too.
            Some(asked) => Box::pin(spend_shared(limiter, asked)).await,
            None => None,
        },
        Some(limiter) => admit_here(limiter, &req),
        None => None,
    };
    if let Some((class, decision)) = spent
        && !decision.allowed
    {
        return refuse(&state, class, &decision);
    }
    let mut response = within_limit(state.body_limits, req, next).await;
    if let (Some((class, decision)), Some(limiter)) = (spent, limiter) {
        report(limiter, class, &decision, &mut response);
    }
    response
}

// The check and the report are out of line, each one compact function: inlined into this
// middleware's state machine they spread over more instruction-cache lines, and under load
// the limiter's cost is as much cache misses as instructions (bench/README.md).

/// The request's budgets spent in this process: the class and decision to report, or None
/// when the route has no limit.
#[inline(never)]
fn admit_here(limiter: &Limiter, req: &Request) -> Option<(RouteClass, Decision)> {
    spend_here(limiter, asked(limiter, req)?)
}

/// The route's `RateLimit-*` headers on an answer that carries them (`rate_limit_headers`:
/// by default once the client has at most half its budget left).
///
/// A handler with a limit of its own (the mobile exchange's per sign-in attempt, the
/// password backoff, …) puts that limit's headers on its answer and hands its quota over as
/// a response extension (`Quota::apply_to`). They stay when the handler's limit leaves less;
/// when the route's leaves less, the route's replace them whatever its share left, so the
/// headers never show the looser of two limits.
#[inline(never)]
fn report(limiter: &Limiter, class: RouteClass, decision: &Decision, response: &mut Response) {
    let write = match response.extensions().get::<Quota>() {
        Some(handlers) => decision.quota.remaining < handlers.remaining,
        None => limiter.tells(decision),
    };
    if write {
        limiter.write_headers(class, decision, response.headers_mut());
    }
}

/// A limited route's class, the client's address and the secret key's budget, if any.
struct Asked {
    class: RouteClass,
    ip: IpAddr,
    key: Option<LimitKey>,
}

fn asked(limiter: &Limiter, req: &Request) -> Option<Asked> {
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

/// The 429 answer of a spent budget. Out of line and cold: the hot path's code stays dense
/// (under load the limiter's cost is as much instruction-cache misses as instructions).
#[cold]
#[inline(never)]
fn refuse(state: &AppState, class: RouteClass, decision: &Decision) -> Response {
    if class == RouteClass::OttExchange {
        // Counted with the exchange's other outcomes, as when the handler refuses it.
        state.metrics.ott_exchange(429);
    }
    ApiError::rate_limited(
        format!(
            "too many requests ({}); retry after the Retry-After seconds",
            class.as_str()
        ),
        decision.quota.reset_secs,
    )
    .with_limit(decision.quota.limit)
    .into_response()
}

/// The client's budget and then the key's, of which the tighter decides; through Redis.
async fn spend_shared(limiter: &Limiter, asked: Asked) -> Option<(RouteClass, Decision)> {
    let Asked { class, ip, key } = asked;
    let decision = limiter.check(class, &LimitKey::client(ip)).await?;
    if decision.allowed
        && let Some(key) = key
        && let Some(by_key) = limiter.check(class, &key).await
    {
        return Some((class, decision.tighter(by_key)));
    }
    Some((class, decision))
}

/// The same in this process only: nothing to wait for.
fn spend_here(limiter: &Limiter, asked: Asked) -> Option<(RouteClass, Decision)> {
    let Asked { class, ip, key } = asked;
    let decision = limiter.check_here(class, &LimitKey::client(ip))?;
    if decision.allowed
        && let Some(key) = key
        && let Some(by_key) = limiter.check_here(class, &key)
    {
        return Some((class, decision.tighter(by_key)));
    }
    Some((class, decision))
}
