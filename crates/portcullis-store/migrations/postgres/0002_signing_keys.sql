-- JWS signing keys of the whole server (not tenant-owned, so no row-level security: every
-- node reads them all). The private key is sealed by the server with a key derived from the
-- master key; only the public JWK is readable here. A key is active while retired_at IS NULL,
-- and published while publish_until is NULL or in the future. At most one key per algorithm
-- is active, so two nodes generating a first key at once cannot both win.

CREATE TABLE signing_keys (
    kid                   text PRIMARY KEY,
    alg                   text NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'RS256')),
    encrypted_private_key bytea NOT NULL,
    public_jwk            jsonb NOT NULL,
    created_at            timestamptz NOT NULL,
    retired_at            timestamptz,
    publish_until         timestamptz,
    CHECK ((retired_at IS NULL) = (publish_until IS NULL))
);
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE retired_at IS NULL;

-- Default privileges from 0001 cover new tables only when the same role migrates; say it
-- explicitly. The role may be missing when the migrating user could not create it (0001).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON signing_keys TO portcullis_app;
    END IF;
END
$$;
