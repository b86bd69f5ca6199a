//! The store suite: every test runs against SQLite and PostgreSQL, each on a fresh database,
//! so the two backends cannot drift apart. `cargo test -p portcullis-store sqlite::` or
//! `postgres::` runs one side. PostgreSQL tests fail (never skip) when the server at
//! `PORTCULLIS_TEST_POSTGRES_URL` is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use portcullis_core::{
    AuditContext, Email, Org, OrgAccess, OrgId, OrgName, Project, ProjectId, ProjectName,
    ProjectStatus, Role, Slug, User, UserId,
};
use portcullis_store::{Change, ChangeSink, NewMember, SignupBootstrap, Store};

mod accounts;
mod audit;
mod clients;
mod domains;
mod grants;
mod invitations;
mod keys;
mod members;
mod mobile;
mod outbox;
mod pool;
mod postgres_only;
mod projects;
mod sessions;
mod sso;
mod units;
mod webhooks;

/// Instantiates each listed test once per backend: `sqlite::name` and `postgres::name`.
/// `migrated` tests get a migrated store, `unmigrated` ones a store on an empty database,
/// `migrated_at_url` ones a migrated store and its database's URL too.
macro_rules! store_suite {
    (
        migrated: [$($module:ident :: $test:ident),* $(,)?],
        migrated_at_url: [$($amodule:ident :: $atest:ident),* $(,)?],
        unmigrated: [$($umodule:ident :: $utest:ident),* $(,)?] $(,)?
    ) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let (_db, url) = portcullis_store::testing::fresh_sqlite_url().await;
                    super::$module::$test(super::open(&url, true).await).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $atest() {
                    let (_db, url) = portcullis_store::testing::fresh_sqlite_url().await;
                    super::$amodule::$atest(super::open(&url, true).await, &url).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $utest() {
                    let (_db, url) = portcullis_store::testing::fresh_sqlite_url().await;
                    super::$umodule::$utest(super::open(&url, false).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = super::fresh_postgres().await;
                    super::$module::$test(super::open(&db.url, true).await).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $atest() {
                    let db = super::fresh_postgres().await;
                    super::$amodule::$atest(super::open(&db.url, true).await, &db.url).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $utest() {
                    let db = super::fresh_postgres().await;
                    super::$umodule::$utest(super::open(&db.url, false).await).await;
                }
            )*
        }
    };
}

store_suite! {
    migrated: [
        accounts::signup_bootstrap,
        accounts::duplicate_email_conflicts,
        accounts::posix_ids_unique_and_increasing,
        accounts::concurrent_signup_same_email,
        accounts::set_platform_admin,
        accounts::list_all_orgs,
        accounts::create_org_makes_creator_owner,
        sessions::session_lifecycle,
        sessions::org_admin_revokes_member_sessions,
        members::memberships_of_user_with_projects,
        members::project_access,
        members::add_member_creates_or_reuses_users,
        members::change_role_keeps_an_owner,
        members::remove_member_soft_deletes,
        projects::create_and_list_projects,
        projects::update_project_patch,
        projects::project_handles_stay_in_their_project,
        audit::query_audit_filters,
        audit::query_audit_pages_with_cursor,
        audit::null_org_events_follow_membership,
        clients::create_list_get_are_scoped_to_the_project,
        clients::update_applies_patch_validates_and_audits,
        clients::rotate_secret_replaces_the_old_one,
        clients::delete_is_soft_and_final,
        keys::signing_keys_insert_and_list,
        keys::signing_key_rotation_retires_and_audits,
        keys::failed_rotation_changes_nothing,
        keys::concurrent_first_keys_one_wins,
        invitations::pending_invitations_to_an_address,
        grants::rotation_outcomes,
        grants::code_redemption,
        grants::session_bound_families,
        grants::consents,
        grants::family_revocation,
        grants::access_token_revocation,
        projects::project_status,
        mobile::device_grant_ends_all_or_nothing,
        mobile::rotation_writes_its_events_with_it,
        units::a_failed_unit_leaves_nothing,
        units::writes_announce_what_caches_hold,
        mobile::one_time_tokens_are_single_use,
        mobile::grant_target_and_refresh_org,
        mobile::sessions_carry_device_info,
        mobile::device_session_starts_all_or_nothing,
        sso::org_providers_are_scoped_and_audited,
        sso::identities_link_and_sign_up,
        sso::joining_an_org_via_sso_is_once_only,
        sso::allowed_origins_are_found,
        sso::deleting_a_provider_removes_its_identities,
        sso::claiming_an_account_ends_the_squatters_access,
        sso::an_sso_sign_in_is_one_unit,
        domains::one_org_verifies_a_domain,
        pool::pool_stats_count_transactions,
        webhooks::fan_out_claims_and_leases,
        webhooks::failing_for_the_window_disables,
        webhooks::retention_deletes_old_rows_in_batches,
        webhooks::the_worker_hears_of_work_and_when_it_is_due,
        outbox::queued_events_are_due_oldest_first,
        outbox::a_failed_write_queues_nothing,
    ],
    migrated_at_url: [
        units::changes_reach_the_sink_once_after_commit,
    ],
    unmigrated: [
        accounts::migrations_current,
    ],
}

pub async fn fresh_postgres() -> portcullis_store::testing::TestDatabase {
    portcullis_store::testing::fresh_postgres_database()
        .await
        .expect("a fresh PostgreSQL database (is PostgreSQL running?)")
}

pub async fn open(url: &str, migrate: bool) -> Arc<dyn Store> {
    let store = portcullis_store::connect(url).await.expect("connect");
    if migrate {
        store.migrate().await.expect("migrate");
    }
    store
}

// ---- fixtures -----------------------------------------------------------------------------

/// A change sink that remembers what it heard, in order, and counts the webhook worker's
/// wake-ups.
#[derive(Default)]
pub struct Heard(std::sync::Mutex<Vec<Change>>, std::sync::atomic::AtomicU32);

impl Heard {
    /// What was heard since the last call.
    pub fn take(&self) -> Vec<Change> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// How many units woke the webhook worker since the last call.
    pub fn webhooks_woken(&self) -> u32 {
        self.1.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

impl ChangeSink for Heard {
    fn changed(&self, change: Change) {
        self.0.lock().unwrap().push(change);
    }

    fn feed_up(&self, _up: bool) {}

    fn webhooks_due(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Makes a [`Heard`] the store's local change sink.
pub fn listen(store: &dyn Store) -> Arc<Heard> {
    let heard = Arc::new(Heard::default());
    store.set_change_sink(heard.clone());
    heard
}

/// A user as self-signup leaves them: with a personal org and its default project.
pub struct SignedUp {
    pub user: User,
    pub org: Org,
    pub project: Project,
}

impl SignedUp {
    pub fn access(&self) -> OrgAccess {
        OrgAccess::system(self.org.id)
    }
}

pub fn ctx() -> AuditContext {
    AuditContext {
        correlation_id: format!("test-{}", uuid::Uuid::now_v7().simple()),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("store-suite".into()),
        actor_id: None,
        actor_key: None,
    }
}

fn suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()[24..].to_owned()
}

pub fn new_org(name: &str, personal: bool) -> Org {
    Org {
        id: OrgId::new(),
        name: OrgName::parse(name).unwrap(),
        slug: Slug::derive(name).with_suffix(&suffix()),
        personal,
        created_at: portcullis_core::now(),
    }
}

pub fn new_project(org_id: OrgId, name: &str) -> Project {
    let now = portcullis_core::now();
    Project {
        id: ProjectId::new(),
        org_id,
        name: ProjectName::parse(name).unwrap(),
        status: ProjectStatus::Active,
        redirect_uris: Vec::new(),
        allowed_origins: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}

pub fn bootstrap(email: &str) -> SignupBootstrap {
    let org = new_org(email.split('@').next().unwrap(), true);
    SignupBootstrap {
        user_id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: None,
        password_hash: None,
        project: new_project(org.id, "Default"),
        org,
        self_signup: true,
    }
}

pub async fn signup(store: &dyn Store, email: &str) -> SignedUp {
    let b = bootstrap(email);
    let user = store.accounts().bootstrap_signup(&b, &ctx()).await.unwrap();
    SignedUp {
        user,
        org: b.org,
        project: b.project,
    }
}

pub fn new_member(email: &str, role: Role) -> NewMember {
    NewMember {
        new_user_id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: None,
        password_hash: None,
        role,
        password_setup: None,
    }
}

/// Adds an existing or new user to the org.
pub async fn add(store: &dyn Store, org: &SignedUp, email: &str, role: Role) -> User {
    store
        .org(&org.access())
        .members()
        .add_member(&new_member(email, role), &ctx())
        .await
        .unwrap()
        .member
        .user
}
