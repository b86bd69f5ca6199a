//! Where the store's notices go in this process: changes to the caches, committed webhook
//! work to the delivery worker's wake-up. The store has one sink (its own commits) and the
//! change feed another (other nodes' on PostgreSQL); both are this.

use std::sync::Arc;

use portcullis_store::{Change, ChangeSink};
use tokio::sync::Notify;

use crate::infra::session_cache::SessionCache;

pub struct ChangeListeners {
    pub cache: Arc<SessionCache>,
    /// Notified when a unit (here or on another node) committed webhook work; the worker
    /// waits on it. `notify_one` keeps one permit when nobody waits, so a notice that comes
    /// while the worker is busy makes it look once more instead of being lost.
    pub webhooks_due: Arc<Notify>,
}

impl ChangeSink for ChangeListeners {
    fn changed(&self, change: Change) {
        self.cache.changed(change);
    }

    fn feed_up(&self, up: bool) {
        self.cache.feed_up(up);
        if up {
            // What other nodes queued while the feed was down was not heard: look now.
            self.webhooks_due.notify_one();
        }
    }

    fn webhooks_due(&self) {
        self.webhooks_due.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn webhook_work_wakes_the_worker_and_a_notice_while_busy_is_kept() {
        let listeners = ChangeListeners {
            cache: Arc::new(SessionCache::new(Duration::from_secs(1), 10)),
            webhooks_due: Arc::new(Notify::new()),
        };
        // Nobody waits yet (the worker is mid-round): the notice is kept for its next wait.
        listeners.webhooks_due();
        tokio::time::timeout(Duration::from_secs(1), listeners.webhooks_due.notified())
            .await
            .unwrap();
        // A cache change does not wake the worker.
        listeners.changed(Change::TokensRevoked);
        let woken =
            tokio::time::timeout(Duration::from_millis(50), listeners.webhooks_due.notified())
                .await;
        assert!(woken.is_err());
        // The feed coming back does: what was sent meanwhile was not heard.
        listeners.feed_up(false);
        listeners.feed_up(true);
        tokio::time::timeout(Duration::from_secs(1), listeners.webhooks_due.notified())
            .await
            .unwrap();
    }
}
