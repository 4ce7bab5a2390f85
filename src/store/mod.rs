//! The only place that speaks SQL: through sqlx's `Any` driver, one set of queries for
//! SQLite (one machine, the default) and Postgres (several instances sharing the work).
//! Migrations live in `migrations/sqlite/` and `migrations/postgres/`; a change to the
//! schema is a new file in both.
//!
//! The queries keep to what both databases understand alike: `$1` placeholders (SQLite
//! reads them too), `ON CONFLICT … DO NOTHING`, `RETURNING`, integers as 64-bit
//! (`BIGINT` on Postgres), flags as 0/1 ([`columns::Flag`]), domain enums as their names
//! ([`columns`]). What only one of them has (SQLite's file modes, `VACUUM INTO`, WAL
//! checkpoints) is here, behind [`Backend`].
//!
//! One file per kind of record: [`users`], [`sessions`], [`turns`], [`ratings`],
//! [`chats`] (per-chat settings and handled message keys), [`inbox`], [`stats`]. This
//! file opens the database (private file modes, WAL, migrations), backs it up and holds
//! the row types.

mod chats;
mod columns;
mod copy;
mod inbox;
mod instances;
mod location;
mod ratings;
mod sessions;
mod stats;
mod turns;
mod users;

pub use copy::{values, Value, TABLES};
pub use instances::ALIVE_MS;
pub use location::Location;
pub use sessions::{FieldValue, SessionField};
pub use stats::PlotRows;
pub use turns::SEND_ATTEMPTS;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, FromRow};

use crate::domain::{Delivery, EndReason, Speaker, Stage, Stars, TurnSource};
use kindred_adapter::{ChatKind, ChatRef};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A random token for button payloads and pseudonyms.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Where a shared chat's risk alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRoute {
    /// The alert chat, on the same platform.
    pub target: String,
    /// Whether alerts quote the person's words (the community opted in).
    pub include_text: bool,
}

#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct User {
    pub id: i64,
    pub platform: String,
    pub platform_user_id: String,
    pub pseudonym: String,
    pub created_at: i64,
    pub forget_nonce: Option<String>,
    /// Whether the person lets Kindred keep their words after a conversation (`/privacy`).
    #[sqlx(try_from = "columns::Flag")]
    pub keep_words: bool,
}

#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub chat_platform: String,
    pub chat_id: String,
    #[sqlx(try_from = "String")]
    pub chat_kind: ChatKind,
    pub chat_community: Option<String>,
    pub started_at: i64,
    pub last_activity_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<EndReason>,
    pub stage: Stage,
    pub nonce: String,
    pub emotion_type: Option<String>,
    pub problem_type: Option<String>,
    pub situation: Option<String>,
    pub intensity_before: Option<i64>,
    pub intensity_after: Option<i64>,
    pub empathy: Option<i64>,
    pub relevance: Option<i64>,
    pub bot_replies: i64,
}

#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct Turn {
    pub id: i64,
    pub session_id: i64,
    pub idx: i64,
    pub speaker: Speaker,
    pub text: String,
    pub source: TurnSource,
    pub strategy: Option<String>,
    pub strategy_probs: Option<String>,
    pub platform_message_id: Option<String>,
    pub delivery: Delivery,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct RatingPrompt {
    pub id: i64,
    pub session_id: i64,
    pub first_turn_id: i64,
    pub second_turn_id: i64,
    pub platform_message_id: Option<String>,
    pub created_at: i64,
    pub stars: Option<Stars>,
    pub rated_at: Option<i64>,
}

/// A turn to add.
#[derive(Debug, Clone, Default)]
pub struct NewTurn<'a> {
    pub speaker: Speaker,
    pub text: &'a str,
    pub source: TurnSource,
    pub strategy: Option<&'a str>,
    pub strategy_probs: Option<String>,
    pub platform_message_id: Option<&'a str>,
    pub delivery: Delivery,
}

/// Which database a [`Store`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// This process's name among the instances sharing the database (Postgres only):
    /// the replies it records are claimed by it.
    instance: Option<std::sync::Arc<str>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A name for this process among the instances on one database: host, process id and a
/// random part (a restarted process is a new instance; the old one's claims lapse).
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "kindred".to_string()
    } else {
        host
    };
    format!("{host}-{}-{}", std::process::id(), random_token(6))
}

/// A connection idle for longer than this is checked before it is used again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// Pool settings both databases share. sqlx checks every connection before handing it
/// out (a round trip to the server each time, so every query cost two); here only one
/// that has been idle a while is checked, which is when a server restart or a dropped
/// link is likely to have broken it. The cost: a connection in busy use when the server
/// restarts fails its next query (and is dropped) instead of being replaced first.
fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Warns when others than Kindred's user can read into the data directory.
fn warn_if_shared(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format!("{mode:o}"),
                    "the data directory can be read by other users; chmod 700 it unless it is shared on purpose"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Gives `path` no more than `mode` (on Unix): group and others lose what they had.
fn private(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read the permissions of {}", path.display()))?;
        let current = meta.permissions().mode() & 0o777;
        if current & !mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))
                .with_context(|| format!("cannot make {} private", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                from = format!("{current:o}"),
                to = format!("{:o}", current & mode),
                "tightened permissions: Kindred's data holds people's words"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

impl Store {
    /// Opens the database at `location` and applies pending migrations
    /// (see [`Store::open_sqlite`] and [`Store::open_postgres`]).
    pub async fn open(location: &Location, busy_timeout: Duration) -> Result<Self> {
        let store = Self::connect(location, busy_timeout).await?;
        store.migrate().await.with_context(|| {
            format!("cannot apply migrations to {location} (is it locked or read-only?)")
        })?;
        Ok(store)
    }

    /// Opens the database without applying migrations (`kindred db migrate` reports
    /// what it applies; `kindred db copy` checks both sides first).
    pub async fn connect(location: &Location, busy_timeout: Duration) -> Result<Self> {
        sqlx::any::install_default_drivers();
        match location {
            Location::Sqlite(path) => Self::open_sqlite(path, busy_timeout).await,
            Location::Postgres(_) => Self::open_postgres(location, busy_timeout).await,
        }
    }

    /// Opens (creating if needed) a SQLite file, in WAL mode with a busy timeout.
    ///
    /// A data directory Kindred creates is private to its user (0700), and the database
    /// file (and with it SQLite's `-wal` and `-shm` files, which take its mode) is 0600:
    /// they hold people's words. Looser database files found at start are tightened; a
    /// looser existing directory is only warned about (it may be shared on purpose, and
    /// changing, say, `/tmp` would break the machine).
    async fn open_sqlite(path: &Path, busy_timeout: Duration) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let existed = dir.exists();
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
            if existed {
                warn_if_shared(dir);
            } else {
                private(dir, 0o700)?;
            }
        }
        if !path.exists() {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(path)
                .with_context(|| format!("cannot create the database {}", path.display()))?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if f.exists() {
                private(&f, 0o600)?;
            }
        }
        // The Any driver takes a URL; SQLite's own options build it (escaping the path).
        let url = SqliteConnectOptions::new().filename(path).to_url_lossy();
        // Settings that SQLite keeps per connection: a wait instead of an instant
        // "database is locked", foreign keys (the cascades /forget relies on), and
        // deleted content overwritten rather than left in free pages (/forget).
        let pragmas = format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
            busy_timeout.as_millis()
        );
        let pool = pool_options()
            .max_connections(4)
            .after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(pragmas.as_str()).await?;
                    Ok(())
                })
            })
            .connect(url.as_str())
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            instance: None,
        })
    }

    /// Connects to a Postgres server. `busy_timeout` bounds how long a statement waits
    /// for a lock another instance holds (`lock_timeout`), as it does on SQLite.
    async fn open_postgres(location: &Location, busy_timeout: Duration) -> Result<Self> {
        let lock_timeout = format!("SET lock_timeout = {}", busy_timeout.as_millis());
        let pool = pool_options()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                let lock_timeout = lock_timeout.clone();
                Box::pin(async move {
                    conn.execute(lock_timeout.as_str()).await?;
                    Ok(())
                })
            })
            .connect(location.url())
            .await
            .with_context(|| format!("cannot connect to the database {location}"))?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
            instance: Some(instance_name().into()),
        })
    }

    /// Applies the migrations this database lacks; returns their descriptions.
    pub async fn migrate(&self) -> Result<Vec<String>> {
        let migrator = self.migrator();
        let applied: std::collections::HashSet<i64> = self
            .applied_migrations()
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
        migrator.run(&self.pool).await?;
        Ok(migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect())
    }

    /// The versions of the migrations applied to this database (none when it is new).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT version FROM _sqlx_migrations WHERE success = true ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// The migrations this backend's schema is made of.
    pub fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Moves the write-ahead log into the database and empties it.
    /// (SQLite; Postgres keeps no such log of its own for us to empty.)
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A consistent copy of the database at `target` (which must not exist), taken while
    /// it is in use (`VACUUM INTO`), readable by the owner only.
    /// On Postgres the server's own tools do this (`pg_dump`).
    pub async fn backup(&self, target: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            anyhow::bail!(
                "kindred db backup copies a SQLite database; for Postgres use the server's own tools (pg_dump -Fc …)"
            );
        }
        if target.exists() {
            anyhow::bail!(
                "{} exists already; a backup never overwrites",
                target.display()
            );
        }
        let path = target
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", target.display()))?;
        // Created empty and private first, so the copy is never readable by others.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(target)
                .with_context(|| format!("cannot create {}", target.display()))?;
        }
        let result = sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(target);
            return Err(
                anyhow::Error::new(e).context(format!("backing up to {} failed", target.display()))
            );
        }
        Ok(())
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

#[cfg(all(test, unix))]
mod file_modes {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_data_directory_and_database_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("kindred.sqlite");
        let store = Store::open(&Location::Sqlite(db.clone()), Duration::from_secs(1))
            .await
            .unwrap();
        store.get_or_create_user("test", "ana").await.unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&PathBuf::from(format!("{}-wal", db.display()))), 0o600);
        store.close().await;
        // Loosened by hand: the database is tightened again at the next start; an
        // existing directory is left as its owner set it (with a warning).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open(&Location::Sqlite(db.clone()), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!((mode(&dir), mode(&db)), (0o755, 0o600));
        store.close().await;
    }
}
