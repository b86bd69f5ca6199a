//! Outgoing webhook settings: the flat `webhook_*` keys.
//!
//! ```toml
//! webhook_worker = true                 # this node delivers (false: it only queues)
//! webhook_retry_schedule_secs = [5, 300, 1800, 7200, 18000, 36000, 36000]
//! webhook_disable_after_secs = 432000   # an endpoint failing this long is disabled
//! webhook_timeout_ms = 15000
//! webhook_lease_secs = 60
//! webhook_concurrency = 64              # attempts in flight on this node
//! webhook_endpoint_concurrency = 8      # … of which to one endpoint
//! webhook_fallback_poll_ms = 5000      # an idle worker looks this often even unwoken
//! webhook_backlog_warn_secs = 300       # doctor warns when something due waits longer
//! webhook_max_endpoints_per_project = 20 # creating one more answers 409 conflict
//! webhook_sends_per_minute = 10         # POST …/test and …/recover per project (429 beyond)
//! webhook_retention_days = 30           # delivered events and finished deliveries kept
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    #[serde(rename = "webhook_worker")]
    pub worker: bool,
    /// Waits after the 1st, 2nd, … failed attempt; when spent, the delivery fails.
    #[serde(rename = "webhook_retry_schedule_secs")]
    pub retry_schedule_secs: Vec<u64>,
    #[serde(rename = "webhook_disable_after_secs")]
    pub disable_after_secs: u64,
    #[serde(rename = "webhook_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a claimed delivery stays this node's; past it, any node may attempt it again.
    /// Longer than the timeout, so a live attempt is never made twice.
    #[serde(rename = "webhook_lease_secs")]
    pub lease_secs: u64,
    #[serde(rename = "webhook_concurrency")]
    pub concurrency: usize,
    #[serde(rename = "webhook_endpoint_concurrency")]
    pub endpoint_concurrency: usize,
    /// How often an idle worker looks for work when nothing woke it. New events and due
    /// deliveries wake it (on PostgreSQL other nodes' too, by NOTIFY), and it sleeps until
    /// the next scheduled retry; this only bounds how late something it was not told of
    /// (a lost notification, a clock jump) is found.
    #[serde(rename = "webhook_fallback_poll_ms")]
    pub fallback_poll_ms: u64,
    /// Deprecated: the worker no longer polls to find new events. When set, it is applied
    /// as `webhook_fallback_poll_ms`, with a warning at start.
    #[serde(rename = "webhook_poll_interval_ms")]
    pub poll_interval_ms: Option<u64>,
    #[serde(rename = "webhook_backlog_warn_secs")]
    pub backlog_warn_secs: u64,
    /// A project admin decides where this server sends signed POSTs: the caps below keep
    /// one project from turning it into a request cannon against some public URL.
    #[serde(rename = "webhook_max_endpoints_per_project")]
    pub max_endpoints_per_project: u32,
    /// Requests of `POST …/test` and `POST …/recover` per project and minute.
    #[serde(rename = "webhook_sends_per_minute")]
    pub sends_per_minute: u32,
    /// How long delivered outbox events and finished deliveries (with their attempts) are
    /// kept; the worker deletes older ones in small batches.
    #[serde(rename = "webhook_retention_days")]
    pub retention_days: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            worker: true,
            retry_schedule_secs: portcullis_core::webhook::DEFAULT_SCHEDULE.to_vec(),
            disable_after_secs: 5 * 24 * 3600,
            timeout_ms: 15_000,
            lease_secs: 60,
            concurrency: 64,
            endpoint_concurrency: 8,
            fallback_poll_ms: 5000,
            poll_interval_ms: None,
            backlog_warn_secs: 300,
            max_endpoints_per_project: 20,
            sends_per_minute: 10,
            retention_days: 30,
        }
    }
}

impl WebhookConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout_ms == 0 || self.concurrency == 0 || self.endpoint_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "webhook_timeout_ms, webhook_concurrency and webhook_endpoint_concurrency must be > 0"
                    .into(),
            ));
        }
        if self.fallback_poll() == Duration::ZERO {
            return Err(ConfigError::Invalid(
                "webhook_fallback_poll_ms must be > 0 (it is how often an idle worker looks \
                 even when nothing woke it; 5000 is the default)"
                    .into(),
            ));
        }
        if self.max_endpoints_per_project == 0
            || self.sends_per_minute == 0
            || self.retention_days == 0
        {
            return Err(ConfigError::Invalid(
                "webhook_max_endpoints_per_project, webhook_sends_per_minute and \
                 webhook_retention_days must be > 0"
                    .into(),
            ));
        }
        if self.lease_secs.saturating_mul(1000) <= self.timeout_ms {
            return Err(ConfigError::Invalid(
                "webhook_lease_secs must be longer than webhook_timeout_ms, or a slow attempt \
                 could be made twice"
                    .into(),
            ));
        }
        Ok(())
    }

    /// How often an idle worker looks unwoken: `webhook_fallback_poll_ms`, or the
    /// deprecated `webhook_poll_interval_ms` when that is set.
    pub fn fallback_poll(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.unwrap_or(self.fallback_poll_ms))
    }

    /// The start-up warning for the deprecated key, when it is set.
    pub(super) fn deprecation(&self) -> Option<String> {
        self.poll_interval_ms.map(|ms| {
            format!(
                "webhook_poll_interval_ms is deprecated: the webhook worker wakes on new events \
                 and sleeps until its next retry; set webhook_fallback_poll_ms instead \
                 (applied as it: {ms} ms)"
            )
        })
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 3600)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}
