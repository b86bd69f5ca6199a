//! Users and self-signup: the accounts that are not owned by any tenant.

use portcullis_core::password::PasswordHash;
use portcullis_core::{AuditContext, Email, User, UserId};
use sqlx::Row;

use super::PgStore;
use super::rows::{user_cols, user_from};
use super::statements::insert_signup_bootstrap;
use crate::unit::Scope;
use crate::{Change, SignupBootstrap, StoreError, StoreResult, UserCredentials};

pub(super) async fn user_by_email(
    store: &PgStore,
    email: &Email,
) -> StoreResult<Option<UserCredentials>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        ", u.password_hash FROM users u WHERE u.email = $1 AND u.deleted_at IS NULL"
    ))
    .bind(email.as_str())
    .fetch_optional(&store.pool)
    .await?;
    row.map(|r| {
        Ok(UserCredentials {
            user: user_from(&r)?,
            password_hash: r
                .try_get::<Option<String>, _>("password_hash")?
                .map(PasswordHash::from_stored),
        })
    })
    .transpose()
}

pub(super) async fn user_by_id(store: &PgStore, id: UserId) -> StoreResult<Option<User>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL"
    ))
    .bind(id.0)
    .fetch_optional(&store.pool)
    .await?;
    row.as_ref().map(user_from).transpose()
}

pub(super) async fn bootstrap_signup(
    store: &PgStore,
    b: &SignupBootstrap,
    ctx: &AuditContext,
) -> StoreResult<User> {
    let mut unit = store.unit(Scope::Org(b.org.id)).await?;
    let user = insert_signup_bootstrap(&mut unit, b, ctx).await?;
    unit.commit().await?;
    Ok(user)
}

pub(super) async fn set_platform_admin(
    store: &PgStore,
    user_id: UserId,
    on: bool,
    ctx: &AuditContext,
) -> StoreResult<()> {
    let mut unit = store.unit(Scope::Platform).await?;
    let n =
        sqlx::query("UPDATE users SET is_platform_admin = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(on)
            .bind(user_id.0)
            .execute(&mut *unit)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    unit.audit(crate::events::platform_admin(ctx, user_id, on));
    unit.changed(Change::UserChanged(user_id));
    unit.commit().await?;
    Ok(())
}
