//! Orgs: creating one with its default project, reading one, listing all.

use portcullis_core::{AuditContext, Org, OrgAccess, Project, UserId};

use super::PgStore;
use super::rows::{org_cols, org_from};
use super::statements::insert_org_with_default_project;
use crate::unit::Scope;
use crate::{Change, StoreError, StoreResult};

pub(super) async fn list_all_orgs(store: &PgStore) -> StoreResult<Vec<Org>> {
    let mut unit = store.unit(Scope::Platform).await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        org_cols!(),
        " FROM orgs o WHERE o.deleted_at IS NULL ORDER BY o.created_at"
    ))
    .fetch_all(&mut *unit)
    .await?;
    unit.commit().await?;
    rows.iter().map(org_from).collect()
}

pub(super) async fn create_org(
    store: &PgStore,
    creator: UserId,
    org: &Org,
    project: &Project,
    ctx: &AuditContext,
) -> StoreResult<()> {
    let mut unit = store.unit(Scope::Org(org.id)).await?;
    insert_org_with_default_project(&mut unit, creator, org, project).await?;
    for e in crate::events::org_created(ctx, org, project) {
        unit.audit(e);
    }
    unit.changed(Change::UserChanged(creator));
    unit.commit().await?;
    Ok(())
}

async fn org(store: &PgStore, access: &OrgAccess) -> StoreResult<Org> {
    let mut unit = store.unit(Scope::Org(access.org_id())).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        org_cols!(),
        " FROM orgs o WHERE o.id = $1 AND o.deleted_at IS NULL"
    ))
    .bind(access.org_id().0)
    .fetch_optional(&mut *unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    unit.commit().await?;
    org_from(&row)
}

/// The org handle's calls, bound to the SQL above.
#[async_trait::async_trait]
impl crate::orgs::ByAccess for PgStore {
    async fn details(&self, access: &OrgAccess) -> StoreResult<portcullis_core::Org> {
        org(self, access).await
    }
}
