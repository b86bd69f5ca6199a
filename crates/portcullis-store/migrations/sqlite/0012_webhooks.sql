-- Outgoing webhooks: endpoints of projects, one delivery per event and endpoint (its id is
-- the `webhook-id` receivers de-duplicate by), and every attempt of a delivery. The worker
-- fans outbox events out into deliveries and marks the event delivered in one
-- transaction, so an event is neither lost nor fanned out twice; a delivery is claimed
-- with a lease, so an attempt cut short by a crash is made again once the lease expires.

CREATE TABLE webhook_endpoints (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    project_id      BLOB NOT NULL,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    -- A JSON array of event types ("*" for all).
    events          TEXT NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    -- The signing key, sealed under the master key (AES-256-GCM, bound to the endpoint id).
    secret_sealed   BLOB NOT NULL,
    -- The key before the last rotation, which also signs until it expires.
    previous_secret_sealed     BLOB,
    previous_secret_expires_at INTEGER,
    -- Since when every attempt has failed (NULL after a success); long enough disables it.
    failing_since   INTEGER,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
CREATE INDEX webhook_endpoints_project_idx ON webhook_endpoints (project_id) WHERE deleted_at IS NULL;
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id),
    -- The outbox event (or the test) it delivers: one delivery per event and endpoint.
    event_id        BLOB NOT NULL,
    event_type      TEXT NOT NULL,
    -- The exact body sent on every attempt.
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_status     INTEGER,
    finished_at     INTEGER,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    delivery_id     BLOB NOT NULL REFERENCES webhook_deliveries (id),
    at              INTEGER NOT NULL,
    status_code     INTEGER,
    duration_ms     INTEGER NOT NULL,
    -- The first KiB of the answer, as text.
    response        TEXT NOT NULL DEFAULT '',
    error_class     TEXT
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, at);
