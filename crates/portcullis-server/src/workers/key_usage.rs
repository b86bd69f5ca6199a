//! Flushes the secret keys' `last_used_at` every few seconds; stops when the server's state
//! (and with it the usage map) is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use portcullis_store::Store;

use crate::infra::key_usage::KeyUsage;

/// How often noted key uses are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

pub fn spawn(usage: &Arc<KeyUsage>, store: Arc<dyn Store>, every: Duration) {
    let weak: Weak<KeyUsage> = Arc::downgrade(usage);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(usage) = weak.upgrade() else { return };
            if let Err(e) = usage.flush(&*store).await {
                tracing::warn!(error = %e, "recording secret keys' last use failed; retrying later");
            }
        }
    });
}
