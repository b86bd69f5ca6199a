//! When each secret key was last used, collected in memory and written in batches: a
//! backend calling thousands of times a second must not cost a database write per call.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use portcullis_core::Timestamp;
use portcullis_store::Store;
use uuid::Uuid;

#[derive(Default)]
pub struct KeyUsage {
    /// Key id → the latest use not yet written. One small lock held for a map insert.
    pending: Mutex<HashMap<Uuid, Timestamp>>,
}

impl KeyUsage {
    pub fn note(&self, key: Uuid, at: Timestamp) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = pending.entry(key).or_insert(at);
        if *slot < at {
            *slot = at;
        }
    }

    /// Writes every noted use in one transaction. On failure the uses go back into the map
    /// (unless newer ones arrived), to be written next time.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, portcullis_store::StoreError> {
        let batch: Vec<(Uuid, Timestamp)> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match store.platform().touch_keys(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for (key, at) in batch {
                    self.note(key, at);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_use_of_a_key_wins() {
        let usage = KeyUsage::default();
        let key = Uuid::now_v7();
        let early = portcullis_core::now();
        let late = early + time::Duration::seconds(1);
        usage.note(key, late);
        usage.note(key, early);
        let pending = usage.pending.lock().unwrap();
        assert_eq!(pending.get(&key), Some(&late));
        assert_eq!(pending.len(), 1);
    }
}
