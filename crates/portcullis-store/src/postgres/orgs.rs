//! Orgs: creating one with its default project, reading one, listing all.

use portcullis_core::{AuditContext, Org, OrgAccess, Project, UserId};

use super::rows::{org_cols, org_from};
use super::statements::{insert_audit, insert_org_with_default_project, notify};
use super::{PgStore, Scope};
use crate::{Change, StoreError, StoreResult};

pub(super) async fn list_all_orgs(store: &PgStore) -> StoreResult<Vec<Org>> {
    let mut tx = store.begin(Scope::Platform).await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        org_cols!(),
        " FROM orgs o WHERE o.deleted_at IS NULL ORDER BY o.created_at"
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(org_from).collect()
}

pub(super) async fn create_org(
    store: &PgStore,
    creator: UserId,
    org: &Org,
    project: &Project,
    ctx: &AuditContext,
) -> StoreResult<()> {
    let mut tx = store.begin(Scope::Org(org.id)).await?;
    insert_org_with_default_project(&mut tx, creator, org, project).await?;
    for e in crate::events::org_created(ctx, org, project) {
        insert_audit(&mut tx, &e).await?;
    }
    notify(&mut tx, &Change::UserChanged(creator)).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn org(store: &PgStore, access: &OrgAccess) -> StoreResult<Org> {
    let mut tx = store.begin(Scope::Org(access.org_id())).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        org_cols!(),
        " FROM orgs o WHERE o.id = $1 AND o.deleted_at IS NULL"
    ))
    .bind(access.org_id().0)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    org_from(&row)
}
