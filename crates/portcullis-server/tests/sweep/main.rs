#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The cross-tenant sweep over every route of the OpenAPI document (app.rs route table). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cross_tenant;
