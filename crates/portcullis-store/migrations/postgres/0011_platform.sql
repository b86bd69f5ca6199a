-- The developer platform: a project's mode (live/test), its secret keys, and each org's
-- subscription. The same columns and constraints as migrations/sqlite/0011_platform.sql,
-- in native types.
--
-- Publishable keys are derived from the project id and mode (not secret, nothing stored).
-- Secret keys are stored only as SHA-256 digests with a displayable prefix; existing
-- projects get their first secret key when someone rotates (issues) one.
-- An org without a subscription row is on the `free` plan, `active`: existing orgs need no
-- backfill and creating an org writes nothing new. Plan limits come from configuration.
--
-- Both new tables are tenant-owned: row-level security admits an org's rows to that org's
-- context and all rows to the platform context (authenticating a secret key looks its
-- digest up there: the 238-bit key is the capability, as for invitation tokens).

ALTER TABLE projects ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));

CREATE TABLE project_secret_keys (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects (id),
    org_id       uuid NOT NULL REFERENCES orgs (id),
    key_hash     bytea NOT NULL,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL,
    -- Set when a newer key supersedes this one: the end of its grace period.
    expires_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT project_secret_keys_hash_key UNIQUE (key_hash)
);
CREATE INDEX project_secret_keys_project_idx ON project_secret_keys (project_id, created_at);

CREATE TABLE subscriptions (
    org_id               uuid PRIMARY KEY REFERENCES orgs (id),
    plan                 text NOT NULL,
    status               text NOT NULL
        CHECK (status IN ('active', 'trialing', 'past_due', 'canceled', 'inactive')),
    current_period_start timestamptz NOT NULL,
    current_period_end   timestamptz,
    updated_at           timestamptz NOT NULL
);

ALTER TABLE project_secret_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_secret_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY project_secret_keys_tenant ON project_secret_keys FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_tenant ON subscriptions FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON project_secret_keys, subscriptions TO portcullis_app;
    END IF;
END
$$;
