//! Wiring: configuration in, a bound server out. `main` only parses the command line and
//! calls [`Server::start`]; tests call it too, on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use portcullis_store::Store;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::{Config, ConfigError};
use crate::http::correlation;
use crate::http::error::ApiError;
use crate::infra::changes::ChangeListeners;
use crate::infra::crypto::{derive_key, label};
use crate::infra::metrics::Metrics;
use crate::infra::passwords::PasswordHasher;
use crate::infra::session_cache::SessionCache;
use crate::state::{AppState, Inner};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] portcullis_store::StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::infra::keys::KeyError),
    #[error(transparent)]
    Webhooks(#[from] crate::infra::webhooks::SenderError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Server {
    listener: TcpListener,
    /// Whether this node runs the webhook delivery worker (`webhook_worker`).
    webhook_worker: bool,
    router: Router,
    pub state: AppState,
    pub local_addr: SocketAddr,
}

impl Server {
    /// Opens and migrates the database, binds the listener, and builds the app.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.prepare_data_dir()?;
        let master_key = config.master_key()?;
        let store = portcullis_store::connect_with(
            &config.database_url(),
            portcullis_store::ConnectOptions {
                max_connections: config.database_max_connections,
            },
        )
        .await?;
        store.migrate().await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let public_url = match &config.public_url {
            Some(_) => config.public_url(),
            None => format!("http://{local_addr}"),
        };
        let state = build_state(&config, store, master_key, public_url).await?;
        let router = app(state.clone());
        Ok(Self {
            listener,
            webhook_worker: config.webhooks.worker,
            router,
            state,
            local_addr,
        })
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests; the webhook
    /// worker runs alongside and, on shutdown, finishes the attempts it has in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let worker = self.webhook_worker.then(|| {
            crate::workers::webhooks::Worker::start(
                self.state.clone(),
                (&self.state.webhook_config).into(),
            )
        });
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(worker) = worker {
            worker.stop().await;
        }
        served
    }
}

async fn build_state(
    config: &Config,
    store: Arc<dyn Store>,
    master_key: crate::config::MasterKey,
    public_url: String,
) -> Result<AppState, StartError> {
    let cache = Arc::new(SessionCache::new(
        Duration::from_millis(config.sessions.cache_ttl_ms),
        100_000,
    ));
    let webhooks_due = Arc::new(tokio::sync::Notify::new());
    let listeners = Arc::new(ChangeListeners {
        cache: cache.clone(),
        webhooks_due: webhooks_due.clone(),
    });
    // The store tells the cache (and the webhook worker) of its own commits; other nodes'
    // arrive through the feed.
    store.set_change_sink(listeners.clone());
    // Until another node's changes can be heard, serve nothing from memory.
    portcullis_store::ChangeSink::feed_up(&*cache, false);
    if !store.listen_changes(listeners).await? {
        portcullis_store::ChangeSink::feed_up(&*cache, true);
    }
    let public_origin = url::Url::parse(&public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| public_url.clone());
    // EdDSA, the default, is ready before the first request; ES256 and RS256 keys are made
    // on first use, keeping start-up fast (RSA generation takes a while).
    let keys = Arc::new(crate::infra::keys::KeyRing::open(store.clone(), &master_key).await?);
    keys.ensure_active(portcullis_core::oauth::SigningAlg::EdDSA)
        .await?;
    keys.spawn_reloader(crate::infra::keys::RELOAD_INTERVAL);
    // ES256 and RS256 keys are made in the background right away, so they are published
    // long before a client first needs one (relying parties cache the JWKS).
    let background = keys.clone();
    tokio::spawn(async move {
        for alg in [
            portcullis_core::oauth::SigningAlg::ES256,
            portcullis_core::oauth::SigningAlg::RS256,
        ] {
            if let Err(e) = background.ensure_active(alg).await {
                tracing::warn!(alg = alg.as_str(), error = %e, "could not prepare a signing key; it will be made on first use");
            }
        }
    });
    // Server-wide SSO providers load in the background: start-up never waits on an upstream.
    let sso = crate::infra::upstream::Providers::new(
        &config.sso,
        &master_key,
        store.clone(),
        config.dev,
        config.federation.sso_allow_private_networks,
    );
    sso.spawn_loader();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // Plan limits are checked inside the store's inserting transactions.
    store.platform().set_plans(config.platform.plans()?);
    let key_usage = Arc::new(crate::infra::key_usage::KeyUsage::default());
    crate::workers::key_usage::spawn(
        &key_usage,
        store.clone(),
        crate::workers::key_usage::FLUSH_INTERVAL,
    );
    let limiter = crate::infra::limiter::Limiter::new(&config.rate_limiting())?.map(Arc::new);
    if let Some(limiter) = &limiter {
        crate::workers::limiter_sweep::spawn(limiter, crate::workers::limiter_sweep::INTERVAL);
    }
    let mobile = crate::config::mobile::MobileSettings::new(
        &config.mobile,
        &public_url,
        derive_key(&master_key, label::MOBILE_SESSION),
    )?;
    let webhooks = Arc::new(crate::infra::webhooks::Sender::new(
        &master_key,
        config.webhooks.timeout(),
        crate::infra::webhooks::UrlPolicy {
            dev: config.dev,
            allow_private: config.federation.sso_allow_private_networks,
        },
        crate::infra::webhooks::SendLimits::new(&config.webhooks),
    )?);
    Ok(AppState(Arc::new(Inner {
        webhooks,
        webhook_config: config.webhooks.clone(),
        webhooks_due,
        store,
        cache,
        hasher: PasswordHasher::new(config.password_hash_concurrency.unwrap_or(cores)),
        metrics: Metrics::default(),
        sessions: config.sessions.policy(),
        secure_cookies: public_url.starts_with("https://"),
        public_origin,
        dev: config.dev,
        config: Arc::new(config.clone()),
        oidc: crate::config::oidc::OidcSettings::new(
            &public_url,
            crate::features::oidc::discovery::document(&public_url),
            derive_key(&master_key, label::REFRESH_ROTATION),
            &config.oidc,
        ),
        public_url,
        master_key,
        keys,
        sso,
        dns: crate::infra::dns::TxtResolver::new(config.federation.resolver_addr()?),
        free_mail_domains: config.federation.free_mail_domains.0.clone(),
        mobile,
        mobile_limits: crate::infra::rate_limit::ExchangeLimits::new(&config.mobile),
        sign_in_limits: crate::infra::attempts::SignInLimits::new(
            &config.security,
            Arc::new(crate::infra::attempts::MemoryAttempts::default()),
        ),
        password_login: config.password_login,
        key_usage,
        limiter,
        body_limits: crate::http::limits::BodyLimits {
            form: config.security.max_form_body_bytes,
            json: config.security.max_json_body_bytes,
        },
        metrics_token: config
            .security
            .metrics_token
            .as_ref()
            .map(|t| portcullis_core::TokenHash::of(t.expose())),
    })))
}

/// The route table: every feature's routes, and the envelope for unknown routes.
pub fn router(state: AppState) -> Router {
    use crate::features::*;
    Router::new()
        .merge(ops::routes())
        .merge(crate::openapi::routes())
        .merge(signing_keys::routes())
        .merge(auth::routes())
        .merge(sso::routes())
        .merge(me::routes())
        .merge(orgs::routes())
        .merge(invitations::routes())
        .merge(domains::routes())
        .merge(projects::routes())
        .merge(clients::routes())
        .merge(webhooks::routes())
        .merge(platform::routes())
        .merge(mobile::routes())
        .merge(oidc::routes())
        .merge(console::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}

/// The route table behind the edge: every body read within its route's limit (our own
/// limits, axum's told the same), inside the request observer.
pub fn app(state: AppState) -> Router {
    let limits = state.body_limits;
    // Before any body is read: a flood is refused at the cost of a counter. With rate
    // limiting off the throttle is left out, so the hot path does not pay for it; with it on,
    // throttle and body limit share one layer.
    let routes = router(state.clone());
    let app = if state.limiter.is_some() {
        routes.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::throttle::throttle_then_limit_body,
        ))
    } else {
        routes.layer(axum::middleware::from_fn_with_state(
            limits,
            crate::http::limits::limit_body,
        ))
    };
    let app = app.layer(axum::extract::DefaultBodyLimit::max(limits.largest()));
    app.layer(axum::middleware::from_fn_with_state(state, observe))
}

/// Every request: a correlation id (kept or made), a span carrying it for every log line,
/// the `x-correlation-id` response header, an access log line and the metrics.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = correlation::from_header(req.headers().get(correlation::HEADER));
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let route_str = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!("request", correlation_id = %id, method, route = route_str);
    let header = HeaderValue::from_str(&id).ok();
    let mut response = correlation::scope(id, next.run(req))
        .instrument(span.clone())
        .await;
    if let Some(h) = header {
        response.headers_mut().insert(correlation::HEADER, h);
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.record(method, route_str, status, elapsed);
    span.in_scope(|| tracing::info!(status, elapsed_us = elapsed.as_micros() as u64, "handled"));
    response
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match *m {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
