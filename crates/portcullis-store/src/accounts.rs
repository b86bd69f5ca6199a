//! Users and the sign-up bootstrap. Users are not tenant-owned: one account may belong to
//! many orgs, so these calls run in platform scope.

use async_trait::async_trait;
use portcullis_core::{AuditContext, Email, User, UserId};

use crate::{SignupBootstrap, StoreResult, UserCredentials};

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user, their personal org, its default project and both owner memberships, in
    /// one transaction.
    async fn bootstrap_signup(&self, b: &SignupBootstrap, ctx: &AuditContext) -> StoreResult<User>;
    async fn set_platform_admin(
        &self,
        user_id: UserId,
        on: bool,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
}
