#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Operations endpoints, metrics and the OpenAPI document (features/ops, openapi.rs). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod endpoints;
mod metrics;
mod openapi;
