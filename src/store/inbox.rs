//! The inbox: platform events stored before the platform is told they arrived, so a
//! crash after that loses nothing; pruning the keys of handled events.

use super::*;

impl Store {
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
}
