//! Row-level security binds only roles that are neither superuser nor BYPASSRLS, even with
//! FORCE ROW LEVEL SECURITY. A server connecting as such a role (the `postgres` of a
//! development cluster, a managed database's admin) switches every pooled connection to
//! the NOLOGIN role `portcullis_app` that migration 0001 creates and grants.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::{StoreError, StoreResult};

pub(super) const APP_ROLE: &str = "portcullis_app";

/// How the connecting role stands towards row-level security.
pub(super) struct RoleCheck {
    user: String,
    bypasses_rls: bool,
    app_role: Option<AppRole>,
    migrated: bool,
}

struct AppRole {
    bypasses_rls: bool,
    may_switch: bool,
}

impl RoleCheck {
    pub(super) async fn run(conn: &mut PgConnection) -> StoreResult<Self> {
        let row = sqlx::query(
            "SELECT current_user::text AS me, r.rolsuper OR r.rolbypassrls AS bypasses, \
                    a.oid IS NOT NULL AS app_exists, \
                    coalesce(a.rolsuper OR a.rolbypassrls, false) AS app_bypasses, \
                    coalesce(pg_has_role(current_user, a.oid, 'MEMBER'), false) AS may_switch, \
                    to_regclass('_sqlx_migrations') IS NOT NULL AS migrated \
             FROM pg_roles r LEFT JOIN pg_roles a ON a.rolname = $1 \
             WHERE r.rolname = current_user",
        )
        .bind(APP_ROLE)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Self {
            user: row.try_get("me")?,
            bypasses_rls: row.try_get("bypasses")?,
            app_role: if row.try_get("app_exists")? {
                Some(AppRole {
                    bypasses_rls: row.try_get("app_bypasses")?,
                    may_switch: row.try_get("may_switch")?,
                })
            } else {
                None
            },
            migrated: row.try_get("migrated")?,
        })
    }

    /// Checks the connecting role once, on its own connection.
    pub(super) async fn connect(options: &sqlx::postgres::PgConnectOptions) -> StoreResult<Self> {
        let mut conn = PgConnection::connect_with(options).await?;
        let check = Self::run(&mut conn).await?;
        conn.close().await?;
        Ok(check)
    }

    /// Whether pooled connections must `SET ROLE portcullis_app`, or an error telling the
    /// operator what to fix. A database nobody has migrated yet may lack the role: the
    /// first migration creates it.
    pub(super) fn must_switch(&self) -> StoreResult<bool> {
        if !self.bypasses_rls {
            return Ok(false);
        }
        let user = &self.user;
        match &self.app_role {
            None if !self.migrated => Ok(true),
            None => Err(StoreError::Config(format!(
                "the database role {user:?} bypasses row-level security (superuser or BYPASSRLS), \
                 so Portcullis acts as role {APP_ROLE}, which does not exist. Create it with \
                 `CREATE ROLE {APP_ROLE} NOLOGIN` and grant it SELECT, INSERT, UPDATE, DELETE on \
                 all tables and USAGE on posix_id_seq (as migration 0001 does), or connect as a \
                 role that is neither superuser nor BYPASSRLS"
            ))),
            Some(app) if app.bypasses_rls => Err(StoreError::Config(format!(
                "role {APP_ROLE} must be subject to row-level security; run \
                 `ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS`"
            ))),
            Some(app) if !app.may_switch => Err(StoreError::Config(format!(
                "the database role {user:?} bypasses row-level security and may not switch to \
                 role {APP_ROLE}; run `GRANT {APP_ROLE} TO \"{user}\"`, or connect as a role \
                 that is neither superuser nor BYPASSRLS"
            ))),
            Some(_) => Ok(true),
        }
    }

    /// After migrating, the role must exist whenever it is needed.
    pub(super) fn after_migration(mut self) -> StoreResult<bool> {
        self.migrated = true;
        self.must_switch()
    }
}

/// Run on every new pooled connection when the connecting role bypasses row-level security.
pub(super) async fn switch(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    match sqlx::query("SET ROLE portcullis_app")
        .execute(&mut *conn)
        .await
    {
        Ok(_) => Ok(()),
        // 22023: role does not exist. Migrations create it; until they ran nothing works.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("22023") => {
            Err(sqlx::Error::Configuration(
                format!(
                    "role {APP_ROLE} does not exist: run the migrations (`portcullis migrate`) \
                     as the connecting role, or create it with `CREATE ROLE {APP_ROLE} NOLOGIN`"
                )
                .into(),
            ))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bypasses_rls: bool, app_role: Option<(bool, bool)>, migrated: bool) -> RoleCheck {
        RoleCheck {
            user: "postgres".into(),
            bypasses_rls,
            app_role: app_role.map(|(bypasses_rls, may_switch)| AppRole {
                bypasses_rls,
                may_switch,
            }),
            migrated,
        }
    }

    fn config_error(r: StoreResult<bool>) -> String {
        match r {
            Err(StoreError::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn only_roles_that_bypass_rls_switch() {
        assert!(!check(false, None, true).must_switch().unwrap());
        assert!(
            !check(false, Some((false, false)), true)
                .must_switch()
                .unwrap()
        );
        assert!(
            check(true, Some((false, true)), true)
                .must_switch()
                .unwrap()
        );
    }

    #[test]
    fn a_missing_role_is_fine_only_until_the_first_migration() {
        assert!(check(true, None, false).must_switch().unwrap());
        let m = config_error(check(true, None, true).must_switch());
        assert!(m.contains("CREATE ROLE portcullis_app NOLOGIN"), "{m}");
        let m = config_error(check(true, None, false).after_migration());
        assert!(m.contains("neither superuser nor BYPASSRLS"), "{m}");
    }

    #[test]
    fn the_app_role_must_be_bound_and_reachable() {
        let m = config_error(check(true, Some((true, true)), true).must_switch());
        assert!(m.contains("NOBYPASSRLS"), "{m}");
        let m = config_error(check(true, Some((false, false)), true).must_switch());
        assert!(m.contains("GRANT portcullis_app TO \"postgres\""), "{m}");
    }
}
