#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Test harness: a real server on 127.0.0.1:0 over a real database (a temp SQLite file or a
//! fresh PostgreSQL database), spoken to over HTTP.
#![allow(dead_code)]

pub mod dns;
pub mod receiver;
pub mod upstream;

use std::path::PathBuf;

use portcullis_server::{Config, Server};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The running server's state, for tests that call what HTTP does not expose.
    pub state: portcullis_server::state::AppState,
    _pg: Option<portcullis_store::testing::TestDatabase>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// False for [`TestApp::another_node`]: the first node's directory is not its to remove.
    owns_data_dir: bool,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The session token from `Set-Cookie`, if one was set.
    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookie().and_then(|c| {
            let (name_value, _) = c.split_once(';')?;
            let (_, value) = name_value.split_once('=')?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the error envelope: status, code, and a correlation id matching the header.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message missing: {}",
            self.body
        );
        let header = self
            .headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(!header.is_empty());
        assert_eq!(self.body["correlation_id"], json!(header));
    }
}

#[derive(Clone)]
pub struct Signed {
    pub token: String,
    pub user_id: String,
    pub org_id: String,
    pub project_id: String,
    pub email: String,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data_dir =
            std::env::temp_dir().join(format!("portcullis-test-{}", uuid::Uuid::now_v7().simple()));
        let (database_url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.join("portcullis.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = portcullis_store::testing::fresh_postgres_database()
                    .await
                    .expect("PostgreSQL must be reachable for the postgres tests (PORTCULLIS_TEST_POSTGRES_URL)");
                (db.url.clone(), Some(db))
            }
        };
        Self::launch(data_dir, database_url, pg, true, tweak).await
    }

    /// A second node of this one's cluster: another server on the same database and data
    /// directory (so the same development master key). Meant for PostgreSQL, where nodes
    /// share a database; stop it before this one.
    pub async fn another_node(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::launch(
            self.data_dir.clone(),
            self.database_url.clone(),
            None,
            false,
            tweak,
        )
        .await
    }

    async fn launch(
        data_dir: PathBuf,
        database_url: String,
        pg: Option<portcullis_store::testing::TestDatabase>,
        owns_data_dir: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            database_url: Some(database_url.clone().into()),
            dev: true,
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let base = format!("http://{}", server.local_addr);
        let state = server.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            data_dir,
            database_url,
            state,
            _pg: pg,
            shutdown: Some(tx),
            owns_data_dir,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
    }

    /// A request authenticated by the `portcullis_session` cookie, from this server's origin.
    pub fn with_cookie(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.req(method, path)
            .header("cookie", format!("portcullis_session={token}"))
            .header("origin", &self.base)
    }

    pub fn with_bearer(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.req(method, path).bearer_auth(token)
    }

    pub async fn send(rb: RequestBuilder) -> Reply {
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn signup(&self, email: &str, password: &str) -> Reply {
        Self::send(
            self.req(Method::POST, "/v1/auth/signup")
                .json(&json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs up a fresh user and returns what later steps need.
    pub async fn user(&self, label: &str) -> Signed {
        let email = format!(
            "{label}-{}@example.com",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let r = self.signup(&email, "correct horse battery").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        Signed {
            token: r.session_cookie().expect("cookie"),
            user_id: r.body["user"]["id"].as_str().unwrap().to_owned(),
            org_id: r.body["org"]["id"].as_str().unwrap().to_owned(),
            project_id: r.body["project"]["id"].as_str().unwrap().to_owned(),
            email,
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        Self::send(
            self.req(Method::POST, "/v1/auth/login")
                .json(&json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        Self::send(self.with_bearer(Method::GET, path, token)).await
    }

    /// Invites `email` to `org_id` with `role` as the holder of `admin_token`; the reply
    /// carries `accept_url`.
    pub async fn invite(&self, admin_token: &str, org_id: &str, email: &str, role: &str) -> Reply {
        Self::send(
            self.with_bearer(
                Method::POST,
                &format!("/v1/orgs/{org_id}/invitations"),
                admin_token,
            )
            .json(&json!({"email": email, "role": role})),
        )
        .await
    }

    /// Moves an org to `plan` (active) as a platform operator would, for tests about other
    /// things that need more seats or projects than the `free` plan gives (3 and 3).
    pub async fn on_plan(&self, org_id: &str, plan: &str) {
        let org = portcullis_core::OrgId::parse(org_id).unwrap();
        self.state
            .store
            .org(&portcullis_core::OrgAccess::system(org))
            .platform()
            .set_subscription(
                &portcullis_core::plan::Subscription {
                    plan: portcullis_core::plan::PlanKey::parse(plan).unwrap(),
                    status: portcullis_core::plan::SubscriptionStatus::Active,
                    current_period_start: portcullis_core::now(),
                    current_period_end: None,
                },
                &portcullis_core::AuditContext::cli(),
            )
            .await
            .unwrap();
    }

    /// Accepts an invitation (its token, or an `accept_url`) as the holder of `token`.
    pub async fn accept(&self, token: &str, invitation: &str) -> Reply {
        Self::send(
            self.with_bearer(Method::POST, "/v1/invitations/accept", token)
                .json(&json!({"token": invitation_token(invitation)})),
        )
        .await
    }

    /// Makes `who` a member of `org_id` with `role` the way anyone outside the org's
    /// verified domains joins: invited by the holder of `admin_token`, accepted by `who`.
    pub async fn join(&self, admin_token: &str, org_id: &str, who: &Signed, role: &str) {
        let r = self.invite(admin_token, org_id, &who.email, role).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = self
            .accept(&who.token, r.body["accept_url"].as_str().unwrap())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

/// The `inv_…`/`pst_…` token inside an accept or setup URL (or the token itself).
pub fn invitation_token(url_or_token: &str) -> String {
    url_or_token
        .rsplit_once("token=")
        .map_or(url_or_token, |(_, t)| t)
        .to_owned()
}

/// Instantiates each listed async test body once per backend (SQLite and PostgreSQL), the
/// one macro every HTTP suite uses:
///
/// - `both_backends!(a, b)`: `async fn a(app: TestApp)` on a server with the test defaults;
/// - `both_backends!(configured base: a => tweak, b => other)`: the same on a server whose
///   `Config` went through `base` and then the test's own `tweak` (`fn(&mut Config)`);
/// - `both_backends!(backend: a, b)`: `async fn a(backend: Backend)` for bodies that start
///   their own servers (e.g. with an upstream provider to configure first).
#[macro_export]
macro_rules! both_backends {
    (backend: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )*
    };
    (configured $base:path: $($name:ident => $tweak:expr),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::TestApp::start_with($crate::common::Backend::Sqlite, |c| { $base(c); ($tweak)(c) }).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::TestApp::start_with($crate::common::Backend::Postgres, |c| { $base(c); ($tweak)(c) }).await).await;
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::TestApp::start($crate::common::Backend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::TestApp::start($crate::common::Backend::Postgres).await).await;
                }
            }
        )*
    };
}
