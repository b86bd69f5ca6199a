-- Invitations to join an org, and the password-setup links of admin-created (managed)
-- accounts. Both secrets are stored only as SHA-256 digests.
-- The same columns and constraints as migrations/sqlite/0009_invitations.sql, in native
-- types. Both tables are tenant-owned: row-level security admits an org's rows to that
-- org's context, and all rows to the platform context (accepting an invitation or setting
-- a first password looks a bare token up there: the 256-bit token is the capability).

CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id),
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    project_ids jsonb NOT NULL DEFAULT '[]',
    token_hash  bytea NOT NULL,
    invited_by  uuid,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid,
    revoked_at  timestamptz,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX invitations_org_idx ON invitations (org_id, created_at);

CREATE TABLE password_setup_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    org_id     uuid NOT NULL REFERENCES orgs (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_setup_tokens_user_idx ON password_setup_tokens (user_id);

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_tenant ON invitations FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE password_setup_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_setup_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY password_setup_tokens_tenant ON password_setup_tokens FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON invitations, password_setup_tokens TO portcullis_app;
    END IF;
END
$$;
