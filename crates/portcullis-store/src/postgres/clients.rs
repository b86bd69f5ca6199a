//! OAuth clients on PostgreSQL. Management runs in the caller's org scope, so row-level
//! security checks the org filter a second time; `client_by_id` runs in the platform scope,
//! because the OAuth endpoints learn the tenant only from the client they find. Nodes cache
//! clients by id, so every change to a client is announced (`OrgChanged`): a
//! rotated secret or a deleted client must stop working on every node at once.

use async_trait::async_trait;
use portcullis_core::oauth::{
    ClientId, ClientType, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod,
};
use portcullis_core::{AuditContext, OrgAccess, OrgId, ProjectId, RedirectUri, TokenHash};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use super::rows::{json_list, to_json_list};
use super::unit::Unit;
use crate::clients::{
    ByAccess, ClientPatch, ClientStore, created_event, deleted_event, no_secret_to_rotate,
    secret_rotated_event, updated_event,
};
use crate::unit::Scope;
use crate::{Change, StoreError, StoreResult};

macro_rules! client_cols {
    () => {
        "c.id, c.org_id, c.project_id, c.name, c.client_type, c.secret_hash, c.redirect_uris, \
         c.post_logout_redirect_uris, c.grant_types, c.token_endpoint_auth_method, \
         c.access_token_ttl_secs, c.signing_alg, c.created_at, c.updated_at"
    };
}

fn client_from(row: &PgRow) -> StoreResult<OAuthClient> {
    let id: &str = row.try_get("id")?;
    let secret_hash: Option<Vec<u8>> = row.try_get("secret_hash")?;
    let ttl: i32 = row.try_get("access_token_ttl_secs")?;
    Ok(OAuthClient {
        id: ClientId::parse(id).ok_or_else(|| StoreError::Corrupt(format!("client id {id:?}")))?,
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        name: row.try_get("name")?,
        client_type: ClientType::parse(row.try_get("client_type")?)?,
        secret_hash: secret_hash
            .map(|h| {
                TokenHash::from_slice(&h)
                    .ok_or_else(|| StoreError::Corrupt("client secret hash length".into()))
            })
            .transpose()?,
        redirect_uris: json_list(row, "redirect_uris", RedirectUri::parse)?,
        post_logout_redirect_uris: json_list(row, "post_logout_redirect_uris", RedirectUri::parse)?,
        grant_types: json_list(row, "grant_types", GrantType::parse)?,
        token_endpoint_auth_method: TokenEndpointAuthMethod::parse(
            row.try_get("token_endpoint_auth_method")?,
        )?,
        access_token_ttl_secs: u32::try_from(ttl)
            .map_err(|_| StoreError::Corrupt(format!("access_token_ttl_secs {ttl}")))?,
        signing_alg: SigningAlg::parse(row.try_get("signing_alg")?)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn ttl(c: &OAuthClient) -> StoreResult<i32> {
    i32::try_from(c.access_token_ttl_secs).map_err(|_| {
        StoreError::Invalid(portcullis_core::ValidationError::new(
            "access_token_ttl_secs",
            "access_token_ttl_secs is out of range",
        ))
    })
}

/// The live client of the project, locked until the transaction ends: two concurrent
/// patches of different fields must not undo each other.
async fn lock_live_client(
    unit: &mut Unit<'_>,
    access: &OrgAccess,
    project_id: ProjectId,
    id: &ClientId,
) -> StoreResult<OAuthClient> {
    let row = sqlx::query(concat!(
        "SELECT ",
        client_cols!(),
        " FROM oauth_clients c \
         WHERE c.id = $1 AND c.project_id = $2 AND c.org_id = $3 AND c.deleted_at IS NULL \
         FOR UPDATE"
    ))
    .bind(id.as_str())
    .bind(project_id.0)
    .bind(access.org_id().0)
    .fetch_optional(&mut **unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    client_from(&row)
}

#[async_trait]
impl ByAccess for PgStore {
    async fn create(
        &self,
        access: &OrgAccess,
        c: &OAuthClient,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        if c.org_id != access.org_id() {
            return Err(StoreError::NotFound);
        }
        c.validate().map_err(StoreError::Invalid)?;
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        // Inserted only when the project belongs to the org the caller acts in.
        let n = sqlx::query(
            "INSERT INTO oauth_clients (id, org_id, project_id, name, client_type, secret_hash, \
             redirect_uris, post_logout_redirect_uris, grant_types, token_endpoint_auth_method, \
             access_token_ttl_secs, signing_alg, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
             WHERE EXISTS (SELECT 1 FROM projects WHERE id = $3 AND org_id = $2)",
        )
        .bind(c.id.as_str())
        .bind(c.org_id.0)
        .bind(c.project_id.0)
        .bind(&c.name)
        .bind(c.client_type.as_str())
        .bind(c.secret_hash.as_ref().map(|h| &h.0[..]))
        .bind(to_json_list(&c.redirect_uris, |u| u.as_str()))
        .bind(to_json_list(&c.post_logout_redirect_uris, |u| u.as_str()))
        .bind(to_json_list(&c.grant_types, |g| g.as_str()))
        .bind(c.token_endpoint_auth_method.as_str())
        .bind(ttl(c)?)
        .bind(c.signing_alg.as_str())
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&mut *unit)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        unit.audit(created_event(ctx, c));
        unit.changed(Change::OrgChanged(c.org_id));
        unit.commit().await?;
        Ok(())
    }

    async fn list(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
    ) -> StoreResult<Vec<OAuthClient>> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            client_cols!(),
            " FROM oauth_clients c \
             WHERE c.project_id = $1 AND c.org_id = $2 AND c.deleted_at IS NULL \
             ORDER BY c.created_at, c.id"
        ))
        .bind(project_id.0)
        .bind(access.org_id().0)
        .fetch_all(&mut *unit)
        .await?;
        unit.commit().await?;
        rows.iter().map(client_from).collect()
    }

    async fn get(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
    ) -> StoreResult<Option<OAuthClient>> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            client_cols!(),
            " FROM oauth_clients c \
             WHERE c.id = $1 AND c.project_id = $2 AND c.org_id = $3 AND c.deleted_at IS NULL"
        ))
        .bind(id.as_str())
        .bind(project_id.0)
        .bind(access.org_id().0)
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.as_ref().map(client_from).transpose()
    }

    async fn update(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        patch: &ClientPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let current = lock_live_client(&mut unit, access, project_id, id).await?;
        let (c, changed) = patch
            .apply(current, portcullis_core::now())
            .map_err(StoreError::Invalid)?;
        if changed.is_empty() {
            unit.commit().await?;
            return Ok(c);
        }
        sqlx::query(
            "UPDATE oauth_clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, \
             grant_types = $4, token_endpoint_auth_method = $5, access_token_ttl_secs = $6, \
             signing_alg = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&c.name)
        .bind(to_json_list(&c.redirect_uris, |u| u.as_str()))
        .bind(to_json_list(&c.post_logout_redirect_uris, |u| u.as_str()))
        .bind(to_json_list(&c.grant_types, |g| g.as_str()))
        .bind(c.token_endpoint_auth_method.as_str())
        .bind(ttl(&c)?)
        .bind(c.signing_alg.as_str())
        .bind(c.updated_at)
        .bind(c.id.as_str())
        .execute(&mut *unit)
        .await?;
        unit.audit(updated_event(ctx, &c, &changed));
        unit.changed(Change::OrgChanged(c.org_id));
        unit.commit().await?;
        Ok(c)
    }

    async fn delete(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let now = portcullis_core::now();
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let name: Option<String> = sqlx::query_scalar(
            "UPDATE oauth_clients SET deleted_at = $1, updated_at = $1, secret_hash = NULL \
             WHERE id = $2 AND project_id = $3 AND org_id = $4 AND deleted_at IS NULL RETURNING name",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(project_id.0)
        .bind(access.org_id().0)
        .fetch_optional(&mut *unit)
        .await?;
        let name = name.ok_or(StoreError::NotFound)?;
        unit.audit(deleted_event(ctx, access, project_id, id, &name));
        unit.changed(Change::OrgChanged(access.org_id()));
        unit.commit().await?;
        Ok(())
    }

    async fn rotate_secret(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        new_secret: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let mut c = lock_live_client(&mut unit, access, project_id, id).await?;
        if c.client_type != ClientType::Confidential {
            return Err(no_secret_to_rotate());
        }
        c.secret_hash = Some(*new_secret);
        c.updated_at = portcullis_core::now();
        sqlx::query("UPDATE oauth_clients SET secret_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&new_secret.0[..])
            .bind(c.updated_at)
            .bind(c.id.as_str())
            .execute(&mut *unit)
            .await?;
        unit.audit(secret_rotated_event(ctx, &c));
        unit.changed(Change::OrgChanged(c.org_id));
        unit.commit().await?;
        Ok(c)
    }
}

#[async_trait]
impl ClientStore for PgStore {
    async fn client_by_id(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            client_cols!(),
            " FROM oauth_clients c JOIN orgs o ON o.id = c.org_id AND o.deleted_at IS NULL \
             WHERE c.id = $1 AND c.deleted_at IS NULL"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.as_ref().map(client_from).transpose()
    }
}
