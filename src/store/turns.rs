//! Turns: every message and reply, and how far each has got to its platform.

use super::*;

/// How many times a refused send is tried in all (see [`Store::mark_failed`]).
pub const SEND_ATTEMPTS: i64 = 10;

impl Store {
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
                "INSERT INTO processed_events (platform, event_id, processed_at) VALUES ($1, $2, $3)
                 ON CONFLICT (platform, event_id) DO NOTHING",
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
        let turn: Turn = sqlx::query_as(
            "INSERT INTO turns (session_id, idx, speaker, text, source, strategy, strategy_probs, platform_message_id, delivery, created_at, claimed_by)
             VALUES ($1, (SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE session_id = $2), $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING *",
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
        .bind((t.delivery == Delivery::Pending).then_some(self.instance.as_deref()).flatten())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE sessions SET last_activity_at = $1 WHERE id = $2")
            .bind(now)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(turn))
    }

    pub async fn turn(&self, id: i64) -> Result<Option<Turn>> {
        Ok(sqlx::query_as("SELECT * FROM turns WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn turns(&self, session_id: i64) -> Result<Vec<Turn>> {
        Ok(
            sqlx::query_as("SELECT * FROM turns WHERE session_id = $1 ORDER BY idx")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The last `n` turns of a session, in order: what a check of the newest message
    /// needs, at a cost that does not grow with the conversation (a person flooding one
    /// conversation with thousands of messages must not make each next one dearer).
    pub async fn recent_turns(&self, session_id: i64, n: i64) -> Result<Vec<Turn>> {
        let mut turns: Vec<Turn> =
            sqlx::query_as("SELECT * FROM turns WHERE session_id = $1 ORDER BY idx DESC LIMIT $2")
                .bind(session_id)
                .bind(n)
                .fetch_all(&self.pool)
                .await?;
        turns.reverse();
        Ok(turns)
    }

    pub async fn mark_delivered(
        &self,
        turn_id: i64,
        platform_message_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE turns SET delivery = 'delivered', delivered_at = $1, platform_message_id = COALESCE($2, platform_message_id) WHERE id = $3")
            .bind(now_ms())
            .bind(platform_message_id)
            .bind(turn_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that the platform refused a turn, and when to try it again: after 1, 2,
    /// 4 … minutes, at most an hour apart, [`SEND_ATTEMPTS`] times in all (about four
    /// hours), then never. Returns whether it will be tried again.
    pub async fn mark_failed(&self, turn_id: i64) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE turns SET delivery = 'failed', attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(turn_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((attempts,)) = row else {
            return Ok(false);
        };
        let next = (attempts < SEND_ATTEMPTS).then(|| {
            let minutes = 1i64 << (attempts - 1).clamp(0, 6);
            now_ms() + minutes.min(60) * 60_000
        });
        sqlx::query("UPDATE turns SET next_attempt_at = $1 WHERE id = $2")
            .bind(next)
            .bind(turn_id)
            .execute(&self.pool)
            .await?;
        Ok(next.is_some())
    }

    /// Failed turns whose next attempt is due, in conversations still open, made pending
    /// again (and claimed by `instance` on a shared database) to be sent now.
    pub async fn claim_due_retries(&self, instance: Option<&str>) -> Result<Vec<Turn>> {
        let lock = self.skip_locked("t");
        let sql = format!(
            "UPDATE turns SET delivery = 'pending', next_attempt_at = NULL, claimed_by = $1
             WHERE id IN (
                 SELECT t.id FROM turns t JOIN sessions s ON s.id = t.session_id
                 WHERE t.delivery = 'failed' AND t.next_attempt_at IS NOT NULL
                   AND t.next_attempt_at <= $2 AND s.stage != 'closed'
                 ORDER BY t.id {lock})
             RETURNING *"
        );
        let mut turns: Vec<Turn> = sqlx::query_as(&sql)
            .bind(instance)
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        turns.sort_by_key(|t| t.id);
        Ok(turns)
    }

    /// Bot turns recorded but not yet confirmed delivered, oldest first.
    pub async fn undelivered_turns(&self) -> Result<Vec<Turn>> {
        Ok(sqlx::query_as("SELECT t.* FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.delivery = 'pending' AND s.stage != 'closed' ORDER BY t.id")
            .fetch_all(&self.pool)
            .await?)
    }
}
