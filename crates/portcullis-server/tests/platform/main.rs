#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The developer platform (features/platform): project keys, public config, backend health,
//! plans and subscriptions, rate limits. Tests mirror the source tree: one folder per feature,
//! one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod keys_plans_config;
mod public_config_sso;
mod rate_limits;
