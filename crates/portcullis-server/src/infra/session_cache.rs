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

use bytes::Bytes;
use portcullis_core::access_token::AccessTokenClaims;
use portcullis_core::oauth::{ClientId, OAuthClient};
use portcullis_core::{TokenHash, UserId};
use portcullis_store::{Change, ChangeSink, MembershipView, SessionWithUser};

struct Entry<T> {
    epoch: u64,
    filled_at: Instant,
    value: Arc<T>,
}

/// One kind of cached answer, keyed by `K`, valid under the cache's epoch rules, with the
/// hit and miss counts `/metrics` shows.
struct EpochMap<K, T> {
    entries: RwLock<HashMap<K, Entry<T>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often one kind of answer was served from memory (hits) or not (misses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLookups {
    pub kind: &'static str,
    pub hits: u64,
    pub misses: u64,
}

impl<K: std::hash::Hash + Eq, T> EpochMap<K, T> {
    fn new() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn get(&self, cache: &SessionCache, key: &K) -> Option<Arc<T>> {
        let found = self.lookup(cache, key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn lookup(&self, cache: &SessionCache, key: &K) -> Option<Arc<T>> {
        if !cache.usable() {
            return None;
        }
        let map = self.entries.read().ok()?;
        map.get(key)
            .filter(|e| cache.fresh(e))
            .map(|e| e.value.clone())
    }

    fn lookups(&self, kind: &'static str) -> CacheLookups {
        CacheLookups {
            kind,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn put(&self, cache: &SessionCache, key: K, epoch: u64, value: Arc<T>) {
        if !cache.usable() {
            return;
        }
        let Ok(mut map) = self.entries.write() else {
            return;
        };
        if map.len() >= cache.capacity {
            // Drop what can no longer be served; if the cache is full of live entries,
            // start over rather than track recency on the read path.
            map.retain(|_, e| cache.fresh(e));
            if map.len() >= cache.capacity {
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

    fn remove(&self, key: &K) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(key);
        }
    }
}

/// An OAuth client with what the OAuth endpoints must know about its project.
pub struct CachedClient {
    pub client: Arc<OAuthClient>,
    /// A disabled project's clients get no tokens (`project_disabled`).
    pub project_active: bool,
}

pub struct SessionCache {
    sessions: EpochMap<TokenHash, SessionWithUser>,
    memberships: EpochMap<UserId, Vec<MembershipView>>,
    /// The serialized `GET /v1/me` answer per session: the hottest response of all.
    me_bodies: EpochMap<TokenHash, Bytes>,
    /// OAuth clients by id, for the token and introspection endpoints.
    clients: EpochMap<String, CachedClient>,
    /// Claims of access tokens already verified and found unrevoked, by token digest.
    live_tokens: EpochMap<TokenHash, AccessTokenClaims>,
    epoch: AtomicU64,
    /// False while a cross-process change feed should exist but is not connected.
    feed_up: AtomicBool,
    ttl: Duration,
    capacity: usize,
}

impl SessionCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            sessions: EpochMap::new(),
            memberships: EpochMap::new(),
            me_bodies: EpochMap::new(),
            clients: EpochMap::new(),
            live_tokens: EpochMap::new(),
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
        self.sessions.get(self, hash)
    }

    pub fn put_session(&self, epoch: u64, value: SessionWithUser) -> Arc<SessionWithUser> {
        let value = Arc::new(value);
        self.sessions
            .put(self, value.session.token_hash, epoch, value.clone());
        value
    }

    /// The session row changed (its expiry slid): forget it and answers built from it.
    pub fn forget_session(&self, hash: &TokenHash) {
        self.sessions.remove(hash);
        self.me_bodies.remove(hash);
    }

    pub fn memberships(&self, user: UserId) -> Option<Arc<Vec<MembershipView>>> {
        self.memberships.get(self, &user)
    }

    pub fn put_memberships(
        &self,
        epoch: u64,
        user: UserId,
        value: Vec<MembershipView>,
    ) -> Arc<Vec<MembershipView>> {
        let value = Arc::new(value);
        self.memberships.put(self, user, epoch, value.clone());
        value
    }

    pub fn me_body(&self, hash: &TokenHash) -> Option<Bytes> {
        self.me_bodies.get(self, hash).map(|b| Bytes::clone(&b))
    }

    pub fn put_me_body(&self, epoch: u64, hash: TokenHash, body: Bytes) {
        self.me_bodies.put(self, hash, epoch, Arc::new(body));
    }

    pub fn client(&self, id: &ClientId) -> Option<Arc<CachedClient>> {
        self.clients.get(self, &id.as_str().to_owned())
    }

    pub fn put_client(&self, epoch: u64, client: CachedClient) -> Arc<CachedClient> {
        let client = Arc::new(client);
        self.clients.put(
            self,
            client.client.id.as_str().to_owned(),
            epoch,
            client.clone(),
        );
        client
    }

    pub fn live_token(&self, hash: &TokenHash) -> Option<Arc<AccessTokenClaims>> {
        self.live_tokens.get(self, hash)
    }

    pub fn put_live_token(&self, epoch: u64, hash: TokenHash, claims: Arc<AccessTokenClaims>) {
        self.live_tokens.put(self, hash, epoch, claims);
    }

    /// Hits and misses per kind of cached answer since start.
    pub fn lookups(&self) -> [CacheLookups; 5] {
        [
            self.sessions.lookups("session"),
            self.memberships.lookups("memberships"),
            self.me_bodies.lookups("me_body"),
            self.clients.lookups("client"),
            self.live_tokens.lookups("access_token"),
        ]
    }
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
