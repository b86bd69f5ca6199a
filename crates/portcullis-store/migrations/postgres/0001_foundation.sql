-- Foundation: users, orgs, projects, memberships, sessions, audit.
-- The same tables, columns and constraint names as migrations/sqlite/0001_foundation.sql, in
-- native types. Tenant-owned tables are guarded a second time by row-level security: the
-- store sets three transaction-local settings at the start of each transaction
--   app.org_id   - the org the transaction acts in (org context),
--   app.user_id  - the user acting on their own memberships (user context),
--   app.platform - 'on' for platform-wide reads and platform-admin operations,
-- and the policies below admit only the rows that context may see.

-- Never hands out a number twice, even after deletes or rolled-back transactions; starts
-- above system ids.
CREATE SEQUENCE posix_id_seq AS bigint MINVALUE 10000 START 10000 NO CYCLE;

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text NOT NULL,
    name              text,
    password_hash     text,
    posix_uid         bigint NOT NULL,
    posix_gid         bigint NOT NULL,
    is_platform_admin boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL,
    deleted_at        timestamptz,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_posix_uid_key UNIQUE (posix_uid)
);

CREATE TABLE orgs (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    slug       text NOT NULL,
    personal   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    CONSTRAINT orgs_slug_key UNIQUE (slug)
);

CREATE TABLE projects (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES orgs (id),
    name            text NOT NULL,
    is_default      boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    redirect_uris   jsonb NOT NULL DEFAULT '[]',
    allowed_origins jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX projects_org_idx ON projects (org_id);

CREATE TABLE memberships (
    org_id     uuid NOT NULL REFERENCES orgs (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE project_memberships (
    project_id uuid NOT NULL REFERENCES projects (id),
    org_id     uuid NOT NULL REFERENCES orgs (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_memberships_user_idx ON project_memberships (user_id);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id),
    token_hash   bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    ip           text,
    user_agent   text,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE audit_events (
    id             uuid PRIMARY KEY,
    org_id         uuid,
    at             timestamptz NOT NULL,
    actor_id       uuid,
    action         text NOT NULL,
    target         text,
    outcome        text NOT NULL CHECK (outcome IN ('success', 'failure')),
    ip             text,
    user_agent     text,
    correlation_id text NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_org_idx ON audit_events (org_id, id);
CREATE INDEX audit_events_correlation_idx ON audit_events (correlation_id);

-- ---- row-level security ------------------------------------------------------------------

-- The context, read with missing_ok so an unset (NULL) or reset ('') setting admits nothing
-- instead of failing the cast. STABLE: evaluated once per statement, so indexes still apply.
CREATE FUNCTION app_org_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.org_id', true), '')::uuid $$;
CREATE FUNCTION app_user_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$;
CREATE FUNCTION app_platform() RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.platform', true) = 'on', false) $$;

-- Orgs in which the user context has an active membership. It reads memberships under that
-- table's own policy, which admits the user's own rows.
CREATE FUNCTION app_user_org_ids() RETURNS SETOF uuid LANGUAGE sql STABLE
    AS $$ SELECT m.org_id FROM memberships m WHERE m.user_id = app_user_id() AND m.deleted_at IS NULL $$;

ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY orgs_read ON orgs FOR SELECT
    USING (app_platform() OR id = app_org_id() OR id IN (SELECT app_user_org_ids()));
CREATE POLICY orgs_write ON orgs FOR ALL
    USING (app_platform() OR id = app_org_id())
    WITH CHECK (app_platform() OR id = app_org_id());

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_read ON projects FOR SELECT
    USING (app_platform() OR org_id = app_org_id() OR org_id IN (SELECT app_user_org_ids()));
CREATE POLICY projects_write ON projects FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- A user context sees its own memberships, removed ones included (the caller may ask why it
-- lost access); it never writes them.
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY memberships_read ON memberships FOR SELECT
    USING (app_platform() OR org_id = app_org_id() OR user_id = app_user_id());
CREATE POLICY memberships_write ON memberships FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE project_memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY project_memberships_read ON project_memberships FOR SELECT
    USING (app_platform() OR org_id = app_org_id() OR org_id IN (SELECT app_user_org_ids()));
CREATE POLICY project_memberships_write ON project_memberships FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- Events without an org (logins, a user's own sessions) are visible to an org whose active
-- member did them, as the SQLite backend's query_audit does; anyone may write one. There is
-- no UPDATE or DELETE policy: the trail is append-only for the application.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_read ON audit_events FOR SELECT
    USING (
        app_platform()
        OR org_id = app_org_id()
        OR (org_id IS NULL AND actor_id IN (
            SELECT m.user_id FROM memberships m
            WHERE m.org_id = app_org_id() AND m.deleted_at IS NULL))
    );
CREATE POLICY audit_events_insert ON audit_events FOR INSERT
    WITH CHECK (app_platform() OR org_id IS NULL OR org_id = app_org_id());

-- ---- the application role ----------------------------------------------------------------

-- Superusers and BYPASSRLS roles skip every policy, FORCE or not, so a server connecting as
-- one switches to this role (`SET ROLE portcullis_app`). Roles belong to the whole cluster:
-- another database may be creating it at this very moment, and the migrating user may not
-- be allowed to create roles at all (then it must not bypass RLS itself).
DO $$
BEGIN
    BEGIN
        CREATE ROLE portcullis_app NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role portcullis_app; the connecting role must not be a superuser or BYPASSRLS';
    END;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE
            ON users, orgs, projects, memberships, project_memberships, sessions, audit_events
            TO portcullis_app;
        GRANT USAGE ON SEQUENCE posix_id_seq TO portcullis_app;
        -- So the app role can tell whether migrations are current.
        GRANT SELECT ON _sqlx_migrations TO portcullis_app;
        -- Tables and sequences later migrations create are granted too.
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO portcullis_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE ON SEQUENCES TO portcullis_app;
    END IF;
END
$$;
