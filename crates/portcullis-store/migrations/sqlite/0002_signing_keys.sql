-- JWS signing keys of the whole server (not tenant-owned). The private key is sealed by the
-- server with a key derived from the master key; only the public JWK is readable here.
-- A key is active while retired_at IS NULL, and published while publish_until is NULL or in
-- the future. At most one key per algorithm is active, so two nodes generating a first key at
-- once cannot both win.

CREATE TABLE signing_keys (
    kid                   TEXT PRIMARY KEY,
    alg                   TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'RS256')),
    encrypted_private_key BLOB NOT NULL,
    public_jwk            TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    retired_at            INTEGER,
    publish_until         INTEGER,
    CHECK ((retired_at IS NULL) = (publish_until IS NULL))
);
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE retired_at IS NULL;
