//! A DNS server for tests that answers TXT queries: Debian's dnsmasq on 127.0.0.1 (package
//! `dnsmasq-base`, installed by `.ci/run`). Pick the port first ([`free_port`]), give it to
//! the server as `dns_resolver`, and start dnsmasq once the test knows its records.

use std::process::Stdio;
use std::time::Duration;

/// A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both).
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running dnsmasq; stopped when dropped.
pub struct Dnsmasq {
    child: tokio::process::Child,
}

impl Dnsmasq {
    /// Serves `txt` records (name, value) on `port`; names under `local` domains that have
    /// no record get NXDOMAIN, anything else is refused (no upstream).
    pub async fn start(port: u16, txt: &[(&str, &str)], local: &[&str]) -> Dnsmasq {
        let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("the domain tests need dnsmasq (apt-get install dnsmasq-base)");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args([
            "--no-daemon",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--cache-size=0",
        ])
        .arg(format!("--port={port}"));
        for (name, value) in txt {
            cmd.arg(format!("--txt-record={name},\"{value}\""));
        }
        for domain in local {
            cmd.arg(format!("--local=/{domain}/"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().expect("dnsmasq starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Dnsmasq { child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dnsmasq did not start listening on port {port}");
    }

    /// Stops it and waits until it is gone (its port is free again).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
