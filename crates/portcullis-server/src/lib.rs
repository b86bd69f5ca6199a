//! The Portcullis HTTP server. Data flows one way: the shared edge (`http/`) hands a request
//! to a feature's thin handler (`features/<capability>/http.rs`), which calls the feature's
//! HTTP-free service; services reach the store and `infra/`. `config/` is read at start-up,
//! `workers/` run in the background, `support/` holds the operator tools (doctor).
//! See docs/architecture.md.

pub mod app;
pub mod config;
pub mod features;
pub mod http;
pub mod infra;
pub mod openapi;
pub mod state;
pub mod support;
pub mod workers;

pub use app::{Server, StartError};
pub use config::{Config, LogFormat};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = match option_env!("PORTCULLIS_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};
