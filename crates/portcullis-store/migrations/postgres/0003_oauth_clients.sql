-- OAuth clients (applications) of a project. `id` is the public client id (`pcc_…`); the
-- secret of a confidential client is kept only as its SHA-256. Deleting is soft:
-- `deleted_at` is set and the secret digest cleared, so a deleted client never
-- authenticates while grants that name it stay consistent.
-- The same columns and constraints as migrations/sqlite/0003_oauth_clients.sql, in native
-- types. Clients are tenant-owned: row-level security admits an org's rows to that org's
-- context, and all rows to the platform context (the OAuth endpoints look a client up by
-- its id alone).

CREATE TABLE oauth_clients (
    id                         text PRIMARY KEY,
    org_id                     uuid NOT NULL REFERENCES orgs (id),
    project_id                 uuid NOT NULL REFERENCES projects (id),
    name                       text NOT NULL,
    client_type                text NOT NULL CHECK (client_type IN ('confidential', 'public')),
    secret_hash                bytea,
    redirect_uris              jsonb NOT NULL DEFAULT '[]',
    post_logout_redirect_uris  jsonb NOT NULL DEFAULT '[]',
    grant_types                jsonb NOT NULL,
    token_endpoint_auth_method text NOT NULL
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    access_token_ttl_secs      integer NOT NULL CHECK (access_token_ttl_secs > 0),
    signing_alg                text NOT NULL CHECK (signing_alg IN ('EdDSA', 'ES256', 'RS256')),
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL,
    deleted_at                 timestamptz,
    -- Public clients never hold a secret; live confidential ones always do.
    CONSTRAINT oauth_clients_secret_check CHECK (
        (client_type = 'public' AND secret_hash IS NULL)
        OR (client_type = 'confidential' AND (secret_hash IS NOT NULL OR deleted_at IS NOT NULL))
    )
);
CREATE INDEX oauth_clients_project_idx ON oauth_clients (project_id, created_at);

ALTER TABLE oauth_clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_clients FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth_clients_tenant ON oauth_clients FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- 0001's default privileges cover new tables only when the same role migrates; say it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_clients TO portcullis_app;
    END IF;
END
$$;
