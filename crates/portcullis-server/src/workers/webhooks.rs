//! The webhook delivery worker: fans outbox events out into deliveries, claims due
//! deliveries with a lease, sends them (bounded overall and per endpoint) and records each
//! attempt. Every step is a committed transaction, so `kill -9` at any point loses nothing:
//! an event not yet fanned out is still in the outbox, a delivery whose attempt was cut short
//! is claimed again once its lease expires, with the same `webhook-id`.
//!
//! Between rounds it sleeps instead of polling the database: a unit that commits webhook
//! work wakes it (on PostgreSQL, other nodes' units too, by `NOTIFY`), it sleeps no later
//! than the next retry or lease expiry the database or its own attempts know of, and a
//! fallback poll (`webhook_fallback_poll_ms`) finds whatever it was not told of.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portcullis_core::Timestamp;
use portcullis_core::webhook::{WebhookId, retry_delay};
use portcullis_store::webhooks::{Claimed, NextStep};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::WebhookConfig;
use crate::infra::metrics::WorkerRound;
use crate::state::AppState;

/// How many outbox events one fan-out transaction takes.
const FAN_OUT_BATCH: u32 = 200;

/// How many rows of each kind one retention transaction deletes at most: small enough that
/// it never holds locks (or SQLite's one writer) for long.
const PURGE_BATCH: u32 = 500;

/// How often the worker looks for rows older than the retention window, when the last look
/// found less than a full batch.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// The shortest sleep before a round the schedule asks for: a delivery another node holds
/// locked looks due but cannot be claimed yet, and must not make this worker spin.
const MIN_SCHEDULED_WAIT: Duration = Duration::from_millis(20);

/// When an attempt's delivery is due again, if this worker should look for it: a retry, a
/// lease given back or left to expire. None when the delivery is settled or another node's.
type DueAgain = Option<Timestamp>;

/// What the worker needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub schedule: Vec<u64>,
    pub disable_after: Duration,
    pub lease: Duration,
    pub concurrency: usize,
    pub endpoint_concurrency: usize,
    /// How long an idle worker sleeps when nothing wakes it and nothing is scheduled sooner.
    pub fallback_poll: Duration,
    /// Delivered events and finished deliveries older than this are deleted.
    pub retention: Duration,
}

impl From<&WebhookConfig> for Settings {
    fn from(c: &WebhookConfig) -> Self {
        Self {
            schedule: c.retry_schedule_secs.clone(),
            disable_after: Duration::from_secs(c.disable_after_secs),
            lease: Duration::from_secs(c.lease_secs),
            concurrency: c.concurrency,
            endpoint_concurrency: c.endpoint_concurrency,
            fallback_poll: c.fallback_poll(),
            retention: c.retention(),
        }
    }
}

/// A running worker; [`Worker::stop`] ends it after its in-flight attempts.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    state: AppState,
    settings: Settings,
    /// This process's name on its leases.
    owner: String,
    endpoints: Mutex<HashMap<WebhookId, Arc<Semaphore>>>,
}

impl Worker {
    pub fn start(state: AppState, settings: Settings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            state,
            settings,
            owner: format!("node-{}", uuid::Uuid::now_v7().simple()),
            endpoints: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(run(shared, stopped));
        Self { stop, task }
    }

    /// Stops claiming, lets the attempts in flight finish (each within its timeout) and
    /// records them; then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the webhook worker ended abnormally");
        }
    }
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
    let mut in_flight = JoinSet::new();
    tracing::info!(
        owner = %shared.owner,
        fallback_poll_ms = shared.settings.fallback_poll.as_millis() as u64,
        "webhook worker started"
    );
    let mut next_purge = Instant::now();
    let mut why = WorkerRound::Fallback;
    while !*stopped.borrow() {
        while in_flight.try_join_next().is_some() {}
        if Instant::now() >= next_purge {
            // A full batch means there may be more: look again next round (one bounded
            // batch per round, between deliveries); otherwise in a minute.
            if !purge(&shared).await {
                next_purge = Instant::now() + PURGE_EVERY;
            }
        }
        shared.state.metrics.webhook_round(why);
        let busy = match step(&shared, &slots, &mut in_flight).await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::warn!(error = %e, "webhook worker: the database failed; trying again");
                false
            }
        };
        why = if busy {
            WorkerRound::Busy
        } else {
            match idle(&shared, &mut in_flight, &mut stopped, next_purge).await {
                Some(why) => why,
                None => break,
            }
        };
    }
    while in_flight.join_next().await.is_some() {}
    tracing::info!(owner = %shared.owner, "webhook worker stopped");
}

/// Sleeps until there may be work: a wake-up (webhook work committed here or on another
/// node), the earliest due time the database knows of or an attempt in flight reports (a
/// retry, a lease given back), the next retention pass, or the fallback poll. Returns why
/// it woke; None when the worker is to stop.
async fn idle(
    shared: &Shared,
    in_flight: &mut JoinSet<DueAgain>,
    stopped: &mut watch::Receiver<bool>,
    next_purge: Instant,
) -> Option<WorkerRound> {
    let started = Instant::now();
    let fallback = started + shared.settings.fallback_poll;
    let mut scheduled = next_purge;
    match shared.state.store.webhooks().next_due().await {
        Ok(Some(at)) => scheduled = scheduled.min(instant_of(at)),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "webhook worker: could not read the next due time; polling");
        }
    }
    loop {
        let scheduled_at = scheduled.max(started + MIN_SCHEDULED_WAIT);
        let (deadline, why) = if scheduled_at < fallback {
            (scheduled_at, WorkerRound::Scheduled)
        } else {
            (fallback, WorkerRound::Fallback)
        };
        tokio::select! {
            () = shared.state.webhooks_due.notified() => return Some(WorkerRound::Woken),
            () = tokio::time::sleep_until(deadline) => return Some(why),
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(Some(at)) = done {
                    scheduled = scheduled.min(instant_of(at));
                }
            }
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return None;
                }
            }
        }
    }
}

/// The monotonic instant of a wall-clock time (now when it has passed), at most a day on.
fn instant_of(at: Timestamp) -> Instant {
    let wait = Duration::try_from(at - portcullis_core::now()).unwrap_or(Duration::ZERO);
    Instant::now() + wait.min(Duration::from_secs(24 * 3600))
}

/// One retention batch; true when it was full (there may be more to delete).
async fn purge(shared: &Shared) -> bool {
    let before = portcullis_core::now() - shared.settings.retention;
    match shared
        .state
        .store
        .webhooks()
        .purge(before, PURGE_BATCH)
        .await
    {
        Ok(p) => {
            if p.events > 0 || p.deliveries > 0 {
                tracing::info!(
                    events = p.events,
                    deliveries = p.deliveries,
                    "webhook retention: deleted old delivered events and finished deliveries"
                );
            }
            p.events >= u64::from(PURGE_BATCH) || p.deliveries >= u64::from(PURGE_BATCH)
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook retention: the database failed; trying later");
            false
        }
    }
}

/// One round: fan out, claim what free slots allow, start the attempts. True when there was
/// work, so the next round starts without waiting.
async fn step(
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    in_flight: &mut JoinSet<DueAgain>,
) -> Result<bool, portcullis_store::StoreError> {
    let store = shared.state.store.webhooks();
    let now = portcullis_core::now();
    let fanned = store.fan_out(now, FAN_OUT_BATCH).await?;
    let free = slots.available_permits();
    if free == 0 {
        // Every slot is busy: wait for one attempt to end rather than spin.
        let _ = in_flight.join_next().await;
        return Ok(true);
    }
    let lease_until =
        now + time::Duration::try_from(shared.settings.lease).unwrap_or(time::Duration::MINUTE);
    let claimed = store
        .claim(
            &shared.owner,
            now,
            lease_until,
            u32::try_from(free).unwrap_or(u32::MAX),
        )
        .await?;
    let any = !claimed.is_empty();
    for c in claimed {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        in_flight.spawn(async move {
            let due_again = attempt(&shared, c, lease_until).await;
            drop(slot);
            due_again
        });
    }
    Ok(any || fanned == FAN_OUT_BATCH)
}

fn endpoint_slots(shared: &Shared, id: WebhookId) -> Arc<Semaphore> {
    let mut map = shared
        .endpoints
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    map.entry(id)
        .or_insert_with(|| Arc::new(Semaphore::new(shared.settings.endpoint_concurrency)))
        .clone()
}

/// One attempt, recorded; when the delivery is due again, if this worker should look.
async fn attempt(shared: &Shared, claimed: Claimed, lease_until: Timestamp) -> DueAgain {
    let store = shared.state.store.webhooks();
    let d = &claimed.delivery;
    let slots = endpoint_slots(shared, d.endpoint_id);
    // Waiting for the endpoint's turn must not outlast half the lease; past that the lease
    // goes back, and a later round (here or on another node) takes the delivery again.
    let Ok(Ok(_turn)) = tokio::time::timeout(shared.settings.lease / 2, slots.acquire()).await
    else {
        return match store.release(&shared.owner, &[d.id]).await {
            Ok(()) => Some(portcullis_core::now()),
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "could not release a lease; it will expire");
                Some(lease_until)
            }
        };
    };
    let result = shared.state.webhooks.send(&claimed).await;
    let failed_so_far = d.attempts.saturating_add(1);
    let next = if result.error_class.is_none() {
        NextStep::Succeeded
    } else {
        let jitter = portcullis_core::token::random_bytes::<8>()
            .map(|b| u64::from_le_bytes(b) as f64 / (u64::MAX as f64 + 1.0))
            .unwrap_or(0.5);
        match retry_delay(&shared.settings.schedule, failed_so_far, jitter) {
            Some(wait) => NextStep::RetryAt(
                result.at + time::Duration::try_from(wait).unwrap_or(time::Duration::HOUR),
            ),
            None => NextStep::Failed,
        }
    };
    let outcome = match next {
        NextStep::Succeeded => "succeeded",
        NextStep::RetryAt(_) => "retrying",
        NextStep::Failed => "failed",
    };
    shared.state.metrics.webhook_attempt(outcome);
    tracing::info!(
        delivery = %d.id,
        endpoint = %d.endpoint_id,
        event_type = %d.event_type,
        status = result.status_code,
        error_class = result.error_class.map(|c| c.as_str()),
        duration_ms = result.duration_ms,
        outcome,
        "webhook attempt"
    );
    match store
        .record_attempt(
            &shared.owner,
            &claimed,
            &result,
            next,
            shared.settings.disable_after,
        )
        .await
    {
        Ok(r) if r.disabled => {
            tracing::warn!(endpoint = %d.endpoint_id, "webhook endpoint disabled: failing for too long");
            None
        }
        Ok(r) if !r.held => {
            tracing::warn!(delivery = %d.id, "the lease had passed to another node; attempt recorded only");
            None
        }
        Ok(_) => match next {
            NextStep::RetryAt(at) => Some(at),
            NextStep::Succeeded | NextStep::Failed => None,
        },
        Err(e) => {
            // The lease will expire and the delivery be attempted again: at least once.
            tracing::warn!(delivery = %d.id, error = %e, "could not record a webhook attempt");
            Some(lease_until)
        }
    }
}
