//! The only place that speaks SQL. SQLite through sqlx, migrations from `migrations/`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{FromRow, SqlitePool};

use crate::domain::{Delivery, EndReason, Speaker, Stage, TurnSource};

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
    pub keep_words: bool,
}

#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub chat_platform: String,
    pub chat_id: String,
    pub chat_kind: String,
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
    pub stars: Option<i64>,
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

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
    /// Opens (creating if needed) the database file, in WAL mode with a busy timeout, and
    /// applies pending migrations.
    ///
    /// A data directory Kindred creates is private to its user (0700), and the database
    /// file (and with it SQLite's `-wal` and `-shm` files, which take its mode) is 0600:
    /// they hold people's words. Looser database files found at start are tightened; a
    /// looser existing directory is only warned about (it may be shared on purpose, and
    /// changing, say, `/tmp` would break the machine).
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<Self> {
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
            let f = PathBuf::from(format!("{}{suffix}", path.display()));
            if f.exists() {
                private(&f, 0o600)?;
            }
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .with_context(|| format!("invalid database path {}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Deleted content is overwritten, not left in free pages (/forget).
            .pragma("secure_delete", "ON")
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        MIGRATOR.run(&pool).await.with_context(|| {
            format!(
                "cannot apply migrations to {} (is it locked or read-only?)",
                path.display()
            )
        })?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users ----

    pub async fn find_user(&self, platform: &str, platform_user_id: &str) -> Result<Option<User>> {
        Ok(
            sqlx::query_as("SELECT * FROM users WHERE platform = ? AND platform_user_id = ?")
                .bind(platform)
                .bind(platform_user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn get_or_create_user(&self, platform: &str, platform_user_id: &str) -> Result<User> {
        if let Some(u) = self.find_user(platform, platform_user_id).await? {
            return Ok(u);
        }
        sqlx::query("INSERT OR IGNORE INTO users (platform, platform_user_id, pseudonym, created_at) VALUES (?, ?, ?, ?)")
            .bind(platform)
            .bind(platform_user_id)
            .bind(format!("seeker-{}", random_token(10)))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        self.find_user(platform, platform_user_id)
            .await?
            .context("user vanished after insert")
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_forget_nonce(&self, user_id: i64, nonce: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE users SET forget_nonce = ? WHERE id = ?")
            .bind(nonce)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the user and, through the foreign keys, every session, turn and rating,
    /// with the events of theirs still waiting in the inbox (`inbox_ids`), in one
    /// transaction. The database overwrites what it deletes (`secure_delete`), and the
    /// write-ahead log is checkpointed and truncated after, so the words are not left in
    /// free pages or in the log either.
    pub async fn delete_user(&self, user_id: i64, inbox_ids: &[i64]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The keys of their messages in their direct chats ("msg:{chat}:{message}") tie
        // their platform id to when they wrote; those go too.
        let direct: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT chat_platform, chat_id FROM sessions WHERE user_id = ? AND chat_kind = 'direct'",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        for (platform, chat_id) in direct {
            let prefix = format!("msg:{chat_id}:");
            sqlx::query(
                "DELETE FROM processed_events WHERE platform = ? AND substr(event_id, 1, length(?2)) = ?2",
            )
            .bind(platform)
            .bind(prefix)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for id in inbox_ids {
            sqlx::query("DELETE FROM inbox WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.checkpoint().await
    }

    /// Moves the write-ahead log into the database and empties it.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A consistent copy of the database at `target` (which must not exist), taken while
    /// it is in use (`VACUUM INTO`), readable by the owner only.
    pub async fn backup(&self, target: &Path) -> Result<()> {
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
        let result = sqlx::query("VACUUM INTO ?")
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

    // ---- sessions ----

    /// The user's session in this chat that is not closed (chatting, or in its check-in or survey).
    pub async fn open_session(
        &self,
        user_id: i64,
        chat_platform: &str,
        chat_id: &str,
    ) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "SELECT * FROM sessions WHERE user_id = ? AND chat_platform = ? AND chat_id = ? AND stage != 'closed'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(chat_platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn session(&self, id: i64) -> Result<Option<Session>> {
        Ok(sqlx::query_as("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn create_session(
        &self,
        user_id: i64,
        chat_platform: &str,
        chat_id: &str,
        chat_kind: &str,
        stage: Stage,
    ) -> Result<Session> {
        let now = now_ms();
        let id = sqlx::query(
            "INSERT INTO sessions (user_id, chat_platform, chat_id, chat_kind, started_at, last_activity_at, stage, nonce)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(chat_platform)
        .bind(chat_id)
        .bind(chat_kind)
        .bind(now)
        .bind(now)
        .bind(stage)
        .bind(random_token(12))
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        self.session(id)
            .await?
            .context("session vanished after insert")
    }

    pub async fn set_stage(&self, session_id: i64, stage: Stage) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET stage = ?, last_activity_at = ? WHERE id = ?")
            .bind(stage)
            .bind(now_ms())
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        if stage == Stage::Closed {
            Self::erase_words_if_not_kept(&mut tx, session_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Erases the words of a conversation that has ended, if its person chose that their
    /// words are not kept (`users.keep_words`): every turn's text, theirs and Kindred's,
    /// and the situation they described. Strategies, ratings and surveys stay.
    async fn erase_words_if_not_kept(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        session_id: i64,
    ) -> Result<()> {
        let keep: Option<(bool,)> = sqlx::query_as(
            "SELECT u.keep_words FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.id = ?",
        )
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await?;
        if keep == Some((false,)) {
            sqlx::query("UPDATE turns SET text = '' WHERE session_id = ?")
                .bind(session_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE sessions SET situation = NULL WHERE id = ?")
                .bind(session_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Records whether a person lets Kindred keep their words. Choosing not to erases
    /// at once the words of their conversations that have ended (those still open are
    /// erased when they end).
    pub async fn set_keep_words(&self, user_id: i64, keep: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET keep_words = ? WHERE id = ?")
            .bind(keep)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if !keep {
            let ended: Vec<(i64,)> = sqlx::query_as(
                "SELECT id FROM sessions WHERE user_id = ? AND (ended_at IS NOT NULL OR stage = 'closed')",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            for (id,) in ended {
                Self::erase_words_if_not_kept(&mut tx, id).await?;
            }
        }
        tx.commit().await?;
        if !keep {
            // The erased words are overwritten in the file (secure_delete); the log too.
            self.checkpoint().await?;
        }
        Ok(())
    }

    pub async fn touch(&self, session_id: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_activity_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session (`stage` is `closed`, or a survey stage when the survey follows).
    pub async fn end_session(
        &self,
        session_id: i64,
        reason: EndReason,
        stage: Stage,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET ended_at = COALESCE(ended_at, ?), end_reason = COALESCE(end_reason, ?), stage = ? WHERE id = ?")
            .bind(now_ms())
            .bind(reason)
            .bind(stage)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        Self::erase_words_if_not_kept(&mut tx, session_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets one survey / check-in field. `field` is one of a fixed list (never user input).
    pub async fn set_session_field(
        &self,
        session_id: i64,
        field: SessionField,
        value: FieldValue<'_>,
    ) -> Result<()> {
        let sql = format!("UPDATE sessions SET {} = ? WHERE id = ?", field.column());
        let q = sqlx::query(&sql);
        let q = match value {
            FieldValue::Int(v) => q.bind(v),
            FieldValue::Text(t) => q.bind(t.to_string()),
        };
        q.bind(session_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Sessions in conversation (not in a check-in, a survey, or closed).
    pub async fn chatting_sessions(&self) -> Result<Vec<Session>> {
        Ok(
            sqlx::query_as("SELECT * FROM sessions WHERE stage = 'chatting' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Sessions idle since before `cutoff` that are still open.
    pub async fn idle_sessions(&self, cutoff: i64) -> Result<Vec<Session>> {
        Ok(sqlx::query_as(
            "SELECT * FROM sessions WHERE stage != 'closed' AND last_activity_at < ?",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn sessions_of_user(&self, user_id: i64) -> Result<Vec<Session>> {
        Ok(
            sqlx::query_as("SELECT * FROM sessions WHERE user_id = ? ORDER BY id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Sessions started at or after `since_ms` that may be exported: never those of a
    /// person who chose that their words are not kept.
    pub async fn exportable_sessions(&self, since_ms: i64) -> Result<Vec<Session>> {
        Ok(sqlx::query_as(
            "SELECT s.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.started_at >= ? AND u.keep_words = 1 ORDER BY s.id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts one more bot reply; returns the new count.
    pub async fn count_bot_reply(&self, session_id: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "UPDATE sessions SET bot_replies = bot_replies + 1 WHERE id = ? RETURNING bot_replies",
        )
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Messages this user sent since `since_ms` (for the rate limit).
    pub async fn messages_since(&self, user_id: i64, since_ms: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM turns t JOIN sessions s ON s.id = t.session_id WHERE s.user_id = ? AND t.source = 'user' AND t.created_at >= ?",
        )
        .bind(user_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Deletes closed sessions that ended before `cutoff` (retention); returns how many.
    pub async fn delete_sessions_ended_before(&self, cutoff: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM sessions WHERE stage = 'closed' AND ended_at IS NOT NULL AND ended_at < ?",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    // ---- turns ----

    /// Appends a turn with the next index of its session.
    pub async fn add_turn(&self, session_id: i64, t: NewTurn<'_>) -> Result<Turn> {
        Ok(self
            .add_turn_once(session_id, None, t)
            .await?
            .expect("a turn without an event key is always added"))
    }

    /// Appends a turn and, in the same transaction, records the platform event it came
    /// from as processed (`event`: platform and key). `None` when that event was already
    /// processed: a redelivery. One transaction, so that a crash can never leave the key
    /// recorded and the person's words lost (the next delivery would be skipped).
    pub async fn add_turn_once(
        &self,
        session_id: i64,
        event: Option<(&str, &str)>,
        t: NewTurn<'_>,
    ) -> Result<Option<Turn>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        if let Some((platform, key)) = event {
            let r = sqlx::query(
                "INSERT OR IGNORE INTO processed_events (platform, event_id, processed_at) VALUES (?, ?, ?)",
            )
            .bind(platform)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(None);
            }
        }
        let id = sqlx::query(
            "INSERT INTO turns (session_id, idx, speaker, text, source, strategy, strategy_probs, platform_message_id, delivery, created_at)
             VALUES (?, (SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE session_id = ?), ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(session_id)
        .bind(session_id)
        .bind(t.speaker)
        .bind(t.text)
        .bind(t.source)
        .bind(t.strategy)
        .bind(t.strategy_probs)
        .bind(t.platform_message_id)
        .bind(t.delivery)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        sqlx::query("UPDATE sessions SET last_activity_at = ? WHERE id = ?")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        let turn = sqlx::query_as("SELECT * FROM turns WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(turn))
    }

    pub async fn turn(&self, id: i64) -> Result<Option<Turn>> {
        Ok(sqlx::query_as("SELECT * FROM turns WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn turns(&self, session_id: i64) -> Result<Vec<Turn>> {
        Ok(
            sqlx::query_as("SELECT * FROM turns WHERE session_id = ? ORDER BY idx")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn mark_delivered(
        &self,
        turn_id: i64,
        platform_message_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE turns SET delivery = 'delivered', delivered_at = ?, platform_message_id = COALESCE(?, platform_message_id) WHERE id = ?")
            .bind(now_ms())
            .bind(platform_message_id)
            .bind(turn_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn mark_failed(&self, turn_id: i64) -> Result<()> {
        sqlx::query("UPDATE turns SET delivery = 'failed' WHERE id = ?")
            .bind(turn_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Bot turns recorded but not yet confirmed delivered, oldest first.
    pub async fn undelivered_turns(&self) -> Result<Vec<Turn>> {
        Ok(sqlx::query_as("SELECT t.* FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.delivery = 'pending' AND s.stage != 'closed' ORDER BY t.id")
            .fetch_all(&self.pool)
            .await?)
    }

    // ---- ratings ----

    pub async fn create_rating_prompt(
        &self,
        session_id: i64,
        first: i64,
        second: i64,
    ) -> Result<RatingPrompt> {
        let id = sqlx::query("INSERT INTO rating_prompts (session_id, first_turn_id, second_turn_id, created_at) VALUES (?, ?, ?, ?)")
            .bind(session_id)
            .bind(first)
            .bind(second)
            .bind(now_ms())
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        self.rating_prompt(id)
            .await?
            .context("rating prompt vanished after insert")
    }

    pub async fn rating_prompt(&self, id: i64) -> Result<Option<RatingPrompt>> {
        Ok(sqlx::query_as("SELECT * FROM rating_prompts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn latest_rating_prompt(&self, session_id: i64) -> Result<Option<RatingPrompt>> {
        Ok(sqlx::query_as(
            "SELECT * FROM rating_prompts WHERE session_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn rating_prompts(&self, session_id: i64) -> Result<Vec<RatingPrompt>> {
        Ok(
            sqlx::query_as("SELECT * FROM rating_prompts WHERE session_id = ? ORDER BY id")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn set_rating(&self, prompt_id: i64, stars: i64) -> Result<()> {
        sqlx::query("UPDATE rating_prompts SET stars = ?, rated_at = ? WHERE id = ?")
            .bind(stars)
            .bind(now_ms())
            .bind(prompt_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_prompt_message_id(
        &self,
        prompt_id: i64,
        platform_message_id: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE rating_prompts SET platform_message_id = ? WHERE id = ?")
            .bind(platform_message_id)
            .bind(prompt_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- platform bookkeeping ----

    /// Records a platform event id; false if it was already processed.
    /// Whether a platform event was processed already (read only; see `add_turn_once`).
    pub async fn event_processed(&self, platform: &str, event_id: &str) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM processed_events WHERE platform = ? AND event_id = ?")
                .bind(platform)
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    pub async fn mark_event_processed(&self, platform: &str, event_id: &str) -> Result<bool> {
        let r = sqlx::query("INSERT OR IGNORE INTO processed_events (platform, event_id, processed_at) VALUES (?, ?, ?)")
            .bind(platform)
            .bind(event_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A chat's crisis message override, if any.
    pub async fn chat_crisis_message(
        &self,
        platform: &str,
        chat_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT crisis_message FROM chat_settings WHERE platform = ? AND chat_id = ?",
        )
        .bind(platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Whether Kindred may answer in a shared chat (`None`: no moderator has decided).
    pub async fn chat_enabled(&self, platform: &str, chat_id: &str) -> Result<Option<bool>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT enabled FROM chat_settings WHERE platform = ? AND chat_id = ?")
                .bind(platform)
                .bind(chat_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0 != 0))
    }

    /// Turns Kindred on or off in a shared chat.
    pub async fn set_chat_enabled(
        &self,
        platform: &str,
        chat_id: &str,
        enabled: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled) VALUES (?, ?, ?)
             ON CONFLICT (platform, chat_id) DO UPDATE SET enabled = excluded.enabled",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets (or with `None`, clears) a chat's crisis resources, keeping whether it is on.
    pub async fn set_chat_crisis_message(
        &self,
        platform: &str,
        chat_id: &str,
        message: Option<&str>,
        enabled_if_new: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled, crisis_message) VALUES (?, ?, ?, ?)
             ON CONFLICT (platform, chat_id) DO UPDATE SET crisis_message = excluded.crisis_message",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled_if_new as i64)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a shared chat's risk alerts go (`None`: alerts are off).
    pub async fn chat_alerts(&self, platform: &str, chat_id: &str) -> Result<Option<AlertRoute>> {
        let row: Option<(Option<String>, i64)> = sqlx::query_as(
            "SELECT alert_chat, alert_text FROM chat_settings WHERE platform = ? AND chat_id = ?",
        )
        .bind(platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(target, text)| {
            target.map(|target| AlertRoute {
                target,
                include_text: text != 0,
            })
        }))
    }

    /// Sends a shared chat's risk alerts to `target` (or, with `None`, stops them).
    pub async fn set_chat_alerts(
        &self,
        platform: &str,
        chat_id: &str,
        target: Option<&str>,
        include_text: bool,
        enabled_if_new: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled, alert_chat, alert_text) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (platform, chat_id) DO UPDATE SET alert_chat = excluded.alert_chat,
                 alert_text = excluded.alert_text",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled_if_new as i64)
        .bind(target)
        .bind(include_text as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a one-time code with which another chat becomes this chat's alert chat.
    pub async fn set_alert_link_code(
        &self,
        platform: &str,
        chat_id: &str,
        code: &str,
        enabled_if_new: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled, alert_code, alert_code_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (platform, chat_id) DO UPDATE SET alert_code = excluded.alert_code,
                 alert_code_at = excluded.alert_code_at",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled_if_new as i64)
        .bind(code)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Links `target` as the alert chat of the chat that issued `code` (within `max_age_ms`),
    /// using the code up. Returns that chat's id, or `None` for an unknown or stale code.
    pub async fn use_alert_link_code(
        &self,
        platform: &str,
        code: &str,
        target: &str,
        max_age_ms: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE chat_settings SET alert_chat = ?, alert_code = NULL, alert_code_at = NULL
             WHERE platform = ? AND alert_code = ? AND alert_code_at >= ?
             RETURNING chat_id",
        )
        .bind(target)
        .bind(platform)
        .bind(code)
        .bind(now_ms() - max_age_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    // ---- the inbox: platform events stored before they are acknowledged ----

    /// Stores a platform event under its key. `Ok(None)` when the key was seen before.
    pub async fn inbox_insert(
        &self,
        platform: &str,
        key: &str,
        payload: &str,
    ) -> Result<Option<i64>> {
        let r = sqlx::query(
            "INSERT OR IGNORE INTO inbox (platform, event_key, payload, received_at) VALUES (?, ?, ?, ?)",
        )
        .bind(platform)
        .bind(key)
        .bind(payload)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok((r.rows_affected() == 1).then(|| r.last_insert_rowid()))
    }

    /// Marks an inbox event handled and drops its payload.
    pub async fn inbox_done(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE inbox SET handled_at = ?, payload = NULL WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events stored but not yet handled (after a crash), oldest first: (id, payload).
    pub async fn inbox_unhandled(&self) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, payload FROM inbox WHERE handled_at IS NULL AND payload IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets the keys of events handled before `cutoff`, in the inbox and among the
    /// processed messages (redeliveries come within minutes, so a week is plenty).
    pub async fn prune_handled_events(&self, cutoff: i64) -> Result<u64> {
        let inbox =
            sqlx::query("DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        let processed = sqlx::query("DELETE FROM processed_events WHERE processed_at < ?")
            .bind(cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(inbox + processed)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Summary statistics for `kindred stats`: counts, means, ratings by stars and bot
    /// replies by strategy (the names given).
    pub async fn stats(&self, strategies: &[&str]) -> Result<serde_json::Value> {
        let pool = &self.pool;
        let one = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await?;
            anyhow::Ok(n)
        };
        let avg = |sql: &'static str| async move {
            let (v,): (Option<f64>,) = sqlx::query_as(sql).fetch_one(pool).await?;
            anyhow::Ok(v)
        };
        let mut by_strategy = serde_json::Map::new();
        for name in strategies {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM turns WHERE source = 'model' AND strategy = ?",
            )
            .bind(name)
            .fetch_one(pool)
            .await?;
            by_strategy.insert(name.to_string(), n.into());
        }
        let mut stars = serde_json::Map::new();
        for k in 1..=5 {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM rating_prompts WHERE stars = ?")
                    .bind(k)
                    .fetch_one(pool)
                    .await?;
            stars.insert(k.to_string(), n.into());
        }
        Ok(serde_json::json!({
            "users": one("SELECT COUNT(*) FROM users").await?,
            "sessions": one("SELECT COUNT(*) FROM sessions").await?,
            "sessions_open": one("SELECT COUNT(*) FROM sessions WHERE stage != 'closed'").await?,
            "seeker_messages": one("SELECT COUNT(*) FROM turns WHERE source = 'user'").await?,
            "bot_replies": one("SELECT COUNT(*) FROM turns WHERE source = 'model'").await?,
            "undelivered_replies": one("SELECT COUNT(*) FROM turns WHERE source = 'model' AND delivery != 'delivered'").await?,
            "rating_prompts": one("SELECT COUNT(*) FROM rating_prompts").await?,
            "ratings": one("SELECT COUNT(*) FROM rating_prompts WHERE stars IS NOT NULL").await?,
            "mean_rating": avg("SELECT AVG(stars) FROM rating_prompts WHERE stars IS NOT NULL").await?,
            "ratings_by_stars": stars,
            "strategies": by_strategy,
            "checkins": one("SELECT COUNT(*) FROM sessions WHERE intensity_before IS NOT NULL").await?,
            "surveys": one("SELECT COUNT(*) FROM sessions WHERE intensity_after IS NOT NULL OR empathy IS NOT NULL OR relevance IS NOT NULL").await?,
            "mean_intensity_before": avg("SELECT AVG(intensity_before) FROM sessions").await?,
            "mean_intensity_after": avg("SELECT AVG(intensity_after) FROM sessions").await?,
            "mean_empathy": avg("SELECT AVG(empathy) FROM sessions").await?,
            "mean_relevance": avg("SELECT AVG(relevance) FROM sessions").await?,
        }))
    }
}

/// Session columns the engine may set one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionField {
    EmotionType,
    ProblemType,
    Situation,
    IntensityBefore,
    IntensityAfter,
    Empathy,
    Relevance,
}

impl SessionField {
    fn column(self) -> &'static str {
        match self {
            SessionField::EmotionType => "emotion_type",
            SessionField::ProblemType => "problem_type",
            SessionField::Situation => "situation",
            SessionField::IntensityBefore => "intensity_before",
            SessionField::IntensityAfter => "intensity_after",
            SessionField::Empathy => "empathy",
            SessionField::Relevance => "relevance",
        }
    }
}

pub enum FieldValue<'a> {
    Int(i64),
    Text(&'a str),
}

#[cfg(all(test, unix))]
mod file_modes {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_data_directory_and_database_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("kindred.sqlite");
        let store = Store::open(&db, Duration::from_secs(1)).await.unwrap();
        store.get_or_create_user("test", "ana").await.unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&PathBuf::from(format!("{}-wal", db.display()))), 0o600);
        store.close().await;
        // Loosened by hand: the database is tightened again at the next start; an
        // existing directory is left as its owner set it (with a warning).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open(&db, Duration::from_secs(1)).await.unwrap();
        assert_eq!((mode(&dir), mode(&db)), (0o755, 0o600));
        store.close().await;
    }
}
