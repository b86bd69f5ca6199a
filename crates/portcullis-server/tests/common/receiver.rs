#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The webhook receiver of the tests: `conformance/webhook-receiver.mjs`, a Node process that
//! verifies every delivery with the reference `standardwebhooks` library and records it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Receiver {
    pub base: String,
    client: reqwest::Client,
    _child: tokio::process::Child,
}

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

impl Receiver {
    pub async fn start() -> Receiver {
        let dir = conformance_dir();
        assert!(
            dir.join("node_modules/standardwebhooks").exists(),
            "run `npm ci --prefix conformance` first (the receiver needs standardwebhooks)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("webhook-receiver.mjs"))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the webhook receiver (Node.js 20+ required)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .expect("the receiver prints its port");
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
            .as_u64()
            .unwrap();
        Receiver {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _child: child,
        }
    }

    /// The URL of endpoint `name` at this receiver.
    pub fn url(&self, name: &str) -> String {
        format!("{}/hooks/{name}", self.base)
    }

    /// What `name` expects: every delivery must verify with each of `secrets`; the next
    /// `fail` answer 500 and the next `hang` hang for `hang_ms`.
    pub async fn configure(
        &self,
        name: &str,
        secrets: &[&str],
        fail: u32,
        hang: u32,
        hang_ms: u64,
    ) {
        let r = self
            .client
            .put(format!("{}/_control/{name}", self.base))
            .json(&json!({"secrets": secrets, "fail": fail, "hang": hang, "hang_ms": hang_ms}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub async fn received(&self, name: &str) -> Vec<Value> {
        self.client
            .get(format!("{}/_control/{name}", self.base))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["received"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn stats(&self) -> Value {
        self.client
            .get(format!("{}/_control/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `name` has received what `done` accepts (at most `secs` seconds), and
    /// returns what it received.
    pub async fn wait_for(
        &self,
        name: &str,
        secs: u64,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received(name).await;
            if done(&got) {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{name} did not receive what was expected in {secs} s; got {got:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
