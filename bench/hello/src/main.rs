//! `portcullis-hello`: the baseline server of `bench/run.sh`.
//!
//! The same stack as `portcullis serve` (axum 0.8, hyper http1, a multi-thread tokio
//! runtime from `#[tokio::main]`) with none of the work: `GET /` answers 200 `hello`.
//! Requests/s of portcullis are reported as a ratio against this server, measured in the
//! same run on the same core, so the figure says how much of the framework's ceiling the
//! product keeps rather than how fast the machine is.
//!
//! Address: the first argument, else `PORTCULLIS_HELLO_LISTEN`, else `127.0.0.1:8081`.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

fn listen_addr() -> Result<SocketAddr, String> {
    let raw = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORTCULLIS_HELLO_LISTEN").ok())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    raw.parse()
        .map_err(|e| format!("invalid listen address {raw:?}: {e}"))
}

async fn hello() -> &'static str {
    "hello"
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new().route("/", get(hello));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
