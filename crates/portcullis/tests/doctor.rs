#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `portcullis doctor` as an operator runs it: the real binary, a real data directory, a
//! real upstream OpenID provider (another Portcullis) for the SSO discovery check.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{BIN, MASTER_KEY, Node, temp_dir};

/// Runs `portcullis doctor --json` in `dir`; returns (exit ok, findings by check name).
fn doctor(dir: &Path, env: &[(&str, &str)]) -> (bool, Vec<Value>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["doctor", "--json"]).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {stdout}"));
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    (out.status.success(), findings, stdout)
}

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
}

fn level(findings: &[Value], check: &str) -> String {
    finding(findings, check)["level"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_box_that_never_served_gets_warnings_with_fixes_and_nothing_is_written() {
    let dir = temp_dir();
    let (ok, f, out) = doctor(&dir, &[]);
    assert!(ok, "warnings alone do not fail: {out}");
    assert_eq!(level(&f, "public_url"), "warn");
    assert!(
        finding(&f, "public_url")["fix"]
            .as_str()
            .unwrap()
            .contains("PORTCULLIS_PUBLIC_URL")
    );
    assert_eq!(level(&f, "master_key"), "warn");
    assert_eq!(level(&f, "database"), "warn");
    assert_eq!(level(&f, "sign_in_methods"), "ok");
    assert!(
        !dir.join("portcullis-data").exists(),
        "doctor must not create the data directory"
    );

    // The text form: one line per check, a fix under each problem, a summary.
    let text = Command::new(BIN)
        .arg("doctor")
        .current_dir(&dir)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("WARN  public_url: public URL unset"),
        "{text}"
    );
    assert!(
        text.contains("      fix: set PORTCULLIS_PUBLIC_URL"),
        "{text}"
    );
    assert!(text.contains("checks:"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_first_start_every_check_passes_and_problems_are_named() {
    let dir = temp_dir();
    // A first start creates the database, the master key and the signing keys.
    let node = Node::start(&dir, &[], &[]);
    let public = [("PORTCULLIS_PUBLIC_URL", "http://localhost:8080")];

    let (ok, f, out) = doctor(&dir, &public);
    assert!(ok, "{out}");
    for check in [
        "configuration",
        "public_url",
        "master_key",
        "database",
        "migrations",
        "signing_keys",
        "clock",
        "sign_in_methods",
        "webhook_endpoints",
        "webhook_backlog",
    ] {
        assert_eq!(level(&f, check), "ok", "{check}: {out}");
    }
    assert!(
        finding(&f, "signing_keys")["detail"]
            .as_str()
            .unwrap()
            .contains("EdDSA")
    );

    // The allowlist is set but lacks the server's own host.
    let (ok, f, out) = doctor(
        &dir,
        &[
            public[0],
            ("PORTCULLIS_MOBILE_HOST_ALLOWLIST", "app.example.com"),
        ],
    );
    assert!(ok, "a warning, not a failure: {out}");
    let allow = finding(&f, "mobile_host_allowlist");
    assert_eq!(allow["level"], "warn");
    assert!(
        allow["detail"]
            .as_str()
            .unwrap()
            .contains("does not contain the server's own host localhost"),
        "{allow}"
    );
    assert!(allow["fix"].as_str().unwrap().contains("localhost"));
    let (_, f, _) = doctor(
        &dir,
        &[
            public[0],
            (
                "PORTCULLIS_MOBILE_HOST_ALLOWLIST",
                "app.example.com,localhost",
            ),
        ],
    );
    assert_eq!(level(&f, "mobile_host_allowlist"), "ok");

    // SSO: another Portcullis is a real OpenID provider to discover; an unreachable issuer
    // and missing credentials are failures that say why.
    let (ok, f, out) = doctor(
        &dir,
        &[
            public[0],
            ("PORTCULLIS_SSO__OIDC__CORP__ISSUER", node.base.as_str()),
            ("PORTCULLIS_SSO__OIDC__CORP__CLIENT_ID", "portcullis"),
            ("PORTCULLIS_SSO__OIDC__CORP__CLIENT_SECRET", "s3cret-value"),
            ("PORTCULLIS_SSO__OIDC__DEAD__ISSUER", "http://127.0.0.1:9"),
            ("PORTCULLIS_SSO__OIDC__DEAD__CLIENT_ID", "x"),
            ("PORTCULLIS_SSO__OIDC__DEAD__CLIENT_SECRET", "y"),
            ("PORTCULLIS_SSO__OIDC__HALF__ISSUER", node.base.as_str()),
            ("PORTCULLIS_SSO__OIDC__HALF__CLIENT_ID", "x"),
        ],
    );
    assert!(!ok, "an unavailable provider fails the run: {out}");
    assert_eq!(level(&f, "sso.corp"), "ok", "{out}");
    let dead = finding(&f, "sso.dead");
    assert_eq!(dead["level"], "fail");
    assert!(dead["detail"].as_str().unwrap().contains("127.0.0.1:9"));
    let half = finding(&f, "sso.half");
    assert_eq!(half["level"], "fail");
    assert!(
        half["detail"]
            .as_str()
            .unwrap()
            .contains("credentials do not resolve"),
        "{half}"
    );
    assert!(!out.contains("s3cret-value"), "no secret in the report");
    assert!(
        finding(&f, "sign_in_methods")["detail"]
            .as_str()
            .unwrap()
            .contains("sso:corp")
    );

    // Password login off and no provider: nobody can sign in.
    let (ok, f, out) = doctor(&dir, &[public[0], ("PORTCULLIS_PASSWORD_LOGIN", "false")]);
    assert!(!ok, "{out}");
    let methods = finding(&f, "sign_in_methods");
    assert_eq!(methods["level"], "fail");
    assert!(
        methods["detail"]
            .as_str()
            .unwrap()
            .contains("no sign-in method available")
    );

    // Another master key cannot open the signing keys sealed with the generated one.
    let (ok, f, out) = doctor(&dir, &[public[0], ("PORTCULLIS_MASTER_KEY", MASTER_KEY)]);
    assert!(!ok, "{out}");
    assert_eq!(level(&f, "signing_keys"), "fail", "{out}");

    // A misspelt key is reported.
    let (_, f, _) = doctor(&dir, &[public[0], ("PORTCULLIS_PUBLIK_URL", "x")]);
    assert!(
        f.iter().any(|x| x["check"] == "configuration"
            && x["level"] == "warn"
            && x["detail"].as_str().unwrap().contains("publik_url")),
        "{f:?}"
    );
    drop(node);
    std::fs::remove_dir_all(dir).unwrap();
}
