#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Verified domains (features/domains). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod domains;
