-- Outgoing webhooks: endpoints of projects, one delivery per event and endpoint (its id is
-- the `webhook-id` receivers de-duplicate by), and every attempt of a delivery. The same
-- columns and constraints as migrations/sqlite/0012_webhooks.sql, in native types. The
-- worker fans outbox events out into deliveries and marks the event delivered in one
-- transaction (`FOR UPDATE SKIP LOCKED`, so nodes never fan out one event twice), and
-- claims deliveries with leases (the same), so nodes share the work without sending one
-- attempt twice and an attempt cut short by a crash is made again once its lease expires.
-- Every table belongs to an org and row-level security checks that; the worker works in
-- platform scope.

CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    project_id      uuid NOT NULL,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    events          jsonb NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    secret_sealed   bytea NOT NULL,
    previous_secret_sealed     bytea,
    previous_secret_expires_at timestamptz,
    failing_since   timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);
CREATE INDEX webhook_endpoints_project_idx ON webhook_endpoints (project_id) WHERE deleted_at IS NULL;
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL,
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_owner     text,
    lease_until     timestamptz,
    last_status     integer,
    finished_at     timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    delivery_id     uuid NOT NULL REFERENCES webhook_deliveries (id),
    at              timestamptz NOT NULL,
    status_code     integer,
    duration_ms     bigint NOT NULL,
    response        text NOT NULL DEFAULT '',
    error_class     text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, at);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_endpoints_tenant ON webhook_endpoints FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_tenant ON webhook_deliveries FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_attempts_tenant ON webhook_attempts FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- 0001's default privileges cover new tables only when the same role migrates; say it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints, webhook_deliveries, webhook_attempts TO portcullis_app;
    END IF;
END
$$;
