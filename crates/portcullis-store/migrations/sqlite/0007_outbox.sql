-- The outbox: events for delivery outside the database (webhooks), written in the same
-- transaction as the change they describe, so a crash never loses one and never invents
-- one. A delivery worker finds what is due through the partial index: only undelivered
-- rows are in it, oldest attempt first.

CREATE TABLE outbox_events (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    project_id      BLOB,
    event_type      TEXT NOT NULL,
    -- A JSON document.
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- Delivery state, for the worker: attempts so far, when to try next, when it succeeded.
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX outbox_events_due_idx ON outbox_events (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_events_org_idx ON outbox_events (org_id, created_at);
