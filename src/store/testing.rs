//! Fresh databases for tests: a SQLite file in its own temporary folder, or
//! a PostgreSQL database of its own on the server named by
//! `TEST_DATABASE_URL`. The same store tests run on both.
//!
//! When `SWITCHBOARD_REQUIRE_PEERS=1` (CI) and `TEST_DATABASE_URL` is unset,
//! asking for PostgreSQL fails instead of skipping.

use std::path::{Path, PathBuf};

use super::{Backend, Store, StoreError};

/// The environment variable naming a PostgreSQL server for tests.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// A temporary folder, removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/switchboard-<prefix>-<random>`.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "switchboard-{prefix}-{:016x}",
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// A migrated store on a database of its own. Call [`TestDb::cleanup`] at
/// the end of a test to drop a PostgreSQL database; a SQLite folder goes
/// away on drop.
#[derive(Debug)]
pub struct TestDb {
    pub store: Store,
    pub url: String,
    dir: Option<TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh, migrated SQLite database.
    pub async fn sqlite() -> TestDb {
        let dir = TempDir::new("db").expect("create a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::connect(&url).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        TestDb {
            store,
            url,
            dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh, migrated PostgreSQL database, or `None` (skip) when
    /// `TEST_DATABASE_URL` is unset. Panics when it is unset but
    /// `SWITCHBOARD_REQUIRE_PEERS=1`.
    pub async fn postgres() -> Option<TestDb> {
        let Some(admin_url) = std::env::var(TEST_DATABASE_URL)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            if std::env::var("SWITCHBOARD_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("SWITCHBOARD_REQUIRE_PEERS=1 but {TEST_DATABASE_URL} is unset");
            }
            eprintln!("skipping the PostgreSQL run: {TEST_DATABASE_URL} is unset");
            return None;
        };
        let name = format!("sb_test_{:016x}", rand::random::<u64>());
        let admin = Store::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create a test database");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        let store = Store::connect(&url).await.expect("open the test database");
        store.migrate().await.expect("migrate PostgreSQL");
        Some(TestDb {
            store,
            url,
            dir: None,
            postgres: Some((admin_url, name)),
        })
    }

    /// The database for `backend`; `None` means skip (see [`TestDb::postgres`]).
    pub async fn of(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// The folder of a SQLite test database.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// Closes the store and drops a PostgreSQL test database.
    pub async fn cleanup(self) -> Result<(), StoreError> {
        self.store.close().await;
        if let Some((admin_url, name)) = &self.postgres {
            let admin = Store::connect(admin_url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(admin.pool())
            .await?;
            admin.close().await;
        }
        Ok(())
    }
}

/// `url` with its database name (the path) replaced by `name`; the query
/// string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaced_in_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
