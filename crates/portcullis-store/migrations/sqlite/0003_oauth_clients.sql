-- OAuth clients (applications) of a project. `id` is the public client id (`pcc_…`); the
-- secret of a confidential client is kept only as its SHA-256. Lists are JSON arrays of
-- strings. Deleting is soft: `deleted_at` is set and the secret digest cleared, so a deleted
-- client never authenticates while grants that name it stay consistent.
-- The same columns and constraints as migrations/postgres/0003_oauth_clients.sql.

CREATE TABLE oauth_clients (
    id                         TEXT PRIMARY KEY,
    org_id                     BLOB NOT NULL REFERENCES orgs (id),
    project_id                 BLOB NOT NULL REFERENCES projects (id),
    name                       TEXT NOT NULL,
    client_type                TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    secret_hash                BLOB,
    redirect_uris              TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris  TEXT NOT NULL DEFAULT '[]',
    grant_types                TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    access_token_ttl_secs      INTEGER NOT NULL CHECK (access_token_ttl_secs > 0),
    signing_alg                TEXT NOT NULL CHECK (signing_alg IN ('EdDSA', 'ES256', 'RS256')),
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    deleted_at                 INTEGER,
    -- Public clients never hold a secret; live confidential ones always do.
    CONSTRAINT oauth_clients_secret_check CHECK (
        (client_type = 'public' AND secret_hash IS NULL)
        OR (client_type = 'confidential' AND (secret_hash IS NOT NULL OR deleted_at IS NOT NULL))
    )
);
CREATE INDEX oauth_clients_project_idx ON oauth_clients (project_id, created_at);
