//! The cross-node change feed: writers `pg_notify` inside their transaction (delivered on
//! commit), every node `LISTEN`s and tells its caches, and its webhook worker when a unit
//! queued webhook work. A notification sent while a listener is disconnected is lost, so the
//! sink hears `feed_up(false)` until it is back.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{OrgId, SessionId, UserId};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::{Change, ChangeSink};

pub(super) const CHANNEL: &str = "portcullis_changes";

/// Webhook work was committed (outbox rows, a delivery made due): every worker may look.
/// A channel of its own, so nodes of an older version, which do not listen to it, are not
/// told of something they cannot parse.
pub(super) const WEBHOOKS_CHANNEL: &str = "portcullis_webhooks";
const WEBHOOKS_DUE: &str = "due";

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) fn payload(change: &Change) -> String {
    match change {
        Change::SessionRevoked(id) => format!("session:{id}"),
        Change::UserChanged(id) => format!("user:{id}"),
        Change::OrgChanged(id) => format!("org:{id}"),
        Change::TokensRevoked => "tokens:revoked".to_owned(),
    }
}

/// A unit's notifications as two parallel arrays (channel, payload), for one `pg_notify`
/// over `unnest`: its changes, then the webhook wake-up if it has one.
pub(super) fn notices(changes: &[Change], webhooks_due: bool) -> (Vec<&'static str>, Vec<String>) {
    let mut channels = Vec::with_capacity(changes.len() + 1);
    let mut payloads = Vec::with_capacity(changes.len() + 1);
    for change in changes {
        channels.push(CHANNEL);
        payloads.push(payload(change));
    }
    if webhooks_due {
        channels.push(WEBHOOKS_CHANNEL);
        payloads.push(WEBHOOKS_DUE.to_owned());
    }
    (channels, payloads)
}

pub(super) fn parse(payload: &str) -> Option<Change> {
    let (kind, id) = payload.split_once(':')?;
    match kind {
        "session" => SessionId::parse(id).map(Change::SessionRevoked),
        "user" => UserId::parse(id).map(Change::UserChanged),
        "org" => OrgId::parse(id).map(Change::OrgChanged),
        "tokens" => Some(Change::TokensRevoked),
        _ => None,
    }
}

/// Listens until the task is aborted, reconnecting with backoff after any failure.
pub(super) fn spawn(options: PgConnectOptions, sink: Arc<dyn ChangeSink>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match listen(&options, sink.as_ref(), &mut backoff).await {
                Ok(()) => tracing::warn!("change feed connection lost; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "change feed failed; reconnecting"),
            }
            sink.feed_up(false);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// Returns Ok when the connection was lost without an error to report.
async fn listen(
    options: &PgConnectOptions,
    sink: &dyn ChangeSink,
    backoff: &mut Duration,
) -> Result<(), sqlx::Error> {
    // A pool of one, only so the listener owns its connection; reconnecting is our loop's job.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.listen_all([CHANNEL, WEBHOOKS_CHANNEL]).await?;
    sink.feed_up(true);
    *backoff = FIRST_BACKOFF;
    while let Some(notification) = listener.try_recv().await? {
        if notification.channel() == WEBHOOKS_CHANNEL {
            sink.webhooks_due();
            continue;
        }
        match parse(notification.payload()) {
            Some(change) => sink.changed(change),
            None => tracing::warn!(
                payload = notification.payload(),
                "ignoring unknown change notification"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::SessionRevoked(SessionId::new()),
            Change::UserChanged(UserId::new()),
            Change::OrgChanged(OrgId::new()),
            Change::TokensRevoked,
        ] {
            assert_eq!(parse(&payload(&change)), Some(change));
        }
        for bad in ["", "session", "session:nope", "project:0193", "user:"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_units_notices_are_its_changes_then_the_webhook_wake_up() {
        assert_eq!(notices(&[], false), (vec![], vec![]));
        let org = OrgId::new();
        let (channels, payloads) = notices(&[Change::OrgChanged(org), Change::TokensRevoked], true);
        assert_eq!(channels, [CHANNEL, CHANNEL, WEBHOOKS_CHANNEL]);
        assert_eq!(
            payloads,
            [
                format!("org:{org}"),
                "tokens:revoked".to_owned(),
                "due".to_owned()
            ]
        );
        assert_eq!(
            notices(&[], true),
            (vec![WEBHOOKS_CHANNEL], vec!["due".to_owned()])
        );
    }
}
