//! Fresh databases for tests: a new PostgreSQL database or a temporary SQLite file per test,
//! removed again when the guard drops. Used by this crate's store suite and by the server's
//! integration tests; small enough to compile always.
//!
//! Postgres tests never skip: when the server at `PORTCULLIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable`) is unreachable, they fail.

use std::path::PathBuf;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

use crate::{StoreError, StoreResult};

pub const POSTGRES_URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";
// Loopback: TLS would add nothing but a handshake per connection (~100 ms in debug builds).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/// A database that exists for one test. Keep it alive as long as anything uses `url`.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Postgres { admin_url: String, name: String },
    SqliteFile(PathBuf),
}

/// The admin URL tests create their databases from.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Creates an empty database `portcullis_test_<uuid>`; the caller migrates it.
pub async fn fresh_postgres_database() -> StoreResult<TestDatabase> {
    let admin_url = postgres_admin_url();
    let name = format!("portcullis_test_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&admin_url).await.map_err(|e| {
        StoreError::Config(format!(
            "cannot reach the test PostgreSQL at {admin_url} (set {POSTGRES_URL_VAR}): {e}"
        ))
    })?;
    // The name is ours (hex digits), so formatting it into the statement is safe.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(TestDatabase {
        url: with_database(&admin_url, &name)?,
        cleanup: Cleanup::Postgres { admin_url, name },
    })
}

/// A SQLite database in a new file under the system's temporary directory, and its URL.
pub async fn fresh_sqlite_url() -> (TestDatabase, String) {
    let path = std::env::temp_dir().join(format!("portcullis-test-{}.db", Uuid::now_v7().simple()));
    let url = format!("sqlite://{}", path.display());
    let db = TestDatabase {
        url: url.clone(),
        cleanup: Cleanup::SqliteFile(path),
    };
    (db, url)
}

/// Replaces the database name (the URL's path) and keeps everything else.
fn with_database(url: &str, name: &str) -> StoreResult<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| StoreError::Config(format!("{POSTGRES_URL_VAR} is not a URL")))?;
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop may run inside a runtime that must not block on itself, so the drop
                // gets a thread and a runtime of its own. Best effort: a leftover database
                // is harmless and easy to spot by its prefix.
                let admin_url = admin_url.clone();
                let name = name.clone();
                let dropper = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                            if let Err(e) =
                                sqlx::query(AssertSqlSafe(sql)).execute(&mut admin).await
                            {
                                eprintln!("could not drop test database {name}: {e}");
                            }
                            let _ = admin.close().await;
                        }
                    });
                });
                let _ = dropper.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaces_the_path_only() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@db/x?sslmode=disable", "t2").unwrap(),
            "postgres://u:p@db/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://localhost", "t3").unwrap(),
            "postgresql://localhost/t3"
        );
        assert!(with_database("nonsense", "t4").is_err());
    }
}
