//! Prometheus metrics. A tiny registry of atomics rather than a metrics framework: the hot
//! path takes one read lock and a few relaxed increments, and the product's counters are
//! fixed arrays indexed by their label, so counting never allocates or locks.
//!
//! Families: HTTP requests and latency by route; sign-ins, tokens issued, refresh-token
//! reuse, one-time-token exchanges and rate-limited answers; the session cache; the database
//! pools; the process. `docs/operations.md` lists them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_core::oauth::GrantType;
use portcullis_store::PoolStats;

use crate::infra::session_cache::CacheLookups;

mod process;
mod scraped;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// Route template → (method, status) → series. Keyed by route first so the hot path can
/// look up with the borrowed `&str` of the matched path, without allocating.
type Table = BTreeMap<String, BTreeMap<(&'static str, u16), Series>>;

/// How a user proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    /// Email and password: the JSON API, the provider's login page, the mobile hand-off page.
    Password,
    /// An upstream identity provider's callback.
    Sso,
    /// The app redeeming its one-time token (after a password or SSO step in the browser).
    Mobile,
}

/// The grant a token pair was issued under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenGrant {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    MobileExchange,
    MobileRefresh,
}

impl From<GrantType> for TokenGrant {
    fn from(g: GrantType) -> Self {
        match g {
            GrantType::AuthorizationCode => TokenGrant::AuthorizationCode,
            GrantType::RefreshToken => TokenGrant::RefreshToken,
            GrantType::ClientCredentials => TokenGrant::ClientCredentials,
        }
    }
}

/// Which refresh-token flow saw a rotated token come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshFlow {
    Oauth,
    Mobile,
}

const SIGN_IN_METHODS: [&str; 3] = ["password", "sso", "mobile"];
const SIGN_IN_OUTCOMES: [&str; 2] = ["succeeded", "failed"];
const GRANTS: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "mobile_exchange",
    "mobile_refresh",
];
const REFRESH_FLOWS: [&str; 2] = ["oauth", "mobile"];

/// How a one-time-token exchange ended, from the status it was answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OttOutcome {
    /// 2xx: the app has its token pair.
    Succeeded,
    /// 401 `ott_invalid`: unknown, spent or expired token, wrong state or PKCE verifier.
    Invalid,
    RateLimited,
    /// Another 4xx: a malformed request, a host, feature or membership refusal.
    Rejected,
    /// 5xx.
    Error,
}

const OTT_OUTCOMES: [&str; 5] = ["succeeded", "invalid", "rate_limited", "rejected", "error"];

impl OttOutcome {
    fn of(status: u16) -> Self {
        match status {
            200..=299 => OttOutcome::Succeeded,
            401 => OttOutcome::Invalid,
            429 => OttOutcome::RateLimited,
            500..=599 => OttOutcome::Error,
            _ => OttOutcome::Rejected,
        }
    }
}

/// Families of routes, for the rate-limit counter: few values, whatever routes are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteClass {
    SignIn,
    Mobile,
    Oauth2,
    Api,
    Other,
}

const ROUTE_CLASSES: [&str; 5] = ["sign_in", "mobile", "oauth2", "api", "other"];

impl RouteClass {
    fn of(route: &str) -> Self {
        if route.starts_with("/api/v1/mobile/") || route.starts_with("/auth/mobile/") {
            RouteClass::Mobile
        } else if route.starts_with("/v1/auth/") || route == "/oauth2/login" {
            RouteClass::SignIn
        } else if route.starts_with("/oauth2/") {
            RouteClass::Oauth2
        } else if route.starts_with("/v1/") {
            RouteClass::Api
        } else {
            RouteClass::Other
        }
    }
}

/// Counters indexed by one label's position in its list of values.
struct Counters<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Counters<N> {
    fn inc(&self, i: usize) {
        if let Some(c) = self.0.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, i: usize) -> u64 {
        self.0.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
pub struct Metrics {
    series: RwLock<Table>,
    /// method × outcome, row-major.
    sign_ins: Counters<6>,
    tokens: Counters<5>,
    refresh_reuse: Counters<2>,
    ott_exchanges: Counters<5>,
    rate_limited: Counters<5>,
    webhook_attempts: Counters<3>,
    webhook_rounds: Counters<4>,
}

/// How a webhook attempt ended, as `portcullis_webhook_deliveries_total` counts it.
const WEBHOOK_OUTCOMES: [&str; 3] = ["succeeded", "retrying", "failed"];

/// Why the webhook worker looked for work, as `portcullis_webhook_worker_rounds_total`
/// counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerRound {
    /// The round before found work: there may be more.
    Busy = 0,
    /// A unit here or on another node committed webhook work.
    Woken = 1,
    /// A retry, a lease expiry or the minute's retention pass came due.
    Scheduled = 2,
    /// Nothing woke it for `webhook_fallback_poll_ms` (and the first round at start).
    Fallback = 3,
}

const WORKER_ROUNDS: [&str; 4] = ["busy", "woken", "scheduled", "fallback"];

impl Metrics {
    /// One answered request. Also the one place every `429 rate_limited` passes, so the
    /// rate-limit counter is kept here, by route class.
    pub fn record(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        if status == 429 {
            self.rate_limited.inc(RouteClass::of(route) as usize);
        }
        let observe = |s: &Series| {
            s.count.fetch_add(1, Ordering::Relaxed);
            s.sum_micros
                .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
            let secs = elapsed.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        };
        if let Ok(map) = self.series.read()
            && let Some(s) = map.get(route).and_then(|r| r.get(&(method, status)))
        {
            observe(s);
            return;
        }
        if let Ok(mut map) = self.series.write() {
            observe(
                map.entry(route.to_owned())
                    .or_default()
                    .entry((method, status))
                    .or_default(),
            );
        }
    }

    /// A sign-in ended: `succeeded` when it opened a session (for mobile: issued the app's
    /// tokens), `failed` when it was audited as `login.failed` (mobile: `ott_invalid`).
    pub fn sign_in(&self, method: SignInMethod, succeeded: bool) {
        self.sign_ins
            .inc(method as usize * SIGN_IN_OUTCOMES.len() + usize::from(!succeeded));
    }

    pub fn token_issued(&self, grant: TokenGrant) {
        self.tokens.inc(grant as usize);
    }

    pub fn refresh_reuse_detected(&self, flow: RefreshFlow) {
        self.refresh_reuse.inc(flow as usize);
    }

    /// An answer of the mobile exchange endpoint, classified by its status. A success is
    /// also the app's sign-in and a `mobile_exchange` token pair; an `ott_invalid` (401) is
    /// a failed mobile sign-in.
    pub fn ott_exchange(&self, status: u16) {
        let outcome = OttOutcome::of(status);
        self.ott_exchanges.inc(outcome as usize);
        match outcome {
            OttOutcome::Succeeded => {
                self.sign_in(SignInMethod::Mobile, true);
                self.token_issued(TokenGrant::MobileExchange);
            }
            OttOutcome::Invalid => self.sign_in(SignInMethod::Mobile, false),
            _ => {}
        }
    }

    /// One webhook attempt: `succeeded`, `retrying` (failed, another attempt is scheduled) or
    /// `failed` (failed, the schedule is spent).
    pub fn webhook_attempt(&self, outcome: &str) {
        if let Some(i) = WEBHOOK_OUTCOMES.iter().position(|o| *o == outcome) {
            self.webhook_attempts.inc(i);
        }
    }

    /// One round of the webhook worker (fan out, claim), by why it ran.
    pub fn webhook_round(&self, why: WorkerRound) {
        self.webhook_rounds.inc(why as usize);
    }

    /// The Prometheus text exposition format (version 0.0.4): this registry's families,
    /// then the session cache's, the database pools' and the process's.
    pub fn render(&self, cache: &[CacheLookups], pools: &[PoolStats]) -> String {
        let mut out = String::with_capacity(8192);
        self.render_http(&mut out);
        self.render_product(&mut out);
        scraped::render_cache(&mut out, cache);
        scraped::render_pools(&mut out, pools);
        process::render(&mut out);
        out
    }

    fn render_http(&self, out: &mut String) {
        let Ok(map) = self.series.read() else {
            return;
        };
        family(
            out,
            "portcullis_http_requests_total",
            "counter",
            "HTTP requests by method, route template and status.",
        );
        let all = || {
            map.iter()
                .flat_map(|(route, r)| r.iter().map(move |((m, st), s)| (*m, route, *st, s)))
        };
        for (method, route, status, s) in all() {
            let _ = writeln!(
                out,
                "portcullis_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                s.count.load(Ordering::Relaxed)
            );
        }
        family(
            out,
            "portcullis_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by method, route template and status.",
        );
        for (method, route, status, s) in all() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "portcullis_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
    }

    fn render_product(&self, out: &mut String) {
        family(
            out,
            "portcullis_sign_ins_total",
            "counter",
            "Sign-ins by method and outcome (failed: audited as login.failed, or ott_invalid).",
        );
        for (m, method) in SIGN_IN_METHODS.iter().enumerate() {
            for (o, outcome) in SIGN_IN_OUTCOMES.iter().enumerate() {
                let n = self.sign_ins.get(m * SIGN_IN_OUTCOMES.len() + o);
                let _ = writeln!(
                    out,
                    "portcullis_sign_ins_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        labelled(
            out,
            "portcullis_tokens_issued_total",
            "Access tokens issued, by grant.",
            "grant",
            &GRANTS,
            &self.tokens,
        );
        labelled(
            out,
            "portcullis_refresh_token_reuse_detected_total",
            "Rotated refresh tokens presented again; each revoked its family.",
            "flow",
            &REFRESH_FLOWS,
            &self.refresh_reuse,
        );
        labelled(
            out,
            "portcullis_mobile_ott_exchanges_total",
            "Mobile one-time-token exchanges by outcome.",
            "outcome",
            &OTT_OUTCOMES,
            &self.ott_exchanges,
        );
        labelled(
            out,
            "portcullis_rate_limited_total",
            "Requests answered 429 rate_limited, by route class.",
            "route_class",
            &ROUTE_CLASSES,
            &self.rate_limited,
        );
        labelled(
            out,
            "portcullis_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (retrying: failed, another attempt is scheduled).",
            "outcome",
            &WEBHOOK_OUTCOMES,
            &self.webhook_attempts,
        );
        labelled(
            out,
            "portcullis_webhook_worker_rounds_total",
            "Rounds of the webhook worker (each a fan-out and a claim), by what started them; an idle node counts a fallback round per webhook_fallback_poll_ms and a scheduled one a minute (retention).",
            "reason",
            &WORKER_ROUNDS,
            &self.webhook_rounds,
        );
    }
}

/// The webhook queue, read from the database at scrape time: deliveries pending, outbox
/// events not yet fanned out, and how long the oldest due item has waited.
pub fn render_webhook_backlog(out: &mut String, pending: u64, unfanned: u64, oldest_due_secs: f64) {
    family(
        out,
        "portcullis_webhook_queue_depth",
        "gauge",
        "Webhook deliveries pending (due or awaiting a retry) of enabled endpoints, and outbox events not yet fanned out.",
    );
    let _ = writeln!(
        out,
        "portcullis_webhook_queue_depth{{stage=\"deliveries\"}} {pending}"
    );
    let _ = writeln!(
        out,
        "portcullis_webhook_queue_depth{{stage=\"outbox\"}} {unfanned}"
    );
    family(
        out,
        "portcullis_webhook_oldest_due_age_seconds",
        "gauge",
        "How long the oldest due webhook delivery or outbox event has waited (0 when none is due).",
    );
    let _ = writeln!(
        out,
        "portcullis_webhook_oldest_due_age_seconds {oldest_due_secs:.3}"
    );
}

/// A family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family with one label, every value present (zero until counted).
fn labelled<const N: usize>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &[&str; N],
    counters: &Counters<N>,
) {
    family(out, name, "counter", help);
    for (i, v) in values.iter().enumerate() {
        let _ = writeln!(out, "{name}{{{label}=\"{v}\"}} {}", counters.get(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(m: &Metrics) -> String {
        m.render(&[], &[])
    }

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("GET", "/v1/me", 200, Duration::from_micros(300));
        m.record("GET", "/v1/me", 200, Duration::from_millis(20));
        m.record("GET", "/v1/me", 401, Duration::from_micros(100));
        let text = render(&m);
        assert!(text.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"/v1/me\",status=\"200\"} 2"
        ));
        assert!(text.contains("status=\"401\"} 1"));
        assert!(text.contains("route=\"/v1/me\",status=\"200\",le=\"0.0005\"} 1"));
        assert!(text.contains("route=\"/v1/me\",status=\"200\",le=\"0.025\"} 2"));
        assert!(text.contains("route=\"/v1/me\",status=\"200\",le=\"+Inf\"} 2"));
    }

    #[test]
    fn product_counters_land_under_their_labels() {
        let m = Metrics::default();
        m.sign_in(SignInMethod::Sso, false);
        m.sign_in(SignInMethod::Password, true);
        m.token_issued(GrantType::ClientCredentials.into());
        m.refresh_reuse_detected(RefreshFlow::Mobile);
        m.ott_exchange(200);
        m.ott_exchange(401);
        m.ott_exchange(403);
        m.record("POST", "/api/v1/mobile/auth/exchange", 429, Duration::ZERO);
        m.record("POST", "/v1/auth/login", 429, Duration::ZERO);
        let text = render(&m);
        for line in [
            "portcullis_sign_ins_total{method=\"sso\",outcome=\"failed\"} 1",
            "portcullis_sign_ins_total{method=\"sso\",outcome=\"succeeded\"} 0",
            "portcullis_sign_ins_total{method=\"password\",outcome=\"succeeded\"} 1",
            "portcullis_sign_ins_total{method=\"mobile\",outcome=\"succeeded\"} 1",
            "portcullis_sign_ins_total{method=\"mobile\",outcome=\"failed\"} 1",
            "portcullis_tokens_issued_total{grant=\"client_credentials\"} 1",
            "portcullis_tokens_issued_total{grant=\"mobile_exchange\"} 1",
            "portcullis_refresh_token_reuse_detected_total{flow=\"mobile\"} 1",
            "portcullis_mobile_ott_exchanges_total{outcome=\"invalid\"} 1",
            "portcullis_mobile_ott_exchanges_total{outcome=\"rejected\"} 1",
            "portcullis_rate_limited_total{route_class=\"mobile\"} 1",
            "portcullis_rate_limited_total{route_class=\"sign_in\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
