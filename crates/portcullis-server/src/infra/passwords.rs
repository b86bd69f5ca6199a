//! Password hashing off the async runtime, with bounded concurrency: each argon2id run
//! takes 19 MiB and tens of milliseconds, so a login flood must queue (and eventually be
//! told to come back) instead of exhausting memory or starving other requests.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::password::{self, Password, PasswordHash};
use tokio::sync::Semaphore;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot stayed busy for the queue timeout: a flood, or too small a pool.
    #[error("too many sign-in attempts in progress; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout: Duration::from_secs(10),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Internal(e.to_string()))
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, PasswordError> {
        self.run(move || password::hash(&password))
            .await?
            .map_err(|e| PasswordError::Internal(e.to_string()))
    }

    /// Checks a password; with no stored hash (unknown user, or an account without a
    /// password) it burns the same time on a dummy hash and answers false.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<PasswordHash>,
    ) -> Result<bool, PasswordError> {
        self.run(move || match stored {
            Some(h) => password::verify(&password, &h),
            None => {
                password::verify_dummy(&password);
                false
            }
        })
        .await
    }
}
