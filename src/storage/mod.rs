//! Storage: the only place that knows diesel connections.
//!
//! * [`AnyConnection`] is one diesel connection type over SQLite and PostgreSQL; the backend is
//!   chosen from the URL scheme (`sqlite://…`, `postgres://…`), never guessed.
//! * [`Db::read`] runs read-only work on a pooled connection off the async threads.
//! * [`Db::write`] hands a unit of work to the single group-commit writer (see `writer.rs`):
//!   it runs in its own savepoint inside a shared transaction and the caller is answered only
//!   after that transaction has committed durably (ARCHITECTURE.md "Durability").

pub mod history;
pub mod schema;
mod writer;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use writer::WriterStats;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Errors of the storage layer. Messages never contain patient data.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL (use sqlite://PATH or postgres://…): {0}")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("connection pool error: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("the write could not be committed: {0}")]
    Commit(String),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("a database task panicked")]
    Panicked,
    #[error("the database is not durable enough to acknowledge anything: {0}")]
    NotDurable(String),
}

impl StorageError {
    /// True when the error is a UNIQUE constraint violation (two writers raced for one key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StorageError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StorageError> {
        if url.starts_with("sqlite://") || url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StorageError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// The path of an `sqlite://PATH` URL.
fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// A URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Open one connection of the URL's backend with the durability and integrity settings applied.
pub fn establish(url: &str) -> Result<AnyConnection, StorageError> {
    match Backend::from_url(url)? {
        Backend::Sqlite => {
            let path = sqlite_path(url);
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StorageError::Connect(format!("{}: {e}", parent.display())))?;
            }
            let mut conn =
                diesel::SqliteConnection::establish(path).map_err(|e| StorageError::Connect(e.to_string()))?;
            // WAL + synchronous=FULL: a committed transaction survives a power cut. Statement and
            // savepoint journals (each group-commit unit runs in a savepoint) only serve rollback
            // inside an open transaction, so they live in memory instead of a temp file per unit;
            // durability is the WAL's. A 64 MB page cache keeps the hot indexes in memory.
            conn.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;",
            )?;
            Ok(AnyConnection::Sqlite(conn))
        }
        Backend::Postgres => {
            let mut conn = diesel::PgConnection::establish(url).map_err(|e| StorageError::Connect(e.to_string()))?;
            conn.batch_execute("SET synchronous_commit = on; SET TIME ZONE 'UTC';")?;
            Ok(AnyConnection::Postgresql(conn))
        }
    }
}

/// The settings that make a commit survive a power cut, as the database reports them
/// (ARCHITECTURE.md "Durability"): nothing may be acknowledged otherwise, so the service refuses
/// to start rather than run with a smaller guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurabilitySettings {
    /// `PRAGMA journal_mode`, `PRAGMA synchronous` (0 off, 1 normal, 2 full, 3 extra).
    Sqlite { journal_mode: String, synchronous: i32 },
    /// `SHOW synchronous_commit`, `SHOW fsync`.
    Postgres { synchronous_commit: String, fsync: String },
}

impl DurabilitySettings {
    /// Refuse what would let an acknowledged commit be lost in a power cut. SQLite: WAL with
    /// `synchronous` FULL or EXTRA (with NORMAL, WAL commits since the last checkpoint's fsync may be
    /// lost — the window this service does not allow). PostgreSQL: `fsync=on` and
    /// `synchronous_commit` `on`, `local`, `remote_write` or `remote_apply` (never `off`).
    pub fn check(&self) -> Result<(), String> {
        match self {
            DurabilitySettings::Sqlite {
                journal_mode,
                synchronous,
            } => {
                if !journal_mode.eq_ignore_ascii_case("wal") {
                    return Err(format!("SQLite journal_mode is {journal_mode}, not WAL"));
                }
                if *synchronous < 2 {
                    return Err(format!(
                        "SQLite synchronous is {synchronous} (FULL = 2 is required: with NORMAL the last commits before a power cut may be lost)"
                    ));
                }
                Ok(())
            }
            DurabilitySettings::Postgres {
                synchronous_commit,
                fsync,
            } => {
                if fsync != "on" {
                    return Err(format!(
                        "PostgreSQL fsync is {fsync}: commits would not survive a power cut"
                    ));
                }
                if !matches!(
                    synchronous_commit.as_str(),
                    "on" | "local" | "remote_write" | "remote_apply"
                ) {
                    return Err(format!("PostgreSQL synchronous_commit is {synchronous_commit}, not on"));
                }
                Ok(())
            }
        }
    }
}

/// Read the durability settings of a connection.
pub fn durability(conn: &mut AnyConnection) -> Result<DurabilitySettings, StorageError> {
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let text = |conn: &mut AnyConnection, sql: &str| -> Result<String, StorageError> {
        Ok(diesel::sql_query(sql)
            .load::<Text>(conn)?
            .into_iter()
            .next()
            .map(|t| t.v)
            .unwrap_or_default())
    };
    Ok(match conn {
        AnyConnection::Sqlite(_) => DurabilitySettings::Sqlite {
            journal_mode: text(conn, "SELECT journal_mode AS v FROM pragma_journal_mode")?,
            synchronous: text(conn, "SELECT CAST(synchronous AS TEXT) AS v FROM pragma_synchronous")?
                .parse()
                .unwrap_or(0),
        },
        AnyConnection::Postgresql(_) => DurabilitySettings::Postgres {
            synchronous_commit: text(conn, "SELECT current_setting('synchronous_commit') AS v")?,
            fsync: text(conn, "SELECT current_setting('fsync') AS v")?,
        },
    })
}

fn check_durability(conn: &mut AnyConnection) -> Result<(), StorageError> {
    durability(conn)?.check().map_err(StorageError::NotDurable)
}

/// Run the embedded migrations of the connection's backend.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<usize, StorageError> {
    let done = match conn {
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| StorageError::Migration(e.to_string()))?;
    Ok(done.len())
}

/// Revert the last `n` migrations (for `mch-chain migrate --revert N` and the up/down/up check).
pub fn revert_migrations(conn: &mut AnyConnection, n: usize) -> Result<(), StorageError> {
    for _ in 0..n {
        match conn {
            AnyConnection::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS).map(|_| ()),
            AnyConnection::Postgresql(c) => c.revert_last_migration(POSTGRES_MIGRATIONS).map(|_| ()),
        }
        .map_err(|e| StorageError::Migration(e.to_string()))?;
    }
    Ok(())
}

/// r2d2 manager that builds the backend from the URL and applies the per-connection settings.
pub struct ConnManager {
    url: String,
}

impl ManageConnection for ConnManager {
    type Connection = AnyConnection;
    type Error = StorageError;

    /// Pooled connections only read: every write goes through the group-commit writer, so a
    /// write attempted here is a bug and fails loudly instead of committing on its own.
    fn connect(&self) -> Result<AnyConnection, StorageError> {
        let mut conn = establish(&self.url)?;
        match &mut conn {
            AnyConnection::Sqlite(c) => c.batch_execute("PRAGMA query_only = ON")?,
            AnyConnection::Postgresql(c) => c.batch_execute("SET default_transaction_read_only = on")?,
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), StorageError> {
        conn.batch_execute("SELECT 1").map_err(StorageError::from)
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

/// Handle to the database: a read pool and the group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<ConnManager>,
    writer: writer::WriterHandle,
    backend: Backend,
}

impl Db {
    /// Connect, migrate and start the writer.
    pub fn open(url: &str, pool_size: u32) -> Result<Db, StorageError> {
        let backend = Backend::from_url(url)?;
        let mut conn = establish(url)?;
        check_durability(&mut conn)?;
        let applied = run_migrations(&mut conn)?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(10))
            // A SQLite file cannot drop a connection; a PostgreSQL one is checked (`SELECT 1`)
            // before each use so a server restart costs no failed request.
            .test_on_check_out(backend == Backend::Postgres)
            .build(ConnManager { url: url.to_string() })
            .map_err(|e| StorageError::Pool(e.to_string()))?;
        let writer = writer::WriterHandle::start(url.to_string(), conn)?;
        Ok(Db { pool, writer, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close every connection and wait for the writer to finish (the command line, before the
    /// process exits). Other clones keep working; the last one closed stops the writer.
    pub fn close(self) {
        let Db { pool, writer, .. } = self;
        drop(pool);
        writer.close();
    }

    /// Run read-only work on a pooled connection, off the async threads; the caller's span is kept.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        match tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut conn = pool.get().map_err(|e| StorageError::Pool(e.to_string()))?;
                f(&mut conn)
            })
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(StorageError::Panicked.into()),
        }
    }

    /// Run `f` in its own savepoint of the next group commit; answer after the commit is durable.
    /// If `f` returns `Err`, only its own savepoint is rolled back.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// Blocking variant of [`Db::write`] for CLI commands and benchmarks outside a runtime.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.writer.submit_blocking(f)
    }

    /// Writes submitted and not yet answered (queued or running): how far behind the writer is.
    pub fn pending_writes(&self) -> u64 {
        self.writer.pending()
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// A quick liveness check of both the read path and the writer.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.read(|c| c.batch_execute("SELECT 1").map_err(StorageError::from))
            .await?;
        self.write(|c| c.batch_execute("SELECT 1").map_err(StorageError::from))
            .await
    }
}

/// Run `f` in a savepoint of the caller's transaction: if it fails, only its own writes are undone.
pub fn savepoint<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(f)
}

#[cfg(test)]
mod tests {
    use super::DurabilitySettings as D;

    /// `.cargo/config.toml` builds the bundled SQLite with `SQLITE_ENABLE_QPSG`: without it every
    /// cached statement with `LIMIT ?` is re-compiled at each execution (see that file).
    #[test]
    fn bundled_sqlite_keeps_query_plans_stable() {
        use diesel::prelude::*;
        use diesel::sql_types::Integer;
        #[derive(QueryableByName)]
        struct Used {
            #[diesel(sql_type = Integer)]
            used: i32,
        }
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::establish(&format!("sqlite://{}", dir.path().join("q.db").display())).unwrap();
        let super::AnyConnection::Sqlite(c) = &mut conn else {
            unreachable!("a sqlite URL opens SQLite")
        };
        let row: Used = diesel::sql_query("SELECT sqlite_compileoption_used('ENABLE_QPSG') AS used")
            .get_result(c)
            .unwrap();
        assert_eq!(
            row.used, 1,
            "build the bundled SQLite with LIBSQLITE3_FLAGS=-DSQLITE_ENABLE_QPSG"
        );
    }

    #[test]
    fn only_power_cut_safe_settings_are_accepted() {
        let sqlite = |j: &str, s| D::Sqlite {
            journal_mode: j.into(),
            synchronous: s,
        };
        assert!(sqlite("wal", 2).check().is_ok());
        assert!(sqlite("WAL", 3).check().is_ok());
        assert!(sqlite("wal", 1).check().unwrap_err().contains("NORMAL"));
        assert!(sqlite("delete", 2).check().is_err());
        let pg = |c: &str, f: &str| D::Postgres {
            synchronous_commit: c.into(),
            fsync: f.into(),
        };
        assert!(pg("on", "on").check().is_ok());
        assert!(pg("remote_apply", "on").check().is_ok());
        assert!(pg("off", "on").check().is_err());
        assert!(pg("on", "off").check().is_err());
    }
}
