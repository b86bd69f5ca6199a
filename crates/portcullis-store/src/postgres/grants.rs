//! OAuth grants on PostgreSQL. Every unit runs in the org context of the client the grant
//! belongs to; rotation and redemption lock the presented row (`FOR UPDATE`), so of many
//! concurrent presentations exactly one sees it unused. What a presented refresh token
//! means is decided by [`classify_refresh`]; this file only runs the SQL each decision
//! calls for.

use async_trait::async_trait;
use portcullis_core::grant::{CodeLookup, CodeRefused, Consent, RevocationReason, redeem_code};
use portcullis_core::oauth::ClientId;
use portcullis_core::refresh::ends_with_session;
use portcullis_core::scope::ScopeSet;
use portcullis_core::{
    AuditContext, FamilyId, OrgId, RefreshDecision, SessionId, Timestamp, TokenHash, User, UserId,
    classify_refresh,
};
use sqlx::Row;
use uuid::Uuid;

use super::PgStore;
use super::rows::{
    client_id, code_from, family_cols, family_from, token_cols, token_state_from, user_cols,
    user_from,
};
use super::statements::end_session;
use super::unit::Unit;
use crate::grants::{
    AuthCode, CodeRedemption, CodeRedemptionRequest, GrantStore, RefreshFamily, RefreshOutcome,
    RefreshRotation, RefreshTokenState,
};
use crate::unit::Scope;
use crate::{Change, StoreResult};

/// Revokes a live family of the org; false when it was unknown or revoked already.
pub(super) async fn revoke_family_in(
    unit: &mut Unit<'_>,
    org_id: OrgId,
    family: FamilyId,
    reason: RevocationReason,
    now: Timestamp,
) -> StoreResult<bool> {
    let n = sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND org_id = $4 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason.as_str())
    .bind(family.0)
    .bind(org_id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected();
    if n > 0 {
        unit.changed(Change::TokensRevoked);
    }
    Ok(n > 0)
}

/// A refresh family and its first token, inside the caller's unit; the family has no
/// absolute end of its own.
pub(super) async fn insert_family(
    unit: &mut Unit<'_>,
    f: &RefreshFamily,
    first: &TokenHash,
    expires_at: Timestamp,
) -> StoreResult<()> {
    insert_family_until(unit, f, first, expires_at, None).await
}

/// A refresh family ending at `family_expires_at` (if anything) and its first token, inside
/// the caller's unit. A family bound to a session ends with it unless its scope says
/// otherwise ([`ends_with_session`]).
async fn insert_family_until(
    unit: &mut Unit<'_>,
    f: &RefreshFamily,
    first: &TokenHash,
    expires_at: Timestamp,
    family_expires_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_families (id, client_id, org_id, project_id, user_id, session_id, scope, auth_time, \
         created_at, ends_with_session, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    .bind(f.session_id.is_some() && ends_with_session(&ScopeSet::granted(&f.scope)))
    .bind(family_expires_at)
    .execute(&mut **unit)
    .await?;
    insert_token(unit, f.org_id, f.id, first, f.created_at, expires_at).await
}

/// Revokes the families that end with session `id`, in the unit that ends it (sign-out,
/// revocation by the user or an admin, a device signed out), so no refresh token outlives
/// the session it was granted in. Families with `offline_access` are left alone. The
/// families may belong to any org: migration 0010's policies let any context revoke a
/// family whose session has ended, which the session's own row, updated earlier in this
/// unit, now says.
pub(super) async fn end_session_families(
    unit: &mut Unit<'_>,
    id: SessionId,
    now: Timestamp,
) -> StoreResult<()> {
    let n = sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 \
         WHERE session_id = $3 AND ends_with_session AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(RevocationReason::SessionEnded.as_str())
    .bind(id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected();
    if n > 0 {
        unit.changed(Change::TokensRevoked);
    }
    Ok(())
}

/// The condition on a session (`$sid`, `$now`) that grants ending with it need: neither
/// revoked nor expired, its user not deleted.
const SESSION_LIVE: &str = "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.deleted_at IS NULL";

/// The family's user from a row with `user_cols!` of a `LEFT JOIN users` (None: deleted).
fn holder_from(row: &sqlx::postgres::PgRow) -> StoreResult<Option<User>> {
    match row.try_get::<Option<Uuid>, _>("u_id")? {
        Some(_) => Ok(Some(user_from(row)?)),
        None => Ok(None),
    }
}

async fn session_live_in<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    id: SessionId,
    now: Timestamp,
) -> StoreResult<bool> {
    let found: Option<i32> = sqlx::query_scalar(SESSION_LIVE)
        .bind(id.0)
        .bind(now)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Marks a code used, with the family minted from it (a replay revokes that family).
async fn spend_code(
    unit: &mut Unit<'_>,
    code: &TokenHash,
    now: Timestamp,
    family: Option<FamilyId>,
) -> StoreResult<()> {
    sqlx::query("UPDATE oauth_codes SET used_at = $1, family_id = $2 WHERE code_hash = $3")
        .bind(now)
        .bind(family.map(|f| f.0))
        .bind(&code.0[..])
        .execute(&mut **unit)
        .await?;
    Ok(())
}

async fn insert_token(
    unit: &mut Unit<'_>,
    org_id: OrgId,
    family: FamilyId,
    token: &TokenHash,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.0[..])
    .bind(family.0)
    .bind(org_id.0)
    .bind(created_at)
    .bind(expires_at)
    .execute(&mut **unit)
    .await?;
    Ok(())
}

#[async_trait]
impl GrantStore for PgStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(c.org_id)).await?;
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
        .execute(&mut *unit)
        .await?;
        unit.commit().await
    }

    async fn redeem_code(
        &self,
        r: &CodeRedemptionRequest<'_>,
        ctx: &AuditContext,
    ) -> StoreResult<CodeRedemption> {
        let mut unit = self.unit(Scope::Org(r.org_id)).await?;
        let row = sqlx::query(
            "SELECT * FROM oauth_codes WHERE code_hash = $1 AND org_id = $2 FOR UPDATE",
        )
        .bind(&r.code_hash.0[..])
        .bind(r.org_id.0)
        .fetch_optional(&mut *unit)
        .await?;
        let found = match &row {
            None => CodeLookup::Unknown,
            Some(row) if row.try_get::<Option<Timestamp>, _>("used_at")?.is_some() => {
                CodeLookup::Spent(code_from(row)?)
            }
            Some(row) => CodeLookup::FirstUse(code_from(row)?),
        };
        let decided = match redeem_code(found, AuthCode::binding, &r.presented, r.now) {
            // A grant that would end with its session is not started once that session is
            // over (signed out between authorization and redemption).
            Ok(code) => {
                if let Some(sid) = code.session_id
                    && ends_with_session(&ScopeSet::granted(&code.scope))
                    && !session_live_in(&mut *unit, sid, r.now).await?
                {
                    Err(CodeRefused::SessionEnded)
                } else {
                    Ok(code)
                }
            }
            refused => refused,
        };
        let code = match decided {
            Ok(code) => code,
            Err(CodeRefused::Replayed) => {
                let minted: Option<Uuid> = match &row {
                    Some(row) => row.try_get("family_id")?,
                    None => None,
                };
                if let Some(f) = minted {
                    revoke_family_in(
                        &mut unit,
                        r.org_id,
                        FamilyId(f),
                        RevocationReason::CodeReplay,
                        r.now,
                    )
                    .await?;
                }
                unit.audit(crate::events::code_replayed(
                    ctx,
                    r.org_id,
                    r.presented.client.id.as_str(),
                    minted,
                ));
                unit.commit().await?;
                return Ok(CodeRedemption::Refused(CodeRefused::Replayed));
            }
            Err(refused) => {
                if refused.spends_code() {
                    spend_code(&mut unit, r.code_hash, r.now, None).await?;
                    unit.commit().await?;
                }
                return Ok(CodeRedemption::Refused(refused));
            }
        };
        let family = match &r.family {
            None => None,
            Some(start) => {
                let family = code.family(start.id, r.now);
                insert_family_until(
                    &mut unit,
                    &family,
                    start.first,
                    start.first_expires_at,
                    start.family_expires_at,
                )
                .await?;
                Some(family)
            }
        };
        spend_code(&mut unit, r.code_hash, r.now, family.as_ref().map(|f| f.id)).await?;
        unit.commit().await?;
        Ok(CodeRedemption::Redeemed {
            code: Box::new(code),
            family,
        })
    }

    async fn start_family(
        &self,
        f: &RefreshFamily,
        first: &TokenHash,
        expires_at: Timestamp,
        from_code: Option<&TokenHash>,
    ) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(f.org_id)).await?;
        insert_family(&mut unit, f, first, expires_at).await?;
        if let Some(code) = from_code {
            sqlx::query("UPDATE oauth_codes SET family_id = $1 WHERE code_hash = $2")
                .bind(f.id.0)
                .bind(&code.0[..])
                .execute(&mut *unit)
                .await?;
        }
        unit.commit().await
    }

    async fn rotate_refresh(
        &self,
        r: &RefreshRotation<'_>,
        ctx: &AuditContext,
    ) -> StoreResult<RefreshOutcome> {
        let mut unit = self.unit(Scope::Org(r.org_id)).await?;
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
                 AND (f.expires_at IS NULL OR f.expires_at > $3) \
                 AND (NOT f.ends_with_session OR EXISTS (SELECT 1 FROM sessions s \
                   JOIN users u ON u.id = s.user_id WHERE s.id = f.session_id \
                   AND s.revoked_at IS NULL AND s.expires_at > $3 AND u.deleted_at IS NULL)) \
               FOR UPDATE OF t, f), \
             upd AS (UPDATE refresh_tokens t SET used_at = $3, successor_hash = $5 \
               FROM cur WHERE t.token_hash = cur.token_hash RETURNING t.family_id), \
             ins AS (INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) \
               SELECT $5, family_id, $2, $3, $6 FROM upd RETURNING family_id) \
             SELECT ",
            family_cols!(),
            ", ",
            user_cols!(),
            " FROM refresh_families f JOIN ins ON f.id = ins.family_id \
              LEFT JOIN users u ON u.id = f.user_id AND u.deleted_at IS NULL"
        ))
        .bind(&r.presented.0[..])
        .bind(r.org_id.0)
        .bind(r.now)
        .bind(r.client_id.as_str())
        .bind(&r.successor.0[..])
        .bind(r.successor_expires_at)
        .fetch_optional(&mut *unit)
        .await?;
        let outcome = match rotated {
            Some(row) => RefreshOutcome::Rotated(family_from(&row)?, holder_from(&row)?),
            None => {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    token_cols!(),
                    ", ",
                    family_cols!(),
                    ", ",
                    user_cols!(),
                    ", (f.ends_with_session AND EXISTS (SELECT 1 FROM sessions s \
                         JOIN users su ON su.id = s.user_id WHERE s.id = f.session_id \
                         AND s.revoked_at IS NULL AND s.expires_at > $3 AND su.deleted_at IS NULL)) \
                       AS session_live \
                     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
                     LEFT JOIN users u ON u.id = f.user_id AND u.deleted_at IS NULL \
                     WHERE t.token_hash = $1 AND t.org_id = $2 FOR UPDATE OF t, f"
                ))
                .bind(&r.presented.0[..])
                .bind(r.org_id.0)
                .bind(r.now)
                .fetch_optional(&mut *unit)
                .await?;
                let Some(row) = row else {
                    return Ok(RefreshOutcome::Unknown);
                };
                let token = token_state_from(&row)?;
                let holder = holder_from(&row)?;
                let mut presented = token.presented_by(r.client_id);
                if token.ends_with_session
                    && classify_refresh(&presented, r.successor, r.now, r.grace).succeeds()
                {
                    presented.session_ended = !row.try_get::<bool, _>("session_live")?;
                }
                let decision = classify_refresh(&presented, r.successor, r.now, r.grace);
                let family = token.family;
                match decision {
                    RefreshDecision::ForeignClient => return Ok(RefreshOutcome::Unknown),
                    RefreshDecision::Revoked => return Ok(RefreshOutcome::Revoked(family)),
                    RefreshDecision::SessionEnded => {
                        let reason = RevocationReason::SessionEnded;
                        revoke_family_in(&mut unit, r.org_id, family.id, reason, r.now).await?;
                        unit.audit(crate::events::family_revoked(
                            &ctx.with_actor(family.user_id),
                            r.org_id,
                            family.id,
                            reason,
                        ));
                        unit.commit().await?;
                        return Ok(RefreshOutcome::Revoked(family));
                    }
                    RefreshDecision::Expired => return Ok(RefreshOutcome::Expired(family)),
                    RefreshDecision::Reuse => {
                        revoke_family_in(
                            &mut unit,
                            r.org_id,
                            family.id,
                            RevocationReason::Reuse,
                            r.now,
                        )
                        .await?;
                        unit.audit(crate::events::refresh_reuse(ctx, &family));
                        if r.reuse_ends_session
                            && let Some(sid) = family.session_id
                        {
                            let ctx = ctx.with_actor(family.user_id);
                            end_session(&mut unit, &ctx, family.user_id, sid, r.now).await?;
                        }
                        unit.commit().await?;
                        return Ok(RefreshOutcome::ReuseDetected(family));
                    }
                    RefreshDecision::Retry => RefreshOutcome::Retried(family, holder),
                    RefreshDecision::Rotate => {
                        sqlx::query(
                            "UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
                             WHERE token_hash = $3",
                        )
                        .bind(r.now)
                        .bind(&r.successor.0[..])
                        .bind(&r.presented.0[..])
                        .execute(&mut *unit)
                        .await?;
                        insert_token(
                            &mut unit,
                            r.org_id,
                            family.id,
                            r.successor,
                            r.now,
                            r.successor_expires_at,
                        )
                        .await?;
                        RefreshOutcome::Rotated(family, holder)
                    }
                }
            }
        };
        for e in r.on_success {
            unit.audit(e.clone());
        }
        unit.commit().await?;
        Ok(outcome)
    }

    async fn refresh_token_state(
        &self,
        org_id: OrgId,
        token: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>> {
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            token_cols!(),
            ", ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
              WHERE t.token_hash = $1 AND t.org_id = $2"
        ))
        .bind(&token.0[..])
        .bind(org_id.0)
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.as_ref().map(token_state_from).transpose()
    }

    async fn revoke_family(
        &self,
        org_id: OrgId,
        family_id: FamilyId,
        reason: RevocationReason,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        if !revoke_family_in(&mut unit, org_id, family_id, reason, portcullis_core::now()).await? {
            return Ok(false);
        }
        unit.audit(crate::events::family_revoked(
            ctx, org_id, family_id, reason,
        ));
        unit.commit().await?;
        Ok(true)
    }

    async fn family_revoked(&self, org_id: OrgId, family_id: FamilyId) -> StoreResult<bool> {
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let revoked: Option<Option<Timestamp>> = sqlx::query_scalar(
            "SELECT revoked_at FROM refresh_families WHERE id = $1 AND org_id = $2",
        )
        .bind(family_id.0)
        .bind(org_id.0)
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        // An unknown family cannot vouch for anything: treat as revoked.
        Ok(revoked.is_none_or(|r| r.is_some()))
    }

    async fn session_live(&self, session_id: SessionId, now: Timestamp) -> StoreResult<bool> {
        session_live_in(&self.pool, session_id, now).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Nobody).await?;
        sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < now()")
            .execute(&mut *unit)
            .await?;
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *unit)
        .await?;
        unit.changed(Change::TokensRevoked);
        unit.commit().await
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
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let scope: Option<String> = sqlx::query_scalar(
            "SELECT scope FROM oauth_consents WHERE org_id = $1 AND user_id = $2 AND client_id = $3",
        )
        .bind(org_id.0)
        .bind(user_id.0)
        .bind(client.as_str())
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
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
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        sqlx::query(
            "INSERT INTO oauth_consents (user_id, client_id, org_id, scope, granted_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(user_id.0)
        .bind(client.as_str())
        .bind(org_id.0)
        .bind(scope)
        .bind(portcullis_core::now())
        .execute(&mut *unit)
        .await?;
        unit.audit(crate::events::consent(
            ctx,
            org_id,
            user_id,
            client.as_str(),
            true,
            scope,
        ));
        unit.commit().await
    }

    async fn revoke_consent(
        &self,
        user_id: UserId,
        client: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut unit = self.unit(Scope::User(user_id)).await?;
        let row = sqlx::query(
            "DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2 RETURNING org_id, scope",
        )
        .bind(user_id.0)
        .bind(client.as_str())
        .fetch_optional(&mut *unit)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let org_id = OrgId(row.try_get("org_id")?);
        let scope: String = row.try_get("scope")?;
        // The client's families and the consent event belong to its org.
        unit.rescope(Scope::Org(org_id)).await?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'consent_revoked' \
             WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(portcullis_core::now())
        .bind(user_id.0)
        .bind(client.as_str())
        .execute(&mut *unit)
        .await?;
        unit.changed(Change::TokensRevoked);
        unit.audit(crate::events::consent(
            ctx,
            org_id,
            user_id,
            client.as_str(),
            false,
            &scope,
        ));
        unit.commit().await?;
        Ok(true)
    }

    async fn consents_of_user(&self, user_id: UserId) -> StoreResult<Vec<Consent>> {
        let mut unit = self.unit(Scope::User(user_id)).await?;
        let rows = sqlx::query(
            "SELECT client_id, scope, granted_at FROM oauth_consents WHERE user_id = $1 \
             ORDER BY granted_at DESC",
        )
        .bind(user_id.0)
        .fetch_all(&mut *unit)
        .await?;
        unit.commit().await?;
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
