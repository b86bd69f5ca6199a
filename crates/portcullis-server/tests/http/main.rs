#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shared edge: error envelopes, body and parameter limits (http/). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod envelope;
mod limits_and_params;
mod snapshots;
