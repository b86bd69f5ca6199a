-- The developer platform: a project's mode (live/test), its secret keys, and each org's
-- subscription. The same columns and constraints as migrations/postgres/0011_platform.sql.
--
-- Publishable keys are derived from the project id and mode (not secret, nothing stored).
-- Secret keys are stored only as SHA-256 digests with a displayable prefix; existing
-- projects get their first secret key when someone rotates (issues) one.
-- An org without a subscription row is on the `free` plan, `active`: existing orgs need no
-- backfill and creating an org writes nothing new. Plan limits come from configuration.

ALTER TABLE projects ADD COLUMN mode TEXT NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));

CREATE TABLE project_secret_keys (
    id           BLOB PRIMARY KEY,
    project_id   BLOB NOT NULL REFERENCES projects (id),
    org_id       BLOB NOT NULL REFERENCES orgs (id),
    key_hash     BLOB NOT NULL,
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    -- Set when a newer key supersedes this one: the end of its grace period.
    expires_at   INTEGER,
    last_used_at INTEGER,
    CONSTRAINT project_secret_keys_hash_key UNIQUE (key_hash)
);
CREATE INDEX project_secret_keys_project_idx ON project_secret_keys (project_id, created_at);

CREATE TABLE subscriptions (
    org_id               BLOB PRIMARY KEY REFERENCES orgs (id),
    plan                 TEXT NOT NULL,
    status               TEXT NOT NULL
        CHECK (status IN ('active', 'trialing', 'past_due', 'canceled', 'inactive')),
    current_period_start INTEGER NOT NULL,
    current_period_end   INTEGER,
    updated_at           INTEGER NOT NULL
);
