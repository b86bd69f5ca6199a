#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OpenID Connect provider (features/oidc). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod provider;
mod security;
