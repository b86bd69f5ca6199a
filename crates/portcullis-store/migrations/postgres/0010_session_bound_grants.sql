-- Refresh families that end with the browser session they were granted in, and an absolute
-- end for every family. The same columns as migrations/sqlite/0010_session_bound_grants.sql.
--
-- ends_with_session: the family is bound to a session and its grant lacks offline_access, so
-- signing out, revoking the session or its expiry ends the family too (the store revokes
-- such families in the transaction that ends the session, and refuses them at refresh once
-- the session is no longer live).
-- expires_at: the family's absolute end (oidc_refresh_max_lifetime_secs after it began),
-- whatever its tokens' own expiry says; NULL for families without one.

ALTER TABLE refresh_families ADD COLUMN ends_with_session boolean NOT NULL DEFAULT false;
ALTER TABLE refresh_families ADD COLUMN expires_at timestamptz;

-- Grants made before this migration follow the same rule.
UPDATE refresh_families SET ends_with_session = true
    WHERE session_id IS NOT NULL AND (' ' || scope || ' ') NOT LIKE '% offline_access %';

CREATE INDEX refresh_families_session_idx ON refresh_families (session_id);

-- A session may belong to grants of several orgs (one browser session signs in to the apps
-- of any project), while the transaction that ends it runs in one context: the user's own
-- (sign-out, DELETE /v1/sessions/{id}) or one org's (an admin, a mobile device). So a family
-- bound to a session that has ended may be read and revoked from any context — it is dead
-- anyway, and revoking is all these policies allow (the new row must be revoked).
CREATE POLICY refresh_families_session_ended_read ON refresh_families FOR SELECT
    USING (ends_with_session AND EXISTS (
        SELECT 1 FROM sessions s
        WHERE s.id = refresh_families.session_id AND s.revoked_at IS NOT NULL));
CREATE POLICY refresh_families_session_ended_revoke ON refresh_families FOR UPDATE
    USING (ends_with_session AND revoked_at IS NULL AND EXISTS (
        SELECT 1 FROM sessions s
        WHERE s.id = refresh_families.session_id AND s.revoked_at IS NOT NULL))
    WITH CHECK (revoked_at IS NOT NULL);
