#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An upstream OpenID Provider for the tests: `conformance/upstream.mjs` (the reference
//! `oidc-provider`), started for a Portcullis that will listen on a known port.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const CLIENT_ID: &str = "portcullis-test";
pub const CLIENT_SECRET: &str = "upstream-client-secret-0123456789";

pub struct Upstream {
    pub issuer: String,
    _child: tokio::process::Child,
}

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

/// A free local port, for a Portcullis the upstream must know before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Upstream {
    /// Starts the upstream for a Portcullis that will listen on `port`, with extra flags
    /// (`--no-email`, `--conform`).
    pub async fn start(port: u16, flags: &[&str]) -> Upstream {
        let dir = conformance_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "these tests need the upstream OpenID Provider: run `npm ci --prefix conformance` (Node.js >= 20)"
        );
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(dir.join("upstream.mjs"))
            .arg("--port=0")
            .arg(format!("--client-id={CLIENT_ID}"))
            .arg(format!("--client-secret={CLIENT_SECRET}"))
            .arg(format!(
                "--redirect-uri=http://127.0.0.1:{port}/v1/auth/sso/*"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd.args(flags);
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "these tests need Node.js (`node` on PATH) to run the upstream OpenID Provider: {e}"
            )
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line))
            .await
            .expect("upstream.mjs prints its issuer within 20 s")
            .unwrap();
        // Keep reading whatever else it prints, so its stdout never breaks.
        tokio::spawn(async move {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).await.is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let first: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|_| panic!("upstream.mjs first line is not JSON: {line:?}"));
        Upstream {
            issuer: first["issuer"].as_str().unwrap().to_owned(),
            _child: child,
        }
    }
}
