#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Independent OpenID Connect conformance: a real `portcullis serve` process, checked by
//! `conformance/oidc.mjs` — panva's `openid-client` (an OpenID Certified relying party) and
//! `jose`, at the versions pinned in `conformance/package-lock.json`. This side signs a user
//! up and registers the clients over HTTP; the script does discovery, client_credentials, the
//! code flow with PKCE and ID token validation, userinfo, refresh, introspection, revocation
//! and RP-initiated logout, and ends with `N passed, M failed`.
//!
//! Needs Node.js (20 or newer) and npm: when `conformance/node_modules` is missing or does
//! not hold the pinned versions, `npm ci` installs them first. Without Node.js the test
//! fails; it never passes by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

mod support;

use support::{MASTER_KEY, Node as Server, temp_dir};
/// The redirect URIs the clients register (loopback: nothing needs to listen there, the
/// script reads the `Location` header).
const REDIRECT: &str = "http://127.0.0.1/cb";
const POST_LOGOUT_REDIRECT: &str = "http://127.0.0.1/logged-out";
/// The script runs well over this many checks; fewer would mean some silently did not run.
const MIN_CHECKS: u32 = 40;
const NODE_TIMEOUT: Duration = Duration::from_secs(180);

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance")
        .canonicalize()
        .expect("the conformance/ directory at the workspace root")
}

// ---- Node.js and the pinned packages ---------------------------------------------------------

/// `node --version`, or a failure that says what to install.
fn require_node() {
    let out = Command::new("node").arg("--version").output();
    let version = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Ok(o) => panic!(
            "`node --version` failed ({}): {}\nInstall Node.js 20 or newer (https://nodejs.org) \
             to run the OpenID Connect conformance test.",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "Node.js is not installed (running `node` failed: {e}).\nInstall Node.js 20 or newer \
             (https://nodejs.org, or `apt-get install nodejs npm`) to run the OpenID Connect \
             conformance test; it is part of the test suite and is never skipped."
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the Node.js version from {version:?}"));
    assert!(
        major >= 20,
        "Node.js {version} is too old: openid-client needs Node.js 20 or newer; install a newer Node.js"
    );
}

/// True when `node_modules` holds exactly the versions `package.json` pins.
fn pinned_packages_installed(dir: &Path) -> bool {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    manifest["dependencies"]
        .as_object()
        .expect("package.json has dependencies")
        .iter()
        .all(|(name, pinned)| {
            std::fs::read_to_string(dir.join("node_modules").join(name).join("package.json"))
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .is_some_and(|installed| installed["version"] == *pinned)
        })
}

/// Installs the locked packages with `npm ci` unless they are already there. Serialized, so
/// the tests of this binary never run two installs into one directory at once.
fn ensure_packages(dir: &Path) {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if pinned_packages_installed(dir) {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "conformance/node_modules is missing and npm could not be run ({e}); install npm \
                 (it comes with Node.js) or run `npm ci --prefix conformance`"
            )
        });
    assert!(
        out.status.success(),
        "`npm ci` in conformance/ failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        pinned_packages_installed(dir),
        "`npm ci` did not install the versions package.json pins; is package-lock.json in sync?"
    );
}

// ---- the server side: a user and the clients --------------------------------------------------

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs a user up; returns the session token and the id of their default project.
async fn signup(c: &reqwest::Client, base: &str) -> (String, String) {
    let r = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": "conformance@example.com", "password": "correct horse battery staple", "name": "Conformance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "signup");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let (name, token) = cookie.split(';').next().unwrap().split_once('=').unwrap();
    assert_eq!(name, "portcullis_session", "the cookie name on plain http");
    let token = token.to_owned();
    let body: Value = r.json().await.unwrap();
    let project = body["project"]["id"].as_str().unwrap().to_owned();
    (token, project)
}

/// Registers a client; returns its id and, for confidential clients, its secret.
async fn create_client(
    c: &reqwest::Client,
    base: &str,
    session: &str,
    project: &str,
    body: Value,
) -> (String, Option<String>) {
    let r = c
        .post(format!("{base}/v1/project/clients"))
        .bearer_auth(session)
        .header("x-project-id", project)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let reply: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "creating client {body}: {reply}");
    (
        reply["client_id"].as_str().unwrap().to_owned(),
        reply["client_secret"].as_str().map(str::to_owned),
    )
}

fn confidential(name: &str, alg: &str) -> Value {
    json!({
        "name": name,
        "type": "confidential",
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [POST_LOGOUT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "signing_alg": alg,
    })
}

/// Everything the script needs, as its environment variables.
async fn prepare(server: &Server) -> Vec<(String, String)> {
    let c = http();
    let base = &server.base;
    let (session, project) = signup(&c, base).await;
    let mut env = vec![
        ("CONFORMANCE_ISSUER".to_owned(), base.clone()),
        ("CONFORMANCE_SESSION".to_owned(), session.clone()),
        ("CONFORMANCE_REDIRECT_URI".to_owned(), REDIRECT.to_owned()),
        (
            "CONFORMANCE_POST_LOGOUT_REDIRECT_URI".to_owned(),
            POST_LOGOUT_REDIRECT.to_owned(),
        ),
    ];
    let clients = [
        ("CLIENT", confidential("Conformance web app", "EdDSA")),
        (
            "ES256_CLIENT",
            confidential("Conformance ES256 app", "ES256"),
        ),
        (
            "RS256_CLIENT",
            confidential("Conformance RS256 app", "RS256"),
        ),
        (
            "PUBLIC_CLIENT",
            json!({
                "name": "Conformance native app",
                "type": "public",
                "redirect_uris": [REDIRECT],
                "post_logout_redirect_uris": [POST_LOGOUT_REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "signing_alg": "EdDSA",
            }),
        ),
    ];
    for (prefix, body) in clients {
        let alg = body["signing_alg"].as_str().unwrap().to_owned();
        let (id, secret) = create_client(&c, base, &session, &project, body).await;
        env.push((format!("CONFORMANCE_{prefix}_ID"), id));
        if let Some(s) = secret {
            env.push((format!("CONFORMANCE_{prefix}_SECRET"), s));
        }
        if prefix == "CLIENT" || prefix == "PUBLIC_CLIENT" {
            env.push((format!("CONFORMANCE_{prefix}_ALG"), alg));
        }
    }
    env
}

// ---- running the script ----------------------------------------------------------------------

async fn run_conformance(server: &Server) {
    let dir = conformance_dir();
    require_node();
    {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || ensure_packages(&dir))
            .await
            .unwrap();
    }
    let env = prepare(server).await;
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("oidc.mjs")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Only what this test sets: nothing from the caller's environment leaks into the checks.
    for (k, _) in std::env::vars() {
        if k.starts_with("CONFORMANCE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env);
    let out = tokio::time::timeout(NODE_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "conformance/oidc.mjs did not finish within {NODE_TIMEOUT:?}; server log:\n{}",
                server.log_tail(40)
            )
        })
        .expect("run node conformance/oidc.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by `cargo test -- --nocapture`, and with any failure below.
    println!("{stdout}");
    let report = || {
        format!(
            "--- conformance/oidc.mjs stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log (tail)\n{}",
            server.log_tail(40)
        )
    };
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| {
            let (p, rest) = l.trim().split_once(" passed, ")?;
            let f = rest.strip_suffix(" failed")?;
            Some((p.parse::<u32>().ok()?, f.parse::<u32>().ok()?))
        })
        .unwrap_or_else(|| panic!("no `N passed, M failed` line\n{}", report()));
    assert!(
        out.status.success() && summary.1 == 0,
        "the OpenID Connect conformance checks failed (exit {}, {} passed, {} failed)\n{}",
        out.status,
        summary.0,
        summary.1,
        report()
    );
    assert!(
        summary.0 >= MIN_CHECKS,
        "only {} checks passed (at least {MIN_CHECKS} expected): some did not run\n{}",
        summary.0,
        report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_conformance_sqlite() {
    let dir = temp_dir();
    let server = Server::start(
        &dir,
        &["--data-dir", dir.join("data").to_str().unwrap()],
        &[],
    );
    run_conformance(&server).await;
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_conformance_postgres() {
    let db = portcullis_store::testing::fresh_postgres_database()
        .await
        .expect("PostgreSQL must be reachable (PORTCULLIS_TEST_POSTGRES_URL)");
    let dir = temp_dir();
    let server = Server::start(
        &dir,
        &[],
        &[
            ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
            ("PORTCULLIS_MASTER_KEY", MASTER_KEY),
        ],
    );
    run_conformance(&server).await;
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
