//! Sessions: one conversation of a person in a chat, its stage, check-in and survey
//! answers; closing one erases its words when the person asked for that.

use super::*;

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

impl Store {
    /// The user's session in this chat that is not closed (chatting, or in its check-in or survey).
    pub async fn open_session(
        &self,
        user_id: i64,
        chat_platform: &str,
        chat_id: &str,
    ) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "SELECT * FROM sessions WHERE user_id = $1 AND chat_platform = $2 AND chat_id = $3 AND stage != 'closed'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(chat_platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn session(&self, id: i64) -> Result<Option<Session>> {
        Ok(sqlx::query_as("SELECT * FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn create_session(
        &self,
        user_id: i64,
        chat: &ChatRef,
        stage: Stage,
    ) -> Result<Session> {
        let now = now_ms();
        let session = sqlx::query_as(
            "INSERT INTO sessions (user_id, chat_platform, chat_id, chat_kind, chat_community, started_at, last_activity_at, stage, nonce)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING *",
        )
        .bind(user_id)
        .bind(&chat.platform)
        .bind(&chat.id)
        .bind(chat.kind.as_str())
        .bind(chat.community.as_deref())
        .bind(now)
        .bind(now)
        .bind(stage)
        .bind(random_token(12))
        .fetch_one(&self.pool)
        .await?;
        Ok(session)
    }

    pub async fn set_stage(&self, session_id: i64, stage: Stage) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET stage = $1, last_activity_at = $2 WHERE id = $3")
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
    pub(super) async fn erase_words_if_not_kept(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        session_id: i64,
    ) -> Result<()> {
        let keep: Option<(i64,)> = sqlx::query_as(
            "SELECT u.keep_words FROM users u JOIN sessions s ON s.user_id = u.id WHERE s.id = $1",
        )
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await?;
        if keep == Some((0,)) {
            sqlx::query("UPDATE turns SET text = '' WHERE session_id = $1")
                .bind(session_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE sessions SET situation = NULL WHERE id = $1")
                .bind(session_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn touch(&self, session_id: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_activity_at = $1 WHERE id = $2")
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
        sqlx::query("UPDATE sessions SET ended_at = COALESCE(ended_at, $1), end_reason = COALESCE(end_reason, $2), stage = $3 WHERE id = $4")
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
        let sql = format!("UPDATE sessions SET {} = $1 WHERE id = $2", field.column());
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
            "SELECT * FROM sessions WHERE stage != 'closed' AND last_activity_at < $1",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn sessions_of_user(&self, user_id: i64) -> Result<Vec<Session>> {
        Ok(
            sqlx::query_as("SELECT * FROM sessions WHERE user_id = $1 ORDER BY id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Sessions started at or after `since_ms` that may be exported: never those of a
    /// person who chose that their words are not kept.
    pub async fn exportable_sessions(&self, since_ms: i64) -> Result<Vec<Session>> {
        Ok(sqlx::query_as(
            "SELECT s.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.started_at >= $1 AND u.keep_words = 1 ORDER BY s.id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts one more bot reply; returns the new count.
    pub async fn count_bot_reply(&self, session_id: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "UPDATE sessions SET bot_replies = bot_replies + 1 WHERE id = $1 RETURNING bot_replies",
        )
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Messages this user sent since `since_ms` (for the rate limit), counted up to `at_most`.
    pub async fn messages_since(&self, user_id: i64, since_ms: i64, at_most: i64) -> Result<i64> {
        // Counted only up to `at_most`: the caller asks whether a limit is passed, and
        // a flood's thousands of messages in the minute must not make every next
        // message count them all again (the partial index `turns_user_by_time` keeps
        // the count to the window's rows).
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM turns t JOIN sessions s ON s.id = t.session_id
             WHERE s.user_id = $1 AND t.source = 'user' AND t.created_at >= $2 LIMIT $3) recent",
        )
        .bind(user_id)
        .bind(since_ms)
        .bind(at_most)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Deletes closed sessions that ended before `cutoff` (retention); returns how many.
    pub async fn delete_sessions_ended_before(&self, cutoff: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM sessions WHERE stage = 'closed' AND ended_at IS NOT NULL AND ended_at < $1",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
