//! OAuth grants on PostgreSQL. Every transaction runs in the org context of the client the
//! grant belongs to; rotation and redemption lock the presented row (`FOR UPDATE`), so of
//! many concurrent presentations exactly one sees it unused.

use async_trait::async_trait;
use portcullis_core::grant::{Consent, RevocationReason};
use portcullis_core::oauth::ClientId;
use portcullis_core::scope::ScopeSet;
use portcullis_core::{
    AuditContext, FamilyId, OrgId, ProjectId, SessionId, Timestamp, TokenHash, UserId,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::statements::{Tx, insert_audit, notify};
use super::{PgStore, Scope};
use crate::grants::{
    AuthCode, CodeRedemption, GrantStore, RefreshFamily, RefreshOutcome, RefreshTokenState,
};
use crate::{Change, StoreError, StoreResult};

fn client_id(s: String) -> StoreResult<ClientId> {
    ClientId::parse(&s).ok_or_else(|| StoreError::Corrupt("client id".into()))
}

fn hash(bytes: Vec<u8>) -> StoreResult<TokenHash> {
    TokenHash::from_slice(&bytes).ok_or_else(|| StoreError::Corrupt("hash length".into()))
}

macro_rules! family_cols {
    () => {
        "f.id AS f_id, f.client_id AS f_client_id, f.org_id AS f_org_id, f.project_id AS f_project_id, \
         f.user_id AS f_user_id, f.session_id AS f_session_id, f.scope AS f_scope, f.auth_time AS f_auth_time, \
         f.created_at AS f_created_at, f.revoked_at AS f_revoked_at"
    };
}

fn family_from(row: &PgRow) -> StoreResult<RefreshFamily> {
    Ok(RefreshFamily {
        id: FamilyId(row.try_get("f_id")?),
        client_id: client_id(row.try_get("f_client_id")?)?,
        org_id: OrgId(row.try_get("f_org_id")?),
        project_id: ProjectId(row.try_get("f_project_id")?),
        user_id: UserId(row.try_get("f_user_id")?),
        session_id: row
            .try_get::<Option<Uuid>, _>("f_session_id")?
            .map(SessionId),
        scope: row.try_get("f_scope")?,
        auth_time: row.try_get("f_auth_time")?,
        created_at: row.try_get("f_created_at")?,
    })
}

fn code_from(row: &PgRow) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        code_hash: hash(row.try_get("code_hash")?)?,
        client_id: client_id(row.try_get("client_id")?)?,
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        user_id: UserId(row.try_get("user_id")?),
        session_id: row.try_get::<Option<Uuid>, _>("session_id")?.map(SessionId),
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

async fn revoke_family_in(
    tx: &mut Tx,
    family: FamilyId,
    reason: RevocationReason,
    now: Timestamp,
) -> StoreResult<bool> {
    let n = sqlx::query("UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(reason.as_str())
        .bind(family.0)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n > 0 {
        notify(tx, &Change::TokensRevoked).await?;
    }
    Ok(n > 0)
}

/// A refresh family and its first token, inside the caller's transaction.
pub(super) async fn insert_family(
    tx: &mut Tx,
    f: &RefreshFamily,
    first: &TokenHash,
    expires_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_families (id, client_id, org_id, project_id, user_id, session_id, scope, auth_time, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(f.id.0)
    .bind(f.client_id.as_str())
    .bind(f.org_id.0)
    .bind(f.project_id.0)
    .bind(f.user_id.0)
    .bind(f.session_id.map(|s| s.0))
    .bind(&f.scope)
    .bind(f.auth_time)
    .bind(f.created_at)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&first.0[..])
        .bind(f.id.0)
        .bind(f.org_id.0)
        .bind(f.created_at)
        .bind(expires_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl GrantStore for PgStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        let mut tx = self.begin(Scope::Org(c.org_id)).await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, client_id, org_id, project_id, user_id, session_id, redirect_uri, scope, \
             nonce, code_challenge, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&c.code_hash.0[..])
        .bind(c.client_id.as_str())
        .bind(c.org_id.0)
        .bind(c.project_id.0)
        .bind(c.user_id.0)
        .bind(c.session_id.map(|s| s.0))
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(&c.nonce)
        .bind(&c.code_challenge)
        .bind(c.auth_time)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        org_id: OrgId,
        code_hash: &TokenHash,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<CodeRedemption> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        let row = sqlx::query(
            "SELECT * FROM oauth_codes WHERE code_hash = $1 AND org_id = $2 FOR UPDATE",
        )
        .bind(&code_hash.0[..])
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CodeRedemption::Unknown);
        };
        let code = code_from(&row)?;
        if row.try_get::<Option<Timestamp>, _>("used_at")?.is_some() {
            let family: Option<Uuid> = row.try_get("family_id")?;
            if let Some(f) = family {
                revoke_family_in(&mut tx, FamilyId(f), RevocationReason::CodeReplay, now).await?;
            }
            insert_audit(
                &mut tx,
                &crate::events::code_replayed(ctx, org_id, code.client_id.as_str(), family),
            )
            .await?;
            tx.commit().await?;
            return Ok(CodeRedemption::Replayed {
                client_id: code.client_id,
            });
        }
        sqlx::query("UPDATE oauth_codes SET used_at = $1 WHERE code_hash = $2")
            .bind(now)
            .bind(&code_hash.0[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CodeRedemption::Redeemed(Box::new(code)))
    }

    async fn start_family(
        &self,
        f: &RefreshFamily,
        first: &TokenHash,
        expires_at: Timestamp,
        from_code: Option<&TokenHash>,
    ) -> StoreResult<()> {
        let mut tx = self.begin(Scope::Org(f.org_id)).await?;
        insert_family(&mut tx, f, first, expires_at).await?;
        if let Some(code) = from_code {
            sqlx::query("UPDATE oauth_codes SET family_id = $1 WHERE code_hash = $2")
                .bind(f.id.0)
                .bind(&code.0[..])
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        org_id: OrgId,
        client: &ClientId,
        presented: &TokenHash,
        successor: &TokenHash,
        now: Timestamp,
        grace: time::Duration,
        successor_expires_at: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<RefreshOutcome> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        // The common case in one statement: a live, unused token of this client's live
        // family is marked used and its successor stored. Anything else (a retry, reuse,
        // revocation, expiry, another client's token) matches no row and is told apart
        // below. A concurrent rotation of the same token waits on the row lock, then sees
        // `used_at` set on re-check and falls through to the same classification.
        let rotated = sqlx::query(concat!(
            "WITH cur AS (SELECT t.token_hash, t.family_id \
               FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
               WHERE t.token_hash = $1 AND t.org_id = $2 AND t.used_at IS NULL AND t.expires_at > $3 \
                 AND f.revoked_at IS NULL AND f.client_id = $4 \
               FOR UPDATE OF t, f), \
             upd AS (UPDATE refresh_tokens t SET used_at = $3, successor_hash = $5 \
               FROM cur WHERE t.token_hash = cur.token_hash RETURNING t.family_id), \
             ins AS (INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) \
               SELECT $5, family_id, $2, $3, $6 FROM upd RETURNING family_id) \
             SELECT ",
            family_cols!(),
            " FROM refresh_families f JOIN ins ON f.id = ins.family_id"
        ))
        .bind(&presented.0[..])
        .bind(org_id.0)
        .bind(now)
        .bind(client.as_str())
        .bind(&successor.0[..])
        .bind(successor_expires_at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = rotated {
            let family = family_from(&row)?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Rotated(family));
        }
        let row = sqlx::query(concat!(
            "SELECT t.expires_at, t.used_at, t.successor_hash, ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
              WHERE t.token_hash = $1 AND t.org_id = $2 FOR UPDATE OF t, f"
        ))
        .bind(&presented.0[..])
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Unknown);
        };
        let family = family_from(&row)?;
        if family.client_id != *client {
            return Ok(RefreshOutcome::Unknown);
        }
        if row
            .try_get::<Option<Timestamp>, _>("f_revoked_at")?
            .is_some()
        {
            return Ok(RefreshOutcome::Revoked(family));
        }
        if let Some(used_at) = row.try_get::<Option<Timestamp>, _>("used_at")? {
            let same_successor = row
                .try_get::<Option<Vec<u8>>, _>("successor_hash")?
                .is_some_and(|h| h == successor.0);
            if same_successor && now - used_at <= grace {
                return Ok(RefreshOutcome::Retried(family));
            }
            revoke_family_in(&mut tx, family.id, RevocationReason::Reuse, now).await?;
            insert_audit(&mut tx, &crate::events::refresh_reuse(ctx, &family)).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::ReuseDetected(family));
        }
        if row.try_get::<Timestamp, _>("expires_at")? <= now {
            return Ok(RefreshOutcome::Expired(family));
        }
        sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 WHERE token_hash = $3",
        )
        .bind(now)
        .bind(&successor.0[..])
        .bind(&presented.0[..])
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&successor.0[..])
            .bind(family.id.0)
            .bind(org_id.0)
            .bind(now)
            .bind(successor_expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated(family))
    }

    async fn refresh_token_state(
        &self,
        org_id: OrgId,
        token: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        let row = sqlx::query(concat!(
            "SELECT t.created_at, t.expires_at, t.used_at, ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1 AND t.org_id = $2"
        ))
        .bind(&token.0[..])
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(RefreshTokenState {
                family: family_from(&r)?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                used: r.try_get::<Option<Timestamp>, _>("used_at")?.is_some(),
                family_revoked: r.try_get::<Option<Timestamp>, _>("f_revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn revoke_family(
        &self,
        org_id: OrgId,
        family_id: FamilyId,
        reason: RevocationReason,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        let n = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND org_id = $4 AND revoked_at IS NULL",
        )
        .bind(portcullis_core::now())
        .bind(reason.as_str())
        .bind(family_id.0)
        .bind(org_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        notify(&mut tx, &Change::TokensRevoked).await?;
        insert_audit(
            &mut tx,
            &crate::events::family_revoked(ctx, org_id, family_id, reason),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn family_revoked(&self, org_id: OrgId, family_id: FamilyId) -> StoreResult<bool> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        let revoked: Option<Option<Timestamp>> = sqlx::query_scalar(
            "SELECT revoked_at FROM refresh_families WHERE id = $1 AND org_id = $2",
        )
        .bind(family_id.0)
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        // An unknown family cannot vouch for anything: treat as revoked.
        Ok(revoked.is_none_or(|r| r.is_some()))
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        let mut tx = self.acquire_wait.time(self.pool.begin()).await?;
        sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < now()")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, &Change::TokensRevoked).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn access_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM revoked_access_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn consent(
        &self,
        org_id: OrgId,
        user_id: UserId,
        client: &ClientId,
    ) -> StoreResult<Option<ScopeSet>> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        let scope: Option<String> = sqlx::query_scalar("SELECT scope FROM oauth_consents WHERE org_id = $1 AND user_id = $2 AND client_id = $3")
            .bind(org_id.0)
            .bind(user_id.0)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(scope.as_deref().map(ScopeSet::granted))
    }

    async fn grant_consent(
        &self,
        org_id: OrgId,
        user_id: UserId,
        client: &ClientId,
        scope: &str,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut tx = self.begin(Scope::Org(org_id)).await?;
        sqlx::query(
            "INSERT INTO oauth_consents (user_id, client_id, org_id, scope, granted_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(user_id.0)
        .bind(client.as_str())
        .bind(org_id.0)
        .bind(scope)
        .bind(portcullis_core::now())
        .execute(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            &crate::events::consent(ctx, org_id, user_id, client.as_str(), true, scope),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_consent(
        &self,
        user_id: UserId,
        client: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut tx = self.begin(Scope::User(user_id)).await?;
        let row = sqlx::query("DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2 RETURNING org_id, scope")
            .bind(user_id.0)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let org_id = OrgId(row.try_get("org_id")?);
        let scope: String = row.try_get("scope")?;
        // The client's families belong to its org: switch this transaction's context to it.
        sqlx::query("SELECT set_config('app.org_id', $1, true)")
            .bind(org_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'consent_revoked' \
             WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(portcullis_core::now())
        .bind(user_id.0)
        .bind(client.as_str())
        .execute(&mut *tx)
        .await?;
        notify(&mut tx, &Change::TokensRevoked).await?;
        insert_audit(
            &mut tx,
            &crate::events::consent(ctx, org_id, user_id, client.as_str(), false, &scope),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn consents_of_user(&self, user_id: UserId) -> StoreResult<Vec<Consent>> {
        let mut tx = self.begin(Scope::User(user_id)).await?;
        let rows = sqlx::query("SELECT client_id, scope, granted_at FROM oauth_consents WHERE user_id = $1 ORDER BY granted_at DESC")
            .bind(user_id.0)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(Consent {
                    client_id: client_id(r.try_get("client_id")?)?,
                    scope: ScopeSet::granted(r.try_get("scope")?),
                    granted_at: r.try_get("granted_at")?,
                })
            })
            .collect()
    }
}
