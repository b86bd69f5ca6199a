#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Projects and the project context (features/projects). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod api;
