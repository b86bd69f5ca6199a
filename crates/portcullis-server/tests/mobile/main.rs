#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Mobile sign-in and the connect link (features/mobile). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod connect;
mod handoff_and_tokens;
