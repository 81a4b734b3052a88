//! The database: one sqlx `AnyPool` on SQLite (embedded, the default) or
//! PostgreSQL (several switch nodes), chosen by the URL scheme (DESIGN §7,
//! §11). The same SQL text runs on both (`$1` placeholders); migrations live
//! in one folder per backend.

mod agents;
mod segments;
pub mod testing;

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

pub use agents::{
    Agent, AgentId, AgentUpdate, Agents, NewAgent, STORED_STATES, SkillError, check_skills,
    format_skills, parse_skills,
};
pub use segments::{NewQueueSegment, OUTCOMES, QueueSegment, SegmentOffer, Segments};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("src/store/migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("src/store/migrations/postgres");

/// Which database server the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of a `sqlite:` or `postgres://` URL.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme {scheme:?}: expected sqlite://FILE or postgres://…")]
    UnsupportedUrl { scheme: String },
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} {value:?} is already taken")]
    Conflict { what: &'static str, value: String },
    #[error("invalid skills: {0}")]
    InvalidSkill(#[from] SkillError),
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A handle on the database; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens a pool on `url`. A SQLite file is created if missing and put in
    /// WAL mode; foreign keys are on and writers wait (busy timeout) rather
    /// than fail.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl {
            scheme: url.split(':').next().unwrap_or_default().to_owned(),
        })?;
        let store = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(url);
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // sqlx's SQLite defaults already set foreign_keys=ON and
                            // a 5 s busy timeout; say so explicitly for the Any driver.
                            sqlx::raw_sql("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                                .execute(conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                // WAL is a property of the file: set once, kept by every connection.
                if !url.contains(":memory:") && !url.contains("mode=memory") {
                    sqlx::raw_sql("PRAGMA journal_mode = WAL")
                        .execute(&pool)
                        .await?;
                }
                Store { pool, backend }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?;
                Store { pool, backend }
            }
        };
        Ok(store)
    }

    /// Applies the backend's pending migrations; running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for modules that keep their own queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The agents table and its skills.
    pub fn agents(&self) -> Agents<'_> {
        Agents::new(&self.pool)
    }

    /// Callers' times in queues.
    pub fn segments(&self) -> Segments<'_> {
        Segments::new(&self.pool)
    }

    /// Reads a value the switch keeps for itself.
    pub async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value.map(|(v,)| v))
    }

    /// Stores a value the switch keeps for itself, replacing an old one.
    pub async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores `value` under `key` unless a value is already there; returns
    /// the value that is stored afterwards (the first writer wins).
    pub async fn meta_insert_once(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        match self.meta_get(key).await? {
            Some(v) => Ok(v),
            None => Err(StoreError::NotFound {
                what: "meta key",
                key: key.to_owned(),
            }),
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` (create if missing) to a SQLite URL without a mode.
fn sqlite_url(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

/// Milliseconds since the Unix epoch, the store's time format.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new UUIDv7 (RFC 9562 §5.7) as lower-case hyphenated text: 48 bits of
/// Unix milliseconds, then version, random bits and variant. Sorts by
/// creation time.
pub fn new_id() -> String {
    new_id_at(now_ms(), rand::random())
}

fn new_id_at(ms: i64, random: u128) -> String {
    let ms = (ms.max(0) as u128) & ((1 << 48) - 1);
    let rand_a = (random >> 64) & 0xfff; // 12 bits
    let rand_b = random & ((1 << 62) - 1); // 62 bits
    let v = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b;
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9562 §5.7 layout: version 7 in the 13th hex digit, variant 10xx.
    #[test]
    fn uuid_v7_layout() {
        let id = new_id_at(0x0190_1234_5678, u128::MAX);
        assert_eq!(id, "01901234-5678-7fff-bfff-ffffffffffff");
        let id = new_id_at(0x0190_1234_5678, 0);
        assert_eq!(id, "01901234-5678-7000-8000-000000000000");
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'7');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id_at(1_000, u128::MAX);
        let b = new_id_at(1_001, 0);
        assert!(a < b);
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(sqlite_url("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(sqlite_url("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(sqlite_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            sqlite_url("sqlite:///tmp/x.db?cache=shared"),
            "sqlite:///tmp/x.db?cache=shared&mode=rwc"
        );
    }

    #[test]
    fn backend_of_url() {
        assert_eq!(Backend::of_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://u@h/db"), None);
    }
}
