-- The outbox: events for delivery outside the database (webhooks), written in the same
-- transaction as the change they describe, so a crash never loses one and never invents
-- one. A delivery worker finds what is due through the partial index: only undelivered
-- rows are in it, oldest attempt first. The same columns and constraints as
-- migrations/sqlite/0007_outbox.sql, in native types. Rows belong to an org, and row-level
-- security checks that like every tenant table; the worker reads in platform scope.

CREATE TABLE outbox_events (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL,
    project_id      uuid,
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    -- Delivery state, for the worker: attempts so far, when to try next, when it succeeded.
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz
);
CREATE INDEX outbox_events_due_idx ON outbox_events (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_events_org_idx ON outbox_events (org_id, created_at);

ALTER TABLE outbox_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox_events FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_events_tenant ON outbox_events FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- 0001's default privileges cover new tables only when the same role migrates; say it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_events TO portcullis_app;
    END IF;
END
$$;
