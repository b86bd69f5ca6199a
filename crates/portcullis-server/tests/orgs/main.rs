#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Organizations, members and their consent rules (features/orgs, features/invitations). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod api;
mod members_consent;
