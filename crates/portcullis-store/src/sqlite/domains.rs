//! Verified domains on SQLite: claims filtered by org in every query; the cross-tenant
//! questions read every org's verified rows.

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, DomainName, DomainStatus, OrgAccess, OrgDomain, OrgId, VerificationMethod,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::rows::{from_micros, micros, opt_micros};
use crate::domains::{
    ByAccess, DomainStore, VERIFIED_ELSEWHERE, claimed_already, domain_created, domain_deleted,
    domain_verified, verified_elsewhere,
};
use crate::unit::Scope;
use crate::{StoreError, StoreResult};

macro_rules! cols {
    () => {
        "d.org_id, d.domain, d.token, d.status, d.method, d.created_at, d.verified_at"
    };
}

fn domain_from(row: &SqliteRow) -> StoreResult<OrgDomain> {
    let status: String = row.try_get("status")?;
    let method: Option<String> = row.try_get("method")?;
    Ok(OrgDomain {
        org_id: OrgId(row.try_get("org_id")?),
        domain: DomainName::parse(row.try_get("domain")?)?,
        token: row.try_get("token")?,
        status: DomainStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("domain status {status:?}")))?,
        method: method
            .map(|m| {
                VerificationMethod::parse(&m)
                    .ok_or_else(|| StoreError::Corrupt(format!("domain method {m:?}")))
            })
            .transpose()?,
        created_at: from_micros(row.try_get("created_at")?)?,
        verified_at: opt_micros(row.try_get("verified_at")?)?,
    })
}

#[async_trait]
impl ByAccess for SqliteStore {
    async fn create_domain(
        &self,
        access: &OrgAccess,
        d: &OrgDomain,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        if d.org_id != access.org_id() {
            return Err(StoreError::NotFound);
        }
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM org_domains WHERE domain = ? AND status = 'verified' AND org_id <> ?",
        )
        .bind(d.domain.as_str())
        .bind(d.org_id.0)
        .fetch_optional(&mut *unit)
        .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(VERIFIED_ELSEWHERE.into()));
        }
        sqlx::query(
            "INSERT INTO org_domains (org_id, domain, token, status, method, created_at, verified_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.org_id.0)
        .bind(d.domain.as_str())
        .bind(&d.token)
        .bind(d.status.as_str())
        .bind(d.method.map(VerificationMethod::as_str))
        .bind(micros(d.created_at))
        .bind(d.verified_at.map(micros))
        .execute(&mut *unit)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => claimed_already(),
            other => other,
        })?;
        unit.audit(domain_created(ctx, d));
        unit.commit().await
    }

    async fn list_domains(&self, access: &OrgAccess) -> StoreResult<Vec<OrgDomain>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM org_domains d WHERE d.org_id = ? ORDER BY d.created_at, d.domain"
        ))
        .bind(access.org_id().0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(domain_from).collect()
    }

    async fn get_domain(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
    ) -> StoreResult<Option<OrgDomain>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM org_domains d WHERE d.org_id = ? AND d.domain = ?"
        ))
        .bind(access.org_id().0)
        .bind(domain.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(domain_from).transpose()
    }

    async fn verify_domain(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
        method: VerificationMethod,
        ctx: &AuditContext,
    ) -> StoreResult<OrgDomain> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM org_domains d WHERE d.org_id = ? AND d.domain = ?"
        ))
        .bind(access.org_id().0)
        .bind(domain.as_str())
        .fetch_optional(&mut *unit)
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut d = domain_from(&row)?;
        if d.is_verified() {
            return Ok(d);
        }
        d.status = DomainStatus::Verified;
        d.method = Some(method);
        d.verified_at = Some(portcullis_core::now());
        sqlx::query(
            "UPDATE org_domains SET status = 'verified', method = ?, verified_at = ? \
             WHERE org_id = ? AND domain = ?",
        )
        .bind(method.as_str())
        .bind(d.verified_at.map(micros))
        .bind(d.org_id.0)
        .bind(d.domain.as_str())
        .execute(&mut *unit)
        .await
        .map_err(|e| verified_elsewhere(e.into()))?;
        unit.audit(domain_verified(ctx, &d));
        unit.commit().await?;
        Ok(d)
    }

    async fn delete_domain(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM org_domains d WHERE d.org_id = ? AND d.domain = ?"
        ))
        .bind(access.org_id().0)
        .bind(domain.as_str())
        .fetch_optional(&mut *unit)
        .await?
        .ok_or(StoreError::NotFound)?;
        let d = domain_from(&row)?;
        sqlx::query("DELETE FROM org_domains WHERE org_id = ? AND domain = ?")
            .bind(d.org_id.0)
            .bind(d.domain.as_str())
            .execute(&mut *unit)
            .await?;
        unit.audit(domain_deleted(ctx, &d));
        unit.commit().await
    }
}

#[async_trait]
impl DomainStore for SqliteStore {
    async fn verified_owner(&self, domain: &DomainName) -> StoreResult<Option<OrgId>> {
        let id = sqlx::query_scalar(
            "SELECT d.org_id FROM org_domains d JOIN orgs o ON o.id = d.org_id \
             WHERE d.domain = ? AND d.status = 'verified' AND o.deleted_at IS NULL",
        )
        .bind(domain.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(OrgId))
    }

    async fn verified_domains(&self, org_id: OrgId) -> StoreResult<Vec<DomainName>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT domain FROM org_domains WHERE org_id = ? AND status = 'verified' ORDER BY domain",
        )
        .bind(org_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|d| DomainName::parse(d).map_err(StoreError::from))
            .collect()
    }
}
