#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The binary as an operator runs it: real `portcullis` processes, their logs, the admin
//! commands beside a running server, and two nodes sharing one PostgreSQL database.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

use support::{BIN, MASTER_KEY, Node, temp_dir};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn signup(c: &reqwest::Client, base: &str, email: &str, password: &str) -> (Value, String) {
    let r = c
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    (r.json().await.unwrap(), token)
}

async fn me_status(c: &reqwest::Client, base: &str, token: &str) -> u16 {
    c.get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn admin(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .arg("admin")
        .args(args)
        .args(["--data-dir", dir.join("data").to_str().unwrap()])
        .env_remove("PORTCULLIS_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_node_within_a_second() {
    let db = portcullis_store::testing::fresh_postgres_database()
        .await
        .expect("PostgreSQL must be reachable");
    let dir = temp_dir();
    let env = [
        ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
        ("PORTCULLIS_MASTER_KEY", MASTER_KEY),
    ];
    let a = Node::start(&dir, &[], &env);
    let b = Node::start(&dir, &[], &env);
    let c = client();
    let (_, token) = signup(&c, &a.base, "twonodes@example.com", "correct horse battery").await;
    // Node B resolves (and caches) the session.
    for _ in 0..3 {
        assert_eq!(me_status(&c, &b.base, &token).await, 200);
    }
    // Sign out through node A (bearer: no CSRF check needed).
    let r = c
        .post(format!("{}/v1/auth/logout", a.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let revoked_at = Instant::now();
    loop {
        if me_status(&c, &b.base, &token).await == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "node B still accepts a session revoked on node A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(me_status(&c, &a.base, &token).await, 401);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_work_beside_a_running_server() {
    let dir = temp_dir();
    let data = dir.join("data");
    let node = Node::start(&dir, &["--data-dir", data.to_str().unwrap()], &[]);
    let c = client();

    let (ok, out, err) = admin(
        &dir,
        &[
            "create-user",
            "--email",
            "Ops@Example.com",
            "--name",
            "Ops",
            "--password-stdin",
        ],
        Some("an operator password\n"),
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(created["email"], "ops@example.com");
    assert!(created["posix_uid"].as_u64().unwrap() >= 10_000);
    let correlation = created["correlation_id"].as_str().unwrap().to_owned();
    assert!(correlation.starts_with("cli-"));

    // The password from stdin works against the running server.
    let r = c
        .post(format!("{}/v1/auth/login", node.base))
        .json(&json!({"email": "ops@example.com", "password": "an operator password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let me: Value = c
        .get(format!("{}/v1/me", node.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["is_platform_admin"], false);
    let org_id = me["memberships"][0]["org"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        me["memberships"][0]["projects"].as_array().unwrap().len(),
        1,
        "default project membership"
    );
    // user.created is audited under the command's correlation id.
    let audit: Value = c
        .get(format!(
            "{}/v1/orgs/{org_id}/audit?correlation_id={correlation}",
            node.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "user.created"),
        "{audit}"
    );

    // Adding a second, new user into that org, with a default-project membership.
    let (ok, out, err) = admin(
        &dir,
        &[
            "create-user",
            "--email",
            "dev@example.com",
            "--org",
            &org_id,
            "--role",
            "admin",
        ],
        None,
    );
    assert!(ok, "{err}");
    let dev: Value = serde_json::from_str(out.trim()).unwrap();
    let members: Value = c
        .get(format!("{}/v1/orgs/{org_id}/members", node.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == dev["id"])
        .cloned()
        .expect("member added");
    assert_eq!(m["role"], "admin");

    let (ok, _, err) = admin(
        &dir,
        &["grant-platform-admin", "--email", "ops@example.com"],
        None,
    );
    assert!(ok, "{err}");
    let r = c
        .post(format!("{}/v1/auth/login", node.base))
        .json(&json!({"email": "ops@example.com", "password": "an operator password"}))
        .send()
        .await
        .unwrap();
    let login: Value = r.json().await.unwrap();
    assert_eq!(login["user"]["is_platform_admin"], true);
    let (ok, _, _) = admin(
        &dir,
        &["revoke-platform-admin", "--email", "ops@example.com"],
        None,
    );
    assert!(ok);
    let (ok, _, err) = admin(
        &dir,
        &["grant-platform-admin", "--email", "nobody@example.com"],
        None,
    );
    assert!(!ok && err.contains("no user"), "{err}");

    let (ok, out, _) = admin(&dir, &["list-orgs"], None);
    assert!(ok);
    let orgs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(orgs.iter().any(|o| o["id"] == json!(org_id)));

    let (ok, _, err) = admin(
        &dir,
        &[
            "create-user",
            "--email",
            "weak@example.com",
            "--password-stdin",
        ],
        Some("short"),
    );
    assert!(!ok && err.contains("at least"), "{err}");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_with_correlation_ids_and_no_secrets() {
    let dir = temp_dir();
    let node = Node::start(
        &dir,
        &["--data-dir", dir.join("data").to_str().unwrap()],
        &[],
    );
    let c = client();
    let password = "a very secret passphrase";
    let (_, token) = signup(&c, &node.base, "logs@example.com", password).await;
    assert_eq!(me_status(&c, &node.base, &token).await, 200);
    let r = c
        .get(format!("{}/v1/me", node.base))
        .header("x-correlation-id", "find-me-in-logs")
        .bearer_auth("wrong-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = node.logs();
    assert!(logs.len() >= 4, "{logs:?}");
    let mut request_lines = 0;
    for line in &logs {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(!line.contains(&token), "session token in log: {line}");
        assert!(!line.contains(password), "password in log: {line}");
        assert!(
            !line.contains("wrong-token-value"),
            "presented token in log: {line}"
        );
        if v["span"]["name"] == "request" || v.get("span").is_some() {
            assert!(
                v["span"]["correlation_id"].is_string(),
                "request line without correlation id: {line}"
            );
            request_lines += 1;
        }
    }
    assert!(request_lines >= 3, "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("find-me-in-logs")));
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_defaults_to_embedded_sqlite_in_the_working_directory() {
    let dir = temp_dir();
    let node = Node::start(&dir, &[], &[]);
    let c = client();
    let r = c.get(format!("{}/readyz", node.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(dir.join("portcullis-data/portcullis.db").exists());
    let key = dir.join("portcullis-data/master.key");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let health: Value = c
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn production_postgres_requires_a_master_key_and_config_errors_are_clear() {
    let dir = temp_dir();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ])
        .current_dir(&dir)
        .env_remove("PORTCULLIS_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORTCULLIS_MASTER_KEY"), "{err}");

    let out = Command::new(BIN)
        .args(["serve", "--public-url", "not a url"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("public_url"));

    let out = Command::new(BIN)
        .args(["migrate", "--database-url", "mysql://x"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite:// or postgres://"));

    std::fs::write(
        dir.join("portcullis.toml"),
        "listen = \"127.0.0.1:0\"\nlisten_port = 5\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["migrate"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown configuration key `listen_port`")
    );

    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("portcullis "));
    let _ = std::fs::remove_dir_all(dir);
}

/// Kids of the published keys of one algorithm (ES256 and RS256 keys are prepared in the
/// background at start-up, so only per-algorithm counts are deterministic).
async fn jwks_kids(c: &reqwest::Client, base: &str) -> Vec<String> {
    jwks_kids_of(c, base, "EdDSA").await
}

async fn jwks_kids_of(c: &reqwest::Client, base: &str, alg: &str) -> Vec<String> {
    let v: Value = c
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_signing_key_beside_a_running_server() {
    let dir = temp_dir();
    let data = dir.join("data");
    let node = Node::start(&dir, &["--data-dir", data.to_str().unwrap()], &[]);
    let c = client();
    let before = jwks_kids(&c, &node.base).await;
    assert_eq!(before.len(), 1, "the EdDSA key exists from start-up");

    let (ok, out, err) = admin(&dir, &["rotate-signing-key"], None);
    assert!(ok, "{err}");
    let rotated: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rotated["alg"], "EdDSA");
    assert_eq!(rotated["retired"], json!(before));
    assert!(
        rotated["correlation_id"]
            .as_str()
            .unwrap()
            .starts_with("cli-")
    );
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();

    let (ok, out, err) = admin(&dir, &["rotate-signing-key", "--alg", "ES256"], None);
    assert!(ok, "{err}");
    let es: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(es["alg"], "ES256");
    // The ES256 key prepared at start-up, if it was ready, is the one retired.
    assert!(es["retired"].as_array().unwrap().len() <= 1, "{es}");
    let (ok, _, err) = admin(&dir, &["rotate-signing-key", "--alg", "HS256"], None);
    assert!(!ok && err.contains("HS256"), "{err}");

    // The running server publishes the new keys within seconds, and keeps the old one. Its
    // reload may land between the two rotations, so wait until both new keys are out.
    let es_kid = es["kid"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let kids = jwks_kids(&c, &node.base).await;
        let es_kids = jwks_kids_of(&c, &node.base, "ES256").await;
        if kids.contains(&new_kid) && es_kids.contains(&es_kid) {
            assert!(kids.contains(&before[0]), "{kids:?}");
            assert_eq!(kids.len(), 2, "{kids:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new keys never published: {kids:?} {es_kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
