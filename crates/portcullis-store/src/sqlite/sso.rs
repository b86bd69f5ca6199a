//! Upstream SSO on SQLite: org providers (tenant-filtered in every query) and identities.

use async_trait::async_trait;
use portcullis_core::grant::RevocationReason;
use portcullis_core::{
    AuditContext, OrgAccess, OrgId, ProjectId, SessionId, Timestamp, User, UserId,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{from_micros, micros};
use super::statements::{insert_session, insert_signup_bootstrap};
use super::unit::Unit;
use crate::events::session_revoked;
use crate::sso::{
    ByAccess, OrgSsoProvider, SsoAccount, SsoProviderPatch, SsoSignIn, SsoStore, UserIdentity,
    identity_linked, join_refused, joined_via_sso, legacy_key, provider_created, provider_deleted,
    provider_updated, scopes_from, scopes_json, user_claimed,
};
use crate::unit::Scope;
use crate::{Change, SignupBootstrap, StoreError, StoreResult};
use portcullis_core::plan::Resource;

macro_rules! cols {
    () => {
        "p.id, p.org_id, p.name, p.issuer, p.client_id, p.client_secret_sealed, \
                    p.scopes, p.created_at, p.updated_at"
    };
}

fn provider_from(row: &SqliteRow) -> StoreResult<OrgSsoProvider> {
    Ok(OrgSsoProvider {
        id: row.try_get("id")?,
        org_id: OrgId(row.try_get("org_id")?),
        name: row.try_get("name")?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        client_secret_sealed: row.try_get("client_secret_sealed")?,
        scopes: scopes_from(row.try_get("scopes")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
    })
}

async fn insert_identity(unit: &mut Unit<'_>, i: &UserIdentity) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO user_identities (provider, issuer, subject, user_id, email, provider_id, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&i.provider)
    .bind(&i.issuer)
    .bind(&i.subject)
    .bind(i.user_id.0)
    .bind(&i.email)
    .bind(i.provider_id)
    .bind(micros(i.created_at))
    .execute(&mut **unit)
    .await?;
    Ok(())
}

/// The body of [`SsoStore::claim_account`], inside a caller's unit (which must be in
/// platform scope: the account's refresh families belong to whichever orgs granted them).
async fn claim_in(
    unit: &mut Unit<'_>,
    user: &User,
    identity: &UserIdentity,
    ctx: &AuditContext,
    now: Timestamp,
) -> StoreResult<()> {
    let ctx = ctx.with_actor(user.id);
    insert_identity(unit, identity).await?;
    let had_password = sqlx::query(
        "UPDATE users SET password_hash = NULL WHERE id = ? AND password_hash IS NOT NULL",
    )
    .bind(user.id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected()
        > 0;
    let sessions: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
    )
    .bind(micros(now))
    .bind(user.id.0)
    .fetch_all(&mut **unit)
    .await?;
    for id in &sessions {
        let id = SessionId(*id);
        unit.audit(session_revoked(&ctx, None, user.id, id));
        unit.changed(Change::SessionRevoked(id));
    }
    let families = sqlx::query(
        "UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? \
         WHERE user_id = ? AND revoked_at IS NULL",
    )
    .bind(micros(now))
    .bind(RevocationReason::SessionEnded.as_str())
    .bind(user.id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected();
    if families > 0 {
        unit.changed(Change::TokensRevoked);
    }
    unit.audit(identity_linked(&ctx, None, identity));
    unit.audit(user_claimed(&ctx, identity, had_password, sessions.len()));
    unit.changed(Change::UserChanged(user.id));
    Ok(())
}

/// The body of [`SsoStore::join_org_via_sso`], inside a caller's unit (in the org's
/// scope or the platform's). True when the user was added.
async fn join_in(
    store: &SqliteStore,
    unit: &mut Unit<'_>,
    org_id: OrgId,
    user: &User,
    provider_id: Uuid,
    ctx: &AuditContext,
    now: Timestamp,
) -> StoreResult<bool> {
    // Only a new seat is checked: someone who has or had a membership is not added (a
    // member an admin removed stays out), and a deleted org takes nobody.
    let open: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM orgs WHERE id = ? AND deleted_at IS NULL) \
         AND NOT EXISTS (SELECT 1 FROM memberships WHERE org_id = ? AND user_id = ?)",
    )
    .bind(org_id.0)
    .bind(org_id.0)
    .bind(user.id.0)
    .fetch_one(&mut **unit)
    .await?;
    if !open {
        return Ok(false);
    }
    // Within the plan's seats, in this unit (PostgreSQL locks the org's row first). A full
    // or inactive org refuses the membership, not the sign-in.
    match super::platform::gate(store, unit, org_id, Resource::Seats).await {
        Ok(()) => {}
        Err(StoreError::Refused(refusal)) => {
            unit.audit(join_refused(ctx, org_id, user, provider_id, &refusal));
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    let n = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) \
         SELECT ?, ?, 'member', ? WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ? AND deleted_at IS NULL) \
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(org_id.0)
    .bind(user.id.0)
    .bind(micros(now))
    .bind(org_id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) \
         SELECT p.id, p.org_id, ?, 'member', ? FROM projects p WHERE p.org_id = ? AND p.is_default = 1 \
         ON CONFLICT (project_id, user_id) DO NOTHING",
    )
    .bind(user.id.0)
    .bind(micros(now))
    .bind(org_id.0)
    .execute(&mut **unit)
    .await?;
    unit.audit(joined_via_sso(ctx, org_id, user, provider_id));
    unit.changed(Change::UserChanged(user.id));
    Ok(true)
}

#[async_trait]
impl ByAccess for SqliteStore {
    async fn create_provider(
        &self,
        access: &OrgAccess,
        p: &OrgSsoProvider,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        if p.org_id != access.org_id() {
            return Err(StoreError::NotFound);
        }
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        sqlx::query(
            "INSERT INTO sso_providers (id, org_id, name, issuer, client_id, client_secret_sealed, \
             scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.id)
        .bind(p.org_id.0)
        .bind(&p.name)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(&p.client_secret_sealed)
        .bind(scopes_json(&p.scopes))
        .bind(micros(p.created_at))
        .bind(micros(p.updated_at))
        .execute(&mut *unit)
        .await?;
        unit.audit(provider_created(ctx, p));
        unit.commit().await?;
        Ok(())
    }

    async fn list_providers(&self, access: &OrgAccess) -> StoreResult<Vec<OrgSsoProvider>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p WHERE p.org_id = ? ORDER BY p.created_at, p.id"
        ))
        .bind(access.org_id().0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(provider_from).collect()
    }

    async fn get_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
    ) -> StoreResult<Option<OrgSsoProvider>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p WHERE p.id = ? AND p.org_id = ?"
        ))
        .bind(id)
        .bind(access.org_id().0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(provider_from).transpose()
    }

    async fn update_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
        patch: &SsoProviderPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OrgSsoProvider> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p WHERE p.id = ? AND p.org_id = ?"
        ))
        .bind(id)
        .bind(access.org_id().0)
        .fetch_optional(&mut *unit)
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut p = provider_from(&row)?;
        let fields = patch.fields();
        if fields.is_empty() {
            return Ok(p);
        }
        patch.apply(&mut p);
        p.updated_at = portcullis_core::now();
        sqlx::query(
            "UPDATE sso_providers SET name = ?, issuer = ?, client_id = ?, client_secret_sealed = ?, \
             scopes = ?, updated_at = ? WHERE id = ? AND org_id = ?",
        )
        .bind(&p.name)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(&p.client_secret_sealed)
        .bind(scopes_json(&p.scopes))
        .bind(micros(p.updated_at))
        .bind(p.id)
        .bind(p.org_id.0)
        .execute(&mut *unit)
        .await?;
        unit.audit(provider_updated(ctx, &p, &fields));
        unit.commit().await?;
        Ok(p)
    }

    async fn delete_provider(
        &self,
        access: &OrgAccess,
        id: Uuid,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p WHERE p.id = ? AND p.org_id = ?"
        ))
        .bind(id)
        .bind(access.org_id().0)
        .fetch_optional(&mut *unit)
        .await?
        .ok_or(StoreError::NotFound)?;
        let p = provider_from(&row)?;
        sqlx::query("DELETE FROM user_identities WHERE provider_id = ?")
            .bind(id)
            .execute(&mut *unit)
            .await?;
        sqlx::query("DELETE FROM sso_providers WHERE id = ? AND org_id = ?")
            .bind(id)
            .bind(access.org_id().0)
            .execute(&mut *unit)
            .await?;
        unit.audit(provider_deleted(ctx, &p));
        unit.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl SsoStore for SqliteStore {
    async fn provider_by_id(&self, id: Uuid) -> StoreResult<Option<OrgSsoProvider>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p JOIN orgs o ON o.id = p.org_id \
             WHERE p.id = ? AND o.deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(provider_from).transpose()
    }

    async fn providers_of_org_slug(&self, slug: &str) -> StoreResult<Vec<OrgSsoProvider>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p JOIN orgs o ON o.id = p.org_id \
             WHERE o.slug = ? AND o.deleted_at IS NULL ORDER BY p.created_at, p.id"
        ))
        .bind(slug)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(provider_from).collect()
    }

    async fn providers_of_org(&self, org_id: OrgId) -> StoreResult<Vec<OrgSsoProvider>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM sso_providers p JOIN orgs o ON o.id = p.org_id \
             WHERE o.id = ? AND o.deleted_at IS NULL ORDER BY p.created_at, p.id"
        ))
        .bind(org_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(provider_from).collect()
    }

    async fn user_by_identity(
        &self,
        provider: &str,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<User>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM user_identities WHERE provider IN (?, ?) AND issuer = ? AND subject = ? \
             ORDER BY provider DESC LIMIT 1",
        )
        .bind(provider)
        .bind(legacy_key(provider))
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => super::accounts::user_by_id(self, UserId(id)).await,
            None => Ok(None),
        }
    }

    async fn link_identity(&self, i: &UserIdentity, ctx: &AuditContext) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Nobody).await?;
        insert_identity(&mut unit, i).await?;
        unit.audit(identity_linked(ctx, None, i));
        unit.commit().await?;
        Ok(())
    }

    async fn claim_account(
        &self,
        user: &User,
        identity: &UserIdentity,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Platform).await?;
        claim_in(&mut unit, user, identity, ctx, portcullis_core::now()).await?;
        unit.commit().await
    }

    async fn signup_with_identity(
        &self,
        b: &SignupBootstrap,
        identity: &UserIdentity,
        ctx: &AuditContext,
    ) -> StoreResult<User> {
        let mut unit = self.unit(Scope::Org(b.org.id)).await?;
        let user = insert_signup_bootstrap(&mut unit, b, ctx).await?;
        insert_identity(&mut unit, identity).await?;
        unit.commit().await?;
        Ok(user)
    }

    async fn join_org_via_sso(
        &self,
        org_id: OrgId,
        user: &User,
        provider_id: Uuid,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let joined = join_in(
            self,
            &mut unit,
            org_id,
            user,
            provider_id,
            ctx,
            portcullis_core::now(),
        )
        .await?;
        // Committed either way: a refusal leaves its audit event.
        unit.commit().await?;
        Ok(joined)
    }

    async fn sign_in_via_sso(&self, s: &SsoSignIn<'_>, ctx: &AuditContext) -> StoreResult<User> {
        let now = portcullis_core::now();
        // Platform scope: one sign-in may write a new user's personal org, the JIT
        // membership of the provider's org and the user's own session and events. The org
        // comes from the provider the server found, never from the caller.
        let mut unit = self.unit(Scope::Platform).await?;
        let user = match &s.account {
            SsoAccount::Linked(user) => (*user).clone(),
            SsoAccount::Link(user) => {
                insert_identity(&mut unit, s.identity).await?;
                unit.audit(identity_linked(ctx, None, s.identity));
                (*user).clone()
            }
            SsoAccount::Claim(user) => {
                claim_in(&mut unit, user, s.identity, ctx, now).await?;
                (*user).clone()
            }
            SsoAccount::Create(b) => {
                let user = insert_signup_bootstrap(&mut unit, b, ctx).await?;
                insert_identity(&mut unit, s.identity).await?;
                user
            }
        };
        if user.id != s.session.user_id || user.id != s.identity.user_id {
            return Err(StoreError::Invalid(portcullis_core::ValidationError::new(
                "session",
                "the session and the identity must be the signed-in user's",
            )));
        }
        if let Some((org_id, provider_id)) = s.join {
            join_in(self, &mut unit, org_id, &user, provider_id, ctx, now).await?;
        }
        insert_session(&mut unit, s.session, &ctx.with_actor(user.id)).await?;
        for e in s.also {
            unit.audit(e.clone());
        }
        unit.commit().await?;
        Ok(user)
    }

    async fn project_allows_origin(
        &self,
        project_id: ProjectId,
        origin: &str,
    ) -> StoreResult<bool> {
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM projects p, json_each(p.allowed_origins) j \
             WHERE p.id = ? AND j.value = ? AND p.status = 'active' LIMIT 1",
        )
        .bind(project_id.0)
        .bind(origin)
        .fetch_optional(&self.pool)
        .await?;
        Ok(hit.is_some())
    }
}
