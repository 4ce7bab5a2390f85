//! Several `kindred run` instances on one database: heartbeats, leases and claims.
//!
//! * Each instance beats ([`Store::heartbeat`]) every couple of seconds; one whose beat
//!   is older than [`ALIVE_MS`] is dead, and everything it held is free.
//! * A lease ([`Store::try_lease`]) is held by one live instance at a time: `person:KEY`
//!   while an instance handles that person's events (so they are handled in order, by
//!   one instance), `leader` for the periodic work only one instance should do.
//! * A reply or rating question waiting to be sent is claimed by the instance that made
//!   it (`turns.claimed_by`, `rating_prompts.claimed_by`); [`Store::claim_pending_turns`]
//!   and [`Store::claim_unsent_rating_prompts`] hand those of dead instances to a live
//!   one (`FOR UPDATE SKIP LOCKED` on Postgres, so two never take the same).

use super::*;

/// A heartbeat older than this (milliseconds) means the instance is gone.
pub const ALIVE_MS: i64 = 10_000;

impl Store {
    /// This store's instance, when it is one of several (Postgres).
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// The clause that makes a claim's inner `SELECT` take rows no other instance is
    /// claiming at the same moment (`alias` is the claimed table's): on Postgres
    /// `FOR UPDATE … SKIP LOCKED`; SQLite has one writer at a time, so the `UPDATE` is
    /// atomic as it is.
    pub(super) fn skip_locked(&self, alias: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("FOR UPDATE OF {alias} SKIP LOCKED"),
            Backend::Sqlite => String::new(),
        }
    }

    /// Records that `instance` is alive.
    pub async fn heartbeat(&self, instance: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(instance)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many instances are alive (this one included, once it has beaten).
    pub async fn live_instances(&self) -> Result<u32> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM instances WHERE heartbeat_at >= $1")
                .bind(now_ms() - ALIVE_MS)
                .fetch_one(&self.pool)
                .await?;
        Ok(n.clamp(1, u32::MAX as i64) as u32)
    }

    /// Instances whose heartbeat stopped.
    pub async fn dead_instances(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM instances WHERE heartbeat_at < $1 ORDER BY id")
                .bind(now_ms() - ALIVE_MS)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Forgets an instance and its leases (at a clean stop, or once its work was taken over).
    pub async fn remove_instance(&self, instance: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM leases WHERE instance = $1")
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes or renews the lease `name` for `ttl_ms`; false when a live instance holds it.
    pub async fn try_lease(&self, name: &str, instance: &str, ttl_ms: i64) -> Result<bool> {
        let now = now_ms();
        let row: Option<(String,)> = sqlx::query_as(
            "INSERT INTO leases (name, instance, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, expires_at = excluded.expires_at
             WHERE leases.instance = excluded.instance OR leases.expires_at < $4
                OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = leases.instance AND i.heartbeat_at >= $5)
             RETURNING instance",
        )
        .bind(name)
        .bind(instance)
        .bind(now + ttl_ms)
        .bind(now)
        .bind(now - ALIVE_MS)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Gives the lease `name` up (if `instance` holds it).
    pub async fn release_lease(&self, name: &str, instance: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND instance = $2")
            .bind(name)
            .bind(instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// People with events received more than `min_age_ms` ago that nobody handles: no
    /// live instance holds their lease (the one that received them died, or had them
    /// taken by the lease holder, which then stopped).
    pub async fn people_with_orphaned_events(&self, min_age_ms: i64) -> Result<Vec<String>> {
        let now = now_ms();
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT i.person FROM inbox i
             WHERE i.handled_at IS NULL AND i.payload IS NOT NULL AND i.person IS NOT NULL
               AND i.received_at < $1
               AND NOT EXISTS (
                   SELECT 1 FROM leases l JOIN instances s ON s.id = l.instance
                   WHERE l.name = 'person:' || i.person AND l.expires_at >= $2 AND s.heartbeat_at >= $3)",
        )
        .bind(now - min_age_ms)
        .bind(now)
        .bind(now - ALIVE_MS)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(p,)| p).collect())
    }

    /// Replies waiting to be sent whose instance is gone (or that no instance claimed),
    /// now claimed by `instance`, oldest first. Its own are not among them: they are
    /// on their way (a take-over while one is in flight must not send it twice).
    pub async fn claim_pending_turns(&self, instance: &str) -> Result<Vec<Turn>> {
        let lock = self.skip_locked("t");
        let sql = format!(
            "UPDATE turns SET claimed_by = $1 WHERE id IN (
                 SELECT t.id FROM turns t JOIN sessions s ON s.id = t.session_id
                 WHERE t.delivery = 'pending' AND s.stage != 'closed'
                   AND (t.claimed_by IS NULL OR (t.claimed_by != $1 AND NOT EXISTS (
                       SELECT 1 FROM instances i WHERE i.id = t.claimed_by AND i.heartbeat_at >= $2)))
                 ORDER BY t.id {lock})
             RETURNING *"
        );
        let mut turns: Vec<Turn> = sqlx::query_as(&sql)
            .bind(instance)
            .bind(now_ms() - ALIVE_MS)
            .fetch_all(&self.pool)
            .await?;
        turns.sort_by_key(|t| t.id);
        Ok(turns)
    }

    /// Rating questions of open conversations never reported sent nor answered whose
    /// instance is gone (or that no instance claimed), now claimed by `instance`, oldest
    /// first: the ones a stopped instance recorded but may not have sent.
    pub async fn claim_unsent_rating_prompts(&self, instance: &str) -> Result<Vec<RatingPrompt>> {
        let lock = self.skip_locked("p");
        let sql = format!(
            "UPDATE rating_prompts SET claimed_by = $1 WHERE id IN (
                 SELECT p.id FROM rating_prompts p JOIN sessions s ON s.id = p.session_id
                 WHERE p.platform_message_id IS NULL AND p.stars IS NULL AND s.ended_at IS NULL
                   AND (p.claimed_by IS NULL OR (p.claimed_by != $1 AND NOT EXISTS (
                       SELECT 1 FROM instances i WHERE i.id = p.claimed_by AND i.heartbeat_at >= $2)))
                 ORDER BY p.id {lock})
             RETURNING *"
        );
        let mut prompts: Vec<RatingPrompt> = sqlx::query_as(&sql)
            .bind(instance)
            .bind(now_ms() - ALIVE_MS)
            .fetch_all(&self.pool)
            .await?;
        prompts.sort_by_key(|p| p.id);
        Ok(prompts)
    }
}
