#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The HTML admin console (features/console): over HTTP and in a real Chromium. Tests mirror
//! the source tree: one folder per feature, one test binary per folder, sharing `tests/common`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod account_page;
mod console_pages;
mod keys_page;
mod subscription_page;
mod webhooks_page;
