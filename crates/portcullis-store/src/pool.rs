//! Connection pool figures for `/metrics`: sqlx's own gauges, plus how long transactions
//! waited to start, which sqlx does not record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One connection pool as the metrics endpoint reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// `main` (PostgreSQL), or `read` / `write` (SQLite's readers and its one writer).
    pub pool: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
    /// Transactions started on this pool, and the time spent getting a connection and
    /// opening the transaction on it. None where the pool serves only single statements.
    pub acquires: Option<(u64, Duration)>,
}

/// Counts transaction starts and their wait; two relaxed increments per transaction.
#[derive(Default)]
pub(crate) struct AcquireWait {
    count: AtomicU64,
    micros: AtomicU64,
}

impl AcquireWait {
    /// Awaits `start` (a pool's `begin`) and records how long it took.
    pub(crate) async fn time<T>(&self, start: impl Future<Output = T>) -> T {
        let began = Instant::now();
        let out = start.await;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(
            u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        out
    }

    fn read(&self) -> (u64, Duration) {
        (
            self.count.load(Ordering::Relaxed),
            Duration::from_micros(self.micros.load(Ordering::Relaxed)),
        )
    }
}

pub(crate) fn stats<DB: sqlx::Database>(
    name: &'static str,
    pool: &sqlx::Pool<DB>,
    wait: Option<&AcquireWait>,
) -> PoolStats {
    PoolStats {
        pool: name,
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
        acquires: wait.map(AcquireWait::read),
    }
}
