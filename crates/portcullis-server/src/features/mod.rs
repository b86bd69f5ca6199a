//! One folder per capability, each with the same shape: `mod.rs` (its routes), `http.rs`
//! (thin handlers), and where it has rules of its own a `service.rs` without HTTP types.
//! Features do not import each other's handlers.

pub mod auth;
pub mod clients;
pub mod console;
pub mod domains;
pub mod invitations;
pub mod me;
pub mod mobile;
pub mod oidc;
pub mod ops;
pub mod orgs;
pub mod platform;
pub mod projects;
pub mod signing_keys;
pub mod sso;
pub mod webhooks;
