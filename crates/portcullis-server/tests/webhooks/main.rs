#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Outgoing webhooks (features/webhooks, workers/webhooks.rs). Tests mirror the source tree: one folder per
//! feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod abuse_limits;
mod endpoints_and_delivery;
mod session_events;
mod wake_ups;
