//! Forgets rate-limit keys whose budget is full again, so the in-memory limiter's size
//! follows the clients active in the last window; stops with the server's state.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::infra::limiter::Limiter;

pub const INTERVAL: Duration = Duration::from_secs(60);

pub fn spawn(limiter: &Arc<Limiter>, every: Duration) {
    let weak: Weak<Limiter> = Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(limiter) = weak.upgrade() else {
                return;
            };
            limiter.sweep();
        }
    });
}
