//! PostgreSQL backend (being written).
use std::sync::Arc;

use crate::{Store, StoreResult};

pub async fn connect(_url: &str) -> StoreResult<Arc<dyn Store>> {
    Err(crate::StoreError::Config(
        "postgres backend not built yet".into(),
    ))
}
