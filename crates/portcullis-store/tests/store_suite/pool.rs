//! Pool figures for `/metrics`: sane gauges, and transactions counted with their wait.

use std::sync::Arc;

use portcullis_store::Store;

use super::signup;

fn transactions(store: &dyn Store) -> u64 {
    store
        .pool_stats()
        .iter()
        .filter_map(|p| p.acquires.map(|(n, _)| n))
        .sum()
}

pub async fn pool_stats_count_transactions(store: Arc<dyn Store>) {
    let before = transactions(store.as_ref());
    signup(store.as_ref(), "pool@example.com").await;
    let stats = store.pool_stats();
    assert!(!stats.is_empty());
    for p in &stats {
        assert!(p.idle <= p.size && p.size <= p.max, "{p:?}");
        assert!(!p.pool.is_empty());
    }
    assert!(transactions(store.as_ref()) > before, "{stats:?}");
}
