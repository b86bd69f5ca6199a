//! The in-process cache in front of session resolution — the hottest read of the product.
//!
//! Validity is by *epoch*: every change that could make a cached answer wrong (a revoked
//! session, a membership or role change, here or on another node) bumps one counter, and an
//! entry is served only if it was filled under the current epoch and is younger than the
//! TTL. Bumping is O(1) and cannot miss an entry; changes are rare next to reads, so
//! dropping everything on a change costs little. When another node's changes cannot be
//! heard (the feed is down), nothing is served from memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use portcullis_core::{TokenHash, UserId};
use portcullis_store::{Change, ChangeSink, MembershipView, SessionWithUser};

struct Entry<T> {
    epoch: u64,
    filled_at: Instant,
    value: Arc<T>,
}

pub struct SessionCache {
    sessions: RwLock<HashMap<TokenHash, Entry<SessionWithUser>>>,
    memberships: RwLock<HashMap<UserId, Entry<Vec<MembershipView>>>>,
    epoch: AtomicU64,
    /// False while a cross-process change feed should exist but is not connected.
    feed_up: AtomicBool,
    ttl: Duration,
    capacity: usize,
}

impl SessionCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            sessions: RwLock::new(HashMap::new()),
            memberships: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            feed_up: AtomicBool::new(true),
            ttl,
            capacity,
        }
    }

    /// The epoch to stamp on a value about to be read from the database: read it *before*
    /// the read, so a change that lands during the read makes the new entry stale at once.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Something changed: nothing filled before now may be served again.
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn usable(&self) -> bool {
        !self.ttl.is_zero() && self.feed_up.load(Ordering::Acquire)
    }

    fn fresh<T>(&self, e: &Entry<T>) -> bool {
        e.epoch == self.epoch() && e.filled_at.elapsed() < self.ttl
    }

    pub fn session(&self, hash: &TokenHash) -> Option<Arc<SessionWithUser>> {
        if !self.usable() {
            return None;
        }
        let map = self.sessions.read().ok()?;
        map.get(hash)
            .filter(|e| self.fresh(e))
            .map(|e| e.value.clone())
    }

    pub fn put_session(&self, epoch: u64, value: SessionWithUser) -> Arc<SessionWithUser> {
        let value = Arc::new(value);
        if self.usable() {
            put(
                &self.sessions,
                value.session.token_hash,
                epoch,
                value.clone(),
                self.capacity,
                |e| self.fresh(e),
            );
        }
        value
    }

    pub fn forget_session(&self, hash: &TokenHash) {
        if let Ok(mut map) = self.sessions.write() {
            map.remove(hash);
        }
    }

    pub fn memberships(&self, user: UserId) -> Option<Arc<Vec<MembershipView>>> {
        if !self.usable() {
            return None;
        }
        let map = self.memberships.read().ok()?;
        map.get(&user)
            .filter(|e| self.fresh(e))
            .map(|e| e.value.clone())
    }

    pub fn put_memberships(
        &self,
        epoch: u64,
        user: UserId,
        value: Vec<MembershipView>,
    ) -> Arc<Vec<MembershipView>> {
        let value = Arc::new(value);
        if self.usable() {
            put(
                &self.memberships,
                user,
                epoch,
                value.clone(),
                self.capacity,
                |e| self.fresh(e),
            );
        }
        value
    }
}

fn put<K: std::hash::Hash + Eq, T>(
    map: &RwLock<HashMap<K, Entry<T>>>,
    key: K,
    epoch: u64,
    value: Arc<T>,
    capacity: usize,
    fresh: impl Fn(&Entry<T>) -> bool,
) {
    let Ok(mut map) = map.write() else { return };
    if map.len() >= capacity {
        // Drop what can no longer be served; if the cache is full of live entries, start
        // over rather than track recency on the read path.
        map.retain(|_, e| fresh(e));
        if map.len() >= capacity {
            map.clear();
        }
    }
    map.insert(
        key,
        Entry {
            epoch,
            filled_at: Instant::now(),
            value,
        },
    );
}

impl ChangeSink for SessionCache {
    fn changed(&self, _change: Change) {
        self.invalidate();
    }

    fn feed_up(&self, up: bool) {
        // Whatever happened while the feed was down is unknown: start from nothing.
        self.invalidate();
        self.feed_up.store(up, Ordering::Release);
    }
}
