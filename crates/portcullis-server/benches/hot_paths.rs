//! Micro-benchmarks of the work `GET /v1/me` does per request once a session is cached.
//!
//! Every group carries a trivial baseline measured in the same run (hashing nothing, one
//! header lookup, a plain map lookup, serializing a string, the bare axum "hello" router),
//! so a figure is read as a ratio against it, never as an absolute time: absolute numbers
//! depend on the machine and on what else it is doing.
//!
//! Run with `cargo bench -p portcullis-server --bench hot_paths`; add a filter such as
//! `-- token_hash` to run one group.

// A benchmark is a test harness: a broken fixture should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::{
    Email, PosixId, Role, SessionPolicy, SessionToken, TokenHash, User, UserId, UserName,
};
use portcullis_server::http::dto::{MeResponse, MembershipDto, SessionDto, UserDto};
use portcullis_server::infra::session_cache::SessionCache;
use portcullis_store::{MembershipView, ProjectView, SessionWithUser};
use tower::ServiceExt;

/// A token shaped like the ones the server issues (base64url of 32 bytes, 43 characters).
fn token() -> String {
    SessionToken::generate()
        .expect("system randomness")
        .expose()
        .to_owned()
}

/// A signed-up user as the store returns it: one session, one personal org with its
/// default project — what `/v1/me` serves for a fresh account.
fn fixture(token: &str) -> (SessionWithUser, Vec<MembershipView>) {
    let now = portcullis_core::now();
    let email = Email::parse("bench.user@example.com").expect("valid email");
    let name = UserName::parse("Bench User").expect("valid name");
    let user = User {
        id: UserId::new(),
        email: email.clone(),
        name: Some(name.clone()),
        posix: PosixId::from_allocated(PosixId::FIRST),
        is_platform_admin: false,
        created_at: now,
    };
    let session = SessionPolicy::default().new_session(
        user.id,
        TokenHash::of(token),
        now,
        Some("127.0.0.1".to_owned()),
        Some("wrk/4.1.0".to_owned()),
    );
    let (org, project) =
        portcullis_core::bootstrap::personal_org(&email, Some(&name)).expect("valid org");
    let memberships = vec![MembershipView {
        org,
        role: Role::Owner,
        projects: vec![ProjectView {
            project,
            role: Role::Owner,
        }],
    }];
    (SessionWithUser { session, user }, memberships)
}

/// Request headers as a browser sends them: a few unrelated cookies around the session one.
fn browser_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("auth.example.com"));
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"),
    );
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    h.insert(
        header::ACCEPT_LANGUAGE,
        HeaderValue::from_static("en-GB,en;q=0.8"),
    );
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!(
            "_ga=GA1.1.123456789.1700000000; theme=dark; portcullis_session={token}; lang=en"
        ))
        .expect("valid cookie header"),
    );
    h
}

fn token_hash(c: &mut Criterion) {
    let token = token();
    let mut g = c.benchmark_group("token_hash");
    g.bench_function("baseline_sha256_0_bytes", |b| {
        b.iter(|| TokenHash::of(black_box("")))
    });
    g.bench_function("session_token_43_bytes", |b| {
        b.iter(|| TokenHash::of(black_box(token.as_str())))
    });
    g.finish();
}

fn credential(c: &mut Criterion) {
    let token = token();
    let cookie = browser_headers(&token);
    let mut bearer = browser_headers(&token);
    bearer.remove(header::COOKIE);
    bearer.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("valid header"),
    );
    let mut g = c.benchmark_group("credential");
    g.bench_function("baseline_header_lookup", |b| {
        b.iter(|| black_box(&cookie).get(header::COOKIE).map(|v| v.len()))
    });
    g.bench_function("baseline_header_map_clone", |b| {
        b.iter(|| black_box(&cookie).clone())
    });
    let any = portcullis_guard::CookiePolicy::AnyName;
    g.bench_function("cookie_among_four", |b| {
        b.iter(|| portcullis_guard::credential(black_box(&cookie), any).map(|c| c.token().len()))
    });
    // Behind https: the `__Host-` cookie, with only the prefixed names accepted.
    let mut host_cookie = cookie.clone();
    host_cookie.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!(
            "_ga=GA1.1.123456789.1700000000; theme=dark; __Host-portcullis_session={token}; lang=en"
        ))
        .expect("valid cookie header"),
    );
    let prefixed = portcullis_guard::CookiePolicy::PrefixedOnly;
    g.bench_function("host_cookie_among_four_https", |b| {
        b.iter(|| {
            portcullis_guard::credential(black_box(&host_cookie), prefixed).map(|c| c.token().len())
        })
    });
    g.bench_function("bearer_fallback", |b| {
        b.iter(|| portcullis_guard::credential(black_box(&bearer), any).map(|c| c.token().len()))
    });
    g.finish();
}

/// `Params::parse` runs before authentication on the OAuth endpoints and the sign-in pages:
/// a request at the parameter cap against a flood of 10,000 distinct parameters, which is
/// refused after the cap (it took seconds when repeats were looked for pairwise).
fn params(c: &mut Criterion) {
    use portcullis_server::http::params::{MAX_PARAMETERS, Params};
    let body = |n: usize| {
        (0..n)
            .map(|i| format!("param_{i}=value_{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let at_cap = body(MAX_PARAMETERS);
    let flood = body(10_000);
    let mut g = c.benchmark_group("params");
    g.bench_function("baseline_decode_64", |b| {
        b.iter(|| url::form_urlencoded::parse(black_box(at_cap.as_bytes())).count())
    });
    g.bench_function("parse_64", |b| {
        b.iter(|| Params::parse(black_box(at_cap.as_bytes())).is_ok())
    });
    g.bench_function("parse_10k_refused", |b| {
        b.iter(|| Params::parse(black_box(flood.as_bytes())).is_err())
    });
    g.finish();
}

fn session_cache(c: &mut Criterion) {
    let token = token();
    let hash = TokenHash::of(&token);
    let (session, _) = fixture(&token);
    let mut g = c.benchmark_group("session_cache");

    let plain: HashMap<TokenHash, Arc<SessionWithUser>> =
        HashMap::from([(hash, Arc::new(session.clone()))]);
    g.bench_function("baseline_hashmap_get_arc_clone", |b| {
        b.iter(|| plain.get(black_box(&hash)).cloned())
    });

    let cache = SessionCache::new(Duration::from_secs(3600), 100_000);
    cache.put_session(cache.epoch(), session.clone());
    assert!(
        cache.session(&hash).is_some(),
        "the cache must serve the entry"
    );
    g.bench_function("hit", |b| b.iter(|| cache.session(black_box(&hash))));

    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    cache.put_me_body(cache.epoch(), hash, body.clone());
    assert!(
        cache.me_body(&hash).is_some(),
        "the cache must serve the body"
    );
    g.bench_function("me_body_hit", |b| {
        b.iter(|| cache.me_body(black_box(&hash)))
    });

    g.bench_function("put_then_hit", |b| {
        b.iter_batched(
            || session.clone(),
            |s| {
                let epoch = cache.epoch();
                cache.put_session(epoch, s);
                cache.session(black_box(&hash))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn me_response(c: &mut Criterion) {
    let token = token();
    let (session, memberships) = fixture(&token);
    let build = || MeResponse {
        context: None,
        user: (&session.user).into(),
        session: SessionDto::new(&session.session, Some(session.session.id)),
        memberships: memberships.iter().map(MembershipDto::from).collect(),
    };
    let built = build();
    let mut g = c.benchmark_group("me_response");
    g.bench_function("baseline_serialize_str", |b| {
        b.iter(|| serde_json::to_vec(black_box("hello")).expect("serializable"))
    });
    g.bench_function("serialize", |b| {
        b.iter(|| serde_json::to_vec(black_box(&built)).expect("serializable"))
    });
    g.bench_function("build_and_serialize", |b| {
        b.iter(|| serde_json::to_vec(&build()).expect("serializable"))
    });
    g.bench_function("user_dto_only", |b| {
        b.iter(|| UserDto::from(black_box(&session.user)))
    });
    g.finish();
}

/// Removes the benchmark's data directory however the run ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The whole `/v1/me` request in process (no socket, no HTTP parsing): the portcullis router
/// on a fresh SQLite data dir against the bare axum "hello" router. Logging is installed at
/// `warn`, as `bench/run.sh` runs the server.
fn router(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::sink)
        .json()
        .try_init();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "portcullis-bench-{}-{}",
        std::process::id(),
        UserId::new().0.simple()
    )));
    let config = portcullis_server::Config {
        listen: "127.0.0.1:0".parse().expect("socket address"),
        data_dir: dir.0.clone(),
        ..Default::default()
    };
    let (app, cookie) = rt.block_on(async {
        let server = portcullis_server::Server::start(config)
            .await
            .expect("server starts");
        let app = portcullis_server::app::app(server.state.clone());
        let signup = Request::post("/v1/auth/signup")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"email":"bench@example.com","password":"correct horse battery staple"}"#,
            ))
            .expect("request");
        let res = app.clone().oneshot(signup).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::CREATED, "signup");
        let set_cookie = res.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ascii cookie");
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        (app, cookie)
    });
    let hello = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));

    let me = |app: axum::Router, cookie: &str| {
        let req = Request::get("/v1/me")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("request");
        async move {
            let res = app.oneshot(req).await.expect("infallible");
            debug_assert_eq!(res.status(), StatusCode::OK);
            axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .expect("body")
        }
    };
    // The first request fills the caches; every measured one is a hit.
    let first = rt.block_on(me(app.clone(), &cookie));
    assert!(first.starts_with(b"{\"user\""), "unexpected /v1/me body");

    let mut g = c.benchmark_group("router");
    g.bench_function("baseline_hello", |b| {
        b.iter(|| {
            let req = Request::get("/").body(Body::empty()).expect("request");
            let app = hello.clone();
            rt.block_on(async move {
                let res = app.oneshot(req).await.expect("infallible");
                axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .expect("body")
            })
        })
    });
    g.bench_function("me_by_cookie", |b| {
        b.iter(|| rt.block_on(me(app.clone(), &cookie)))
    });
    g.finish();
    drop(dir);
}

criterion_group!(
    benches,
    token_hash,
    credential,
    params,
    session_cache,
    me_response,
    router
);
criterion_main!(benches);
