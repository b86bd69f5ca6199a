//! The Portcullis HTTP server: routes grouped by surface, the middleware every request
//! passes, and the wiring from configuration to a listening socket.

pub mod app;
pub mod config;
pub mod correlation;
pub mod crypto;
pub mod doctor;
pub mod dto;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod mobile;
pub mod oidc;
pub mod openapi;
pub mod passwords;
pub mod rate_limit;
pub mod routes;
pub mod session_cache;
pub mod sso;
pub mod state;

pub use app::{Server, StartError};
pub use config::{Config, LogFormat};
