//! The inbox: platform events stored before the platform is told they arrived, so a
//! crash after that loses nothing; pruning the keys of handled events.

use super::*;

impl Store {
    /// Stores a platform event under its key, with whose it is (`person`, see
    /// `instances`). `Ok(None)` when the key was seen before.
    pub async fn inbox_insert(
        &self,
        platform: &str,
        key: &str,
        payload: &str,
        person: Option<&str>,
    ) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO inbox (platform, event_key, payload, received_at, person) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (platform, event_key) DO NOTHING RETURNING id",
        )
        .bind(platform)
        .bind(key)
        .bind(payload)
        .bind(now_ms())
        .bind(person)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Marks an inbox event handled and drops its payload.
    pub async fn inbox_done(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE inbox SET handled_at = $1, payload = NULL WHERE id = $2")
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

    /// A person's events not yet handled, oldest first: (id, payload).
    pub async fn inbox_unhandled_of(&self, person: &str) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, payload FROM inbox WHERE person = $1 AND handled_at IS NULL AND payload IS NOT NULL ORDER BY id",
        )
        .bind(person)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Unhandled events stored without whose they are (before `inbox.person` existed).
    pub async fn inbox_unhandled_without_person(&self) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, payload FROM inbox WHERE person IS NULL AND handled_at IS NULL AND payload IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records whose an event is (rows stored before `inbox.person` existed).
    pub async fn inbox_set_person(&self, id: i64, person: &str) -> Result<()> {
        sqlx::query("UPDATE inbox SET person = $1 WHERE id = $2")
            .bind(person)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the keys of events handled before `cutoff`, in the inbox and among the
    /// processed messages (redeliveries come within minutes, so a week is plenty).
    pub async fn prune_handled_events(&self, cutoff: i64) -> Result<u64> {
        let inbox =
            sqlx::query("DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        let processed = sqlx::query("DELETE FROM processed_events WHERE processed_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(inbox + processed)
    }
}
